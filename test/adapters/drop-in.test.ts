// Where the adapters claim to be a drop-in for multer and @fastify/multipart, the behaviours those
// packages' own suites check, as this library's tests: each one matches the peer, or is listed in
// docs/migrating.md with its reason.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { upload } from '../../src/adapters/express.js';
import tempFiles from '../../src/adapters/fastify.js';
import { fieldPart, filePart, formEnd, rawForm } from '../helpers/http-clients.js';
import { manager } from '../helpers/roots.js';
import { sessionFiles, until } from '../helpers/wait.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const tooLarge = () => rawForm(`${filePart('doc', 'a.bin', 'x'.repeat(100))}${formEnd}`);

describe('a file over maxBytes names its field', () => {
  it("Express, refusals: 'next': the error's field, as multer's MulterError has", async () => {
    const mgr = manager();
    const app = express();
    let seen: { code?: string; field?: string } | undefined;
    app.post('/upload', upload({ field: 'doc', maxBytes: 10, manager: mgr, refusals: 'next' }), (_req, res) => res.sendStatus(200));
    app.use((err: { code?: string; field?: string; statusCode?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      seen = { code: err.code, field: err.field };
      res.status(err.statusCode ?? 500).end();
    });
    const url = await listen(app);
    const { body, headers } = tooLarge();
    const res = await fetch(`${url}/upload`, { method: 'POST', body, headers });
    expect(res.status).toBe(413);
    expect(seen).toEqual({ code: 'ERR_TEMPFILE_SIZE_LIMIT', field: 'doc' });
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('Fastify: saveUploads() rejects with the field, as @fastify/multipart gives error.part.fieldname', async () => {
    const mgr = manager();
    const app = Fastify();
    await app.register(tempFiles, { manager: mgr });
    app.post('/upload', async (request, reply) => {
      try {
        await request.saveUploads({ field: 'doc', maxBytes: 10 });
        return 'taken';
      } catch (error) {
        const { code, field, statusCode } = error as { code?: string; field?: string; statusCode?: number };
        return reply.code(statusCode ?? 500).send({ code, field });
      }
    });
    closers.push(() => app.close());
    const { body, headers } = tooLarge();
    const res = await app.inject({ method: 'POST', url: '/upload', payload: body, headers });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ code: 'ERR_TEMPFILE_SIZE_LIMIT', field: 'doc' });
    await until(() => sessionFiles(mgr).length === 0);
  });
});

it('Fastify: a second saveUploads() gives the first one\'s form again, as saveRequestFiles() does', async () => {
  const mgr = manager();
  const app = Fastify();
  await app.register(tempFiles, { manager: mgr });
  app.post('/upload', async (request) => {
    const first = await request.saveUploads({ field: 'doc' });
    const second = await request.saveUploads({ field: 'doc' });
    return { same: first === second, size: second.file?.size, path: second.file?.path === first.file?.path };
  });
  closers.push(() => app.close());
  const { body, headers } = rawForm(`${filePart('doc', 'a.txt', 'hello')}${formEnd}`);
  const res = await app.inject({ method: 'POST', url: '/upload', payload: body, headers });
  expect(res.json()).toEqual({ same: true, size: 5, path: true });
  await until(() => sessionFiles(mgr).length === 0);
});

describe("a file's name as the client's bytes spell it", () => {
  /** One file part whose filename parameter is `name`, encoded as `encoding`. */
  const formWithName = (name: string, encoding: BufferEncoding) => {
    const boundary = 'nameBoundary';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="`),
      Buffer.from(name, encoding),
      Buffer.from(`"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--${boundary}--\r\n`),
    ]);
    return { body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
  };

  const names = [['résumé ü.txt', 'utf8'], ['résumé ü.txt', 'latin1'], ['履歴書.txt', 'utf8'], ['plain.txt', 'latin1']] as const;

  it('Express: UTF-8 (what browsers send) and Latin-1 (what older clients send) both arrive whole, never as U+FFFD', async () => {
    const mgr = manager();
    const app = express();
    app.post('/upload', upload({ field: 'file', manager: mgr }), (req, res) => res.json({ name: req.file?.originalName }));
    const url = await listen(app);
    for (const [name, encoding] of names) {
      const { body, headers } = formWithName(name, encoding);
      const res = await fetch(`${url}/upload`, { method: 'POST', body, headers });
      expect(await res.json(), `${name} in ${encoding}`).toEqual({ name });
    }
    await until(() => sessionFiles(mgr).length === 0);
  });

  it("Fastify's saveUploads(): the same, where @fastify/multipart's own parser gives U+FFFD for Latin-1", async () => {
    const mgr = manager();
    const app = Fastify();
    await app.register(tempFiles, { manager: mgr });
    app.post('/upload', async (request) => ({ name: (await request.saveUploads({ field: 'file' })).file.originalName }));
    closers.push(() => app.close());
    for (const [name, encoding] of names) {
      const { body, headers } = formWithName(name, encoding);
      const res = await app.inject({ method: 'POST', url: '/upload', payload: body, headers });
      expect(res.json(), `${name} in ${encoding}`).toEqual({ name });
    }
    await until(() => sessionFiles(mgr).length === 0);
  });
});

it('a text field with no name is refused (400, missing-field-name), as multer refuses it, through Express and Fastify', async () => {
  const mgr = manager();
  const app = express();
  app.post('/upload', upload({ manager: mgr }), (req, res) => res.json({ body: req.body }));
  const url = await listen(app);
  const form = () => rawForm(`${fieldPart('', 'nameless')}${fieldPart('kept', 'yes')}${formEnd}`);
  const res = await fetch(`${url}/upload`, { method: 'POST', ...form() });
  expect(res.status).toBe(400);
  expect(await res.json()).toMatchObject({ code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' });
  const fastify = Fastify();
  await fastify.register(tempFiles, { manager: mgr });
  fastify.post('/upload', async (request, reply) => {
    try {
      return await request.saveUploads();
    } catch (error) {
      return reply.code(400).send({ reason: (error as { reason?: string }).reason });
    }
  });
  closers.push(() => fastify.close());
  const { body, headers } = form();
  expect((await fastify.inject({ method: 'POST', url: '/upload', payload: body, headers })).json()).toEqual({ reason: 'missing-field-name' });
});

it("Express, refusals: 'next': a refused form's req.body holds the fields read before the refusal, as multer's does", async () => {
  const mgr = manager();
  const app = express();
  let body: unknown;
  app.post('/upload', upload({ field: 'doc', maxBytes: 10, manager: mgr, refusals: 'next' }), (_req, res) => res.sendStatus(200));
  app.use((err: { statusCode?: number }, req: express.Request, res: express.Response, _next: express.NextFunction) => {
    body = { ...req.body };
    res.status(err.statusCode ?? 500).end();
  });
  const url = await listen(app);
  const form = rawForm(`${fieldPart('title', 'kept')}${filePart('doc', 'a.bin', 'x'.repeat(100))}${fieldPart('after', 'never read')}${formEnd}`);
  const res = await fetch(`${url}/upload`, { method: 'POST', body: form.body, headers: form.headers });
  expect(res.status).toBe(413);
  expect(body).toEqual({ title: 'kept' });
  await until(() => sessionFiles(mgr).length === 0);
});

describe('where upload() differs from multer by choice (docs/migrating.md)', () => {
  it("bracket names stay flat: pet[species] and kids[0] are keys of req.body as sent, through Express and Fastify (multer nests them)", async () => {
    const mgr = manager();
    const form = () => rawForm(`${fieldPart('pet[species]', 'cat')}${fieldPart('kids[0]', 'Ann')}${fieldPart('kids[1]', 'Bo')}${formEnd}`);
    const flat = { 'pet[species]': 'cat', 'kids[0]': 'Ann', 'kids[1]': 'Bo' };
    const app = express();
    app.post('/upload', upload({ manager: mgr }), (req, res) => res.json({ body: req.body, pet: (req.body as Record<string, unknown>).pet ?? null }));
    const url = await listen(app);
    const res = await fetch(`${url}/upload`, { method: 'POST', ...form() });
    expect(await res.json()).toEqual({ body: flat, pet: null });

    const fastify = Fastify();
    await fastify.register(tempFiles, { manager: mgr });
    fastify.post('/upload', async (request) => ({ fields: (await request.saveUploads()).fields }));
    closers.push(() => fastify.close());
    const { body, headers } = form();
    expect((await fastify.inject({ method: 'POST', url: '/upload', payload: body, headers })).json()).toEqual({ fields: flat });
  });

  it('a urlencoded POST is read into req.body, flat, as a form without files (multer passes it on untouched)', async () => {
    const mgr = manager();
    const app = express();
    let routed = 0;
    app.post('/upload', upload({ manager: mgr }), (req, res) => {
      routed += 1;
      res.json({ body: req.body, file: req.file ?? null });
    });
    const url = await listen(app);
    const res = await fetch(`${url}/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'title=a+title&pet%5Bspecies%5D=cat&kids[0]=Ann',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ body: { title: 'a title', 'pet[species]': 'cat', 'kids[0]': 'Ann' }, file: null });
    expect(routed).toBe(1);
  });

  it('a GET, and a JSON body, are refused with a 400 not-multipart and the route never runs (multer calls next() with no req.file)', async () => {
    const mgr = manager();
    const app = express();
    let routed = 0;
    app.all('/upload', upload({ field: 'file', manager: mgr }), (_req, res) => {
      routed += 1;
      res.sendStatus(200);
    });
    // With refusals: 'next', the same refusal as an error middleware reads it: its reason.
    let reason: unknown;
    app.all('/upload-next', upload({ field: 'file', manager: mgr, refusals: 'next' }), (_req, res) => {
      routed += 1;
      res.sendStatus(200);
    });
    app.use((err: { reason?: string; statusCode?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      reason = err.reason;
      res.status(err.statusCode ?? 500).end();
    });
    const url = await listen(app);
    for (const init of [{ method: 'GET' }, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' }]) {
      const res = await fetch(`${url}/upload`, init);
      expect(res.status, init.method).toBe(400);
      expect(await res.json(), init.method).toMatchObject({ statusCode: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED', message: expect.stringMatching(/^(?!\d{3} )[a-z]/) });
      reason = undefined;
      expect((await fetch(`${url}/upload-next`, init)).status, init.method).toBe(400);
      expect(reason, init.method).toBe('not-multipart');
    }
    expect(routed).toBe(0);
  });
});
