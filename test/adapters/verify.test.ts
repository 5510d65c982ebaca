// An upload's `verify` hook over real HTTP, from the side of a file that must not reach the route:
// with a real ClamAV (Debian's clamd, on a signature database that knows EICAR) through both
// adapters and write(), and with a fake hook for what a scanner cannot be made to do on demand.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tempScope, upload, type UploadedFile, type UploadOptions } from '../../src/adapters/express.js';
import tempFiles from '../../src/adapters/fastify.js';
import type { TempFileManager } from '../../src/index.js';
import { VerifyFailedError, VerifyRefusedError } from '../../src/errors.js';
import { CLAMD, EICAR, scanFile, startClamd, type Clamd } from '../helpers/clamd.js';
import { filePart, formEnd, rawForm } from '../helpers/http-clients.js';
import { itNeeds } from '../helpers/privileges.js';
import { manager } from '../helpers/roots.js';
import { sessionFiles, until } from '../helpers/wait.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

type Form = { body: Buffer; headers: Record<string, string> };
const form = (data: Buffer | string): Form => rawForm(`${filePart('file', 'upload.bin', Buffer.from(data).toString('latin1'))}${formEnd}`);
type Reply = { status: number; body: Record<string, unknown> };

/** The bytes of the one file the route got, under `field` or `array`. */
function contentOf(got: { file?: unknown; files?: unknown }): string {
  const file = (got.file ?? (got.files as unknown[] | undefined)?.[0]) as UploadedFile;
  return fs.readFileSync(file.path, 'latin1');
}

/** A server whose `POST /upload` takes one file under `options` through `adapter`, answering with its bytes; its URL. */
async function serve(adapter: 'express' | 'fastify', mgr: TempFileManager, options: UploadOptions): Promise<string> {
  if (adapter === 'express') {
    const app = express();
    app.use(tempScope(mgr));
    app.post('/upload', upload({ field: 'file', ...options }), (req, res) => res.json({ content: contentOf(req) }));
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  const app: FastifyInstance = Fastify();
  closers.push(() => app.close());
  await app.register(tempFiles, { manager: mgr });
  app.post('/upload', async (request) => {
    return { content: contentOf(await request.saveUploads({ field: 'file', ...options })) };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

async function post(url: string, body: Form, signal?: AbortSignal): Promise<Reply> {
  const response = await fetch(`${url}/upload`, { method: 'POST', body: body.body, headers: body.headers, ...(signal && { signal }) });
  const text = await response.text();
  // Express's default error handler answers a 5xx with an HTML page, not JSON.
  return { status: response.status, body: response.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as Record<string, unknown>) : { html: text } };
}

/** The hook an app writes: scan with clamd, refuse what it finds. */
const clamScan = (socket: string) => async (file: { path: string }, signal: AbortSignal) => {
  const found = await scanFile(socket, file.path, signal);
  return found === undefined || { reason: `a virus was found (${found})` };
};

const adapters = ['express', 'fastify'] as const;

describe('an upload’s verify hook (a fake hook)', () => {
  it.for(adapters)('%s: a refusal with the hook’s own status is answered with it and the reason; the route never runs, no file stays', async (adapter) => {
    const mgr = manager();
    const url = await serve(adapter, mgr, { verify: () => ({ reason: 'the checksum does not match X-Checksum', statusCode: 400 }) });
    const reply = await post(url, form('some bytes'));
    expect(reply).toMatchObject({ status: 400, body: { code: 'ERR_TEMPFILE_VERIFY_REFUSED', message: 'the file was refused: the checksum does not match X-Checksum' } });
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it.for(adapters)('%s: a hook that throws is a 503, not an accept; no file stays', async (adapter) => {
    const mgr = manager();
    const url = await serve(adapter, mgr, { verify: () => { throw new Error('the scanner is down'); } });
    const reply = await post(url, form('some bytes'));
    expect(reply.status).toBe(503);
    expect(reply.body.content).toBeUndefined();
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it('a hook that never settles ends with the request: the client gone, its signal aborts and the file is removed', async () => {
    const mgr = manager();
    let hookSignal: AbortSignal | undefined;
    const url = await serve('express', mgr, { verifyTimeoutMs: 0, verify: (_file, signal) => { hookSignal = signal; return new Promise<never>(() => {}); } });
    const client = new AbortController();
    const sent = post(url, form('some bytes'), client.signal).catch((e: unknown) => e);
    await until(() => hookSignal !== undefined, 30_000, 'the hook called');
    expect(sessionFiles(mgr)).toHaveLength(1);
    client.abort();
    await sent;
    await until(() => hookSignal!.aborted && sessionFiles(mgr).length === 0, 30_000, 'the hook given up and the file removed');
  });

  it.for(adapters)('%s: one file refused ends the checks of the others: the answer does not wait on a hook that never settles', { timeout: 30_000 }, async (adapter) => {
    const mgr = manager();
    let slowSignal: AbortSignal | undefined;
    let slowCalled!: () => void;
    const slowChecking = new Promise<void>((resolve) => (slowCalled = resolve));
    const verify = async (file: UploadedFile, signal: AbortSignal) => {
      if (file.originalName === 'bad.bin') return slowChecking.then(() => false); // refused while the other is being checked
      slowSignal = signal;
      slowCalled();
      return new Promise<never>(() => {});
    };
    const url = await serve(adapter, mgr, { field: undefined, array: 'file', verifyTimeoutMs: 0, verify });
    const body = rawForm(`${filePart('file', 'slow.bin', 'slow bytes')}${filePart('file', 'bad.bin', 'bad bytes')}${formEnd}`);
    const reply = await post(url, body);
    expect(reply).toMatchObject({ status: 422, body: { code: 'ERR_TEMPFILE_VERIFY_REFUSED' } });
    expect(slowSignal?.aborted).toBe(true);
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it('upload options are checked at set-up: the option named, the value shown', () => {
    expect(() => upload({ field: 'file', verify: 'clamav' as unknown as () => boolean })).toThrow(/upload\(\): `verify` must be a function .*got .clamav./);
    expect(() => upload({ field: 'file', verify: () => true, verifyTimeoutMs: 1.5 })).toThrow(/upload\(\): `verifyTimeoutMs` must be a whole number of milliseconds .*got 1\.5/);
  });
});

describe('a real virus scanner: clamd over its unix socket', () => {
  let clamd: Clamd | undefined;
  const running = async () => (clamd ??= await startClamd());
  afterAll(() => clamd?.stop());

  const withClamd = itNeeds(CLAMD);

  withClamd.for(adapters)('%s: EICAR is refused with 422 naming what was found, and removed; a clean file reaches the route', async (adapter) => {
    const { socket } = await running();
    const mgr = manager();
    const url = await serve(adapter, mgr, { verify: clamScan(socket) });
    const refused = await post(url, form(EICAR));
    expect(refused).toMatchObject({ status: 422, body: { code: 'ERR_TEMPFILE_VERIFY_REFUSED', message: expect.stringMatching(/^.*Local\.EICAR\.Test/) } });
    expect(sessionFiles(mgr)).toEqual([]);
    expect(await post(url, form('a clean file'))).toEqual({ status: 200, body: { content: 'a clean file' } });
  }, 60_000);

  withClamd('write(): EICAR is a VerifyRefusedError and nothing stays; a clean file is written', async () => {
    const { socket } = await running();
    const mgr = manager();
    const error = await mgr.write(EICAR, { verify: clamScan(socket) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerifyRefusedError);
    expect(error).toMatchObject({ statusCode: 422, reason: expect.stringMatching(/Local\.EICAR\.Test/) });
    expect(sessionFiles(mgr)).toEqual([]);
    const clean = await mgr.write('a clean file', { verify: clamScan(socket) });
    expect(fs.readFileSync(clean.path, 'utf8')).toBe('a clean file');
  }, 60_000);

  withClamd('clamd down (killed, its socket left): a 503 through both adapters and a VerifyFailedError from write(), never an accept', async () => {
    const down = await startClamd();
    await down.crash();
    try {
      const mgr = manager();
      for (const adapter of adapters) {
        const url = await serve(adapter, mgr, { verify: clamScan(down.socket) });
        const reply = await post(url, form(EICAR));
        expect(reply.status, adapter).toBe(503);
        expect(reply.body.content, adapter).toBeUndefined();
      }
      const error = await mgr.write(EICAR, { verify: clamScan(down.socket) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VerifyFailedError);
      expect(error).toMatchObject({ reason: 'threw', cause: expect.objectContaining({ code: 'ECONNREFUSED' }) });
      expect(sessionFiles(mgr)).toEqual([]);
    } finally {
      await down.stop();
    }
  }, 60_000);
});
