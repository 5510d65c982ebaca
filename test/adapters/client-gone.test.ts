// A request's temp files are gone within a second of the request's end, whatever its client did:
// left before, during or after its body, before or after the answer, keep-alive or not, two
// requests pipelined in one write. Both adapters, over real sockets, with a raw `net` client.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { tempScope, upload } from '../../src/adapters/express.js';
import tempFiles from '../../src/adapters/fastify.js';
import type { TempFileManager } from '../../src/index.js';
import { BOUNDARY, bigFileForm, MiB } from '../helpers/http-clients.js';
import { manager } from '../helpers/roots.js';
import { sessionFiles, until } from '../helpers/wait.js';

type Adapter = 'express' | 'express-upload-only' | 'fastify';

/** What the route saw: requests started, files saved (by request id), how each upload call settled. */
interface Seen {
  started: number;
  saved: Map<string, string>;
  settled: Map<string, string>;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
// A route that answers after ROUTE_DELAY_MS never answers within a test: a file gone before then
// went because its client left. GONE_WITHIN_MS bounds how long that may take on a busy machine
// (the failure it rules out is a file kept until the response's end or the process's exit).
const ROUTE_DELAY_MS = 120_000;
const GONE_WITHIN_MS = 20_000;
const routeDelay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/**
 * `POST /upload?id=<id>&wait=<ms>&delay=<ms>`: waits `wait` ms, receives the form's `file`,
 * records it, waits `delay` ms, then answers with its size. `POST /early?id=<id>&when=<file|now>`
 * answers 202 while its form is being received: once the file's first bytes are on disk, or
 * 50 ms after it starts.
 */
async function serve(adapter: Adapter, mgr: TempFileManager): Promise<{ port: number; seen: Seen }> {
  const seen: Seen = { started: 0, saved: new Map(), settled: new Map() };
  const params = (url: string) => new URL(url, 'http://x').searchParams;
  if (adapter === 'fastify') {
    const app: FastifyInstance = Fastify();
    await app.register(tempFiles, { manager: mgr });
    app.post('/upload', async (request) => {
      seen.started += 1;
      const query = params(request.url);
      const id = query.get('id') ?? '';
      try {
        await sleep(Number(query.get('wait') ?? 0));
        const { file } = await request.saveUploads({ field: 'file', maxBytes: 64 * MiB });
        seen.settled.set(id, 'ok');
        seen.saved.set(id, file.path);
        await routeDelay(Number(query.get('delay') ?? 0));
        return { size: file.size };
      } catch (error) {
        seen.settled.set(id, (error as { code?: string }).code ?? String(error));
        throw error;
      }
    });
    app.post('/early', async (request, reply) => {
      const id = params(request.url).get('id') ?? '';
      seen.started += 1;
      const onDisk = new Promise<void>((resolve) => {
        request.saveUploads({ field: 'file', maxBytes: 64 * MiB, onProgress: () => resolve() }).then(
          () => seen.settled.set(id, 'ok'),
          (error: unknown) => seen.settled.set(id, (error as { code?: string }).code ?? String(error)),
        );
      });
      await (params(request.url).get('when') === 'now' ? sleep(50) : onDisk);
      return reply.code(202).send({ early: true });
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    return { port: (app.server.address() as AddressInfo).port, seen };
  }
  const app = express();
  if (adapter === 'express') app.use(tempScope(mgr));
  app.post(
    '/upload',
    (req, _res, next) => {
      seen.started += 1;
      setTimeout(next, Number(params(req.url).get('wait') ?? 0));
    },
    (req, res, next) => {
      const id = params(req.url).get('id') ?? '';
      upload({ field: 'file', maxBytes: 64 * MiB, refusals: 'next', ...(adapter === 'express-upload-only' && { manager: mgr }) })(req, res, (error?: unknown) => {
        seen.settled.set(id, error === undefined ? 'ok' : ((error as { code?: string }).code ?? String(error)));
        next(error);
      });
    },
    async (req, res) => {
      const query = params(req.url);
      seen.saved.set(query.get('id') ?? '', req.file!.path);
      await routeDelay(Number(query.get('delay') ?? 0));
      res.json({ size: req.file!.size });
    },
  );
  app.post('/early', (req, res) => {
    const id = params(req.url).get('id') ?? '';
    seen.started += 1;
    let answered = false;
    const options = { field: 'file', maxBytes: 64 * MiB, ...(adapter === 'express-upload-only' && { manager: mgr }) };
    const onProgress = () => {
      if (!answered) res.status(202).json({ early: true });
      answered = true;
    };
    upload({ ...options, onProgress, refusals: 'next' as const })(req, res, (error?: unknown) => {
      seen.settled.set(id, error === undefined ? 'ok' : ((error as { code?: string }).code ?? String(error)));
    });
    if (params(req.url).get('when') === 'now') setTimeout(onProgress, 50);
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

/** One upload of `size` zero bytes in the field `file`, as bytes on the wire: the head, the form's head, its file bytes, its tail. */
function uploadRequest(id: string, size: number, { delay = 0, wait = 0, connectionClose = false, path = '/upload', when = 'file' } = {}): { head: Buffer; body: Buffer } {
  const form = bigFileForm(size);
  const head =
    `POST ${path}?id=${id}&delay=${delay}&wait=${wait}&when=${when} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\n` +
    `Content-Length: ${form.length}\r\n${connectionClose ? 'Connection: close\r\n' : ''}\r\n`;
  return { head: Buffer.from(head), body: Buffer.concat([form.head, Buffer.alloc(size), form.tail]) };
}

/** A raw connection: writes what it is given, keeps what it reads, and says when it is closed. */
class RawClient {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  private readonly chunks: Buffer[] = [];

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('error', () => {});
    this.socket.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }

  /** How many whole answers (a JSON body closes each) came so far. */
  get answers(): number {
    return (this.text.match(/\r\n\r\n\{[^}]*\}/g) ?? []).length;
  }

  write(data: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(data, () => resolve());
    });
  }

  /** Leaves: the connection is dropped at once. Resolves once it is closed. */
  async leave(): Promise<void> {
    this.socket.destroy();
    await this.closed;
  }
}

/** The request's files are gone within `ms` of now (the request's end). */
async function goneWithin(mgr: TempFileManager, ms = GONE_WITHIN_MS): Promise<void> {
  const start = Date.now();
  try {
    await until(() => sessionFiles(mgr).length === 0, ms);
  } catch {
    throw new Error(`${sessionFiles(mgr).length} files still under ${mgr.sessionPath} ${Date.now() - start} ms after the request's end`);
  }
}

describe.each<Adapter>(['fastify', 'express', 'express-upload-only'])('%s: a request whose client leaves', (adapter) => {
  it('(a) after its whole body, before the answer: its file is gone before the route would answer', async () => {
    const mgr = manager();
    const { port, seen } = await serve(adapter, mgr);
    const client = new RawClient(port);
    const request = uploadRequest('a', MiB, { delay: ROUTE_DELAY_MS });
    await client.write(Buffer.concat([request.head, request.body]));
    await until(() => seen.saved.has('a'));
    expect(sessionFiles(mgr)).toHaveLength(1);
    await client.leave();
    expect(client.answers).toBe(0);
    await goneWithin(mgr);
  });

  it('(b) half-way through its body: the partial file is gone before the route would answer', async () => {
    const mgr = manager();
    const { port, seen } = await serve(adapter, mgr);
    const client = new RawClient(port);
    const request = uploadRequest('b', 4 * MiB, { delay: ROUTE_DELAY_MS });
    await client.write(Buffer.concat([request.head, request.body.subarray(0, 2 * MiB)]));
    await until(() => sessionFiles(mgr).length > 0);
    await client.leave();
    await goneWithin(mgr);
    await until(() => seen.settled.has('b'), GONE_WITHIN_MS);
    expect(seen.settled.get('b')).toBe('ERR_TEMPFILE_ABORTED');
  });

  it('(c) before its body (a head with Content-Length only): nothing stays and the upload settles before the route would answer', async () => {
    const mgr = manager();
    const { port, seen } = await serve(adapter, mgr);
    const client = new RawClient(port);
    await client.write(uploadRequest('c', MiB, { delay: ROUTE_DELAY_MS }).head);
    await until(() => seen.started === 1);
    await sleep(50);
    await client.leave();
    await goneWithin(mgr);
    await until(() => seen.settled.has('c'), GONE_WITHIN_MS).catch(() => {
      throw new Error(`the upload call of a request whose client left before its body had not settled ${GONE_WITHIN_MS / 1000} s after the client's end`);
    });
    expect(seen.settled.get('c')).toBe('ERR_TEMPFILE_ABORTED');
  });

  it('(c) before the route starts reading its form, half-way through its body: the upload settles as aborted before the route would answer, nothing stays', async () => {
    const mgr = manager();
    const { port, seen } = await serve(adapter, mgr);
    const client = new RawClient(port);
    const request = uploadRequest('c2', 4 * MiB, { wait: 300, delay: ROUTE_DELAY_MS });
    await client.write(Buffer.concat([request.head, request.body.subarray(0, MiB)]));
    await until(() => seen.started === 1);
    await client.leave();
    await until(() => seen.settled.has('c2'), GONE_WITHIN_MS).catch(() => {
      throw new Error(`the upload call of a request whose client had left before it was made had not settled ${GONE_WITHIN_MS / 1000} s after it was made`);
    });
    expect(seen.settled.get('c2')).toBe('ERR_TEMPFILE_ABORTED');
    await goneWithin(mgr);
  });

  it('(g) whose route answers before the form is through, the client still sending: the upload settles as aborted before the route would answer, nothing stays', async () => {
    const mgr = manager();
    const { port, seen } = await serve(adapter, mgr);
    const client = new RawClient(port);
    const request = uploadRequest('g', 4 * MiB, { path: '/early' });
    await client.write(Buffer.concat([request.head, request.body.subarray(0, MiB)]));
    await until(() => client.answers === 1);
    expect(client.text).toMatch(/^HTTP\/1\.1 202/);
    await until(() => seen.settled.has('g'), GONE_WITHIN_MS).catch(() => {
      throw new Error(`the upload call of a request answered before the end of its form had not settled ${GONE_WITHIN_MS / 1000} s after the answer`);
    });
    expect(seen.settled.get('g')).toBe('ERR_TEMPFILE_ABORTED');
    await goneWithin(mgr);
    await client.leave();
  });

  it('(g) whose route answers before the form is through, no file begun yet, the client still sending: the upload settles as aborted before the route would answer', async () => {
    const mgr = manager();
    const { port, seen } = await serve(adapter, mgr);
    const client = new RawClient(port);
    const request = uploadRequest('g2', 4 * MiB, { path: '/early', when: 'now' });
    await client.write(Buffer.concat([request.head, request.body.subarray(0, 20)])); // the part's head is not through
    await until(() => client.answers === 1);
    expect(client.text).toMatch(/^HTTP\/1\.1 202/);
    await until(() => seen.settled.has('g2'), GONE_WITHIN_MS).catch(() => {
      throw new Error(`the upload call of a request answered before the first part of its form had not settled ${GONE_WITHIN_MS / 1000} s after the answer`);
    });
    expect(seen.settled.get('g2')).toBe('ERR_TEMPFILE_ABORTED');
    await goneWithin(mgr);
    await client.leave();
  });

  it('(d) after reading its answer, on a keep-alive connection: the file is gone soon after the answer', async () => {
    const mgr = manager();
    const { port, seen } = await serve(adapter, mgr);
    const client = new RawClient(port);
    const request = uploadRequest('d', MiB);
    await client.write(Buffer.concat([request.head, request.body]));
    await until(() => client.answers === 1);
    expect(client.text).toMatch(/^HTTP\/1\.1 200/);
    expect(seen.saved.has('d')).toBe(true);
    await goneWithin(mgr);
    await client.leave();
    await goneWithin(mgr);
  });

  it('(e) two requests pipelined in one write, gone before either answer: both files are gone before the route would answer', async () => {
    const mgr = manager();
    const { port, seen } = await serve(adapter, mgr);
    const client = new RawClient(port);
    const first = uploadRequest('e1', MiB, { delay: ROUTE_DELAY_MS });
    const second = uploadRequest('e2', MiB, { delay: ROUTE_DELAY_MS });
    await client.write(Buffer.concat([first.head, first.body, second.head, second.body]));
    await until(() => seen.saved.has('e1') && seen.saved.has('e2'));
    expect(sessionFiles(mgr)).toHaveLength(2);
    await client.leave();
    expect(client.answers).toBe(0);
    await goneWithin(mgr);
  });

  it('(e) two requests pipelined in one write, gone after the first answer: both files are gone before the route would answer', async () => {
    const mgr = manager();
    const { port, seen } = await serve(adapter, mgr);
    const client = new RawClient(port);
    const first = uploadRequest('e1', MiB, { delay: 0 });
    const second = uploadRequest('e2', MiB, { delay: ROUTE_DELAY_MS });
    await client.write(Buffer.concat([first.head, first.body, second.head, second.body]));
    await until(() => client.answers === 1 && seen.saved.has('e2'));
    await client.leave();
    await goneWithin(mgr);
  });

  it('(f) Connection: close: the file is gone soon after the answer', async () => {
    const mgr = manager();
    const { port, seen } = await serve(adapter, mgr);
    const client = new RawClient(port);
    const request = uploadRequest('f', MiB, { connectionClose: true });
    await client.write(Buffer.concat([request.head, request.body]));
    await client.closed;
    expect(client.answers).toBe(1);
    expect(seen.saved.has('f')).toBe(true);
    await goneWithin(mgr);
  });

  it('20 clients that each upload 1 MiB and leave before the answer: no file stays once the last one left', async () => {
    const mgr = manager();
    const { port, seen } = await serve(adapter, mgr);
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const client = new RawClient(port);
        const request = uploadRequest(`l${i}`, MiB, { delay: ROUTE_DELAY_MS });
        await client.write(Buffer.concat([request.head, request.body]));
        await until(() => seen.saved.has(`l${i}`), 10_000);
        await client.leave();
      }),
    );
    expect(seen.saved.size).toBe(20);
    await goneWithin(mgr);
  });
});
