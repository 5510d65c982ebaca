// A body sent without a Content-Length (Transfer-Encoding: chunked) cannot be refused from its
// head: its file is refused once it passes maxBytes, while the client is still sending. The client
// must still read the 413, from Express 4, Express 5 and Fastify alike, and not a reset; and what
// it reads from upload() with no error handler of the app's is a short JSON answer, no stack.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { upload } from '../../src/adapters/express.js';
import tempFiles from '../../src/adapters/fastify.js';
import type { TempFileManager } from '../../src/index.js';
import { listenClosing, MiB } from '../helpers/http-clients.js';
import { manager, scratchDir } from '../helpers/roots.js';
import { sessionFiles, until } from '../helpers/wait.js';

const express4 = createRequire(import.meta.url)('express4') as typeof express;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

type Adapter = 'express 5' | 'express 4' | 'fastify';

/** `POST /upload` taking one file of at most 1 MiB, with no error handler of its own. */
async function serve(adapter: Adapter, mgr: TempFileManager, refusals?: 'next'): Promise<number> {
  if (adapter === 'fastify') {
    const app = Fastify();
    await app.register(tempFiles, { manager: mgr });
    app.post('/upload', async (request) => {
      await request.saveUploads({ field: 'file', maxBytes: MiB });
      return 'ok';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    return (app.server.address() as AddressInfo).port;
  }
  const app = adapter === 'express 5' ? express() : express4();
  app.set('env', 'test'); // Express's default error handler logs no stack in tests
  app.post('/upload', upload({ field: 'file', maxBytes: MiB, manager: mgr, refusals }), (_req, res) => res.sendStatus(200));
  if (refusals === 'next') {
    // The app's own error handler, as an app that asks for refusals: 'next' has one.
    app.use((err: { statusCode?: number; status?: number; code?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(err.statusCode ?? err.status ?? 500).json({ code: err.code });
    });
  }
  return Number(new URL(await listenClosing(app, closers)).port);
}

/** curl -F with a file of `size` bytes (sparse: no disk used), sent chunked: no Content-Length. */
function curlChunked(port: number, size: number): Promise<{ exitCode: number; status: string; body: string; stderr: string }> {
  const dir = scratchDir();
  const file = path.join(dir, 'big.bin');
  const out = path.join(dir, 'answer');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, size);
  const args = ['-sS', '-o', out, '-w', '%{http_code}', '--max-time', '120', '-H', 'Transfer-Encoding: chunked', '-F', `file=@${file};type=application/octet-stream`];
  return new Promise((resolve) => {
    execFile('curl', [...args, `http://127.0.0.1:${port}/upload`], (error, stdout, stderr) =>
      resolve({
        exitCode: typeof error?.code === 'number' ? error.code : 0,
        status: stdout,
        body: fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '',
        stderr,
      }),
    );
  });
}

describe.each<Adapter>(['express 5', 'express 4', 'fastify'])('a chunked body over the limit, %s', (adapter) => {
  it('curl sending 200 MB chunked gets its 413 and exits 0, not 56 (a reset)', async () => {
    const mgr = manager();
    const port = await serve(adapter, mgr);
    const reply = await curlChunked(port, 200_000_000);
    expect(reply, reply.stderr).toMatchObject({ exitCode: 0, status: '413' });
    expect(reply.body).not.toMatch(/\bat \S+ \(|node_modules|\.[cm]?[jt]s:\d|<html/i);
    if (adapter !== 'fastify') {
      expect(JSON.parse(reply.body)).toMatchObject({ statusCode: 413, code: 'ERR_TEMPFILE_SIZE_LIMIT', error: 'Payload Too Large' });
    }
    await until(() => sessionFiles(mgr).length === 0);
  });

});

describe.each<Adapter>(['express 5', 'express 4'])("refusals: 'next', %s", (adapter) => {
  it("the app's error handler gets the refusal while the body still comes, and its 413 reaches curl", async () => {
    const mgr = manager();
    const port = await serve(adapter, mgr, 'next');
    const reply = await curlChunked(port, 200_000_000);
    expect(reply, reply.stderr).toMatchObject({ exitCode: 0, status: '413' });
    expect(JSON.parse(reply.body)).toEqual({ code: 'ERR_TEMPFILE_SIZE_LIMIT' });
    await until(() => sessionFiles(mgr).length === 0);
  });
});
