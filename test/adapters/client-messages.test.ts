// What the client reads of a refused upload, over real HTTP: the status and which limit, never the
// advice meant for the developer (which stays on the error, as err.advice). Fastify's default
// handler sends err.message; Express's upload() answers with it itself, no stack, nothing logged.
// With refusals: 'next', Express's default handler sends its stack in development and the status
// text in production; the error handler of docs/uploads.md answers a 4xx with the message and logs
// nothing.
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tempScope, upload } from '../../src/adapters/express.js';
import tempFiles from '../../src/adapters/fastify.js';
import { isTempFileError, type TempFileManager } from '../../src/index.js';
import type { ExpressUploadOptions, UploadOptions } from '../../src/adapters/express.js';
import { BOUNDARY, filePart, formEnd, listenClosing, rawForm, withBytes } from '../helpers/http-clients.js';
import { manager } from '../helpers/roots.js';
import { until } from '../helpers/wait.js';

// The first bytes of a GIF: refused by accept: ['image/png'].
const GIF = Buffer.from('GIF89a\x01\x00\x01\x00\x80\x00\x00', 'latin1');
const express4 = createRequire(import.meta.url)('express4') as typeof express;
const ADVICE = /Raise `|Lower `|`accept` \(|Answer the client|nothing was kept/i;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await new Promise((resolve) => setTimeout(resolve, 20)); // Express logs an error on a later turn
  vi.restoreAllMocks();
});

// A body declared longer than any form within the limits: its file alone is over them.
const bodyBytesOptions: UploadOptions = { field: 'file', maxBytes: 1024, maxFields: 2, maxFieldBytes: 10 };
const bodyBytesForm = () => rawForm(`${filePart('file', 'a.bin', 'x'.repeat(300_000))}${formEnd}`);
// The largest form within those limits (docs/uploads.md): its one file and two fields, and 12 parts
// (maxFiles + maxFields) each with a delimiter (the boundary and 8 bytes) and 16 KiB of headers;
// then the closing delimiter and 1 KiB for a preamble or an epilogue.
const delimiter = BOUNDARY.length + 8;
const bodyBound = 1 * 1024 + 2 * 10 + 12 * (delimiter + 16 * 1024) + delimiter + 1024;

const refusals: { name: string; options: UploadOptions; form: () => { body: Buffer; headers: Record<string, string> }; status: number; message: string }[] = [
  {
    name: 'a file over maxBytes',
    options: { field: 'file', maxBytes: 10 },
    form: () => rawForm(`${filePart('file', 'a.bin', 'x'.repeat(11))}${formEnd}`),
    status: 413,
    message: 'the file in the field "file" is larger than 10 bytes',
  },
  {
    name: 'a type accept does not list',
    options: { field: 'file', accept: ['image/png'] },
    form: () => withBytes(rawForm(`${filePart('file', 'a.gif', 'MARKER', 'image/gif')}${formEnd}`), 'MARKER', GIF),
    status: 415,
    message: 'image/gif is not accepted',
  },
  {
    name: 'one file too many',
    options: { array: 'f', maxCount: 1 },
    form: () => rawForm(`${filePart('f', 'a')}${filePart('f', 'b')}${formEnd}`),
    status: 413,
    message: 'the form has more files than the 1 allowed (field "f")',
  },
  {
    // In terms of the options set, not of an internal figure alone.
    name: 'a declared length no form within the limits can have',
    options: bodyBytesOptions,
    form: bodyBytesForm,
    status: 413,
    message:
      `the request body of ${bodyBytesForm().body.length} bytes is more than this form may have: ` +
      `1 file of at most 1 KiB (maxBytes) and 2 text fields of at most 10 bytes (maxFields, maxFieldBytes), at most ${bodyBound} bytes with their headers`,
  },
];

async function listenExpress(mgr: TempFileManager, options: ExpressUploadOptions, setUp: (app: express.Express) => void): Promise<string> {
  const app = express();
  setUp(app);
  app.use(tempScope(mgr));
  app.post('/upload', upload(options), (_req, res) => res.sendStatus(200));
  return listen(app);
}

async function listen(app: express.Express): Promise<string> {
  return listenClosing(app, closers);
}

async function post(url: string, form: { body: Buffer; headers: Record<string, string> }) {
  const response = await fetch(`${url}/upload`, { method: 'POST', body: form.body, headers: form.headers });
  return { status: response.status, text: await response.text() };
}

describe.each(refusals)('what the client reads of $name', ({ options, form, status, message }) => {
  it("through Fastify's default error handler: the status and the limit, no advice", async () => {
    const app = Fastify();
    closers.push(() => app.close());
    await app.register(tempFiles, { manager: manager() });
    app.post('/upload', async (request) => {
      await request.saveUploads(options);
      return 'ok';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const reply = await post(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, form());
    expect(reply.status).toBe(status);
    expect(JSON.parse(reply.text)).toMatchObject({ statusCode: status, message });
    expect(reply.text).not.toMatch(ADVICE);
  });

  it.each(['express', 'express4'])("through %s's upload() and no error handler: the message as JSON, no stack, no advice, nothing logged", async (framework) => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    const app = framework === 'express' ? express() : express4();
    app.set('env', 'development'); // where Express's own handler would send and log the stack
    app.post('/upload', upload({ ...options, manager: manager() }), (_req, res) => res.sendStatus(200));
    const reply = await post(await listen(app), form());
    expect(reply.status).toBe(status);
    expect(JSON.parse(reply.text)).toEqual({ statusCode: status, code: expect.stringMatching(/^ERR_TEMPFILE_/), error: http.STATUS_CODES[status], message });
    expect(reply.text).not.toMatch(ADVICE);
    expect(reply.text).not.toMatch(/\bat \S+ \(|node_modules|\.[cm]?[jt]s:\d|<html/i);
    await new Promise((resolve) => setTimeout(resolve, 20)); // Express would log on a later turn
    expect(logged).not.toHaveBeenCalled();
  });

  it.each(['development', 'production'])("with refusals: 'next', through Express's default error handler (%s): no advice", async (env) => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    const url = await listenExpress(manager(), { ...options, refusals: 'next' }, (app) => app.set('env', env));
    const reply = await post(url, form());
    expect(reply.status).toBe(status);
    const text = reply.text.replaceAll('&quot;', '"');
    // Development: Express sends the stack, whose first line is the message; production: the status text.
    expect(text).toContain(env === 'development' ? message : http.STATUS_CODES[status]!);
    expect(text).not.toMatch(ADVICE);
    await until(() => logged.mock.calls.length > 0); // and logs every one of them, with its stack
  });

  it("with refusals: 'next', through the error handler of docs/uploads.md: the message as JSON, the advice kept on the error, nothing logged", async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => { process.stdout.write('LOGGED ' + new Error().stack + '\n'); });
    let advice: string | undefined;
    const app = express();
    app.set('env', 'development'); // where Express's own handler logs each error's stack
    app.use(tempScope(manager()));
    app.post('/upload', upload({ ...options, refusals: 'next' }), (_req, res) => res.sendStatus(200));
    // The handler of docs/uploads.md ("Answering refused uploads"), after the routes.
    app.use((err: unknown, _req: express.Request, res: express.Response, next: express.NextFunction) => {
      if (!isTempFileError(err) || !err.expose || res.headersSent) return next(err);
      advice = err.advice;
      res.status(err.statusCode).json({ error: err.code, message: err.message });
    });
    const reply = await post(await listen(app), form());
    expect(reply.status).toBe(status);
    expect(JSON.parse(reply.text)).toEqual({ error: expect.stringMatching(/^ERR_TEMPFILE_/), message });
    expect(advice).toMatch(ADVICE); // the developer's part stays on the error
    expect(logged).not.toHaveBeenCalled();
  });
});
