// A request whose declared length cannot fit the route's limits is answered 413 before its body
// is read, and the client can read that answer: curl exits 0 with 413 whatever the size, a client
// that sends `Expect: 100-continue` gets the 413 and no `100 Continue`, a client that streams its
// body until it hears back hears 413, not a reset. Both adapters, over real sockets.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { deferContinue, tempScope, upload } from '../../src/adapters/express.js';
import tempFiles from '../../src/adapters/fastify.js';
import type { TempFileManager } from '../../src/index.js';
import { declaredUpload, MiB, sendFirstUpload } from '../helpers/http-clients.js';
import { manager, scratchDir } from '../helpers/roots.js';
import { sessionFiles, until } from '../helpers/wait.js';

const GiB = 1024 * MiB;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** `express-node-continue`: Express without deferContinue(), Node writing `100 Continue` before any route runs. */
type Adapter = 'express' | 'express-node-continue' | 'fastify';

/** `POST /upload` taking one file of at most 1 MiB; how many bytes of each request the server read. */
async function serve(adapter: Adapter, mgr: TempFileManager, drain?: { maxBytes: number }): Promise<{ port: number; bytesRead: number[] }> {
  const bytesRead: number[] = [];
  if (adapter !== 'fastify') {
    const app = express();
    app.use(tempScope(mgr));
    app.post(
      '/upload',
      (req, _res, next) => {
        req.socket.once('close', () => bytesRead.push(req.socket.bytesRead));
        next();
      },
      upload({ field: 'file', maxBytes: MiB, ...(drain && { drain }) }),
      (_req, res) => res.sendStatus(200),
    );
    const server = http.createServer(app);
    if (adapter === 'express') deferContinue(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    return { port: (server.address() as AddressInfo).port, bytesRead };
  }
  const app: FastifyInstance = Fastify();
  await app.register(tempFiles, { manager: mgr });
  app.post('/upload', async (request) => {
    request.raw.socket.once('close', () => bytesRead.push(request.raw.socket.bytesRead));
    await request.saveUploads({ field: 'file', maxBytes: MiB, ...(drain && { drain }) });
    return 'ok';
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  closers.push(() => app.close());
  return { port: (app.server.address() as AddressInfo).port, bytesRead };
}

/** curl's status code and exit code for a form with one file of `size` bytes (a sparse file: no disk is used). */
function curlUpload(port: number, size: number): Promise<{ exitCode: number; status: string; stderr: string }> {
  const file = path.join(scratchDir(), 'big.bin');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, size);
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '60', '-F', `file=@${file};type=application/octet-stream`, `http://127.0.0.1:${port}/upload`],
      (error, stdout, stderr) => resolve({ exitCode: typeof error?.code === 'number' ? error.code : 0, status: stdout, stderr }),
    );
  });
}

describe.each<Adapter>(['express', 'express-node-continue', 'fastify'])('declared lengths past the limits, %s', (adapter) => {
  it.each([2 * MiB, 200 * MiB])('curl -F with a %i-byte file gets 413 and exits 0', async (size) => {
    const mgr = manager();
    const { port } = await serve(adapter, mgr);
    const reply = await curlUpload(port, size);
    expect(reply, reply.stderr).toMatchObject({ exitCode: 0, status: '413' });
    await until(() => sessionFiles(mgr).length === 0);
  });

  it.each([2 * MiB, 200 * MiB, 2 * GiB])('a client that streams a declared %i bytes until it hears back hears 413, not a reset', async (declared) => {
    const mgr = manager();
    const { port } = await serve(adapter, mgr);
    const reply = await declaredUpload(port, '/upload', declared);
    expect(reply.error, reply.text.slice(0, 300)).toBeUndefined();
    expect(reply.status).toBe(413);
    expect(reply.text).toMatch(/\r\nconnection: close\r\n/i);
    await until(() => sessionFiles(mgr).length === 0);
  });

  it.each([200 * MiB, 2 * GiB])('Expect: 100-continue with a declared %i bytes: 413 at once, no 100 Continue (with deferContinue), no body read', async (declared) => {
    const mgr = manager();
    const { port, bytesRead } = await serve(adapter, mgr);
    // The client waits long for a 100 Continue before it sends: on a busy machine the answer may
    // take seconds, and what is tested is that it comes before any body, not how soon.
    const reply = await declaredUpload(port, '/upload', declared, { expectContinue: true, waitMs: 30_000 });
    expect(reply.error, reply.text.slice(0, 300)).toBeUndefined();
    if (adapter === 'express-node-continue') {
      // Node says 100 Continue before any route runs (deferContinue() is what stops it): the client
      // starts sending, and still reads its 413 instead of a reset.
      expect(reply.continued).toBe(true);
      expect(reply.status).toBe(413);
      return;
    }
    expect(reply.continued).toBe(false);
    expect(reply.status).toBe(413);
    expect(reply.ms).toBeLessThan(15_000); // answered, not the client's wait waited out
    expect(reply.sent).toBe(0);
    expect(reply.text).toMatch(/\r\nconnection: close\r\n/i);
    await until(() => bytesRead.length === 1);
    expect(bytesRead[0]).toBeLessThan(4096); // the head only
  });

  it('a client that sends a declared 2 GB without reading is cut off past drain.maxBytes, not read to its end', async () => {
    const mgr = manager();
    const { port, bytesRead } = await serve(adapter, mgr, { maxBytes: 4 * MiB });
    const reply = await sendFirstUpload(port, '/upload', 2 * GiB);
    expect(reply.error).toBeDefined(); // cut off while it still sends
    await until(() => bytesRead.length === 1);
    expect(bytesRead[0]).toBeLessThan(16 * MiB);
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('Expect: 100-continue with a length that fits: 100 Continue, then the body is read', async () => {
    const mgr = manager();
    const { port } = await serve(adapter, mgr);
    const reply = await declaredUpload(port, '/upload', 2 * MiB, { expectContinue: true, waitMs: 3000 });
    expect(reply.continued).toBe(true);
    expect(reply.status).toBe(413); // the file passes 1 MiB once read
    expect(reply.error).toBeUndefined();
  });
});
