// The tus DataStore suite that @tus/server's stores run (tus/tus-node-server:
// packages/utils/src/test/stores.ts, run by @tus/file-store's packages/file-store/src/test/index.ts
// with the FileStore's own cases) asked of tusStore()'s datastore, and @tus/server's end-to-end
// tests (test/src/e2e.test.ts, its 'FileStore' sections) run on a real Server with tusStore() over
// real HTTP and a real disk. Each test names the test it mirrors; where tusStore() differs on
// purpose, the test asserts what docs/migrating.md ("From @tus/file-store") says it does instead.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Server, type ServerOptions } from '@tus/server';
import { Upload, Uid } from '@tus/utils';
import { afterEach, describe, expect, it } from 'vitest';
import type { TempFile, TempFileManager } from '../../src/index.js';
import { tusStore, type TusStoreOptions } from '../../src/tus/index.js';
import { manager } from '../helpers/roots.js';
import { tusRequest, type Answer } from '../helpers/tus.js';
import { until } from '../helpers/wait.js';

/** The peer's fixture is test.mp4, 960244 bytes; these are random bytes of that size. */
const TEST_FILE_SIZE = 960_244;
const TEST_FILE = randomBytes(TEST_FILE_SIZE);
/** The peer's metadata: filename world_domination_plan.pdf, and is_confidential with no value. */
const TEST_METADATA = 'filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential';
const metadata = { filename: 'world_domination_plan.pdf', is_confidential: null };

const testId = (id: string) => `${id}-${Uid.rand()}`;
const fileStream = (highWaterMark?: number) => Readable.from(TEST_FILE, highWaterMark === undefined ? {} : { highWaterMark });
/** A stream of the test file in chunks of `size`. */
const chunked = (size: number) => Readable.from((function* () {
  for (let at = 0; at < TEST_FILE.length; at += size) yield TEST_FILE.subarray(at, at + size);
})());

type DataStore = Awaited<ReturnType<typeof tusStore>>['datastore'];

/** A datastore of tusStore() on a fresh manager. */
async function store(options: Omit<TusStoreOptions, 'manager'> = {}): Promise<{ datastore: DataStore; mgr: TempFileManager }> {
  const mgr = manager();
  const { datastore } = await tusStore({ manager: mgr, ...options });
  return { datastore, mgr };
}

/** What a store call rejected with: its tus status (`status_code`), or its statusCode; with the library's code and option when it has them. */
async function rejection(promise: Promise<unknown>): Promise<{ status: number | undefined; code?: string; option?: string }> {
  try {
    await promise;
  } catch (error) {
    const { status_code, statusCode, code, option } = error as { status_code?: number; statusCode?: number; code?: string; option?: string };
    return { status: status_code ?? statusCode, ...(code !== undefined && { code }), ...(option !== undefined && { option }) };
  }
  throw new Error('it did not reject');
}

/** What tusStore() answers an upload with no length (no creation-defer-length): @tus/server's own 501. */
const NO_DEFER = { status: 501 };

const listeners: http.Server[] = [];
afterEach(async () => {
  for (const listener of listeners.splice(0)) {
    listener.closeAllConnections();
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  }
});

/** A @tus/server Server on tusStore() (its datastore and locker) at /files, with `serverOptions` of the peer's. */
async function e2e(mgr: TempFileManager, options: Omit<TusStoreOptions, 'manager'> = {}, serverOptions: Partial<ServerOptions> = {}) {
  const { datastore, locker } = await tusStore({ manager: mgr, ...options });
  const server = new Server({ path: '/files', datastore, locker, ...serverOptions });
  const listener = http.createServer((req, res) => void server.handle(req, res));
  listeners.push(listener);
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as { port: number };
  const url = `http://127.0.0.1:${port}/files`;
  return { server, datastore, url, port, request: (method: string, where: string, headers: Record<string, string> = {}, body?: Buffer) => tusRequest(`http://127.0.0.1:${port}${where}`, method, headers, body) };
}

const idOf = (answer: Answer) => answer.headers.location!.slice(answer.headers.location!.lastIndexOf('/') + 1);

describe('packages/utils/src/test/stores.ts, as @tus/file-store runs it', () => {
  describe('shouldHaveStoreMethods', () => {
    it("'must have a write method' and 'must have a getUpload method'", async () => {
      const { datastore } = await store();
      expect(typeof datastore.write).toBe('function');
      expect(typeof datastore.getUpload).toBe('function');
    });
  });

  describe('shouldCreateUploads', () => {
    const file = () => new Upload({ id: testId('create-test'), size: 1000, offset: 0, metadata });

    it("'should resolve to file'", async () => {
      const { datastore } = await store();
      const created = await datastore.create(file());
      expect(created.storage?.path).toBeTruthy();
      expect(created.storage?.type).toBeTruthy();
      expect(created).toBeInstanceOf(Upload);
    });

    it("'should report 'creation' extension'", async () => {
      const { datastore } = await store();
      expect(datastore.hasExtension('creation')).toBe(true);
    });

    it("'should create new upload resource'", async () => {
      const { datastore } = await store();
      const upload = file();
      await datastore.create(upload);
      expect((await datastore.getUpload(upload.id)).offset).toBe(0);
    });

    it("'should store `upload_length` when creating new resource'", async () => {
      const { datastore } = await store();
      const upload = file();
      await datastore.create(upload);
      expect((await datastore.getUpload(upload.id)).size).toBe(1000);
    });

    it("'should store `upload_defer_length` when creating new resource': no creation-defer-length (docs/tus.md, Limits), a 501 and nothing made", async () => {
      const { datastore, mgr } = await store();
      expect(datastore.hasExtension('creation-defer-length')).toBe(false);
      const deferred = new Upload({ id: testId('create-test-deferred'), offset: 0 });
      expect(await rejection(datastore.create(deferred))).toEqual(NO_DEFER);
      expect(await rejection(datastore.getUpload(deferred.id))).toEqual({ status: 404 });
      expect(fs.existsSync(path.join(mgr.root, 'tus')) ? fs.readdirSync(path.join(mgr.root, 'tus')) : []).toEqual([]);
    });

    it("'should store `upload_metadata` when creating new resource'", async () => {
      const { datastore } = await store();
      const upload = file();
      await datastore.create(upload);
      expect((await datastore.getUpload(upload.id)).metadata).toEqual(metadata);
    });

    it("'should store `upload_metadata` with non-ASCII characters'", async () => {
      const { datastore } = await store();
      const upload = new Upload({ id: testId('create-test-non-ascii'), size: 1000, offset: 0, metadata: { filename: '世界_domination_plan.pdf', is_confidential: null } });
      await datastore.create(upload);
      expect((await datastore.getUpload(upload.id)).metadata).toEqual({ filename: '世界_domination_plan.pdf', is_confidential: null });
    });
  });

  describe('shouldExpireUploads', () => {
    it("'should report 'expiration' extension'", async () => {
      const { datastore } = await store();
      expect(datastore.hasExtension('expiration')).toBe(true);
    });

    it("'should expire upload' (after 1 s, the shortest expirationMs: docs/migrating.md)", async () => {
      const { datastore } = await store({ expirationMs: 1000 });
      const upload = new Upload({ id: testId('expiration-test'), size: TEST_FILE_SIZE + 1, offset: 0, metadata }); // one byte short of finished
      await datastore.create(upload);
      const offset = await datastore.write(fileStream(), upload.id, 0);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expect(offset).toBe(TEST_FILE_SIZE);
      expect(await datastore.deleteExpired()).toBe(1);
    });
  });

  describe('shouldRemoveUploads', () => {
    it("'should report 'termination' extension'", async () => {
      const { datastore } = await store();
      expect(datastore.hasExtension('termination')).toBe(true);
    });

    it("'should reject with file not found when the file does not exist'", async () => {
      const { datastore } = await store();
      expect(await rejection(datastore.remove('doesnt_exist'))).toEqual({ status: 404 });
    });

    it("'should delete the file when it does exist'", async () => {
      const { datastore } = await store();
      const upload = new Upload({ id: testId('remove-test'), size: 1000, offset: 0 });
      await datastore.create(upload);
      await datastore.remove(upload.id);
      expect(await rejection(datastore.getUpload(upload.id))).toEqual({ status: 404 });
    });

    it("'should delete the file during upload'", async () => {
      const { datastore, mgr } = await store();
      const upload = new Upload({ id: testId('termination-test'), size: TEST_FILE_SIZE, offset: 0, metadata: { filename: 'terminate_during_upload.pdf', is_confidential: null } });
      await datastore.create(upload);
      const readable = chunked(100 * 1024);
      // A pause between chunks, so that the file is still being written when it is removed.
      readable.on('data', () => {
        readable.pause();
        setTimeout(() => readable.resume(), 1000);
      });
      await Promise.allSettled([datastore.write(readable, upload.id, 0), datastore.remove(upload.id)]);
      expect([404, 410]).toContain((await rejection(datastore.getUpload(upload.id))).status);
      readable.destroy();
      expect(fs.readdirSync(path.join(mgr.root, 'tus'))).toEqual([]);
    });
  });

  describe('shouldWriteUploads', () => {
    it("'should reject write streams that can not be open' and 'should reject when readable stream has an error' (no such upload)", async () => {
      const { datastore } = await store();
      expect(await rejection(datastore.write(fileStream(), 'doesnt_exist', 0))).toEqual({ status: 404 });
    });

    it("'should write a stream and resolve the new offset'", async () => {
      const { datastore } = await store();
      const upload = new Upload({ id: testId('write-test'), size: TEST_FILE_SIZE + 1, offset: 0, metadata });
      await datastore.create(upload);
      expect(await datastore.write(fileStream(), upload.id, 0)).toBe(TEST_FILE_SIZE);
    });

    it("'should reject when stream is destroyed'", async () => {
      const { datastore } = await store();
      const upload = new Upload({ id: testId('write-test-reject'), size: TEST_FILE_SIZE, offset: 0, metadata });
      await datastore.create(upload);
      const readable = new Readable({
        read() {
          this.push('some data');
          this.destroy();
        },
      });
      await expect(datastore.write(readable, upload.id, 0)).rejects.toBeDefined();
    });
  });

  describe('shouldHandleOffset', () => {
    it("'should reject non-existant files'", async () => {
      const { datastore } = await store();
      expect(await rejection(datastore.getUpload('doesnt_exist'))).toEqual({ status: 404 });
    });

    it("'should resolve the stats for existing files'", async () => {
      const { datastore } = await store();
      const upload = new Upload({ id: testId('offset-test'), size: TEST_FILE_SIZE + 1, offset: 0, metadata });
      await datastore.create(upload);
      const offset = await datastore.write(fileStream(), upload.id, upload.offset);
      expect((await datastore.getUpload(upload.id)).offset).toBe(offset);
      expect(offset).toBe(TEST_FILE_SIZE);
    });
  });

  describe('shouldDeclareUploadLength (creation-defer-length: not supported, docs/tus.md)', () => {
    it("'should reject non-existant files'", async () => {
      const { datastore } = await store();
      expect(await rejection(datastore.declareUploadLength('doesnt_exist', 10))).toEqual(NO_DEFER);
    });

    it("'should update upload_length after declaring upload length': no upload is made without its length, and none has its length changed", async () => {
      const { datastore } = await store();
      const deferred = new Upload({ id: testId('declare-length-test'), offset: 0, metadata });
      expect(await rejection(datastore.create(deferred))).toEqual(NO_DEFER);
      const sized = new Upload({ id: testId('declare-length-sized'), size: 20, offset: 0, metadata });
      await datastore.create(sized);
      expect(await rejection(datastore.declareUploadLength(sized.id, 10))).toEqual(NO_DEFER);
      expect((await datastore.getUpload(sized.id)).size).toBe(20);
    });
  });
});

describe('packages/file-store/src/test/index.ts (the FileStore\'s own cases)', () => {
  it("'should create a directory for the files': <root>/tus, 0700", async () => {
    const { datastore, mgr } = await store();
    await datastore.create(new Upload({ id: testId('dir'), size: 10, offset: 0 }));
    expect(fs.statSync(path.join(mgr.root, 'tus')).mode & 0o777).toBe(0o700);
  });

  it("create: 'should resolve when the directory exists' and 'should create an empty file'", async () => {
    const { datastore, mgr } = await store();
    const upload = new Upload({ id: '1234', size: 1000, offset: 0 });
    await expect(datastore.create(upload)).resolves.toBeInstanceOf(Upload);
    const dir = path.join(mgr.root, 'tus', 'upload_1234');
    const files = fs.readdirSync(dir).filter((name) => name !== 'info.json');
    expect(files).toHaveLength(1);
    expect(fs.statSync(path.join(dir, files[0]!)).size).toBe(0);
  });

  /** An id that is not 1 to 128 of [A-Za-z0-9_-] at create(): the server's namingFunction made it, a 500 for its developer (docs/migrating.md). */
  const BAD_ID = { status: 500, code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'namingFunction' };

  it("create: 'should support nested upload IDs': an id is never a path; nested/path/upload is refused at create (namingFunction), nothing is made", async () => {
    const { datastore, mgr } = await store();
    expect(await rejection(datastore.create(new Upload({ id: 'nested/path/upload', size: 0, offset: 0 })))).toEqual(BAD_ID);
    expect(await rejection(datastore.getUpload('nested/path/upload'))).toEqual({ status: 404 });
    expect(fs.readdirSync(path.join(mgr.root, 'tus'))).toEqual([]);
  });

  it("create and write: 'should reject paths outside the configured directory'", async () => {
    const { datastore, mgr } = await store();
    const outside = path.join(mgr.root, 'outside-upload');
    expect(await rejection(datastore.create(new Upload({ id: '../outside-upload', size: 0, offset: 0 })))).toEqual(BAD_ID);
    expect(await rejection(datastore.write(Readable.from('changed'), '../outside-upload', 0))).toEqual({ status: 404 });
    expect(fs.existsSync(outside)).toBe(false);
    expect(fs.readdirSync(path.join(mgr.root, 'tus'))).toEqual([]);
  });

  it("write: 'created file's size should match 'upload_length''", async () => {
    const finished: number[] = [];
    const { datastore } = await store({ onUploadFinish: (file: TempFile) => void finished.push(fs.statSync(file.path).size) });
    const upload = new Upload({ id: testId('size'), size: TEST_FILE_SIZE, offset: 0, metadata });
    await datastore.create(upload);
    expect(await datastore.write(fileStream(), upload.id, 0)).toBe(TEST_FILE_SIZE);
    expect(finished).toEqual([TEST_FILE_SIZE]);
  });

  it("getUpload: 'should reject directories' (the empty id)", async () => {
    const { datastore } = await store();
    expect(await rejection(datastore.getUpload(''))).toEqual({ status: 404 });
  });

  it("remove: 'should not delete files outside the configured directory'", async () => {
    const { datastore, mgr } = await store();
    const victim = path.join(mgr.root, 'outside-victim');
    fs.writeFileSync(victim, 'keep me');
    expect(await rejection(datastore.remove('../outside-victim'))).toEqual({ status: 404 });
    expect(fs.readFileSync(victim, 'utf8')).toBe('keep me');
  });
});

describe("test/src/e2e.test.ts, 'FileStore'", () => {
  it("HEAD 'should 404 file ids that dont exist'", async () => {
    const { request } = await e2e(manager());
    const res = await request('HEAD', '/files/undefined');
    expect(res.status).toBe(404);
    expect(res.headers['tus-resumable']).toBe('1.0.0');
  });

  it("POST 'should create a file that will be deleted' and 'should create a file with a deferred length': Upload-Defer-Length is not supported (docs/tus.md)", async () => {
    const { request } = await e2e(manager());
    const res = await request('POST', '/files', { 'Upload-Defer-Length': '1', 'Upload-Metadata': TEST_METADATA });
    expect(res.status).toBe(501);
    expect(res.headers.location).toBeUndefined();
  });

  it("POST 'should create a file and respond with its location', HEAD 'should return a starting offset, metadata for the new file', PATCH 'should upload the file'", async () => {
    const finished: { size: number | undefined; filename: string | null | undefined }[] = [];
    const { request } = await e2e(manager(), { onUploadFinish: (file, upload) => void finished.push({ size: file.size, filename: upload.metadata?.['filename'] }) });
    const created = await request('POST', '/files', { 'Upload-Length': String(TEST_FILE_SIZE), 'Upload-Metadata': TEST_METADATA });
    expect(created.status).toBe(201);
    expect(created.headers.location).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/files\/[A-Za-z0-9_-]+$/);
    expect(created.headers['tus-resumable']).toBe('1.0.0');
    const where = `/files/${idOf(created)}`;
    const head = await request('HEAD', where);
    expect([head.status, head.headers['upload-metadata'], head.headers['upload-offset'], head.headers['upload-length'], head.headers['tus-resumable']]).toEqual([200, TEST_METADATA, '0', String(TEST_FILE_SIZE), '1.0.0']);
    const patched = await request('PATCH', where, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, TEST_FILE);
    expect([patched.status, patched.headers['tus-resumable'], patched.headers['upload-offset']]).toEqual([204, '1.0.0', String(TEST_FILE_SIZE)]);
    expect(finished).toEqual([{ size: TEST_FILE_SIZE, filename: 'world_domination_plan.pdf' }]);
  });

  it("HEAD 'should return the ending offset of the uploaded file' (a finished upload is told finished for a minute)", async () => {
    const { request } = await e2e(manager());
    const created = await request('POST', '/files', { 'Upload-Length': String(TEST_FILE_SIZE), 'Upload-Metadata': TEST_METADATA });
    const where = `/files/${idOf(created)}`;
    expect((await request('PATCH', where, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, TEST_FILE)).status).toBe(204);
    const head = await request('HEAD', where);
    expect([head.status, head.headers['upload-metadata'], head.headers['upload-offset'], head.headers['upload-length'], head.headers['tus-resumable']]).toEqual([200, TEST_METADATA, String(TEST_FILE_SIZE), String(TEST_FILE_SIZE), '1.0.0']);
  });

  it("POST 'should create a file and upload content' (creation-with-upload)", async () => {
    const finished: number[] = [];
    const { request } = await e2e(manager(), { onUploadFinish: (file) => void finished.push(fs.statSync(file.path).size) });
    const res = await request('POST', '/files', { 'Upload-Length': String(TEST_FILE_SIZE), 'Content-Type': 'application/offset+octet-stream' }, TEST_FILE);
    expect([res.status, res.headers['tus-resumable'], res.headers['upload-offset']]).toEqual([201, '1.0.0', String(TEST_FILE_SIZE)]);
    expect(finished).toEqual([TEST_FILE_SIZE]);
  });

  it("HEAD 'should return the defer length of the new deferred file': no deferred upload can be made (501 at its POST)", async () => {
    const { request } = await e2e(manager());
    expect((await request('POST', '/files', { 'Upload-Defer-Length': '1' })).status).toBe(501);
  });

  it("PATCH 'should 404 paths without a file id' and 'should 404 paths that do not exist'", async () => {
    const { request } = await e2e(manager());
    const headers = { 'Upload-Offset': '0', 'Upload-Length': String(TEST_FILE_SIZE), 'Content-Type': 'application/offset+octet-stream' };
    for (const where of ['/files/', '/files/dont_exist']) {
      const res = await request('PATCH', where, headers);
      expect([res.status, res.headers['tus-resumable']], where).toEqual([404, '1.0.0']);
    }
  });

  it("DELETE 'will allow terminating finished uploads': a finished upload went to onUploadFinish, nothing of it is the server's to terminate: a 404 (docs/migrating.md)", async () => {
    const { request } = await e2e(manager());
    const created = await request('POST', '/files', { 'Upload-Length': String(TEST_FILE_SIZE), 'Upload-Metadata': TEST_METADATA });
    const where = `/files/${idOf(created)}`;
    expect((await request('PATCH', where, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, TEST_FILE)).status).toBe(204);
    expect((await request('DELETE', where)).status).toBe(404);
  });

  it("DELETE 'will disallow terminating an upload if the upload is already completed' (disableTerminationForFinishedUploads); an unfinished one is terminated (204)", async () => {
    const mgr = manager();
    const { request } = await e2e(mgr, {}, { disableTerminationForFinishedUploads: true });
    const created = await request('POST', '/files', { 'Upload-Length': String(TEST_FILE_SIZE), 'Upload-Metadata': TEST_METADATA });
    const where = `/files/${idOf(created)}`;
    expect((await request('PATCH', where, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, TEST_FILE)).status).toBe(204);
    expect((await request('DELETE', where)).status).toBe(400);
    const other = await request('POST', '/files', { 'Upload-Length': '10' });
    expect((await request('DELETE', `/files/${idOf(other)}`)).status).toBe(204);
    expect((await request('HEAD', `/files/${idOf(other)}`)).status).toBe(404);
  });

  it("'FileStore with relativeLocation' POST 'should create a file and respond with its _relative_ location'", async () => {
    const { request } = await e2e(manager(), {}, { relativeLocation: true });
    const res = await request('POST', '/files', { 'Upload-Length': String(TEST_FILE_SIZE), 'Upload-Metadata': TEST_METADATA });
    expect(res.status).toBe(201);
    expect(res.headers.location).not.toContain('//');
    expect(res.headers.location).toContain('/files');
  });
});

describe("test/src/e2e.test.ts, 'FileStore with defined expirationPeriodInMilliseconds option' (1000 ms here, the shortest: docs/migrating.md)", () => {
  it("OPTIONS 'should respond with expiration in Tus-Extension header'", async () => {
    const { request } = await e2e(manager(), { expirationMs: 1000 });
    const res = await request('OPTIONS', '/files');
    expect(res.status).toBe(204);
    expect(String(res.headers['tus-extension']).split(',')).toContain('expiration');
  });

  it("POST 'should respond with Upload-Expires' and PATCH 'unfinished upload response contains header Upload-Expires'", async () => {
    const { request } = await e2e(manager(), { expirationMs: 1000 });
    const created = await request('POST', '/files', { 'Upload-Length': String(TEST_FILE_SIZE), 'Upload-Metadata': TEST_METADATA });
    expect(created.headers['upload-expires']).toBeDefined();
    const patched = await request('PATCH', `/files/${idOf(created)}`, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, Buffer.from('tus test'));
    expect([patched.status, patched.headers['tus-resumable'], patched.headers['upload-offset']]).toEqual([204, '1.0.0', '8']);
    expect(patched.headers['upload-expires']).toBeDefined();
  });

  it("PATCH 'expired upload responds with 410 Gone', 'HEAD request to expired upload returns 410 Gone', 'can delete expired files'", async () => {
    const { request, server } = await e2e(manager(), { expirationMs: 1000 });
    const created = await request('POST', '/files', { 'Upload-Length': String(TEST_FILE_SIZE), 'Upload-Metadata': TEST_METADATA });
    const where = `/files/${idOf(created)}`;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await request('PATCH', where, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, Buffer.from('tus test'))).status).toBe(410);
    expect((await request('HEAD', where)).status).toBe(410);
    expect(await server.datastore.deleteExpired()).toBeGreaterThanOrEqual(1);
  });
});

describe("test/src/e2e.test.ts, 'FileStore with MaxFileSize' (the Server's maxSize, 1 MiB)", () => {
  const MiB = 1024 * 1024;
  const body = Buffer.alloc(2 * MiB);
  const chunkSize = (2 * MiB) / 4;

  it("'should not allow creating an upload that exceed the max-file-size'", async () => {
    const { request } = await e2e(manager(), {}, { maxSize: MiB });
    expect((await request('POST', '/files', { 'Upload-Length': String(2 * MiB), 'Upload-Metadata': TEST_METADATA })).status).toBe(413);
  });

  it("'should not allow uploading with fixed length more than the defined MaxFileSize'", async () => {
    const { request } = await e2e(manager(), {}, { maxSize: MiB });
    const created = await request('POST', '/files', { 'Upload-Length': String(MiB), 'Upload-Metadata': TEST_METADATA });
    expect(created.status).toBe(201);
    const where = `/files/${idOf(created)}`;
    const patch = (offset: number) => request('PATCH', where, { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' }, body.subarray(offset, offset + chunkSize));
    const first = await patch(0);
    expect([first.status, first.headers['upload-offset']]).toEqual([204, String(chunkSize)]);
    const second = await patch(chunkSize);
    expect([second.status, second.headers['upload-offset']]).toEqual([204, String(MiB)]);
    // This one should fail since it exceeds the 1 MiB mark.
    const third = await patch(MiB);
    expect(third.status).toBe(413);
  });

  it("'should not allow uploading with fixed length more than the defined MaxFileSize using chunked encoding'", async () => {
    const { url } = await e2e(manager(), {}, { maxSize: MiB });
    const created = await tusRequest(url, 'POST', { 'Upload-Length': String(MiB), 'Upload-Metadata': TEST_METADATA });
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${url}/${idOf(created)}`, {
        method: 'PATCH',
        headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Transfer-Encoding': 'chunked' },
      }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.write(body.subarray(0, chunkSize));
      req.write(body.subarray(chunkSize, chunkSize * 2));
      req.write(body.subarray(chunkSize * 2, chunkSize * 3));
      req.end();
    });
    expect(answer).toEqual({ status: 413, body: 'Maximum size exceeded\n' });
  });

  it("'should not allow uploading with deferred length more than the defined MaxFileSize' (and its chunked form): no deferred upload is made (501)", async () => {
    const { request } = await e2e(manager(), {}, { maxSize: MiB });
    expect((await request('POST', '/files', { 'Upload-Defer-Length': '1', 'Upload-Metadata': TEST_METADATA })).status).toBe(501);
  });
});

describe("test/src/e2e.test.ts, 'File Store with Locking' (tusStore()'s locker in place of MemoryLocker)", () => {
  it("'will allow another request to acquire the lock by cancelling the previous request'", async () => {
    const finished: number[] = [];
    const { url, request } = await e2e(manager(), { onUploadFinish: (file) => void finished.push(fs.statSync(file.path).size) });
    const data = Buffer.alloc(TEST_FILE_SIZE, 'a');
    const created = await request('POST', '/files', { 'Upload-Length': String(TEST_FILE_SIZE), 'Upload-Metadata': TEST_METADATA });
    const where = `${url}/${idOf(created)}`;
    // A PATCH whose body comes slowly (the peer throttles the store's write to a quarter of the file
    // a second), so that it still runs when the server's lockDrainTimeout (3 s) ends it.
    const slow = new Promise<{ status: number; offset: string | undefined }>((resolve) => {
      const req = http.request(where, {
        method: 'PATCH',
        headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(data.length) },
        agent: false,
      }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, offset: res.headers['upload-offset'] as string | undefined }));
      });
      req.on('error', () => resolve({ status: 0, offset: undefined }));
      let at = 0;
      const step = 16 * 1024;
      const timer = setInterval(() => {
        if (req.destroyed || at >= data.length) {
          clearInterval(timer);
          return;
        }
        req.write(data.subarray(at, at + step));
        at += step;
      }, 70);
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const head = await tusRequest(where, 'HEAD', {});
    expect(head.status).toBe(200);
    const offset = Number(head.headers['upload-offset']);
    expect(offset).toBeLessThan(TEST_FILE_SIZE);
    const first = await slow;
    expect(first.offset).not.toBe(String(TEST_FILE_SIZE));
    // Resumed from the offset the HEAD gave: the upload finishes.
    const resumed = await tusRequest(where, 'PATCH', { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' }, data.subarray(offset));
    expect([resumed.status, resumed.headers['upload-offset']]).toEqual([204, String(TEST_FILE_SIZE)]);
    await until(() => finished.length === 1, 10_000);
    expect(finished).toEqual([TEST_FILE_SIZE]);
  });
});
