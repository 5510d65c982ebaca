// @fastify/multipart's own tests of saveRequestFiles() (fastify/fastify-multipart, test/*.js),
// their behaviours asked of request.saveUploads() of tempfile-manager/fastify over real HTTP and
// a real disk. Each test names the test it mirrors; where saveUploads() differs on purpose, the
// test asserts what docs/migrating.md says it does instead ("From @fastify/multipart's
// saveRequestFiles()").
import fs from 'node:fs';
import http from 'node:http';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import tempFiles from '../../src/adapters/fastify.js';
import type { UploadedFile } from '../../src/adapters/fastify.js';
import type { TempFileManager } from '../../src/index.js';
import { manager } from '../helpers/roots.js';
import { sessionFiles, until } from '../helpers/wait.js';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

/** The peer's fixture is its README.md, sent as text/markdown. */
const README = Buffer.from('# @fastify/multipart\n\nMultipart support for Fastify.\n'.repeat(40));
const readme = () => new Blob([README], { type: 'text/markdown' });

interface FileSeen {
  path: string;
  fieldName: string;
  originalName: string;
  encoding: string;
  declaredType: string;
  size: number;
  exists: boolean;
}
const seen = (file: UploadedFile): FileSeen => ({
  path: file.path,
  fieldName: file.fieldName,
  originalName: file.originalName,
  encoding: file.encoding,
  declaredType: file.declaredType,
  size: file.size,
  exists: fs.existsSync(file.path),
});

/** A Fastify app with the plugin on a fresh manager, listening on a real port; `setup` adds routes before it listens. */
async function serve(mgr: TempFileManager, setup: (app: FastifyInstance) => void | Promise<void>, before?: (app: FastifyInstance) => Promise<void>): Promise<string> {
  const app = Fastify();
  apps.push(app);
  if (before) await before(app);
  await app.register(tempFiles, { manager: mgr });
  await setup(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}/`;
}

/** The fields of a refusal the tests read. */
interface Caught {
  code?: string;
  field?: string;
  option?: string;
  statusCode?: number;
  message?: string;
}

/**
 * A route that saves with `options` and answers 200, or keeps the error's fields in `caught` and
 * answers 500; `before` registers what goes before the library (the peer, with its options).
 */
async function savingRoute(mgr: TempFileManager, options: Parameters<FastifyRequest['saveUploads']>[0], before?: (app: FastifyInstance) => Promise<void>) {
  const caught: Caught[] = [];
  const url = await serve(
    mgr,
    (app) => {
      app.post('/', async (request, reply) => {
        try {
          await request.saveUploads(options);
          return reply.code(200).send('ok');
        } catch (error) {
          const { code, field, option, statusCode, cause } = error as Caught & { cause?: { message?: string } };
          caught.push({ code, field, option, statusCode, message: cause?.message });
          return reply.code(500).send();
        }
      });
    },
    before,
  );
  return { url, caught };
}

/** Records the paths a request's files had, to check after the response. */
function pathsOf(files: readonly UploadedFile[], into: string[]): void {
  into.push(...files.map((file) => file.path));
}

const post = (url: string, body: FormData | Buffer, headers?: Record<string, string>) => fetch(url, { method: 'POST', body, ...(headers && { headers }) });

describe('@fastify/multipart test/multipart-disk.test.js', () => {
  it("'should store file on disk, remove on response'", async () => {
    const mgr = manager();
    const paths: string[] = [];
    let during: FileSeen[] = [];
    const url = await serve(mgr, (app) => {
      app.post('/', async (request) => {
        const { files } = await request.saveUploads({ array: 'upload' });
        pathsOf(files, paths);
        during = files.map(seen);
        return 'ok';
      });
    });
    const body = new FormData();
    body.append('upload', readme(), 'README.md');
    const res = await post(url, body);
    expect(res.status).toBe(200);
    await res.text();
    expect(during).toEqual([{ path: paths[0], fieldName: 'upload', originalName: 'README.md', encoding: '7bit', declaredType: 'text/markdown', size: README.length, exists: true }]);
    await until(() => !fs.existsSync(paths[0]!), 10_000, 'the file removed after the response');
  });

  it("'should store file on disk, remove on response error' (the route throws: 500, the file removed)", async () => {
    const mgr = manager();
    const paths: string[] = [];
    const url = await serve(mgr, (app) => {
      app.post('/', async (request) => {
        const { files } = await request.saveUploads({ array: 'upload' });
        pathsOf(files, paths);
        throw new Error('test');
      });
    });
    const body = new FormData();
    body.append('upload', readme(), 'README.md');
    const res = await post(url, body);
    expect(res.status).toBe(500);
    expect(paths).toHaveLength(1);
    await until(() => !fs.existsSync(paths[0]!) && sessionFiles(mgr).length === 0, 10_000, 'the file removed after the error response');
  });

  it("'should store file on disk, remove on response error, serial': three requests in a row, each file removed", async () => {
    const mgr = manager();
    const paths: string[] = [];
    const before: number[] = [];
    const url = await serve(mgr, (app) => {
      app.post('/', async (request) => {
        before.push(sessionFiles(mgr).length); // request.tmpUploads is null before the call: nothing of this request yet
        const { files } = await request.saveUploads({ array: 'upload' });
        pathsOf(files, paths);
        throw new Error('test');
      });
    });
    for (let i = 0; i < 3; i++) {
      const body = new FormData();
      body.append('upload', readme(), 'README.md');
      expect((await post(url, body)).status).toBe(500);
      await until(() => !fs.existsSync(paths[i]!), 10_000, 'the file removed after the response');
    }
    expect(before).toEqual([0, 0, 0]);
    expect(new Set(paths).size).toBe(3);
  });

  it("'should return saved files and values from saveRequestFiles': fields are plain values (no { value } wrapper), the file is not among them", async () => {
    const mgr = manager();
    let got: unknown;
    const url = await serve(mgr, (app) => {
      app.post('/', async (request) => {
        const { files, fields } = await request.saveUploads({ array: 'upload' });
        got = { files: files.map((file) => file.fieldName), fields: { ...fields } };
        return 'ok';
      });
    });
    const body = new FormData();
    body.append('hello', 'world');
    body.append('count', '42');
    body.append('upload', readme(), 'README.md');
    expect((await post(url, body)).status).toBe(200);
    // @fastify/multipart: values.hello.value === 'world', and values.upload is the file's part.
    expect(got).toEqual({ files: ['upload'], fields: { hello: 'world', count: '42' } });
  });

  it("'should return values when saveRequestFiles receives only fields'", async () => {
    const mgr = manager();
    let got: unknown;
    const url = await serve(mgr, (app) => {
      app.post('/', async (request) => {
        const { files, fields } = await request.saveUploads({ array: 'upload' });
        got = { files, fields: { ...fields } };
        return 'ok';
      });
    });
    const body = new FormData();
    body.append('hello', 'world');
    body.append('count', '42');
    expect((await post(url, body)).status).toBe(200);
    expect(got).toEqual({ files: [], fields: { hello: 'world', count: '42' } });
  });

  it("'should throw on file limit error': a SizeLimitError (413) naming the field, the partial file removed", async () => {
    const mgr = manager();
    const { url, caught } = await savingRoute(mgr, { array: 'upload', maxBytes: 500 });
    const body = new FormData();
    body.append('upload', readme(), 'README.md');
    expect((await post(url, body)).status).toBe(500);
    // @fastify/multipart: RequestFileTooLargeError, error.part.fieldname === 'upload'.
    expect(caught).toMatchObject([{ code: 'ERR_TEMPFILE_SIZE_LIMIT', field: 'upload', statusCode: 413 }]);
    await until(() => sessionFiles(mgr).length === 0, 10_000);
  });

  it("'should throw on file limit error, after highWaterMark': 1 MiB against 17000 bytes, the field named", async () => {
    const mgr = manager();
    const { url, caught } = await savingRoute(mgr, { array: 'upload2', maxBytes: 17000 });
    const body = new FormData();
    body.append('upload2', new Blob([Buffer.alloc(1024 * 1024, 'x')], { type: 'binary/octet-stream' }), 'random-data');
    expect((await post(url, body)).status).toBe(500);
    expect(caught).toMatchObject([{ code: 'ERR_TEMPFILE_SIZE_LIMIT', field: 'upload2' }]);
    await until(() => sessionFiles(mgr).length === 0, 10_000);
  });

  it("'should throw on file save error' ({ tmpdir: 'something' }): no tmpdir option; an unknown option is an InvalidOptionError naming it", async () => {
    const mgr = manager();
    const { url, caught } = await savingRoute(mgr, { array: 'upload', tmpdir: 'something' } as Parameters<FastifyRequest['saveUploads']>[0]);
    const body = new FormData();
    body.append('upload', readme(), 'README.md');
    expect((await post(url, body)).status).toBe(500);
    expect(caught).toMatchObject([{ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'tmpdir' }]);
  });

  it("'should not throw on request files cleanup error': a file gone before the response is no error, the answer is 200", async () => {
    const mgr = manager();
    const disposeErrors: unknown[] = [];
    const app = Fastify();
    apps.push(app);
    await app.register(tempFiles, { manager: mgr, onDisposeError: (error) => disposeErrors.push(error) });
    app.post('/', async (request) => {
      const { files } = await request.saveUploads({ array: 'upload' });
      for (const file of files) fs.rmSync(file.path); // removed before the response's own removal
      return 'ok';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address() as { port: number };
    const body = new FormData();
    body.append('upload', readme(), 'README.md');
    const res = await post(`http://127.0.0.1:${address.port}/`, body);
    expect([res.status, await res.text()]).toEqual([200, 'ok']);
    await until(() => sessionFiles(mgr).length === 0, 10_000);
    expect(disposeErrors).toEqual([]);
  });

  it("'should process large files correctly' (73550 bytes)", async () => {
    const mgr = manager();
    let size = -1;
    const url = await serve(mgr, (app) => {
      app.post('/', async (request) => {
        const { files } = await request.saveUploads({ array: 'upload' });
        size = fs.statSync(files[0]!.path).size;
        return { ok: true };
      });
    });
    const body = new FormData();
    body.append('upload', new Blob([Buffer.alloc(73550, 'x')], { type: 'binary/octet-stream' }), 'random-data');
    const res = await post(url, body);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(size).toBe(73550);
  });
});

/**
 * A route whose saveUploads({ array: 'upload' }) error is recorded (code, option, status as the
 * route sees it) and answered 500, behind @fastify/multipart registered with `peerOptions`.
 */
function behindPeerOptions(mgr: TempFileManager, peerOptions: Parameters<typeof multipart>[1]) {
  return savingRoute(mgr, { array: 'upload' }, async (app) => {
    await app.register(multipart, peerOptions);
  });
}

/** What saveUploads() does where @fastify/multipart has read the body itself (attachFieldsToBody): docs/migrating.md. */
const READ_BEFORE = { code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'attachFieldsToBody', statusCode: 500, message: expect.stringContaining('register @fastify/multipart without attachFieldsToBody') };

describe('@fastify/multipart test/fix-313.test.js', () => {
  it("'should store file on disk, remove on response when attach fields to body is true': three files, in order, removed after the response", async () => {
    const mgr = manager();
    const paths: string[] = [];
    let during: Omit<FileSeen, 'path' | 'size'>[] = [];
    let fields: Record<string, unknown> = {};
    const url = await serve(mgr, (app) => {
      app.post('/', async (request) => {
        const saved = await request.saveUploads({ fields: [{ name: 'upload', maxCount: 2 }, { name: 'other' }] });
        const files = [...saved.files.upload!, ...saved.files.other!];
        pathsOf(files, paths);
        during = files.map((file) => {
          const { path: _path, size: _size, ...rest } = seen(file);
          return rest;
        });
        fields = { ...saved.fields };
        return 'ok';
      });
    });
    const form = () => {
      const body = new FormData();
      body.append('upload', readme(), 'README.md');
      body.append('upload', readme(), 'README.md');
      body.append('other', readme(), 'README.md');
      return body;
    };
    const res = await post(url, form());
    expect([res.status, await res.text()]).toEqual([200, 'ok']);
    const file = { originalName: 'README.md', encoding: '7bit', declaredType: 'text/markdown', exists: true };
    expect(during).toEqual([{ fieldName: 'upload', ...file }, { fieldName: 'upload', ...file }, { fieldName: 'other', ...file }]);
    // @fastify/multipart puts each file in files[i].fields too; here fields holds text fields only.
    expect(fields).toEqual({});
    await until(() => paths.every((where) => !fs.existsSync(where)), 10_000, 'the files removed after the response');

    // With @fastify/multipart registered with attachFieldsToBody: true, it has read the body
    // before the route: saveUploads() says so (a 500 for the developer), not a client's cut-off form.
    const behind = await behindPeerOptions(manager(), { attachFieldsToBody: true });
    expect((await post(behind.url, form())).status).toBe(500);
    expect(behind.caught).toEqual([READ_BEFORE]);
  });

  it("'should throw on saving request files when attach fields to body is true but buffer is not stored': an InvalidOptionError naming attachFieldsToBody, not a hang", async () => {
    const mgr = manager();
    const behind = await behindPeerOptions(mgr, {
      attachFieldsToBody: true,
      onFile: async (part) => {
        for await (const chunk of part.file) void chunk;
      },
    });
    const body = new FormData();
    body.append('upload', readme(), 'README.md');
    const res = await Promise.race([post(behind.url, body), new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 5000))]);
    expect(res?.status).toBe(500);
    // @fastify/multipart: FileBufferNotFoundError.
    expect(behind.caught).toEqual([READ_BEFORE]);
    expect(sessionFiles(mgr)).toEqual([]);
  });
});

describe('@fastify/multipart test/multipart-duplicate-save-request-file.test.js', () => {
  it("'should store file on disk, remove on response': a second call gives the same files and the same fields object", async () => {
    const mgr = manager();
    let got: unknown;
    const url = await serve(mgr, (app) => {
      app.post('/', async (request) => {
        const first = await request.saveUploads({ array: 'upload' });
        const second = await request.saveUploads({ array: 'upload' });
        got = { samePath: first.files[0]!.path === second.files[0]!.path, sameFields: first.fields === second.fields };
        return 'ok';
      });
    });
    const body = new FormData();
    body.append('upload', readme(), 'README.md');
    expect((await post(url, body)).status).toBe(200);
    expect(got).toEqual({ samePath: true, sameFields: true });
  });
});

describe('@fastify/multipart test/multipart-empty-body.test.js', () => {
  const empty = (url: string) => post(url, Buffer.from('--emptyBoundary--\r\n'), { 'content-type': 'multipart/form-data; boundary=emptyBoundary' });

  for (const attachFieldsToBody of [true, 'keyValues'] as const) {
    it(`'should not break with a empty request body when attachFieldsToBody is ${String(attachFieldsToBody)}': an empty form is no files and no fields; behind attachFieldsToBody, the InvalidOptionError`, async () => {
      const mgr = manager();
      let got: unknown;
      const url = await serve(mgr, (app) => {
        app.post('/', async (request) => {
          const { files, fields } = await request.saveUploads({ array: 'upload' });
          got = { files, fields: { ...fields } };
          return 'ok';
        });
      });
      const res = await empty(url);
      expect([res.status, await res.text()]).toEqual([200, 'ok']);
      expect(got).toEqual({ files: [], fields: {} });

      const behind = await behindPeerOptions(manager(), { attachFieldsToBody });
      expect((await empty(behind.url)).status).toBe(500);
      expect(behind.caught).toEqual([READ_BEFORE]);
    });
  }
});

describe('@fastify/multipart test/multipart-incomplete-upload.test.js', () => {
  it("'should finish with error on partial upload - saveRequestFiles': a body cut short is a 400 (truncated), where the peer answers 500; no file stays", async () => {
    const mgr = manager();
    let caught: { code?: string; reason?: string } | undefined;
    const url = await serve(mgr, (app) => {
      app.post('/', async (request) => {
        try {
          await request.saveUploads({ array: 'upload' });
          return 'ok';
        } catch (error) {
          caught = { code: (error as { code?: string }).code, reason: (error as { reason?: string }).reason };
          throw error;
        }
      });
    });
    const boundary = 'cutShort';
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="upload"; filename="blob"\r\nContent-Type: application/octet-stream\r\n\r\n`);
    const status = await new Promise<number>((resolve, reject) => {
      const request = http.request(url, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      request.on('error', reject);
      request.write(head);
      request.write(Buffer.alloc(3 * 1024 * 1024));
      request.end(); // half the file sent, and no end boundary
    });
    expect(status).toBe(400);
    expect(caught).toEqual({ code: 'ERR_TEMPFILE_UPLOAD_MALFORMED', reason: 'truncated' });
    await until(() => sessionFiles(mgr).length === 0, 10_000);
  });
});

describe('saveRequestFiles() takes every file; saveUploads() takes the fields it is told (docs/migrating.md)', () => {
  it('saveUploads() with no file option refuses a file (400 unexpected-file), where saveRequestFiles() would save it', async () => {
    const mgr = manager();
    let caught: { reason?: string; field?: string } | undefined;
    const url = await serve(mgr, (app) => {
      app.post('/', async (request) => {
        try {
          await request.saveUploads();
          return 'ok';
        } catch (error) {
          caught = { reason: (error as { reason?: string }).reason, field: (error as { field?: string }).field };
          throw error;
        }
      });
    });
    const body = new FormData();
    body.append('upload', readme(), 'README.md');
    expect((await post(url, body)).status).toBe(400);
    expect(caught).toEqual({ reason: 'unexpected-file', field: 'upload' });
    await until(() => sessionFiles(mgr).length === 0, 10_000);
  });
});
