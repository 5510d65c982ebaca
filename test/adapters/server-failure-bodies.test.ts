// No 5xx body of any adapter carries a path or a system call's text. Every server failure a test
// can provoke (507 from minFreeBytes and from maxLiveBytes, 503 from a closed manager, from a
// `verify` that throws, one that times out and a store that does not answer, 500 from a failing
// disk), through each way in: Express's upload() (its final handler in production, refusals
// answered by upload()), Fastify's saveUploads() (its default error handler, which sends
// err.message), handleUpload() under a plain fetch handler that answers a rejection with its
// status and message, the tus store under @tus/server, and the presign and confirm routes of
// Express and Fastify. Each body is read for the root, the scratch directory, /proc/, /tmp/, an
// errno (EIO, ENOENT, ECONNREFUSED...) and the advice meant for the developer (an option's name).
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { confirmUpload as expressConfirm, presignUploads as expressPresign, upload } from '../../src/adapters/express.js';
import tempFiles, { confirmUpload as fastifyConfirm, presignUploads as fastifyPresign } from '../../src/adapters/fastify.js';
import { handleUpload } from '../../src/adapters/web.js';
import type { UploadOptions } from '../../src/uploads/upload-options.js';
import { randomName } from '../../src/base/random-name.js';
import { isTempFileError, type TempFileManager } from '../../src/index.js';
import { intakeKeys } from '../../src/s3/keys.js';
import { s3Store, type S3Store } from '../../src/s3/index.js';
import { FaultyFs } from '../helpers/faulty-fs.js';
import { filePart, formEnd, listenClosing, rawForm } from '../helpers/http-clients.js';
import { manager } from '../helpers/roots.js';
import { tusServers, tusRequest, patchHeaders } from '../helpers/tus.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});
const serveTus = tusServers();

const CONTENT = 'hello world';
const form = () => rawForm(`${filePart('file', 'a.txt', CONTENT, 'text/plain')}${formEnd}`);

/** A port nothing listens on: a store there fails every request (connect ECONNREFUSED). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An S3Store whose endpoint does not answer: each call is a StoreError (503), at once. */
async function unreachableStore(): Promise<S3Store> {
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${await closedPort()}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
  closers.push(async () => client.destroy());
  return s3Store({ client, bucket: 'uploads', timeoutMs: 5000 });
}

/** A `verify` hook and its timeout, as the upload options and the tus store both take them. */
interface Check {
  readonly verify: () => Promise<boolean>;
  readonly verifyTimeoutMs?: number;
}

/** What brings a failure about: the manager, the options, and for the tus store a fault of its own. */
interface SetUp {
  readonly mgr: TempFileManager;
  readonly options?: UploadOptions;
  readonly check?: Check;
  /** Called between the tus POST and its PATCH (the tus store writes through its own descriptors). */
  readonly beforeTusPatch?: () => void;
}

/** A failure to provoke. */
interface Failure {
  readonly name: string;
  readonly status: number;
  /** Whether the tus store can meet it: it takes no `store`. */
  readonly tus: boolean;
  readonly setUp: () => Promise<SetUp>;
}

const failures: readonly Failure[] = [
  { name: '507: minFreeBytes', status: 507, tus: true, setUp: async () => ({ mgr: manager({ minFreeBytes: 2 ** 52 }) }) },
  { name: '507: maxLiveBytes', status: 507, tus: true, setUp: async () => ({ mgr: manager({ maxLiveBytes: 3 }) }) },
  {
    name: '503: a closed manager',
    status: 503,
    tus: true,
    setUp: async () => {
      const mgr = manager();
      await mgr.close();
      return { mgr };
    },
  },
  {
    // As a clamd scan does when clamd is down: connect ENOENT <root>/clamd.sock.
    name: '503: a verify that throws',
    status: 503,
    tus: true,
    setUp: async () => {
      const mgr = manager();
      const socket = path.join(mgr.root, 'clamd.sock');
      const verify = () =>
        new Promise<boolean>((resolve, reject) => {
          const connection = net.connect(socket);
          connection.on('error', reject);
          connection.on('connect', () => resolve(true));
        });
      return { mgr, check: { verify } };
    },
  },
  {
    name: '503: a verify that times out',
    status: 503,
    tus: true,
    setUp: async () => ({ mgr: manager(), check: { verify: () => new Promise<boolean>(() => {}), verifyTimeoutMs: 50 } }),
  },
  {
    name: '500: a disk that fails (EIO, a FileSystemError)',
    status: 500,
    tus: true,
    setUp: async () => {
      const faulty = new FaultyFs();
      const mgr = manager({ fs: faulty.fs });
      faulty.failWritesAfter(0, 'EIO');
      // The tus store's PATCH opens its upload's data file under the lock's name: a FileSystemError there.
      return { mgr, beforeTusPatch: () => faulty.fail('open', 'EIO', 1, (at) => /\/held_[^/]*$/.test(at)) };
    },
  },
  {
    name: '503: a store that does not answer (straight to the store)',
    status: 503,
    tus: false,
    setUp: async () => ({ mgr: manager(), options: { store: await unreachableStore(), ttlMs: 60_000 } }),
  },
];

/** What a client read. */
interface Answer {
  readonly status: number;
  readonly body: string;
}

/** Nothing of the server's disk or of a system call in `answer`'s body. */
function expectClientSafe(answer: Answer, mgr: TempFileManager): void {
  const { body } = answer;
  expect(body).not.toContain(mgr.root);
  expect(body).not.toContain(path.dirname(mgr.root));
  expect(body).not.toContain(os.tmpdir());
  expect(body).not.toContain('/proc/');
  expect(body).not.toContain('/tmp/');
  expect(body).not.toMatch(/\bE[A-Z]{2,}\b/); // EIO, ENOENT, ECONNREFUSED, ENOSPC...
  expect(body).not.toMatch(/\bconnect\b|\bmkdir\b|\bopen\b '/);
  // Nor what is the developer's to read: an option's name in backticks, the manager, the hook's text.
  expect(body).not.toMatch(/`|TempFileManager|maxLiveBytes|minFreeBytes|verifyTimeoutMs/);
}

async function post(url: string): Promise<Answer> {
  const { body, headers } = form();
  const response = await fetch(url, { method: 'POST', body, headers });
  return { status: response.status, body: await response.text() };
}

/** Each way in: the answer to one upload of `CONTENT` under `options`. */
const ways: Record<string, (mgr: TempFileManager, options: UploadOptions) => Promise<Answer>> = {
  async "Express's upload(), its final handler in production"(mgr, options) {
    const app = express();
    app.set('env', 'production'); // NODE_ENV=production: the final handler sends the status text
    app.post('/upload', upload({ field: 'file', ...options, manager: mgr }), (_req, res) => res.sendStatus(200));
    return post(`${await listenClosing(app, closers)}/upload`);
  },

  async "Fastify's saveUploads(), its default error handler"(mgr, options) {
    const app = Fastify();
    closers.push(() => app.close());
    await app.register(tempFiles, { manager: mgr });
    app.post('/upload', async (request) => {
      await request.saveUploads({ field: 'file', ...options });
      return 'taken';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    return post(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/upload`);
  },

  async 'handleUpload() under a fetch handler that answers its status and message'(mgr, options) {
    const fetchHandler = (request: Request): Promise<Response> =>
      handleUpload(request, { field: 'file', ...options, manager: mgr }, () => new Response('taken')).catch((error: unknown) => {
        const { statusCode = 500, code, message } = error as { statusCode?: number; code?: string; message?: string };
        return Response.json({ statusCode, code, message }, { status: statusCode });
      });
    const server = serve({ fetch: fetchHandler, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    return post(`http://127.0.0.1:${(server.address() as AddressInfo).port}/upload`);
  },
};

/** The tus store under @tus/server: the first 5xx of a POST and the PATCH of the whole file. */
async function throughTus({ mgr, check, beforeTusPatch }: SetUp, closeFirst: boolean): Promise<Answer> {
  const { url } = await serveTus(mgr, { ...check });
  if (closeFirst) await mgr.close(); // the store made at the server's start, the manager closed since
  const created = await tusRequest(url, 'POST', { 'Upload-Length': String(CONTENT.length) });
  if (created.status >= 500) return created;
  expect(created.status, created.body).toBe(201);
  beforeTusPatch?.();
  return tusRequest(new URL(created.headers.location!, url).href, 'PATCH', patchHeaders(0, CONTENT.length), Buffer.from(CONTENT));
}

describe.each(failures)('$name', (failure) => {
  it.each(Object.keys(ways))('%s: the status, and no path nor errno in the body', async (way) => {
    const { mgr, options, check } = await failure.setUp();
    const answer = await ways[way]!(mgr, { ...options, ...check });
    expect(answer.status, answer.body).toBe(failure.status);
    expectClientSafe(answer, mgr);
  });

  // Not it.runIf(): a test that skips is one CI's fresh-machine run must see pass (scripts/rerun-skipped.mjs).
  if (!failure.tus) return;
  it('the tus store under @tus/server: the status, and no path nor errno in the body', async () => {
    const closed = failure.name.includes('closed');
    const setUp = closed ? { mgr: manager() } : await failure.setUp();
    const answer = await throughTus(setUp, closed);
    expect(answer.status, answer.body).toBe(failure.status);
    expectClientSafe(answer, setUp.mgr);
  });
});

describe('the presign and confirm routes, with a store that does not answer (503)', () => {
  /** Each route that calls the store, with what it is sent. */
  const calls = () => {
    const key = intakeKeys('tempfile-manager/', randomName(), Date.now() + 600_000).upload; // of the intake's form: the store is asked
    return [
      { method: 'POST', path: '/uploads/s3/params', body: { filename: 'a.png', type: 'image/png' } },
      { method: 'POST', path: '/uploads/s3/multipart', body: { filename: 'a.png', type: 'image/png' } },
      { method: 'POST', path: '/uploads/confirm', body: { key } },
    ];
  };

  it.each(['express', 'fastify'])('%s: 503, and no address nor errno in the body', async (framework) => {
    const store = await unreachableStore();
    let url: string;
    if (framework === 'express') {
      const app = express();
      app.set('env', 'production');
      app.use('/uploads', expressPresign({ store, maxBytes: 1024 ** 2 }));
      app.post('/uploads/confirm', express.json(), expressConfirm({ store, ttlMs: 60_000 }), (_req, res) => res.sendStatus(200));
      url = await listenClosing(app, closers);
    } else {
      const app = Fastify();
      closers.push(() => app.close());
      await app.register(fastifyPresign, { prefix: '/uploads', store, maxBytes: 1024 ** 2 });
      app.post('/uploads/confirm', { preHandler: fastifyConfirm({ store, ttlMs: 60_000 }) }, async () => 'confirmed');
      await app.listen({ port: 0, host: '127.0.0.1' });
      url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    }
    const mgr = manager(); // only its root, to look for in the bodies
    for (const call of calls()) {
      const response = await fetch(`${url}${call.path}`, { method: call.method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(call.body) });
      const answer = { status: response.status, body: await response.text() };
      expect(answer.status, `${call.path}: ${answer.body}`).toBe(503);
      expectClientSafe(answer, mgr);
      expect(answer.body, call.path).not.toMatch(/127\.0\.0\.1|localhost/);
    }
  });
});

it("Fastify: the error a route catches is the typed one (code, statusCode, class, fields), its detail the cause Fastify's logger writes", async () => {
  const faulty = new FaultyFs();
  const mgr = manager({ fs: faulty.fs });
  faulty.failWritesAfter(0, 'EIO');
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const app = Fastify({ logger: { level: 'error', stream } });
  closers.push(() => app.close());
  await app.register(tempFiles, { manager: mgr });
  let caught: unknown;
  app.post('/upload', async (request) => {
    try {
      return await request.saveUploads({ field: 'file' });
    } catch (error) {
      caught = error;
      throw error;
    }
  });
  const { body, headers } = form();
  const res = await app.inject({ method: 'POST', url: '/upload', payload: body, headers });
  expect(res.statusCode).toBe(500);
  expect(res.json()).toEqual({ statusCode: 500, code: 'ERR_TEMPFILE_IO', error: 'Internal Server Error', message: 'the server failed on this request' });
  const { FileSystemError } = await import('../../src/errors.js');
  expect(caught).toBeInstanceOf(FileSystemError);
  expect(isTempFileError(caught)).toBe(true);
  expect(caught).toMatchObject({ code: 'ERR_TEMPFILE_IO', statusCode: 500, expose: false, syscallCode: 'EIO', name: 'FileSystemError' });
  const cause = (caught as { cause?: unknown }).cause;
  expect(cause).toBeInstanceOf(FileSystemError);
  expect((cause as Error).message).toContain(mgr.root);
  // The log line has both: the client's message, and the cause's with its path and errno.
  const logged = lines.map((line) => JSON.parse(line) as { level: number; err?: { message?: string; stack?: string } }).find((entry) => entry.err);
  expect(logged?.err?.message).toContain('the server failed on this request');
  expect(logged?.err?.message).toContain(mgr.root);
  expect(logged?.err?.message).toContain('EIO');
});
