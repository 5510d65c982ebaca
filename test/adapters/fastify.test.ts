import fs from 'node:fs';
import http from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import tempFilesDefault, { tempFiles } from '../../src/adapters/fastify.js';
import type { HandoffTicket, TempFileManager, TempScope } from '../../src/index.js';
import { sessionFiles, until } from '../helpers/wait.js';
import { manager } from '../helpers/roots.js';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

async function start(mgr: TempFileManager, routes: (app: FastifyInstance) => void, options = {}): Promise<URL> {
  const app = Fastify(options);
  apps.push(app);
  app.addContentTypeParser('*', (_request, _payload, done) => done(null)); // the handler streams request.raw
  await app.register(tempFilesDefault, { manager: mgr });
  routes(app);
  return new URL(await app.listen({ port: 0, host: '127.0.0.1' }));
}

function stalledUpload(url: URL, bytes: number, then: 'destroy' | 'stall'): void {
  const req = http.request({ host: url.hostname, port: url.port, path: '/upload', method: 'POST', headers: { 'content-length': 64 * 1024 * 1024 } });
  req.on('error', () => {});
  req.write(Buffer.alloc(bytes), () => {
    if (then === 'destroy') setTimeout(() => req.destroy(), 50);
  });
}

describe('tempfile-manager/fastify', () => {
  it('is a fastify-plugin, as the default and a named export', () => {
    expect(tempFilesDefault).toBe(tempFiles);
    expect((tempFiles as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')]).toBe(true);
  });

  it('refuses to register without a manager', async () => {
    const app = Fastify();
    await expect(app.register(tempFiles, {} as never)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'manager', message: expect.stringMatching(/needs `manager`, a TempFileManager/) });
  });

  it('gives each request a scope, removed on response', async () => {
    const mgr = manager();
    const seen: string[] = [];
    const url = await start(mgr, (app) =>
      app.post('/upload', async (request) => {
        const scope: TempScope = request.tmp;
        const file = await scope.write(request.raw, { maxBytes: 1024 * 1024 });
        seen.push(file.path);
        return { size: file.size, exists: fs.existsSync(file.path) };
      }),
    );
    const response = await fetch(new URL('/upload', url), { method: 'POST', body: 'y'.repeat(2048), headers: { 'content-type': 'application/octet-stream' } });
    expect(await response.json()).toEqual({ size: 2048, exists: true });
    await until(() => seen.length === 1 && !fs.existsSync(seen[0]!));
  });

  it('removes the scope when the client aborts the request', async () => {
    const mgr = manager();
    let failure: unknown;
    const url = await start(mgr, (app) =>
      app.post('/upload', async (request, reply) => {
        try {
          await request.tmp.write(request.raw);
        } catch (err) {
          failure = err;
        }
        return reply.code(499).send();
      }),
    );
    stalledUpload(url, 4 * 1024 * 1024, 'destroy');
    await until(() => failure !== undefined);
    expect(failure).toMatchObject({ code: 'ERR_TEMPFILE_ABORTED' });
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('removes the scope on a connection timeout', async () => {
    const mgr = manager();
    let started = false;
    const url = await start(
      mgr,
      (app) =>
        app.post('/upload', async (request) => {
          started = true;
          await request.tmp.write(request.raw).catch(() => {});
          return 'late';
        }),
      { connectionTimeout: 500 },
    );
    stalledUpload(url, 1024 * 1024, 'stall');
    await until(() => started && sessionFiles(mgr).length > 0);
    await until(() => sessionFiles(mgr).length === 0, 5000);
  });

  it('maps an over-limit upload to 413 and leaves no file', async () => {
    const mgr = manager();
    const url = await start(mgr, (app) =>
      app.post('/upload', async (request, reply) => {
        try {
          await request.tmp.write(request.raw, { maxBytes: 1000 });
          return reply.code(201).send();
        } catch (err) {
          return reply.code((err as { code?: string }).code === 'ERR_TEMPFILE_SIZE_LIMIT' ? 413 : 500).send();
        }
      }),
    );
    const response = await fetch(new URL('/upload', url), { method: 'POST', body: Buffer.alloc(16 * 1024 * 1024), headers: { 'content-type': 'application/octet-stream' } });
    expect(response.status).toBe(413);
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('a handed-off upload survives its request and is claimed by a worker', async () => {
    const mgr = manager();
    const url = await start(mgr, (app) =>
      app.post('/upload', async (request) => {
        const file = await request.tmp.write(request.raw, { hash: 'sha256' });
        return file.handoff({ ttlMs: 60_000 });
      }),
    );
    const response = await fetch(new URL('/upload', url), { method: 'POST', body: 'fastify to worker', headers: { 'content-type': 'application/octet-stream' } });
    const ticket = (await response.json()) as HandoffTicket;
    await new Promise((resolve) => setTimeout(resolve, 50));
    await using claimed = await mgr.claim(ticket, { verifyDigest: true });
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('fastify to worker');
  });
});
