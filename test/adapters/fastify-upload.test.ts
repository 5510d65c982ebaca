// request.saveUploads() from tempfile-manager/fastify, under app.inject() and over real sockets
// alike: shapes, limits as errors with their status through Fastify's default error handler,
// hostile bodies, and clients that send their whole body before reading the answer.
import fs from 'node:fs';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import tempFiles from '../../src/adapters/fastify.js';
import type { UploadedFile, UploadOptions } from '../../src/adapters/fastify.js';
import type { TempFileManager } from '../../src/index.js';
import { DEFAULT_DRAIN } from '../../src/uploads/unread-body.js';
import { BOUNDARY, fieldPart, filePart, formEnd, MiB, partialUpload, rawForm, sendFirstUpload, thirdFileAfterTheFirst, withBytes } from '../helpers/http-clients.js';
import { manager } from '../helpers/roots.js';
import { sessionFiles, until } from '../helpers/wait.js';

// An answer that did not wait out the drain of the unread body (10 s by default): half of it,
// a bound for a busy machine, not a speed.
const ANSWERED_BEFORE_DRAIN_MS = DEFAULT_DRAIN.timeoutMs / 2;

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

type Mode = 'inject' | 'http';
type Form = { body: Buffer; headers: Record<string, string> };

async function uploadApp(mgr: TempFileManager, options: UploadOptions, { registerMultipart = false, drain }: { registerMultipart?: boolean; drain?: { maxBytes?: number; timeoutMs?: number } } = {}) {
  const app = Fastify();
  apps.push(app);
  if (registerMultipart) await app.register(multipart);
  await app.register(tempFiles, { manager: mgr, ...(drain && { drain }) });
  const seen: string[] = [];
  app.post('/upload', async (request) => {
    const { file, files, fields } = await request.saveUploads(options);
    const all = [file, ...(Array.isArray(files) ? files : Object.values(files ?? {}).flat())].filter((f): f is UploadedFile => f !== undefined);
    seen.push(...all.map((f) => f.path));
    return {
      files: all.map((f) => ({ fieldName: f.fieldName, originalName: f.originalName, declaredType: f.declaredType, size: f.size, content: fs.readFileSync(f.path, 'latin1') })),
      fields,
      nullPrototype: Object.getPrototypeOf(fields) === null,
    };
  });
  await app.ready();
  return { app, seen };
}

async function send(app: FastifyInstance, mode: Mode, form: Form): Promise<{ status: number; body: Record<string, unknown> }> {
  if (mode === 'inject') {
    const response = await app.inject({ method: 'POST', url: '/upload', payload: form.body, headers: form.headers });
    return { status: response.statusCode, body: response.json() };
  }
  const address = apps.includes(app) && app.server.listening ? app.server.address() : (await app.listen({ port: 0, host: '127.0.0.1' }), app.server.address());
  const port = typeof address === 'object' && address ? address.port : 0;
  const response = await fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST', body: form.body, headers: form.headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe.each<Mode>(['inject', 'http'])('request.saveUploads() under %s', (mode) => {
  it('gives the file as a temp file of request.tmp and the fields in a null-prototype object; removed after the response', async () => {
    const mgr = manager();
    const { app, seen } = await uploadApp(mgr, { field: 'doc' });
    const reply = await send(app, mode, rawForm(`${fieldPart('title', 'hi')}${filePart('doc', 'r.pdf', '%PDF-1.7', 'application/pdf')}${formEnd}`));
    expect(reply).toEqual({
      status: 200,
      body: { files: [{ fieldName: 'doc', originalName: 'r.pdf', declaredType: 'application/pdf', size: 8, content: '%PDF-1.7' }], fields: { title: 'hi' }, nullPrototype: true },
    });
    // The onResponse hook ran: the file is gone now, not at close().
    await until(() => seen.length === 1 && !fs.existsSync(seen[0]!) && sessionFiles(mgr).length === 0);
  });

  it('works on top of an @fastify/multipart registered by the app', async () => {
    const mgr = manager();
    const { app } = await uploadApp(mgr, { array: 'f' }, { registerMultipart: true });
    const reply = await send(app, mode, rawForm(`${filePart('f', 'a', '1')}${filePart('f', 'b', '22')}${formEnd}`));
    expect((reply.body.files as { size: number }[]).map((f) => f.size)).toEqual([1, 2]);
  });

  it('accept: typed from the bytes; another type is a 415', async () => {
    const mgr = manager();
    const { app } = await uploadApp(mgr, { field: 'f', accept: ['image/png'] });
    expect((await send(app, mode, withBytes(rawForm(`${filePart('f', 'a.txt', '@PNG@', 'text/plain')}${formEnd}`), '@PNG@', PNG))).status).toBe(200);
    const refused = await send(app, mode, rawForm(`${filePart('f', 'a.png', 'plain text', 'image/png')}${formEnd}`));
    expect(refused).toMatchObject({ status: 415, body: { code: 'ERR_TEMPFILE_TYPE_NOT_ACCEPTED' } });
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('keeps an empty file', async () => {
    const mgr = manager();
    const { app } = await uploadApp(mgr, { field: 'f' });
    const reply = await send(app, mode, rawForm(`${filePart('f', 'empty.txt', '')}${formEnd}`));
    expect(reply.status).toBe(200);
    expect(reply.body.files).toEqual([expect.objectContaining({ size: 0 })]);
  });

  const refusals: { name: string; options: UploadOptions; form: () => Form; status: number; code: string }[] = [
    { name: 'a file over maxBytes', options: { field: 'f', maxBytes: 10 }, form: () => rawForm(`${filePart('f', 'a', 'x'.repeat(11))}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_SIZE_LIMIT' },
    { name: 'too many files in the field', options: { array: 'f', maxCount: 1 }, form: () => rawForm(`${filePart('f', 'a')}${filePart('f', 'b')}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_UPLOAD_LIMIT' },
    { name: 'too many fields', options: { maxFields: 2 }, form: () => rawForm(`${[1, 2, 3].map((i) => fieldPart(`f${i}`, 'x')).join('')}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_UPLOAD_LIMIT' },
    { name: 'too many parts', options: { maxParts: 100, maxFields: 10_000 }, form: () => rawForm(`${Array.from({ length: 5000 }, (_, i) => fieldPart(`f${i}`, 'x')).join('')}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_UPLOAD_LIMIT' },
    { name: 'an over-long field name', options: { maxFieldNameBytes: 8 }, form: () => rawForm(`${fieldPart('n'.repeat(9), 'v')}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_UPLOAD_LIMIT' },
    { name: 'an over-long field value', options: { maxFieldBytes: 4 }, form: () => rawForm(`${fieldPart('n', 'vvvvv')}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_UPLOAD_LIMIT' },
    { name: 'a file in a field that takes none', options: { field: 'f' }, form: () => rawForm(`${filePart('g', 'a')}${formEnd}`), status: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' },
    { name: 'a file with an empty field name (name="")', options: { field: 'f' }, form: () => rawForm(`${filePart('', 'a.txt')}${formEnd}`), status: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' },
    { name: 'no file where one is required', options: { field: 'f' }, form: () => rawForm(`${fieldPart('n', 'v')}${formEnd}`), status: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' },
    { name: 'a multipart type without a boundary', options: { field: 'f' }, form: () => ({ body: Buffer.from(formEnd), headers: { 'content-type': 'multipart/form-data' } }), status: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' },
    { name: 'a body cut off before the closing boundary', options: { field: 'f' }, form: () => rawForm(`${filePart('f', 'a', 'some bytes')}--${BOUNDARY}`), status: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' },
  ];
  it('__proto__, constructor and hasOwnProperty field names are plain fields, as upload() takes them; Object.prototype is untouched', async () => {
    const mgr = manager();
    const { app } = await uploadApp(mgr, { field: 'f' });
    const reply = await send(app, mode, rawForm(`${fieldPart('__proto__', '{"polluted":1}')}${fieldPart('constructor', 'c')}${fieldPart('hasOwnProperty', 'h')}${filePart('f', 'a')}${formEnd}`));
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    expect(reply.body.fields).toEqual({ ['__proto__']: '{"polluted":1}', constructor: 'c', hasOwnProperty: 'h' });
    expect(reply.body.nullPrototype).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('takes a field value of exactly maxFieldBytes and a name of exactly maxFieldNameBytes whole', async () => {
    const mgr = manager();
    const { app } = await uploadApp(mgr, { field: 'f', maxFieldBytes: 4, maxFieldNameBytes: 8 });
    const reply = await send(app, mode, rawForm(`${fieldPart('n'.repeat(8), 'vvvv')}${filePart('f', 'a')}${formEnd}`));
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    expect(reply.body.fields).toEqual({ ['n'.repeat(8)]: 'vvvv' });
  });

  for (const { name, options, form, status, code } of refusals) {
    it(`answers ${status} ${code} for ${name}, through Fastify's default error handler, and leaves no file`, async () => {
      const mgr = manager();
      const { app } = await uploadApp(mgr, options);
      const reply = await send(app, mode, form());
      expect(reply.status, JSON.stringify(reply.body)).toBe(status);
      expect(reply.body).toMatchObject({ code, statusCode: status });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      await until(() => sessionFiles(mgr).length === 0);
    });
  }
});

describe('request.saveUploads() with real clients', () => {
  // A refused form keeps nothing by the time the route sees the error, not only once the response
  // ends: an error handler may take its time before it answers.
  it('a refused form keeps none of its files when the error reaches the error handler', async () => {
    const mgr = manager();
    const app = Fastify();
    apps.push(app);
    await app.register(tempFiles, { manager: mgr });
    let filesAtError = -1;
    app.setErrorHandler((err: { statusCode?: number }, _request, reply) => {
      filesAtError = sessionFiles(mgr).length;
      return reply.code(err.statusCode ?? 500).send({});
    });
    app.post('/upload', async (request) => {
      await request.saveUploads({ array: 'f', maxCount: 2 });
      return {};
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    // The first file whole on disk before the third one, over the count, is even sent.
    const answer = await thirdFileAfterTheFirst(port, async () => {
      await until(() => sessionFiles(mgr).length >= 1);
      await new Promise((resolve) => setTimeout(resolve, 200));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(filesAtError).toBe(0);
  });

  it.each([false, true])('a client that sends all 64 MiB before reading gets the 413 (Connection: close %s)', async (connectionClose) => {
    const mgr = manager();
    const { app } = await uploadApp(mgr, { field: 'file', maxBytes: MiB });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    const reply = await sendFirstUpload(port, '/upload', 64 * MiB, { connectionClose });
    expect(reply.error, reply.text.slice(0, 200)).toBeUndefined();
    expect(reply.status).toBe(413);
    expect(reply.text).toContain('ERR_TEMPFILE_SIZE_LIMIT');
    expect(reply.ms).toBeLessThan(ANSWERED_BEFORE_DRAIN_MS);
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('past the drain bound the connection is closed', async () => {
    const mgr = manager();
    const { app } = await uploadApp(mgr, { field: 'file', maxBytes: MiB }, { drain: { maxBytes: 4 * MiB } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    const reply = await sendFirstUpload(port, '/upload', 64 * MiB);
    expect(reply.status).toBe(0);
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('a client gone mid-file: the partial file is removed', async () => {
    const mgr = manager();
    const { app } = await uploadApp(mgr, { field: 'file' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    const head = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n`;
    const cut = partialUpload(
      port,
      '/upload',
      { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': String(64 * MiB) },
      Buffer.concat([Buffer.from(head), Buffer.alloc(4 * MiB)]),
      300,
    );
    await until(() => sessionFiles(mgr).length > 0);
    await cut;
    await until(() => sessionFiles(mgr).length === 0);
  });
});
