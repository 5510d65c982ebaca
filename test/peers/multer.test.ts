// multer's own suite (expressjs/multer, test/*.js), its behaviours asked of upload() of
// tempfile-manager/express over real HTTP and a real disk. Each test names the multer test it
// mirrors; where upload() differs on purpose, the test asserts what docs/migrating.md says
// upload() does instead ("From multer's diskStorage").
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { upload, type ExpressUploadOptions, type UploadedFile } from '../../src/adapters/express.js';
import type { TempFileManager } from '../../src/index.js';
import { manager } from '../helpers/roots.js';
import { sessionFiles, until } from '../helpers/wait.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** The sizes of multer's fixture files (test/files), with bytes of our own. */
const SIZES = { empty: 0, tiny0: 122, tiny1: 7, small0: 1778, small1: 315, medium: 13196, large: 2413677 } as const;
type Fixture = keyof typeof SIZES;
const fixtureName = (name: Fixture) => (name === 'large' ? 'large.jpg' : `${name}.dat`);
const fixture = (name: Fixture) => new Blob([Buffer.alloc(SIZES[name], name.length + 65)]);

interface FileSeen {
  fieldName: string;
  originalName: string;
  size: number;
  onDisk: number;
  path: string;
}
interface RouteSeen {
  body: Record<string, unknown>;
  file: FileSeen | null;
  files: FileSeen[] | Record<string, FileSeen[]> | null;
}
interface ErrorSeen {
  code?: string;
  reason?: string;
  limit?: string;
  field?: string;
  statusCode?: number;
  message?: string;
}
interface Exchange {
  status: number;
  route?: RouteSeen;
  error?: ErrorSeen;
  body: Record<string, unknown> | undefined;
}

const seen = (file: UploadedFile): FileSeen => ({
  fieldName: file.fieldName,
  originalName: file.originalName,
  size: file.size,
  onDisk: fs.statSync(file.path).size,
  path: file.path,
});

async function listen(app: express.Express): Promise<number> {
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return (server.address() as AddressInfo).port;
}

/**
 * An app with `upload(options)` on POST /upload (refusals to `next(err)`, as multer hands them
 * over), whose route answers what it got and whose error middleware records the error, and a
 * way to send it a form.
 */
async function uploadApp(mgr: TempFileManager, options: ExpressUploadOptions) {
  const app = express();
  const errors: ErrorSeen[] = [];
  let refusedBody: Record<string, unknown> | undefined;
  let routed = 0;
  app.all('/upload', upload({ manager: mgr, refusals: 'next', ...options }), (req, res) => {
    routed += 1;
    const files = req.files === undefined ? null : Array.isArray(req.files) ? req.files.map(seen) : Object.fromEntries(Object.entries(req.files).map(([k, v]) => [k, v.map(seen)]));
    res.json({ body: { ...(req.body as Record<string, unknown>) }, file: req.file ? seen(req.file) : null, files } satisfies RouteSeen);
  });
  app.use((err: ErrorSeen, req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const { code, reason, limit, field, statusCode, message } = err;
    errors.push({ code, reason, limit, field, statusCode, message });
    refusedBody = req.body === undefined ? undefined : { ...(req.body as Record<string, unknown>) };
    res.status(statusCode ?? 500).end();
  });
  const port = await listen(app);
  const url = `http://127.0.0.1:${port}/upload`;
  const send = async (init: { body: FormData | Buffer; headers?: Record<string, string>; method?: string }): Promise<Exchange> => {
    const res = await fetch(url, { method: init.method ?? 'POST', body: init.body, ...(init.headers && { headers: init.headers }) });
    const text = await res.text();
    const route = res.ok ? (JSON.parse(text) as RouteSeen) : undefined;
    return { status: res.status, ...(route && { route }), ...(errors.at(-1) && { error: errors.at(-1) }), body: refusedBody };
  };
  return { send, port, url, routed: () => routed, errors };
}

/** A form from entries: a string is a text field, a fixture name a file of that fixture. */
function form(entries: [string, string | { file: Fixture }][]): FormData {
  const data = new FormData();
  for (const [name, value] of entries) {
    if (typeof value === 'string') data.append(name, value);
    else data.append(name, fixture(value.file), fixtureName(value.file));
  }
  return data;
}

/** A hand-written multipart body (CRLF lines) with its headers. */
function raw(lines: (string | Buffer)[], boundary = 'AaB03x', join = true): { body: Buffer; headers: Record<string, string> } {
  const parts = lines.map((line, i) => Buffer.concat([typeof line === 'string' ? Buffer.from(line, 'latin1') : line, Buffer.from(join && i < lines.length - 1 ? '\r\n' : '')]));
  return { body: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

const filesLeft = (mgr: TempFileManager) => until(() => sessionFiles(mgr).length === 0, 10_000, 'every file of the request removed');

describe('multer test/disk-storage.js and test/memory-storage.js (one store here: the request scope on disk)', () => {
  it("'should process parser/form-data POST request' / 'should process multipart/form-data POST request'", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, { field: 'small0' });
    const res = await app.send({ body: form([['name', 'Multer'], ['small0', { file: 'small0' }]]) });
    expect(res.status).toBe(200);
    expect(res.route?.body).toEqual({ name: 'Multer' });
    expect(res.route?.file).toMatchObject({ fieldName: 'small0', originalName: 'small0.dat', size: 1778, onDisk: 1778 });
    await filesLeft(mgr);
  });

  it("'should process empty fields and an empty file'", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, { field: 'empty' });
    const res = await app.send({
      body: form([
        ['empty', { file: 'empty' }], ['name', 'Multer'], ['version', ''], ['year', ''], ['checkboxfull', 'cb1'], ['checkboxfull', 'cb2'],
        ['checkboxhalfempty', 'cb1'], ['checkboxhalfempty', ''], ['checkboxempty', ''], ['checkboxempty', ''],
      ]),
    });
    expect(res.status).toBe(200);
    expect(res.route?.body).toEqual({ name: 'Multer', version: '', year: '', checkboxfull: ['cb1', 'cb2'], checkboxhalfempty: ['cb1', ''], checkboxempty: ['', ''] });
    expect(res.route?.file).toMatchObject({ fieldName: 'empty', originalName: 'empty.dat', size: 0, onDisk: 0 });
  });

  it("'should process multiple files'", async () => {
    const mgr = manager();
    const names = Object.keys(SIZES) as Fixture[];
    const app = await uploadApp(mgr, { fields: names.map((name) => ({ name, maxCount: 1 })), maxFiles: 10 });
    const res = await app.send({ body: form(names.map((name) => [name, { file: name }])) });
    expect(res.status).toBe(200);
    expect(res.route?.body).toEqual({});
    const files = res.route?.files as Record<string, FileSeen[]>;
    for (const name of names) {
      expect(files[name], name).toHaveLength(1);
      expect(files[name]![0], name).toMatchObject({ fieldName: name, originalName: fixtureName(name), size: SIZES[name], onDisk: SIZES[name] });
    }
  });

  it("'should remove uploaded files on error': an unexpected file refuses the form and the file written before it is removed", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, { field: 'tiny0' });
    const res = await app.send({ body: form([['tiny0', { file: 'tiny0' }], ['small0', { file: 'small0' }]]) });
    // multer: LIMIT_UNEXPECTED_FILE with err.field; here the same refusal, typed, with its status.
    expect(res.status).toBe(400);
    expect(res.error).toMatchObject({ code: 'ERR_TEMPFILE_UPLOAD_MALFORMED', reason: 'unexpected-file', field: 'small0' });
    // Already gone when next(err) runs, not only when the response ends.
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it("'should report error when directory doesn't exist': a root gone from under the manager is a RootChangedError (500) to next(err)", async () => {
    const mgr = manager();
    fs.rmSync(mgr.root, { recursive: true, force: true });
    const app = await uploadApp(mgr, { field: 'tiny0' });
    const res = await app.send({ body: form([['tiny0', { file: 'tiny0' }]]) });
    // multer passes the ENOENT on with its path; here the error names the root, and nothing is made again there.
    expect(res.status).toBe(500);
    expect(res.error).toMatchObject({ code: 'ERR_TEMPFILE_ROOT_CHANGED', statusCode: 500 });
    expect(res.error?.message).toContain(mgr.root);
    expect(app.routed()).toBe(0);
    expect(fs.existsSync(mgr.root)).toBe(false);
  });
});

describe('multer test/error-handling.js', () => {
  it("'should be an instance of both `Error` and `MulterError`': a refusal is a TempFileError with statusCode", async () => {
    const mgr = manager();
    const app = express();
    let error: unknown;
    app.post('/upload', upload({ manager: mgr, refusals: 'next', fields: [{ name: 'small0', maxCount: 1 }] }), (_req, res) => res.end());
    app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      error = err;
      res.status(500).end();
    });
    const port = await listen(app);
    await fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST', body: form([['small0', { file: 'small0' }], ['small0', { file: 'small0' }]]) });
    const { isTempFileError } = await import('../../src/errors.js');
    expect(error).toBeInstanceOf(Error);
    expect(isTempFileError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_UPLOAD_LIMIT', limit: 'files', field: 'small0', statusCode: 413 });
  });

  const limitCases: [string, ExpressUploadOptions, [string, string | { file: Fixture }][], ErrorSeen][] = [
    ["'should respect parts limit'", { maxParts: 1, fields: [{ name: 'small0' }] }, [['field0', 'BOOM!'], ['small0', { file: 'small0' }]], { code: 'ERR_TEMPFILE_UPLOAD_LIMIT', limit: 'parts', statusCode: 413 }],
    [
      "'should respect file size limit'",
      { maxBytes: 1500, fields: [{ name: 'tiny0' }, { name: 'small0' }] },
      [['tiny0', { file: 'tiny0' }], ['small0', { file: 'small0' }]],
      { code: 'ERR_TEMPFILE_SIZE_LIMIT', field: 'small0', statusCode: 413 },
    ],
    ["'should respect file count limit'", { maxFiles: 1, fields: [{ name: 'small0' }, { name: 'small1' }] }, [['small0', { file: 'small0' }], ['small1', { file: 'small1' }]], { code: 'ERR_TEMPFILE_UPLOAD_LIMIT', limit: 'files', statusCode: 413 }],
    ["'should respect file key limit'", { maxFieldNameBytes: 4, fields: [{ name: 'small0' }] }, [['small0', { file: 'small0' }]], { code: 'ERR_TEMPFILE_UPLOAD_LIMIT', limit: 'fieldNameBytes', statusCode: 413 }],
    ["'should respect field key limit'", { maxFieldNameBytes: 4 }, [['ok', 'SMILE'], ['blowup', 'BOOM!']], { code: 'ERR_TEMPFILE_UPLOAD_LIMIT', limit: 'fieldNameBytes', statusCode: 413 }],
    ["'should respect field value limit'", { maxFieldBytes: 16 }, [['field0', 'This is okay'], ['field1', 'This will make the parser explode']], { code: 'ERR_TEMPFILE_UPLOAD_LIMIT', limit: 'fieldBytes', field: 'field1', statusCode: 413 }],
    ["'should respect field count limit'", { maxFields: 1 }, [['field0', 'BOOM!'], ['field1', 'BOOM!']], { code: 'ERR_TEMPFILE_UPLOAD_LIMIT', limit: 'fields', statusCode: 413 }],
    ["'should respect fields given'", { fields: [{ name: 'wrongname' }] }, [['small0', { file: 'small0' }]], { code: 'ERR_TEMPFILE_UPLOAD_MALFORMED', reason: 'unexpected-file', field: 'small0', statusCode: 400 }],
  ];
  for (const [name, options, entries, expected] of limitCases) {
    it(`${name}: the limit named in a typed error with its status (multer's LIMIT_* codes map to limit names, docs/migrating.md)`, async () => {
      const mgr = manager();
      const app = await uploadApp(mgr, options);
      const res = await app.send({ body: form(entries) });
      expect(res.status).toBe(expected.statusCode);
      expect(res.error).toMatchObject(expected);
      expect(app.routed()).toBe(0);
      await filesLeft(mgr);
    });
  }

  it("'should notify of missing field name' (a text part with no name= at all)", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, { field: 'tiny0' });
    const res = await app.send(raw(['--AaB03x', 'Content-Disposition: form-data', '', 'test content', '--AaB03x', '']));
    expect(res.status).toBe(400);
    expect(res.error).toMatchObject({ code: 'ERR_TEMPFILE_UPLOAD_MALFORMED', reason: 'missing-field-name' });
  });

  it("'should notify of missing field name' (a file part whose name is empty)", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, { field: 'small0' });
    const res = await app.send({ body: form([['', { file: 'small0' }]]) });
    expect(res.status).toBe(400);
    expect(res.error).toMatchObject({ code: 'ERR_TEMPFILE_UPLOAD_MALFORMED', reason: 'missing-field-name' });
    await filesLeft(mgr);
  });

  it("'should report errors from storage engines': no storage engine here; a file written before the refusal is removed before next(err)", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, { field: 'tiny0' });
    const res = await app.send({ body: form([['tiny0', { file: 'tiny0' }], ['small0', { file: 'small0' }]]) });
    expect(res.error).toMatchObject({ reason: 'unexpected-file', field: 'small0' });
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it("'should report errors from busboy constructor': no boundary is a 400", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, { field: 'tiny0' });
    const res = await app.send({ body: Buffer.from('test'), headers: { 'content-type': 'multipart/form-data' } });
    expect(res.status).toBe(400);
    expect(res.error).toMatchObject({ code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' });
    expect(app.routed()).toBe(0);
  });

  it("'should report errors from busboy parsing': a form with no end boundary is a 400 and leaves no file", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, { field: 'tiny0' });
    const res = await app.send(raw(['--AaB03x', 'Content-Disposition: form-data; name="tiny0"; filename="test.txt"', 'Content-Type: text/plain', '', 'test without end boundary']));
    expect(res.status).toBe(400);
    expect(res.error).toMatchObject({ code: 'ERR_TEMPFILE_UPLOAD_MALFORMED', reason: 'truncated' });
    await filesLeft(mgr);
  });

  it("'should gracefully handle more than one error at a time': the first one (the size) is the one reported", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, { maxBytes: 1, maxFiles: 1, fields: [{ name: 'small0', maxCount: 1 }] });
    const res = await app.send({ body: form([['small0', { file: 'small0' }], ['small0', { file: 'small0' }]]) });
    expect(res.error).toMatchObject({ code: 'ERR_TEMPFILE_SIZE_LIMIT', field: 'small0' });
    expect(app.errors).toHaveLength(1);
    await filesLeft(mgr);
  });

  it("'should allow client to finish sending body before error response': the whole body is sent, then the answer read", async () => {
    const mgr = manager();
    const app = express();
    app.post('/', upload({ manager: mgr, field: 'expected' }), (_req, res) => res.end('OK'));
    const port = await listen(app);
    const boundary = `Drain${Date.now()}`;
    const preamble = `--${boundary}\r\nContent-Disposition: form-data; name="unexpected"; filename="test.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;
    const footer = `\r\n--${boundary}--\r\n`;
    const chunk = Buffer.alloc(32 * 1024, 97);
    const total = 24;
    const length = Buffer.byteLength(preamble) + chunk.length * total + Buffer.byteLength(footer);
    const { sent, response } = await new Promise<{ sent: number; response: string }>((resolve, reject) => {
      // allowHalfOpen: upload() answers at once and ends its side (docs/migrating.md), then keeps
      // reading what the client still sends; a client that stays open sends all of it.
      const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      let sentChunks = 0;
      let text = '';
      socket.on('data', (data: Buffer) => (text += data.toString('utf8')));
      socket.on('error', reject);
      socket.on('close', () => resolve({ sent: sentChunks, response: text }));
      const writeChunk = (): void => {
        if (sentChunks >= total) {
          socket.end(footer);
          return;
        }
        sentChunks += 1;
        if (socket.write(chunk)) setTimeout(writeChunk, 2);
        else socket.once('drain', () => setTimeout(writeChunk, 2));
      };
      socket.on('connect', () => {
        socket.write(`POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${length}\r\n\r\n`);
        socket.write(preamble);
        writeChunk();
      });
    });
    expect(sent).toBe(total);
    // multer's test answers 500 from its own callback, once the body is in; upload() answers the
    // refusal itself, a 400, as soon as it sees the unexpected part.
    expect(response).toMatch(/^HTTP\/1\.1 400 /);
    expect(response).toContain('"code":"ERR_TEMPFILE_UPLOAD_MALFORMED"');
  });

  it("'should not hang when client aborts multipart upload': next(err) runs within a second, and the partial file is gone", async () => {
    const mgr = manager();
    const app = express();
    const called = new Promise<ErrorSeen>((resolve) => {
      app.post('/', upload({ manager: mgr, refusals: 'next', array: 'file' }), (_req, res) => {
        resolve({ code: 'route ran' });
        res.end();
      });
      app.use((err: ErrorSeen, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        resolve({ code: err.code, statusCode: err.statusCode });
        res.end();
      });
    });
    const port = await listen(app);
    const boundary = `PoC${Date.now()}`;
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(
        `POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 999999\r\n\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="test.bin"\r\nContent-Type: application/octet-stream\r\n\r\nAAAAAAAAAAAAAAAA`,
      );
      setTimeout(() => socket.destroy(), 50);
    });
    socket.on('error', () => {});
    const started = Date.now();
    const error = await Promise.race([called, new Promise<ErrorSeen>((resolve) => setTimeout(() => resolve({ code: 'hung' }), 1000))]);
    expect(error).toEqual({ code: 'ERR_TEMPFILE_ABORTED', statusCode: 499 });
    expect(Date.now() - started).toBeLessThan(1000);
    await filesLeft(mgr);
  });

  it("'should not overflow call stack when cleaning up many files': a refused form of many files removes all of them", async () => {
    const mgr = manager();
    const count = 400;
    const app = await uploadApp(mgr, { array: 'file', maxCount: count, maxFiles: count + 1, maxParts: count + 10 });
    const entries: [string, string | { file: Fixture }][] = Array.from({ length: count }, () => ['file', { file: 'empty' }] as [string, { file: Fixture }]);
    entries.push(['file', { file: 'tiny1' }]); // one past maxCount
    const res = await app.send({ body: form(entries) });
    expect(res.status).toBe(413);
    expect(res.error).toMatchObject({ limit: 'files', field: 'file' });
    expect(sessionFiles(mgr)).toEqual([]);
  });
});

describe('multer test/expected-files.js', () => {
  it("'should reject single unexpected file'", async () => {
    const app = await uploadApp(manager(), { field: 'butme' });
    const res = await app.send({ body: form([['notme', { file: 'small0' }]]) });
    expect(res.error).toMatchObject({ reason: 'unexpected-file', field: 'notme', statusCode: 400 });
  });

  it("'should reject array of multiple files'", async () => {
    const app = await uploadApp(manager(), { array: 'butme', maxCount: 4 });
    const res = await app.send({ body: form([['notme', { file: 'small0' }], ['notme', { file: 'small1' }]]) });
    expect(res.error).toMatchObject({ reason: 'unexpected-file', field: 'notme', statusCode: 400 });
  });

  it("'should reject overflowing arrays': a 413 UploadLimitError (limit 'files', the field), where multer says LIMIT_UNEXPECTED_FILE", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, { array: 'butme', maxCount: 1 });
    const res = await app.send({ body: form([['butme', { file: 'small0' }], ['butme', { file: 'small1' }]]) });
    expect(res.status).toBe(413);
    expect(res.error).toMatchObject({ code: 'ERR_TEMPFILE_UPLOAD_LIMIT', limit: 'files', field: 'butme' });
    await filesLeft(mgr);
  });

  it("'should accept files with expected fieldname'", async () => {
    const app = await uploadApp(manager(), { fields: [{ name: 'butme', maxCount: 2 }, { name: 'andme', maxCount: 2 }] });
    const res = await app.send({ body: form([['butme', { file: 'small0' }], ['butme', { file: 'small1' }], ['andme', { file: 'empty' }]]) });
    const files = res.route?.files as Record<string, FileSeen[]>;
    expect(files.butme).toHaveLength(2);
    expect(files.andme).toHaveLength(1);
  });

  it("'should reject files with unexpected fieldname'", async () => {
    const app = await uploadApp(manager(), { fields: [{ name: 'butme', maxCount: 2 }, { name: 'andme', maxCount: 2 }] });
    const res = await app.send({ body: form([['butme', { file: 'small0' }], ['butme', { file: 'small1' }], ['andme', { file: 'empty' }], ['notme', { file: 'empty' }]]) });
    expect(res.error).toMatchObject({ reason: 'unexpected-file', field: 'notme', statusCode: 400 });
  });

  it("'should allow any file to come thru': no any(); a route names its fields, in order of arrival across them", async () => {
    const app = await uploadApp(manager(), { fields: [{ name: 'butme', maxCount: 2 }, { name: 'andme' }] });
    const anyField = await uploadApp(manager(), { field: 'only' });
    const res = await app.send({ body: form([['butme', { file: 'small0' }], ['butme', { file: 'small1' }], ['andme', { file: 'empty' }]]) });
    const files = res.route?.files as Record<string, FileSeen[]>;
    expect(Object.values(files).flat().map((file) => file.fieldName)).toEqual(['butme', 'butme', 'andme']);
    // A field the route did not name is refused, as multer's any() would have taken it.
    expect((await anyField.send({ body: form([['whatever', { file: 'tiny1' }]]) })).error).toMatchObject({ reason: 'unexpected-file' });
  });
});

describe('multer test/fields.js', () => {
  it("'should process multiple fields'", async () => {
    const app = await uploadApp(manager(), {});
    const res = await app.send({ body: form([['name', 'Multer'], ['key', 'value'], ['abc', 'xyz']]) });
    expect(res.route?.body).toEqual({ name: 'Multer', key: 'value', abc: 'xyz' });
  });

  it("'should process empty fields'", async () => {
    const app = await uploadApp(manager(), {});
    const res = await app.send({
      body: form([['name', 'Multer'], ['key', ''], ['abc', ''], ['checkboxfull', 'cb1'], ['checkboxfull', 'cb2'], ['checkboxhalfempty', 'cb1'], ['checkboxhalfempty', ''], ['checkboxempty', ''], ['checkboxempty', '']]),
    });
    expect(res.route?.body).toEqual({ name: 'Multer', key: '', abc: '', checkboxfull: ['cb1', 'cb2'], checkboxhalfempty: ['cb1', ''], checkboxempty: ['', ''] });
  });

  it("'should not process non-multipart POST request': a urlencoded form is read into req.body (docs/migrating.md: not passed on)", async () => {
    const app = await uploadApp(manager(), {});
    const res = await app.send({ body: Buffer.from('name=Multer'), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.route).toEqual({ body: { name: 'Multer' }, file: null, files: null });
  });

  it("'should not process non-multipart GET request': a 400 not-multipart, the route never runs (docs/migrating.md)", async () => {
    const app = await uploadApp(manager(), {});
    const res = await fetch(app.url, { method: 'GET' });
    expect(res.status).toBe(400);
    expect(app.errors.at(-1)).toMatchObject({ reason: 'not-multipart' });
    expect(app.routed()).toBe(0);
  });

  it("'should handle <testdata-w3c-json-form>' and 'should convert arrays into objects': bracket names stay flat (docs/migrating.md)", async () => {
    const app = await uploadApp(manager(), {});
    const res = await app.send({ body: form([['obj[0]', 'a'], ['obj[2]', 'c'], ['obj[x]', 'yz'], ['pet[species]', 'Dahut'], ['pet[name]', 'Hypatia']]) });
    // multer: { obj: { 0: 'a', 2: 'c', x: 'yz' }, pet: { species, name } }.
    expect(res.route?.body).toEqual({ 'obj[0]': 'a', 'obj[2]': 'c', 'obj[x]': 'yz', 'pet[species]': 'Dahut', 'pet[name]': 'Hypatia' });
  });
});

describe('multer test/none.js', () => {
  it("'should not allow file uploads': refused, req.files unset, the fields read before kept in req.body", async () => {
    const app = await uploadApp(manager(), {});
    const res = await app.send({ body: form([['key1', 'val1'], ['key2', 'val2'], ['file', { file: 'small0' }]]) });
    expect(res.error).toMatchObject({ reason: 'unexpected-file', field: 'file', statusCode: 400 });
    expect(res.body).toEqual({ key1: 'val1', key2: 'val2' });
  });

  it("'should handle text fields'", async () => {
    const app = await uploadApp(manager(), {});
    const res = await app.send({ body: form([['key1', 'val1'], ['key2', 'val2']]) });
    expect(res.route).toEqual({ body: { key1: 'val1', key2: 'val2' }, file: null, files: null });
  });
});

describe('multer test/select-field.js', () => {
  const options: ExpressUploadOptions = { fields: [{ name: 'CA$|-|', maxCount: 1 }, { name: 'set-1', maxCount: 3 }, { name: 'set-2', maxCount: 3 }] };
  const entries: [string, { file: Fixture }][] = [
    ['CA$|-|', { file: 'empty' }], ['set-1', { file: 'tiny0' }], ['set-1', { file: 'empty' }], ['set-1', { file: 'tiny1' }],
    ['set-2', { file: 'tiny1' }], ['set-2', { file: 'tiny0' }], ['set-2', { file: 'empty' }],
  ];
  const names = (files: FileSeen[] | undefined) => files?.map((file) => [file.fieldName, file.originalName]);

  it("'should select the first file with fieldname' and 'should select all files with fieldname'", async () => {
    const app = await uploadApp(manager(), options);
    const res = await app.send({ body: form(entries) });
    const files = res.route?.files as Record<string, FileSeen[]>;
    expect(names(files['CA$|-|'])).toEqual([['CA$|-|', 'empty.dat']]);
    expect(names(files['set-1'])).toEqual([['set-1', 'tiny0.dat'], ['set-1', 'empty.dat'], ['set-1', 'tiny1.dat']]);
    expect(names(files['set-2'])).toEqual([['set-2', 'tiny1.dat'], ['set-2', 'tiny0.dat'], ['set-2', 'empty.dat']]);
  });
});

describe('multer test/file-ordering.js', () => {
  it("'should present files in same order as they came': the first file's write ends last, its place stays first", async () => {
    const mgr = manager();
    const finished: string[] = [];
    const app = await uploadApp(mgr, {
      array: 'themFiles',
      maxCount: 2,
      verify: async (file) => {
        if (file.originalName === 'small0.dat') await until(() => finished.length === 1, 10_000); // held until the second one is done
        finished.push(file.originalName);
        return true;
      },
    });
    const res = await app.send({ body: form([['themFiles', { file: 'small0' }], ['themFiles', { file: 'small1' }]]) });
    expect(finished).toEqual(['small1.dat', 'small0.dat']);
    expect((res.route?.files as FileSeen[]).map((file) => file.originalName)).toEqual(['small0.dat', 'small1.dat']);
  });
});

describe('multer test/functionality.js', () => {
  it("'should upload the file to the `dest` dir': the file is under the manager's root", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, { field: 'small0' });
    const res = await app.send({ body: form([['small0', { file: 'small0' }]]) });
    expect(res.route?.file?.path.startsWith(mgr.root + path.sep)).toBe(true);
    expect(res.route?.file?.onDisk).toBe(1778);
  });

  it("'should rename the uploaded file' and the req.files naming tests: the library names every file, never from the client (docs/migrating.md)", async () => {
    const mgr = manager();
    const single = await uploadApp(mgr, { field: 'tiny0' });
    const array = await uploadApp(mgr, { array: 'themFiles', maxCount: 2 });
    const one = await single.send({ body: form([['tiny0', { file: 'tiny0' }]]) });
    const two = await array.send({ body: form([['themFiles', { file: 'small0' }], ['themFiles', { file: 'small1' }]]) });
    const paths = [one.route?.file?.path, ...(two.route?.files as FileSeen[]).map((file) => file.path)];
    expect(paths).toHaveLength(3);
    for (const where of paths) {
      expect(path.basename(where!)).not.toContain('tiny0');
      expect(path.basename(where!)).not.toContain('small');
      expect(where!.endsWith('.dat')).toBe(true); // the client's extension, letters and digits only
    }
    expect(new Set(paths).size).toBe(3);
  });

  it("'should rename the destination directory to a different directory': no per-file destination; keep() moves a file where the route wants it", async () => {
    const mgr = manager();
    const dest = fs.mkdtempSync(path.join(path.dirname(mgr.root), 'testforme-'));
    const app = express();
    app.post('/upload', upload({ manager: mgr, array: 'themFiles', maxCount: 2 }), async (req, res) => {
      const kept = [];
      for (const [i, file] of (req.files as UploadedFile[]).entries()) kept.push(await file.keep(path.join(dest, `${i}.dat`)));
      res.json(kept);
    });
    const port = await listen(app);
    const res = await fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST', body: form([['themFiles', { file: 'small0' }], ['themFiles', { file: 'small1' }]]) });
    expect(res.status).toBe(200);
    expect(fs.readdirSync(dest).sort()).toEqual(['0.dat', '1.dat']);
    expect(fs.statSync(path.join(dest, '0.dat')).size).toBe(1778);
  });
});

describe('multer test/file-filter.js', () => {
  it("'should skip some files': no filter that skips a file; accept refuses a form with a file of another type (415)", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, { fields: [{ name: 'notme' }, { name: 'butme' }], accept: ['image/png'] });
    const res = await app.send({ body: form([['notme', { file: 'tiny0' }], ['butme', { file: 'tiny1' }]]) });
    expect(res.status).toBe(415);
    expect(res.error).toMatchObject({ code: 'ERR_TEMPFILE_TYPE_NOT_ACCEPTED', statusCode: 415 });
    expect(app.routed()).toBe(0);
    await filesLeft(mgr);
  });

  it("'should report errors from fileFilter': a verify hook that throws is the server's 503, to next(err)", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, {
      field: 'test',
      verify: () => {
        throw new Error('Fake error');
      },
    });
    const res = await app.send({ body: form([['test', { file: 'tiny0' }]]) });
    expect(res.status).toBe(503);
    expect(app.routed()).toBe(0);
    await filesLeft(mgr);
  });
});

describe('multer test/issue-232.js', () => {
  it("'should report limit errors'", async () => {
    const app = await uploadApp(manager(), { field: 'file', maxBytes: 100 });
    const res = await app.send({ body: form([['file', { file: 'large' }]]) });
    expect(res.error).toMatchObject({ code: 'ERR_TEMPFILE_SIZE_LIMIT', field: 'file', statusCode: 413 });
  });
});

describe('multer test/reuse-middleware.js', () => {
  it("'should accept multiple requests'", async () => {
    const app = await uploadApp(manager(), { array: 'them-files', maxCount: 10 });
    const results = await Promise.all([9, 1, 5, 7, 2, 8, 3, 4].map(async (count) => {
      const entries: [string, string | { file: Fixture }][] = [['name', 'Multer'], ['files', String(count)]];
      for (let i = 0; i < count; i++) entries.push(['them-files', { file: 'small0' }]);
      return { count, res: await app.send({ body: form(entries) }) };
    }));
    for (const { count, res } of results) {
      expect(res.route?.body).toEqual({ name: 'Multer', files: String(count) });
      expect(res.route?.files).toHaveLength(count);
      for (const file of res.route?.files as FileSeen[]) expect(file).toMatchObject({ fieldName: 'them-files', originalName: 'small0.dat', size: 1778, onDisk: 1778 });
    }
  });
});

describe('multer test/unicode.js and test/def-param-charset.js', () => {
  /** A form of one file part whose Content-Disposition is `disposition` (pieces of text and raw bytes). */
  const withBoundary = (disposition: (string | Buffer)[]) =>
    raw(['--AaB03x', Buffer.concat(disposition.map((piece) => (typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece))), 'Content-Type: text/plain', '', 'test file content', '--AaB03x--']);

  it("unicode.js 'should handle unicode filenames': filename* (RFC 5987) wins over filename", async () => {
    const app = await uploadApp(manager(), { field: 'small0' });
    const res = await app.send(withBoundary(['Content-Disposition: form-data; name="small0"; filename="poo.dat"; filename*=utf-8\'\'%F0%9F%92%A9.dat']));
    expect(res.route?.file).toMatchObject({ originalName: '\u{1F4A9}.dat', fieldName: 'small0' });
  });

  it("def-param-charset.js 'should use latin1 as default charset for non-extended parameters' and 'should handle different charsets correctly'", async () => {
    const app = await uploadApp(manager(), { field: 'testfile' });
    for (const [bytes, name] of [[[0xe9], 'café.txt'], [[0xf1], 'testñ.txt']] as const) {
      const res = await app.send(withBoundary([`Content-Disposition: form-data; name="testfile"; filename="${name.slice(0, -5)}`, Buffer.from(bytes), '.txt"']));
      expect(res.route?.file).toMatchObject({ originalName: name, fieldName: 'testfile' });
    }
  });

  it("def-param-charset.js 'should use custom charset when defParamCharset is specified', 'should work with memory storage', 'should work with array uploads': UTF-8 needs no option here", async () => {
    const single = await uploadApp(manager(), { field: 'testfile' });
    const array = await uploadApp(manager(), { array: 'testfile', maxCount: 2 });
    const utf8 = withBoundary(['Content-Disposition: form-data; name="testfile"; filename="caf', Buffer.from([0xc3, 0xa9]), '.txt"']);
    expect((await single.send(utf8)).route?.file).toMatchObject({ originalName: 'café.txt' });
    expect((await array.send(utf8)).route?.files).toMatchObject([{ originalName: 'café.txt' }]);
  });

  it("def-param-charset.js 'should not affect extended parameters with explicit charset'", async () => {
    const app = await uploadApp(manager(), { field: 'testfile' });
    const res = await app.send(withBoundary(["Content-Disposition: form-data; name=\"testfile\"; filename*=utf-8''caf%C3%A9.txt"]));
    expect(res.route?.file).toMatchObject({ originalName: 'café.txt' });
  });
});

describe('multer test/async-file-filter-orphan.js', () => {
  it("'does not leave orphan files when request aborts with missing field name'", async () => {
    const mgr = manager();
    const app = express();
    app.post('/upload', upload({ manager: mgr, fields: [{ name: 'f' }] }), (_req, res) => res.json({ success: true }));
    const port = await listen(app);
    const body =
      '--TestBound\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\nORPHAN FILE DATA\r\n' +
      '--TestBound\r\nContent-Disposition: form-data; filename="b.bin"\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n--TestBound--\r\n';
    const res = await fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST', body, headers: { 'content-type': 'multipart/form-data; boundary=TestBound' } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' });
    expect(sessionFiles(mgr)).toEqual([]);
  });
});

describe('multer test/express-integration.js', () => {
  it("'should work with express error handling'", async () => {
    const mgr = manager();
    const app = express();
    const router = express.Router();
    let routeCalled = 0;
    const codes: string[] = [];
    router.post('/profile', upload({ manager: mgr, refusals: 'next', field: 'avatar', maxBytes: 200 }), (_req, res) => {
      routeCalled += 1;
      res.status(200).end('SUCCESS');
    });
    router.use((err: { code: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      codes.push(err.code);
      res.status(500).end('ERROR');
    });
    app.use('/t1', router);
    const port = await listen(app);
    const res = await fetch(`http://127.0.0.1:${port}/t1/profile`, { method: 'POST', body: form([['avatar', { file: 'large' }]]) });
    expect([res.status, await res.text(), routeCalled, codes]).toEqual([500, 'ERROR', 0, ['ERR_TEMPFILE_SIZE_LIMIT']]);
  });

  it("'should work when receiving error from fileFilter': a verify refusal reaches the error middleware", async () => {
    const mgr = manager();
    const app = await uploadApp(mgr, { field: 'avatar', verify: () => ({ reason: 'TEST', statusCode: 422 }) });
    const res = await app.send({ body: form([['avatar', { file: 'large' }]]) });
    expect(res.status).toBe(422);
    expect(res.error?.message).toContain('TEST');
    expect(app.routed()).toBe(0);
    await filesLeft(mgr);
  });

  const malformed: [string, { body: Buffer; headers: Record<string, string> }][] = [
    ["'should not crash on malformed request'", raw(['--AaB03x', 'Content-Disposition: form-data; name="file"; filename="test.txt"', 'Content-Type: text/plain', '', 'test without end boundary'])],
    ["'should not crash on malformed request that causes two errors to be emitted by busboy'", raw(['--AaB03x', 'Content-Disposition: form-data; name="file"; filename="test.txt"', 'Content-Type: text/plain', '', '--AaB03x--', ''])],
    ["'should not crash on malformed multipart body with bad boundary'", raw(['------FormBoundary', 'Content-Disposition: form-data; name="file"; filename=""', 'Content-Type: application/octet-stream', '', '', '------FormBoundar'], '----FormBoundary')],
  ];
  for (const [name, request] of malformed) {
    it(`${name}: one 400 to the error middleware, the route never runs, no file left`, async () => {
      const mgr = manager();
      const app = await uploadApp(mgr, { field: 'file' });
      const res = await app.send(request);
      expect(res.status).toBe(400);
      expect(res.error).toMatchObject({ code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' });
      expect(app.errors).toHaveLength(1);
      expect(app.routed()).toBe(0);
      await filesLeft(mgr);
    });
  }
});
