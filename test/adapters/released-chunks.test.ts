// A request's body chunks are freed as soon as their bytes are on disk, when the upload's parser
// was their only reader (src/write/owned-chunks.ts); a chunk anyone else got keeps its bytes.
// Real servers (Express, Fastify) over real sockets, a 1 MiB file sent in 64 KiB writes.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { tempScope, upload } from '../../src/adapters/express.js';
import tempFiles from '../../src/adapters/fastify.js';
import type { TempFileManager } from '../../src/index.js';
import { bigFileForm, BOUNDARY, listenClosing, MiB } from '../helpers/http-clients.js';
import { manager } from '../helpers/roots.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** How a test looks at the request before the upload reads it. */
type Observe = (req: http.IncomingMessage) => void;

/** A server whose `POST /upload` takes one file in `file` and answers with its size and SHA-256, read from disk. */
type Server = (mgr: TempFileManager, observe: Observe, options?: UploadExtras) => Promise<number>;

/** Options an upload may add: a check of the type (sniffed from the first chunks) and a digest. */
interface UploadExtras {
  readonly accept?: string[];
  readonly hash?: string;
}

const answer = (path: string, digest?: string) => ({
  size: fs.statSync(path).size,
  sha256: createHash('sha256').update(fs.readFileSync(path)).digest('hex'),
  ...(digest !== undefined && { digest }),
});

const SERVERS: Record<string, Server> = {
  express: async (mgr, observe, options) => {
    const app = express();
    app.use(tempScope(mgr));
    app.use((req, _res, next) => {
      observe(req);
      next();
    });
    app.post('/upload', upload({ field: 'file', ...options }), (req, res) => res.json(answer(req.file!.path, req.file!.digest)));
    return serve(app);
  },
  fastify: async (mgr, observe, options) => {
    const app = Fastify();
    await app.register(tempFiles, { manager: mgr });
    app.addHook('onRequest', async (request) => observe(request.raw));
    app.post('/upload', async (request) => {
      const { file } = await request.saveUploads({ field: 'file', ...options });
      return answer(file!.path, file!.digest);
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    return (app.server.address() as AddressInfo).port;
  },
};

/**
 * Posts `body` (a form) to `/upload` in writes of 64 KiB, or its pieces 200 ms apart when given
 * as pieces; resolves with the answer, or rejects when none comes in 10 s.
 */
function post(port: number, body: Buffer | readonly Buffer[]): Promise<{ status: number; text: string }> {
  const pieces = Buffer.isBuffer(body) ? Array.from({ length: Math.ceil(body.length / (64 * 1024)) }, (_, i) => body.subarray(i * 64 * 1024, (i + 1) * 64 * 1024)) : body;
  const length = pieces.reduce((sum, piece) => sum + piece.length, 0);
  const gapMs = Buffer.isBuffer(body) ? 0 : 200;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { port, host: '127.0.0.1', method: 'POST', path: '/upload', headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': length } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (piece: string) => (text += piece));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    // An upload that waits for bytes that will never come would leave the client hanging.
    req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', reject);
    const send = (i: number): void => {
      if (i === pieces.length) return void req.end();
      req.write(pieces[i]);
      if (gapMs === 0) send(i + 1);
      else setTimeout(() => send(i + 1), gapMs);
    };
    send(0);
  });
}

/** Sends a form with `data` as its file; resolves with the answer (200, else it rejects) and the body sent. */
async function send(port: number, data: Buffer): Promise<{ reply: { size: number; sha256: string; digest?: string }; body: Buffer }> {
  const form = bigFileForm(data.length);
  const body = Buffer.concat([form.head, data, form.tail]);
  const { status, text } = await post(port, body);
  if (status !== 200) throw new Error(`${status}: ${text}`);
  return { reply: JSON.parse(text) as { size: number; sha256: string }, body };
}

/** Serves `app` on a port of its own, closed after the test. */
async function serve(app: express.Express): Promise<number> {
  return Number(new URL(await listenClosing(app, closers)).port);
}

// The first bytes of a PNG (signature and IHDR): enough for the sniffer.
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Random bytes with no CR: no chunk ends in what could be the start of a boundary, which the parser holds back. */
function fileBytes(size: number): Buffer {
  const bytes = randomBytes(size);
  for (let i = 0; i < size; i++) if (bytes[i] === 0x0d) bytes[i] = 0x0e;
  return bytes;
}

describe.each(Object.keys(SERVERS))('%s: body chunks of an upload', (name) => {
  const start = SERVERS[name]!;

  it('are freed once written when the parser was their only reader, and the file is whole', async () => {
    // Seen without a listener: a wrapper of emit(), which no listener count shows.
    const seen: { chunk: Buffer; bytes: number }[] = [];
    const port = await start(manager(), (req) => {
      const emit = req.emit.bind(req);
      req.emit = ((event: string, ...args: unknown[]) => {
        if (event === 'data') seen.push({ chunk: args[0] as Buffer, bytes: (args[0] as Buffer).byteLength });
        return emit(event, ...args);
      }) as typeof req.emit;
    });
    const data = fileBytes(MiB);
    const { reply } = await send(port, data);
    expect(reply).toEqual({ size: MiB, sha256: sha256(data) });
    // Sockets hand out up to 64 KiB a read: the 1 MiB came in large chunks, all of them file
    // bytes but the first and the last, whose file bytes are a part of them: those are freed
    // once the form is done, the others once written.
    const large = seen.filter(({ bytes }) => bytes >= 16 * 1024);
    expect(large.length).toBeGreaterThan(4);
    expect(large.filter(({ chunk }) => chunk.buffer.byteLength !== 0)).toEqual([]);
  });

  it('are freed after the type is sniffed from the first ones and the digest computed: both of the whole file', async () => {
    const port = await start(manager(), () => {}, { accept: ['image/png'], hash: 'sha256' });
    // Zeros after the header: random bytes there read as chunks of the PNG, some of them malformed.
    const data = Buffer.concat([PNG, Buffer.alloc(4096), fileBytes(MiB - PNG.length - 4096)]);
    const { reply } = await send(port, data);
    expect(reply).toEqual({ size: MiB, sha256: sha256(data), digest: `sha256:${sha256(data)}` });
  });

  it('keep their bytes for another data listener that kept them', async () => {
    const kept: Buffer[] = [];
    const port = await start(manager(), (req) => req.on('data', (chunk: Buffer) => kept.push(chunk)));
    const data = fileBytes(MiB);
    const { reply, body } = await send(port, data);
    expect(reply).toEqual({ size: MiB, sha256: sha256(data) });
    expect(sha256(Buffer.concat(kept))).toBe(sha256(body));
  });

  it('keep their bytes for a reader of its own that read them (readable)', async () => {
    // It reads each chunk as it comes, before the parser's pipe sees it.
    const kept: Buffer[] = [];
    const port = await start(manager(), (req) =>
      req.on('readable', () => {
        for (let chunk = req.read() as Buffer | null; chunk !== null; chunk = req.read() as Buffer | null) kept.push(chunk);
      }),
    );
    const data = fileBytes(MiB);
    const { reply, body } = await send(port, data);
    expect(reply).toEqual({ size: MiB, sha256: sha256(data) });
    expect(sha256(Buffer.concat(kept))).toBe(sha256(body));
  });
});

describe('express: a chunk with the end of a file and the start of a field', () => {
  it('keeps its bytes until the field is read: the field arrives whole', async () => {
    const app = express();
    app.use(tempScope(manager()));
    app.post('/upload', upload({ field: 'file' }), (req, res) => {
      const note = (req.body as Record<string, string>).note ?? '';
      res.json({ ...answer(req.file!.path), note: sha256(Buffer.from(note)) });
    });
    const port = await serve(app);
    // One write: the form's head, 40 KiB of file, and the first half of a 20 KiB field; the
    // other half 200 ms later, once the file's bytes are written (the first chunk's part of them).
    const data = fileBytes(40 * 1024);
    const note = 'n'.repeat(20 * 1024);
    const form = bigFileForm(data.length);
    const field = Buffer.from(`\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\n`);
    const first = Buffer.concat([form.head, data, field, Buffer.from(note.slice(0, 10 * 1024))]);
    const rest = Buffer.concat([Buffer.from(note.slice(10 * 1024)), form.tail]);
    const reply = await post(port, [first, rest]);
    expect(JSON.parse(reply.text)).toEqual({ size: data.length, sha256: sha256(data), note: sha256(Buffer.from(note)) });
  });
});

describe('web: body chunks of an upload', () => {
  it('keep their bytes when the request was made from buffers its caller keeps', async () => {
    const { handleUpload } = await import('../../src/adapters/web.js');
    const data = fileBytes(MiB);
    const form = bigFileForm(data.length);
    // The caller's own buffers, each all of its memory, handed out as they are.
    const pieces = [form.head, ...Array.from({ length: 16 }, (_, i) => Buffer.from(data.subarray(i * 64 * 1024, (i + 1) * 64 * 1024))), form.tail];
    const copies = pieces.map((piece) => Buffer.from(piece));
    let next = 0;
    const body = new ReadableStream<Uint8Array>({
      pull: (controller) => (next < pieces.length ? controller.enqueue(pieces[next++]!) : controller.close()),
    });
    const request = new Request('http://localhost/upload', {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
      body,
      duplex: 'half',
    } as RequestInit);
    const response = await handleUpload(request, { field: 'file', manager: manager() }, ({ file }) => Response.json(answer(file!.path)));
    expect(await response.json()).toEqual({ size: MiB, sha256: sha256(data) });
    expect(pieces.every((piece, i) => piece.equals(copies[i]!))).toBe(true);
  });
});

describe('fastify under inject(): body chunks of an upload', () => {
  it("keep their bytes: they are the caller's own buffers", async () => {
    const app = Fastify();
    await app.register(tempFiles, { manager: manager() });
    app.post('/upload', async (request) => {
      const { file } = await request.saveUploads({ field: 'file' });
      return answer(file!.path);
    });
    closers.push(() => app.close());
    const data = fileBytes(MiB);
    const form = bigFileForm(data.length);
    // Each piece all of its memory, and the file's pieces nothing but file bytes.
    const pieces = [form.head, ...Array.from({ length: 16 }, (_, i) => Buffer.from(data.subarray(i * 64 * 1024, (i + 1) * 64 * 1024))), form.tail];
    const copies = pieces.map((piece) => Buffer.from(piece));
    const reply = await app.inject({
      method: 'POST',
      url: '/upload',
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': String(form.length) },
      payload: Readable.from(pieces),
    });
    expect(reply.json()).toEqual({ size: MiB, sha256: sha256(data) });
    expect(pieces.every((piece, i) => piece.equals(copies[i]!))).toBe(true);
  });
});

describe('express: a body another middleware read to its end first', () => {
  it('is refused as cut short, at once, as a pipe into the parser would', async () => {
    const app = express();
    app.use(tempScope(manager()));
    app.use((req, _res, next) => {
      req.once('end', () => next());
      req.resume();
    });
    app.post('/upload', upload({ field: 'file' }), (req, res) => res.json(answer(req.file!.path)));
    const port = await serve(app);
    const form = bigFileForm(64 * 1024);
    const reply = await post(port, Buffer.concat([form.head, fileBytes(64 * 1024), form.tail]));
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.text)).toMatchObject({ code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' });
  });
});
