// tempfile-manager/tus against a real @tus/server on a real HTTP port, with tus-js-client and
// raw requests: what a client can do to the store, from its side. The kill of a server mid-PATCH
// and two server processes on one root are test/process/tus-servers.test.ts.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { TempFile } from '../../src/index.js';
import { isTempFileError } from '../../src/index.js';
import { tusStore } from '../../src/tus/index.js';
import { fixture, runToEnd } from '../helpers/child.js';
import { manager, scratchDir } from '../helpers/roots.js';
import { itNeeds, MOUNTING } from '../helpers/privileges.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { png } from '../helpers/magic.js';
import { clientUpload, createUpload, openTusRequest, patchHeaders, tusRequest, tusServers, untilExpired, uploadDirOf } from '../helpers/tus.js';

const serve = tusServers();

/** Every name under `<root>/tus`, recursively (none when it was never made). */
function uploadsOnDisk(root: string): string[] {
  const dir = path.join(root, 'tus');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true }) as string[];
}

function idOf(url: string): string {
  return url.slice(url.lastIndexOf('/') + 1);
}

describe('tempfile-manager/tus', () => {
  it('a tus-js-client upload becomes a TempFile in onUploadFinish, with every byte; kept, nothing is left under the root', async () => {
    const mgr = manager();
    const dest = scratchDir();
    const data = randomBytes(300_000);
    const got: { size: number | undefined; mode: number; inSession: boolean; filename: string | null | undefined }[] = [];
    const { url } = await serve(mgr, {
      onUploadFinish: async (file: TempFile, upload) => {
        got.push({ size: file.size, mode: fs.statSync(file.path).mode & 0o777, inSession: file.path.startsWith(mgr.sessionPath), filename: upload.metadata?.['filename'] });
        await file.keep(path.join(dest, 'kept.bin'));
      },
    });
    await clientUpload(data, { endpoint: url, chunkSize: 64 * 1024, metadata: { filename: 'photo.bin', filetype: 'application/octet-stream' } });
    expect(got).toEqual([{ size: data.length, mode: 0o600, inSession: true, filename: 'photo.bin' }]);
    expect(fs.readFileSync(path.join(dest, 'kept.bin')).equals(data)).toBe(true);
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
    expect(mgr.stats().liveBytes).toBe(0);
  });

  it('an upload in progress is private: 0700 directories, a 0600 data file, whatever the umask', async () => {
    const mgr = manager();
    const { url } = await serve(mgr);
    const old = process.umask(0);
    try {
      const upload = await createUpload(url, 10);
      const dir = path.join(mgr.root, 'tus', `upload_${idOf(upload)}`);
      expect(fs.statSync(path.join(mgr.root, 'tus')).mode & 0o777).toBe(0o700);
      expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
      expect(fs.statSync(path.join(dir, 'data')).mode & 0o777).toBe(0o600);
      expect(fs.statSync(path.join(dir, 'info.json')).mode & 0o777).toBe(0o600);
    } finally {
      process.umask(old);
    }
  });

  it('the client connection cut mid-PATCH: the offset is the bytes on disk, and tus-js-client resumes to every byte right', async () => {
    const mgr = manager();
    const dest = scratchDir();
    const data = randomBytes(1_000_000);
    const { url } = await serve(mgr, { onUploadFinish: (file) => file.keep(path.join(dest, 'kept.bin')) });
    const upload = await createUpload(url, data.length);
    const { request, answer } = openTusRequest(upload, 'PATCH', patchHeaders(0, data.length));
    answer.catch(() => {});
    request.write(data.subarray(0, 400_000));
    const dataFile = () => fs.readdirSync(path.join(mgr.root, 'tus', `upload_${idOf(upload)}`)).find((n) => n !== 'info.json')!;
    await until(() => fs.statSync(path.join(mgr.root, 'tus', `upload_${idOf(upload)}`, dataFile())).size > 0);
    request.destroy();
    // The server sees the cut, ends the write and gives the upload back: then HEAD tells the offset.
    await until(async () => (await tusRequest(upload, 'HEAD', {})).status === 200 && dataFile() === 'data');
    const head = await tusRequest(upload, 'HEAD', {});
    const offset = Number(head.headers['upload-offset']);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(400_000);
    expect(fs.readFileSync(path.join(mgr.root, 'tus', `upload_${idOf(upload)}`, 'data')).equals(data.subarray(0, offset))).toBe(true);
    await clientUpload(data, { uploadUrl: upload });
    expect(fs.readFileSync(path.join(dest, 'kept.bin')).equals(data)).toBe(true);
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
  });

  describe('hostile metadata is refused with a 400 naming the key, and nothing is made', () => {
    const hostile: [string, Record<string, string>, RegExp][] = [
      ['a path in the file name', { filename: '../../etc/passwd' }, /filename holds a path separator/],
      ['a backslash path', { filename: '..\\..\\boot.ini' }, /filename holds a path separator/],
      ['a NUL in the file name', { filename: 'a.png\0.exe' }, /filename holds a control character/],
      ['CR LF in the type', { filetype: 'text/plain\r\nX-Injected: 1' }, /filetype holds a control character/],
      ['a type that is no media type', { filetype: 'text/html; script' }, /filetype is not a media type/],
      ['a name of dots', { name: '..' }, /name is "\.\.", not a file name/],
      ['an overlong file name', { filename: 'a'.repeat(256) }, /filename is longer than 255 bytes/],
      ['an overlong value', { note: 'x'.repeat(1025) }, /note is longer than 1024 bytes/],
    ];
    for (const [what, metadata, message] of hostile) {
      it(what, async () => {
        const mgr = manager();
        const { url } = await serve(mgr);
        const encoded = Object.entries(metadata).map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`).join(',');
        const answer = await tusRequest(url, 'POST', { 'Upload-Length': '10', 'Upload-Metadata': encoded });
        expect(answer.status).toBe(400);
        expect(answer.body).toMatch(message);
        expect(uploadsOnDisk(mgr.root)).toEqual([]);
      });
    }

    it("the refusal names the header as it is spelt: Upload-Metadata's filename", async () => {
      const mgr = manager();
      const { url } = await serve(mgr);
      const answer = await tusRequest(url, 'POST', { 'Upload-Length': '10', 'Upload-Metadata': `filename ${Buffer.from('a/b').toString('base64')}` });
      expect(answer.status).toBe(400);
      expect(answer.body).toContain("Upload-Metadata's filename holds a path separator");
    });

    it('so is the same through the store itself: a MalformedUploadError with its code and field', async () => {
      const mgr = manager();
      const { datastore } = await tusStore({ manager: mgr });
      const { Upload } = await import('@tus/server');
      const error = await datastore.create(new Upload({ id: 'a'.repeat(32), offset: 0, size: 1, metadata: { filename: 'x/y' } })).catch((e: unknown) => e);
      expect(isTempFileError(error)).toBe(true);
      expect(error).toMatchObject({ code: 'ERR_TEMPFILE_UPLOAD_MALFORMED', field: 'filename', statusCode: 400, status_code: 400 });
    });
  });

  describe('links planted under the root never lead a write outside it', () => {
    it('a symlink planted as the data file: the PATCH is refused and the file it points to is untouched', async () => {
      const mgr = manager();
      const outside = path.join(scratchDir(), 'victim');
      fs.writeFileSync(outside, 'precious');
      const { url } = await serve(mgr);
      const upload = await createUpload(url, 10);
      const dir = path.join(mgr.root, 'tus', `upload_${idOf(upload)}`);
      fs.rmSync(path.join(dir, 'data'));
      fs.symlinkSync(outside, path.join(dir, 'data'));
      const answer = await tusRequest(upload, 'PATCH', patchHeaders(0, 10), Buffer.from('0123456789'));
      expect(answer.status).toBeGreaterThanOrEqual(400);
      expect(fs.readFileSync(outside, 'utf8')).toBe('precious');
    });

    it("a symlink swapped in between the server's look and the write: the write opens nothing through it", async () => {
      const mgr = manager();
      const outside = path.join(scratchDir(), 'victim');
      fs.writeFileSync(outside, 'precious');
      const { datastore } = await tusStore({ manager: mgr });
      const { Upload } = await import('@tus/server');
      const id = 'b'.repeat(32);
      await datastore.create(new Upload({ id, offset: 0, size: 10 }));
      const dir = path.join(mgr.root, 'tus', `upload_${id}`);
      fs.rmSync(path.join(dir, 'data'));
      fs.symlinkSync(outside, path.join(dir, 'data'));
      // At the offset the planted target has, as if the server had looked at it.
      const error = await datastore.write(Readable.from([Buffer.from('!!')]), id, 8).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'ELOOP' });
      expect(fs.readFileSync(outside, 'utf8')).toBe('precious');
    });

    it('a hard link planted as the data file: refused as a file with two links, and the other name is untouched', async () => {
      const mgr = manager();
      const outside = path.join(mgr.root, 'victim');
      fs.writeFileSync(outside, 'precious');
      const { url } = await serve(mgr);
      const upload = await createUpload(url, 10);
      const dir = path.join(mgr.root, 'tus', `upload_${idOf(upload)}`);
      fs.rmSync(path.join(dir, 'data'));
      fs.linkSync(outside, path.join(dir, 'data'));
      // At the planted file's size, so that only the link check stands in the way.
      const answer = await tusRequest(upload, 'PATCH', patchHeaders(8, 2), Buffer.from('!!'));
      expect(answer.status).toBe(500);
      expect(fs.readFileSync(outside, 'utf8')).toBe('precious');
    });

    it("a hard link planted as the data file: HEAD refuses it as a write does, and never tells the other file's size", async () => {
      const mgr = manager();
      const outside = path.join(scratchDir(), 'victim');
      fs.writeFileSync(outside, 'a secret of 23 bytes...');
      const { url } = await serve(mgr);
      const upload = await createUpload(url, 100);
      const dir = path.join(mgr.root, 'tus', `upload_${idOf(upload)}`);
      fs.rmSync(path.join(dir, 'data'));
      try {
        fs.linkSync(outside, path.join(dir, 'data'));
      } catch {
        // Another file system than the root's: the same file's second name in the root instead.
        fs.writeFileSync(path.join(mgr.root, 'victim'), 'a secret of 23 bytes...');
        fs.linkSync(path.join(mgr.root, 'victim'), path.join(dir, 'data'));
      }
      const head = await tusRequest(upload, 'HEAD', {});
      expect(head.status).toBe(500);
      expect(head.headers['upload-offset']).toBeUndefined();
      const { datastore } = await tusStore({ manager: mgr });
      const error = await datastore.getUpload(idOf(upload)).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO', statusCode: 500 });
      expect(fs.readFileSync(outside, 'utf8')).toBe('a secret of 23 bytes...');
    });

    it('a symlink planted as <root>/tus: nothing is made through it', async () => {
      const mgr = manager();
      const elsewhere = scratchDir();
      fs.mkdirSync(mgr.root, { recursive: true });
      fs.symlinkSync(elsewhere, path.join(mgr.root, 'tus'));
      const { url } = await serve(mgr);
      const answer = await tusRequest(url, 'POST', { 'Upload-Length': '10' });
      expect(answer.status).toBe(500);
      expect(fs.readdirSync(elsewhere)).toEqual([]);
    });
  });

  it('an upload id that is a path is not found, and nothing outside the root is read', async () => {
    const mgr = manager();
    const { url } = await serve(mgr);
    for (const id of ['..%2F..%2Fetc', '%2E%2E', 'a%00b']) {
      const answer = await tusRequest(`${url}/${id}`, 'HEAD', {});
      expect(answer.status, id).toBe(404);
    }
  });

  it('maxBytes: an Upload-Length past it is a 413 naming the limit, and nothing is made', async () => {
    const mgr = manager();
    const { url } = await serve(mgr, { maxBytes: 1000 });
    const refused = await tusRequest(url, 'POST', { 'Upload-Length': '1001' });
    expect(refused.status).toBe(413);
    expect(refused.body).toMatch(/larger than 1000 bytes/);
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
  });

  it('a creation-with-upload POST whose body is refused (413 past maxBytes, no Location): nothing of it stays', async () => {
    const mgr = manager();
    const { url } = await serve(mgr, { maxBytes: 1000 });
    const headers = { 'Upload-Length': '1000', 'Content-Type': 'application/offset+octet-stream' };
    const longer = await tusRequest(url, 'POST', headers, randomBytes(1001));
    expect(longer.status).toBe(413);
    expect(longer.headers.location).toBeUndefined();
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
    // Without a declared body length, the bytes past the upload's length are refused as they come.
    const { request, answer } = openTusRequest(url, 'POST', { ...headers, 'Transfer-Encoding': 'chunked' });
    request.end(randomBytes(1500));
    const chunked = await answer;
    expect(chunked.status).toBe(413);
    expect(chunked.headers.location).toBeUndefined();
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
    expect(mgr.stats().liveBytes).toBe(0);
    // One within it is made and kept, to resume.
    const within = await tusRequest(url, 'POST', headers, randomBytes(400));
    expect(within.status).toBe(201);
    expect(within.headers['upload-offset']).toBe('400');
    expect(uploadsOnDisk(mgr.root).filter((name) => !name.includes('/'))).toEqual([`upload_${idOf(within.headers.location!)}`]);
  });

  it('an empty upload (Upload-Length: 0) finishes at creation: onUploadFinish gets a 0-byte file, and nothing stays under the root', async () => {
    const mgr = manager();
    const finished: (number | undefined)[] = [];
    const { url } = await serve(mgr, { onUploadFinish: (file: TempFile) => void finished.push(file.size) });
    const created = await tusRequest(url, 'POST', { 'Upload-Length': '0' });
    expect(created.status).toBe(201);
    expect(created.headers['upload-expires']).toBeUndefined();
    expect(finished).toEqual([0]);
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
    const head = await tusRequest(new URL(created.headers.location!, url).href, 'HEAD', {});
    expect(head.status).toBe(200);
    expect([head.headers['upload-offset'], head.headers['upload-length']]).toEqual(['0', '0']);
    // With an empty creation-with-upload body, and through tus-js-client.
    const withBody = await tusRequest(url, 'POST', { 'Upload-Length': '0', 'Content-Type': 'application/offset+octet-stream' }, Buffer.alloc(0));
    expect(withBody.status).toBe(201);
    expect(withBody.headers['upload-offset']).toBe('0');
    await clientUpload(Buffer.alloc(0), { endpoint: url });
    expect(finished).toEqual([0, 0, 0]);
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
  });

  it('an empty upload is checked as any other: accept refuses it (415) and verify sees it, and nothing stays', async () => {
    const mgr = manager();
    const finished: number[] = [];
    const refusing = await serve(mgr, { accept: ['image/png'], onUploadFinish: () => void finished.push(0) });
    const refused = await tusRequest(refusing.url, 'POST', { 'Upload-Length': '0' });
    expect(refused.status).toBe(415);
    expect(refused.headers.location).toBeUndefined();
    const checked: number[] = [];
    const verifying = await serve(mgr, { verify: (file: TempFile) => (checked.push(fs.statSync(file.path).size), false) });
    expect((await tusRequest(verifying.url, 'POST', { 'Upload-Length': '0' })).status).toBe(422);
    expect(checked).toEqual([0]);
    expect(finished).toEqual([]);
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
  });

  it('maxLiveBytes: a PATCH past the manager quota is a 507, and the offset stays within it', async () => {
    const mgr = manager({ maxLiveBytes: 100_000 });
    const { url } = await serve(mgr);
    const upload = await createUpload(url, 300_000);
    const answer = await tusRequest(upload, 'PATCH', patchHeaders(0, 300_000), randomBytes(300_000));
    expect(answer.status, JSON.stringify(answer.body)).toBe(507);
    const head = await tusRequest(upload, 'HEAD', {});
    expect(Number(head.headers['upload-offset'])).toBeLessThanOrEqual(100_000);
    expect(mgr.stats().liveBytes).toBeLessThanOrEqual(100_000);
  });

  itNeeds(MOUNTING)('a full disk under a PATCH is 507 (NoSpaceError), as write() answers it, and so is a create then; the quota counts only the bytes on disk, and the upload resumes once there is room', async () => {
    const disk = mountTmpfs(1);
    const mgr = manager({ root: path.join(disk, 'r'), maxLiveBytes: 64 * 1024 ** 2 });
    const { url } = await serve(mgr, { onUploadFinish: () => {} });
    const upload = await createUpload(url, 2 * 1024 ** 2);
    const content = randomBytes(2 * 1024 ** 2);
    const full = await tusRequest(upload, 'PATCH', patchHeaders(0, content.length), content);
    expect(full.status, full.body).toBe(507);
    expect(full.body).toBe('507 Insufficient Storage\n');
    const offset = Number((await tusRequest(upload, 'HEAD', {})).headers['upload-offset']);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThan(content.length);
    expect(mgr.stats().liveBytes, 'the bytes the disk refused are not counted').toBe(offset);
    const second = await tusRequest(url, 'POST', { 'Upload-Length': '1000' });
    expect(second.status, second.body).toBe(507);
    expect(fs.readdirSync(path.join(mgr.root, 'tus')), 'the refused create left nothing').toHaveLength(1);
    // Room again (the volume grown): the upload goes on from its offset.
    execFileSync('mount', ['-o', 'remount,size=4m', disk], { stdio: 'pipe' });
    const rest = await tusRequest(upload, 'PATCH', patchHeaders(offset, content.length - offset), content.subarray(offset));
    expect(rest.status, rest.body).toBe(204);
    expect(mgr.stats().liveBytes).toBe(0);
  });

  it('accept: a finished upload whose first bytes show another type is a 415, and nothing is kept', async () => {
    const mgr = manager();
    const finished: string[] = [];
    const { url } = await serve(mgr, { accept: ['image/png'], onUploadFinish: (file) => void finished.push(file.path) });
    const upload = await createUpload(url, 11);
    const answer = await tusRequest(upload, 'PATCH', patchHeaders(0, 11), Buffer.from('hello world'));
    expect(answer.status).toBe(415);
    expect(finished).toEqual([]);
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
  });

  it('accept: the type is judged from the whole upload\'s first bytes, though they came in PATCHes to two servers: a PNG whose first 5 bytes came alone is accepted', async () => {
    const mgr = manager();
    const finished: unknown[] = [];
    const onUploadFinish = (file: TempFile) => void finished.push([file.size, file.detectedType?.mime]);
    const first = await serve(mgr, { accept: ['image/png'], onUploadFinish });
    const second = await serve(mgr, { accept: ['image/png'], onUploadFinish });
    const data = png();
    const upload = await createUpload(first.url, data.length);
    expect((await tusRequest(upload, 'PATCH', patchHeaders(0, data.length), data.subarray(0, 5))).status).toBe(204);
    const rest = await tusRequest(`${second.url}/${idOf(upload)}`, 'PATCH', patchHeaders(5, data.length), data.subarray(5));
    expect(rest.status).toBe(204);
    expect(finished).toEqual([[data.length, 'image/png']]);
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
  });

  it('verify: a finished upload the hook refuses is a 422 with its reason and nothing is kept; one it accepts reaches onUploadFinish', async () => {
    const mgr = manager();
    const finished: string[] = [];
    const checked: string[] = [];
    const verify = (file: TempFile) => {
      const text = fs.readFileSync(file.path, 'utf8');
      checked.push(text);
      return text === 'clean' ? true : { reason: 'an infected test file' };
    };
    const { url } = await serve(mgr, { verify, onUploadFinish: (file) => void finished.push(fs.readFileSync(file.path, 'utf8')) });
    const refused = await tusRequest(await createUpload(url, 11), 'PATCH', patchHeaders(0, 11), Buffer.from('hello world'));
    expect(refused.status).toBe(422);
    expect(refused.body).toContain('an infected test file');
    const accepted = await tusRequest(await createUpload(url, 5), 'PATCH', patchHeaders(0, 5), Buffer.from('clean'));
    expect(accepted.status).toBe(204);
    expect(checked).toEqual(['hello world', 'clean']);
    expect(finished).toEqual(['clean']);
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
  });

  it('verify: a hook that throws or never answers is a 503, never an accept, and the file is removed', async () => {
    const mgr = manager();
    const finished: string[] = [];
    let calls = 0;
    const verify = () => (++calls === 1 ? Promise.reject(new Error('the scanner is down')) : new Promise<boolean>(() => {}));
    const { url } = await serve(mgr, { verify, verifyTimeoutMs: 200, onUploadFinish: (file) => void finished.push(file.path) });
    for (const bytes of ['thrown', 'timeout']) {
      const answer = await tusRequest(await createUpload(url, bytes.length), 'PATCH', patchHeaders(0, bytes.length), Buffer.from(bytes));
      expect(answer.status, bytes).toBe(503);
    }
    expect(finished).toEqual([]);
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
    await expect(tusStore({ manager: mgr, verifyTimeoutMs: 5 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'verifyTimeoutMs' });
    await expect(tusStore({ manager: mgr, verify: 'clamd' as never })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'verify' });
  });

  it('an abandoned upload is removed once its expiry has passed (410 after it), and not before', async () => {
    const mgr = manager();
    const long = await serve(mgr, { expirationMs: 3_600_000 });
    const kept = await createUpload(long.url, 10);
    await tusRequest(kept, 'PATCH', patchHeaders(0, 4), Buffer.from('abcd'));
    expect(await long.server.cleanUpExpiredUploads()).toBe(0);
    expect(uploadsOnDisk(mgr.root)).toContain(`upload_${idOf(kept)}`);

    const short = await serve(mgr, { expirationMs: 1000 });
    const abandoned = await createUpload(short.url, 10);
    const created = await tusRequest(abandoned, 'HEAD', {});
    expect(created.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await tusRequest(abandoned, 'PATCH', patchHeaders(0, 4), Buffer.from('abcd'))).status).toBe(410);
    // Each upload goes by the expiry recorded when it was made, whichever store removes it, as
    // the root's sweep judges it: the short store's, not the long store's one an hour away.
    expect(await short.server.cleanUpExpiredUploads()).toBe(1);
    const keptOnly = [`upload_${idOf(kept)}`, `upload_${idOf(kept)}/data`, `upload_${idOf(kept)}/info.json`];
    expect(uploadsOnDisk(mgr.root)).toEqual(keptOnly);
    await mgr.sweep();
    expect(uploadsOnDisk(mgr.root)).toEqual(keptOnly);
  });

  // The other way round from the test above: a store never waits for its own, longer expiry.
  it("a store with a longer expirationMs removes another's upload at the expiry that upload recorded, and leaves its own", async () => {
    const mgr = manager();
    const long = await serve(mgr, { expirationMs: 3_600_000 });
    const short = await serve(mgr, { expirationMs: 1000 });
    const kept = await createUpload(long.url, 10);
    const abandoned = await createUpload(short.url, 10);
    expect(await long.server.cleanUpExpiredUploads()).toBe(0);
    await untilExpired(uploadDirOf(mgr.root, abandoned));
    expect(await long.server.cleanUpExpiredUploads()).toBe(1);
    expect(fs.existsSync(uploadDirOf(mgr.root, abandoned))).toBe(false);
    expect(fs.readdirSync(uploadDirOf(mgr.root, kept)).sort()).toEqual(['data', 'info.json']);
  });

  it('an expired upload a live request still writes is left to it, and removed once given back', async () => {
    const mgr = manager();
    const { url, server } = await serve(mgr, { expirationMs: 1000 });
    const upload = await createUpload(url, 10);
    const dir = path.join(mgr.root, 'tus', `upload_${idOf(upload)}`);
    const { request, answer } = openTusRequest(upload, 'PATCH', patchHeaders(0, 4));
    await until(() => fs.readdirSync(dir).some((name) => name.startsWith('held_')), 'the PATCH holding the upload');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await server.cleanUpExpiredUploads()).toBe(0);
    expect(fs.readdirSync(dir).some((name) => name.startsWith('held_'))).toBe(true);
    request.end(Buffer.from('abcd'));
    expect((await answer).status).toBe(204);
    expect(await server.cleanUpExpiredUploads()).toBe(1);
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
  });

  it("the manager's sweep leaves the uploads alone and names <root>/tus as the library's, not as foreign", async () => {
    const mgr = manager();
    const { url } = await serve(mgr);
    const upload = await createUpload(url, 10);
    const report = await mgr.sweep();
    expect(report.foreign).toEqual([]);
    expect(uploadsOnDisk(mgr.root)).toContain(`upload_${idOf(upload)}`);
  });

  it('DELETE (termination) removes the upload', async () => {
    const mgr = manager();
    const { url } = await serve(mgr);
    const upload = await createUpload(url, 10);
    expect((await tusRequest(upload, 'DELETE', {})).status).toBe(204);
    expect(uploadsOnDisk(mgr.root)).toEqual([]);
    expect((await tusRequest(upload, 'HEAD', {})).status).toBe(404);
  });

  it('bad options are an InvalidOptionError naming the option and showing the value', async () => {
    const mgr = manager();
    await expect(tusStore({ manager: mgr, maxBytes: -1 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'maxBytes', message: expect.stringContaining('-1') });
    await expect(tusStore({ manager: mgr, expirationMs: 5 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'expirationMs' });
    await expect(tusStore({ manager: {} as never })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'manager' });
    await expect(tusStore({ manager: mgr, onUploadFinsh: () => {} } as never)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', message: expect.stringContaining('onUploadFinish') });
  });
});

it('a manager of the ESM build is refused by tempfile-manager/tus of the CommonJS build with what to do (both loaded in one process); one of its own build serves it', async () => {
  const { stdout } = await runToEnd(process.execPath, [fixture('tus-two-builds.mjs'), scratchDir()], { timeoutMs: 60_000, what: 'two builds' });
  expect(stdout).toMatch(/another copy's manager: ERR_TEMPFILE_INVALID_OPTION manager: .*both with import or both with require/);
  expect(stdout).toContain('missing upload: 404');
  expect(stdout).toContain('done');
});

async function until(check: () => boolean | Promise<boolean>, what = 'the condition'): Promise<void> {
  for (let round = 0; round < 2000; round++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${what} never held`);
}

it('a store used and dropped leaves the garbage collector nothing to close (an error from Node 26 on)', async () => {
  const { stdout } = await runToEnd(process.execPath, ['--expose-gc', fixture('tus-dropped-store.mjs'), scratchDir()], { timeoutMs: 60_000, what: 'a dropped tus store' });
  expect(stdout).not.toMatch(/garbage collection|warning:/);
  expect(stdout).toContain('done');
});
