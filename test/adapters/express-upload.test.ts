// upload() from tempfile-manager/express, over real HTTP: shapes, limits as errors with their
// status through Express's own default error handler, hostile bodies, and clients that send
// their whole body before reading the answer.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { tempScope, upload, type UploadedFile } from '../../src/adapters/express.js';
import type { TempFileManager } from '../../src/index.js';
import { DEFAULT_DRAIN } from '../../src/uploads/unread-body.js';
import { BOUNDARY, fieldPart, filePart, formEnd, MiB, partialUpload, rawForm, sendFirstUpload, thirdFileAfterTheFirst, withBytes } from '../helpers/http-clients.js';
import { manager } from '../helpers/roots.js';
import { sessionFiles, until } from '../helpers/wait.js';

// An answer that did not wait out the drain of the unread body (10 s by default): half of it,
// a bound for a busy machine, not a speed.
const ANSWERED_BEFORE_DRAIN_MS = DEFAULT_DRAIN.timeoutMs / 2;

// The first bytes of a PNG (signature and IHDR): enough for the sniffer.
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');

const servers: http.Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

async function listen(app: express.Express): Promise<{ url: string; port: number }> {
  const server = http.createServer(app);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port };
}

/** An app whose only route is `POST /upload` behind `upload(options)`, with no error middleware. */
async function uploadApp(mgr: TempFileManager, options: Parameters<typeof upload>[0], handler?: express.RequestHandler) {
  const app = express();
  app.use(tempScope(mgr));
  app.post('/upload', upload(options), handler ?? ((req, res) => res.json(describeRequest(req))));
  return listen(app);
}

function describeFile(file: UploadedFile) {
  return {
    fieldName: file.fieldName,
    originalName: file.originalName,
    declaredType: file.declaredType,
    detectedType: file.detectedType ?? null,
    size: file.size,
    digest: file.digest ?? null,
    content: fs.readFileSync(file.path, 'latin1'),
  };
}

function describeRequest(req: express.Request) {
  const files = req.files;
  return {
    file: req.file ? describeFile(req.file) : null,
    files: Array.isArray(files)
      ? files.map(describeFile)
      : files
        ? Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.map(describeFile)]))
        : null,
    body: req.body as Record<string, unknown>,
    bodyPrototype: Object.getPrototypeOf(req.body) === null ? 'null' : 'object',
  };
}

async function post(url: string, form: { body: Buffer; headers: Record<string, string> }) {
  const response = await fetch(`${url}/upload`, { method: 'POST', body: form.body, headers: form.headers });
  return { status: response.status, text: await response.text() };
}

describe('upload() for Express', () => {
  // Express gives each request a prototype of its own; every property added to it after that
  // makes the request a map of its own in the old generation (about 1.1 KB an upload). So the
  // library adds to a request what a route reads, as multer does (body, file), and req.tmp. Beside
  // them: Express's own req.route, and Node's stream state (names that start with _).
  it.each([
    ['with tempScope() before', true],
    ['alone', false],
  ])('adds to the request only req.tmp, req.body and req.file (%s)', async (_name, scoped) => {
    const mgr = manager();
    const app = express();
    let before = new Set<string | symbol>();
    app.use((req, _res, next) => {
      before = new Set(Reflect.ownKeys(req));
      next();
    });
    if (scoped) app.use(tempScope(mgr));
    app.post('/upload', upload({ field: 'doc', manager: mgr }), (req, res) => {
      res.json(Reflect.ownKeys(req).filter((key) => !before.has(key)).map(String).filter((key) => !key.startsWith('_')).sort());
    });
    const { url } = await listen(app);
    const form = new FormData();
    form.append('doc', new Blob(['body']), 'a.txt');
    const response = await fetch(`${url}/upload`, { method: 'POST', body: form });
    expect(await response.json()).toEqual(['body', 'file', 'route', 'tmp']);
  });

  it('gives req.file as a temp file of the request: name, types, size, digest; fields in a null-prototype req.body', async () => {
    const mgr = manager();
    let path = '';
    const { url } = await uploadApp(mgr, { field: 'doc', hash: 'sha256' }, (req, res) => {
      path = req.file!.path;
      expect(fs.existsSync(path)).toBe(true);
      res.json(describeRequest(req));
    });
    const form = new FormData();
    form.append('title', 'hello');
    form.append('title', 'again');
    form.append('doc', new Blob(['%PDF-1.7 body'], { type: 'application/pdf' }), 'report.pdf');
    const response = await fetch(`${url}/upload`, { method: 'POST', body: form });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      file: {
        fieldName: 'doc',
        originalName: 'report.pdf',
        declaredType: 'application/pdf',
        detectedType: null, // not sniffed: neither accept nor detectType asks for the type
        size: 13,
        digest: `sha256:${createHash('sha256').update('%PDF-1.7 body').digest('hex')}`,
        content: '%PDF-1.7 body',
      },
      files: null,
      body: { title: ['hello', 'again'] },
      bodyPrototype: 'null',
    });
    expect(path).toMatch(/\.pdf$/);
    await until(() => !fs.existsSync(path) && sessionFiles(mgr).length === 0);
  });

  it('takes several files in one field (array) and named fields (fields), multer-style', async () => {
    const mgr = manager();
    const arrayApp = await uploadApp(mgr, { array: 'photos', maxCount: 3 });
    const three = rawForm(`${filePart('photos', 'a.png', 'A')}${filePart('photos', 'b.png', 'BB')}${filePart('photos', 'c.png', 'CCC')}${formEnd}`);
    const arrayReply = await post(arrayApp.url, three);
    expect(JSON.parse(arrayReply.text).files.map((f: { originalName: string; size: number }) => [f.originalName, f.size])).toEqual([
      ['a.png', 1],
      ['b.png', 2],
      ['c.png', 3],
    ]);

    const fieldsApp = await uploadApp(mgr, { fields: [{ name: 'avatar' }, { name: 'gallery', maxCount: 2 }] });
    const named = rawForm(`${filePart('gallery', 'g1', 'x')}${filePart('avatar', 'me', 'y')}${filePart('gallery', 'g2', 'z')}${formEnd}`);
    const files = JSON.parse((await post(fieldsApp.url, named)).text).files;
    expect(Object.keys(files).sort()).toEqual(['avatar', 'gallery']);
    expect(files.gallery.map((f: { originalName: string }) => f.originalName)).toEqual(['g1', 'g2']);
    expect(files.avatar[0].content).toBe('y');
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('keeps an empty file, skips a file input left empty (filename="")', async () => {
    const mgr = manager();
    const { url } = await uploadApp(mgr, { array: 'f' });
    const reply = await post(url, rawForm(`${filePart('f', 'empty.txt', '')}${filePart('f', '', '')}${formEnd}`));
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.text).files).toEqual([expect.objectContaining({ originalName: 'empty.txt', size: 0, content: '' })]);
  });

  it('__proto__, constructor and hasOwnProperty field names are plain fields; Object.prototype is untouched', async () => {
    const mgr = manager();
    const { url } = await uploadApp(mgr, { field: 'file' });
    const reply = await post(
      url,
      rawForm(`${fieldPart('__proto__', '{"polluted":1}')}${fieldPart('constructor', 'c')}${fieldPart('hasOwnProperty', 'h')}${filePart('file', 'a.txt')}${formEnd}`),
    );
    expect(reply.status).toBe(200);
    const body = JSON.parse(reply.text).body;
    expect(body).toEqual({ ['__proto__']: '{"polluted":1}', constructor: 'c', hasOwnProperty: 'h' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  // Each refusal is answered by Express's own final handler from err.statusCode: no error middleware.
  const refusals: { name: string; options: Parameters<typeof upload>[0]; form: () => { body: Buffer; headers: Record<string, string> }; status: number; code: string }[] = [
    { name: 'a file over maxBytes', options: { field: 'file', maxBytes: 10 }, form: () => rawForm(`${filePart('file', 'a', 'x'.repeat(11))}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_SIZE_LIMIT' },
    { name: 'a file of exactly maxBytes is fine', options: { field: 'file', maxBytes: 10 }, form: () => rawForm(`${filePart('file', 'a', 'x'.repeat(10))}${formEnd}`), status: 200, code: '' },
    { name: 'too many files in the field', options: { array: 'f', maxCount: 2 }, form: () => rawForm(`${filePart('f', 'a')}${filePart('f', 'b')}${filePart('f', 'c')}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_UPLOAD_LIMIT' },
    { name: 'too many files in the form', options: { fields: [{ name: 'a', maxCount: 5 }], maxFiles: 2 }, form: () => rawForm(`${filePart('a', '1')}${filePart('a', '2')}${filePart('a', '3')}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_UPLOAD_LIMIT' },
    { name: 'too many fields', options: { maxFields: 3 }, form: () => rawForm(`${[1, 2, 3, 4].map((i) => fieldPart(`f${i}`, 'x')).join('')}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_UPLOAD_LIMIT' },
    { name: '5000 tiny parts', options: { array: 'f', maxCount: 10_000, maxFiles: 10_000, maxFields: 10_000 }, form: () => rawForm(`${Array.from({ length: 5000 }, (_, i) => fieldPart(`f${i}`, 'x')).join('')}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_UPLOAD_LIMIT' },
    { name: 'an over-long field name (busboy would cut it silently)', options: { maxFieldNameBytes: 8 }, form: () => rawForm(`${fieldPart('n'.repeat(9), 'v')}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_UPLOAD_LIMIT' },
    { name: 'an over-long file field name', options: { array: 'n'.repeat(9), maxFieldNameBytes: 8 }, form: () => rawForm(`${filePart('n'.repeat(9), 'a')}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_UPLOAD_LIMIT' },
    { name: 'an over-long field value (busboy would cut it silently)', options: { maxFieldBytes: 4 }, form: () => rawForm(`${fieldPart('n', 'vvvvv')}${formEnd}`), status: 413, code: 'ERR_TEMPFILE_UPLOAD_LIMIT' },
    { name: 'a field value of exactly maxFieldBytes is fine (busboy flags one that reaches its limit)', options: { field: 'file', maxFieldBytes: 4 }, form: () => rawForm(`${fieldPart('n', 'vvvv')}${filePart('file', 'a')}${formEnd}`), status: 200, code: '' },
    { name: 'a field name of exactly maxFieldNameBytes is fine', options: { field: 'file', maxFieldNameBytes: 8 }, form: () => rawForm(`${fieldPart('n'.repeat(8), 'v')}${filePart('file', 'a')}${formEnd}`), status: 200, code: '' },
    { name: 'a file in a field that takes none', options: { field: 'file' }, form: () => rawForm(`${filePart('other', 'a')}${formEnd}`), status: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' },
    { name: 'a file with an empty field name (name="")', options: { field: 'file' }, form: () => rawForm(`${filePart('', 'a.txt')}${formEnd}`), status: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' },
    { name: 'a text field with an empty name', options: { field: 'file' }, form: () => rawForm(`${fieldPart('', 'v')}${filePart('file', 'a.txt')}${formEnd}`), status: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' },
    { name: 'no file where one is required', options: { field: 'file' }, form: () => rawForm(`${fieldPart('n', 'v')}${formEnd}`), status: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' },
    { name: 'a multipart type without a boundary', options: { field: 'file' }, form: () => ({ ...rawForm(formEnd), headers: { 'content-type': 'multipart/form-data', 'content-length': String(rawForm(formEnd).body.length) } }), status: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' },
    { name: 'a body that is not a form', options: { field: 'file' }, form: () => ({ body: Buffer.from('{"a":1}'), headers: { 'content-type': 'application/json' } }), status: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' },
    { name: 'a body cut off before the closing boundary', options: { field: 'file' }, form: () => rawForm(`${filePart('file', 'a', 'some bytes')}--${BOUNDARY}`), status: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' },
    { name: 'a part header without a colon', options: { field: 'file' }, form: () => rawForm(`--${BOUNDARY}\nContent-Disposition: form-data; name="file"; filename="a"\nnot a header\n\ndata\n${formEnd}`), status: 400, code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' },
  ];
  for (const { name, options, form, status, code } of refusals) {
    it(`answers ${status} for ${name}, through Express's default error handler, and leaves no file`, async () => {
      const mgr = manager();
      const { url } = await uploadApp(mgr, options);
      const started = Date.now();
      const reply = await post(url, form());
      expect(reply.status, reply.text.slice(0, 300)).toBe(status);
      expect(Date.now() - started).toBeLessThan(ANSWERED_BEFORE_DRAIN_MS);
      // The client reads the status and the limit, not the advice meant for the developer.
      if (code === 'ERR_TEMPFILE_SIZE_LIMIT') expect(JSON.parse(reply.text)).toMatchObject({ message: 'the file in the field "file" is larger than 10 bytes' });
      expect(reply.text).not.toMatch(/Raise `|nothing was kept/i);
      await until(() => sessionFiles(mgr).length === 0);
    });
  }

  // A refused form keeps nothing by the time the route sees the error, not only once the response
  // ends: an error handler may take its time (log, call out) before it answers.
  it('a refused form keeps none of its files when the error reaches the error middleware', async () => {
    const mgr = manager();
    const app = express();
    app.post('/upload', upload({ array: 'f', maxCount: 2, manager: mgr, refusals: 'next' }), (_req, res) => res.json({}));
    let filesAtError = -1;
    app.use((err: { statusCode?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      filesAtError = sessionFiles(mgr).length;
      res.status(err.statusCode ?? 500).json({});
    });
    const { port } = await listen(app);
    // The first file whole on disk before the third one, over the count, is even sent.
    const answer = await thirdFileAfterTheFirst(port, async () => {
      await until(() => sessionFiles(mgr).length >= 1);
      await new Promise((resolve) => setTimeout(resolve, 200));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(filesAtError).toBe(0);
  });

  it('accept: a file is typed from its bytes, not its name or header; another type is a 415', async () => {
    const mgr = manager();
    const { url } = await uploadApp(mgr, { field: 'f', accept: ['image/*'] });
    const ok = await post(url, withBytes(rawForm(`${filePart('f', 'cat.txt', '@PNG@', 'text/plain')}${formEnd}`), '@PNG@', PNG));
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.text).file).toMatchObject({ declaredType: 'text/plain', detectedType: { mime: 'image/png', ext: 'png' } });
    const refused = await post(url, rawForm(`${filePart('f', 'cat.png', '%PDF-1.7 not an image', 'image/png')}${formEnd}`));
    expect(refused.status).toBe(415);
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('refuses bad options when the route is set up, not per request', () => {
    expect(() => upload({ accept: ['not a type'] })).toThrow(/accept/);
    expect(() => upload({ field: 'a', array: 'b' })).toThrow(/one of `field`, `array` and `fields`/);
    expect(() => upload({ maxBytes: -1 })).toThrow(/maxBytes/);
    expect(() => upload({ fields: [] })).toThrow(/fields/);
    expect(() => upload({ nope: 1 } as never)).toThrow(/unknown option `nope`/);
    expect(() => upload({ refusals: 'log' as never })).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'refusals', message: expect.stringMatching(/`refusals` must be 'answer' .* or 'next' .*got "log"/) }));
  });

  it('works without tempScope(): upload({ manager }) makes the request scope itself', async () => {
    const mgr = manager();
    const app = express();
    let path = '';
    app.post('/upload', upload({ field: 'f', manager: mgr }), (req, res) => {
      path = req.file!.path;
      res.json({ inScope: req.tmp.size });
    });
    const { url } = await listen(app);
    const reply = await post(url, rawForm(`${filePart('f', 'a.bin', 'abc')}${formEnd}`));
    expect(JSON.parse(reply.text)).toEqual({ inScope: 1 });
    expect(path.startsWith(mgr.root)).toBe(true);
    await until(() => !fs.existsSync(path));
  });

  it('a handed-off file outlives its request; a kept one is moved out', async () => {
    const mgr = manager();
    const { url } = await uploadApp(mgr, { field: 'f', hash: 'sha256' }, async (req, res) => {
      res.status(202).json(await req.file!.handoff({ ttlMs: 60_000 }));
    });
    const ticket = JSON.parse((await post(url, rawForm(`${filePart('f', 'a.bin', 'for the worker')}${formEnd}`))).text);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await using claimed = await mgr.claim(ticket, { verifyDigest: true });
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('for the worker');
  });
});

describe('upload() when the client is slow, gone, or sends everything before reading', () => {
  it('a write() failure in an async route reaches Express 5’s default handler and is answered at once', async () => {
    const mgr = manager();
    const app = express();
    app.use(tempScope(mgr));
    // No error middleware: Express 5 passes the rejection to its final handler.
    app.post('/raw', async (req, res) => {
      const file = await req.tmp.write(req, { maxBytes: 1024 });
      res.json({ size: file.size });
    });
    const { port } = await listen(app);
    const reply = await sendFirstUpload(port, '/raw', 4 * MiB);
    expect(reply.status).toBe(413);
    expect(reply.ms).toBeLessThan(ANSWERED_BEFORE_DRAIN_MS);
    await until(() => sessionFiles(mgr).length === 0);
  });

  it.each(['the default error handler', 'an error middleware that answers at once'])('a client that sends all 64 MiB before reading gets the 413, not a broken pipe (keep-alive and Connection: close): %s', async (handler) => {
    const mgr = manager();
    const app = express();
    app.post('/upload', upload({ field: 'file', maxBytes: MiB, manager: mgr }), (_req, res) => res.sendStatus(200));
    if (handler !== 'the default error handler') {
      app.use((err: { statusCode: number; code: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        res.status(err.statusCode).json({ error: err.code });
      });
    }
    const { port } = await listen(app);
    for (const connectionClose of [false, true]) {
      const reply = await sendFirstUpload(port, '/upload', 64 * MiB, { connectionClose });
      expect(reply.error, reply.text.slice(0, 200)).toBeUndefined();
      expect(reply.status).toBe(413);
      expect(reply.text).toMatch(/connection: close/i);
      expect(reply.ms).toBeLessThan(ANSWERED_BEFORE_DRAIN_MS);
    }
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('past the drain bound the connection is closed, not read to its end', async () => {
    const mgr = manager();
    const app = express();
    app.use(tempScope(mgr));
    let bytesRead = 0;
    app.post(
      '/upload',
      (req, res, next) => {
        res.once('close', () => (bytesRead = req.socket.bytesRead));
        next();
      },
      upload({ field: 'file', maxBytes: MiB, drain: { maxBytes: 4 * MiB, timeoutMs: 10_000 } }),
      (_req, res) => res.sendStatus(200),
    );
    const { port } = await listen(app);
    const reply = await sendFirstUpload(port, '/upload', 64 * MiB);
    expect(reply.status).toBe(0); // closed: it would have taken more than the bound
    await until(() => bytesRead > 0);
    expect(bytesRead).toBeLessThan(16 * MiB);
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('a stalled client is cut off after the drain time bound', async () => {
    const mgr = manager();
    const { port } = await uploadApp(mgr, { field: 'file', maxBytes: 10, drain: { timeoutMs: 300 } });
    const head = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n`;
    const reply = await partialUpload(
      port,
      '/upload',
      { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': String(10 * MiB) },
      Buffer.from(head + 'x'.repeat(100)),
      30_000,
    );
    // Cut off by the server (after its 300 ms bound), well before the client would give up itself:
    // the margin is for a busy machine.
    expect(reply.closed).toBe(true);
    expect(reply.ms).toBeLessThan(15_000);
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('a client gone mid-file: the partial file is removed and no descriptor stays open', async () => {
    const mgr = manager();
    let failure: unknown;
    const app = express();
    app.use(tempScope(mgr));
    app.post('/upload', upload({ field: 'file', refusals: 'next' }), (_req, res) => res.sendStatus(200));
    app.use((err: unknown, _req: express.Request, _res: express.Response, next: express.NextFunction) => {
      failure = err;
      next(err);
    });
    const { port } = await listen(app);
    const head = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n`;
    void partialUpload(
      port,
      '/upload',
      { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': String(64 * MiB) },
      Buffer.concat([Buffer.from(head), Buffer.alloc(4 * MiB)]),
      300,
    );
    await until(() => failure !== undefined);
    expect(failure).toMatchObject({ code: 'ERR_TEMPFILE_ABORTED', statusCode: 499 });
    const openUnderRoot = () =>
      fs.readdirSync('/proc/self/fd').filter((fd) => {
        try {
          // The manager holds its root, its session directory and its thread's live signal open for its life: not the upload's.
          const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
          return target.startsWith(mgr.root) && target !== mgr.root && target !== mgr.sessionPath && !/\/live_[0-9a-f]{16}$/.test(target);
        } catch {
          return false;
        }
      });
    await until(() => openUnderRoot().length === 0 && sessionFiles(mgr).length === 0);
  });
});
