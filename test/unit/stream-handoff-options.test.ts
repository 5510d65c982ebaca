// Bad options of a stream handed straight to a store are refused before anything is read or sent:
// an InvalidOptionError naming the option, showing the value and saying what is taken.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveUploadOptions } from '../../src/uploads/upload-options.js';
import { TempFileManager } from '../../src/index.js';
import { s3Store } from '../../src/s3/index.js';

// Never reached: every call below is refused before its first request.
const store = s3Store({ client: new S3Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }), bucket: 'uploads' });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-stream-options-'));
const mgr = new TempFileManager({ root: path.join(root, 'r'), sweepOnStart: false, exitHook: false });
afterAll(async () => {
  await mgr.close();
  fs.rmSync(root, { recursive: true, force: true });
});

const refusal = (option: string, says: RegExp) => ({ code: 'ERR_TEMPFILE_INVALID_OPTION', option, message: expect.stringMatching(says) as unknown });

describe('upload({ store, ttlMs })', () => {
  it('takes a store with its ttlMs', () => {
    expect(resolveUploadOptions({ field: 'file', store, ttlMs: 60_000 }, 'upload()').direct).toEqual({ store, ttlMs: 60_000 });
  });

  it('refuses a store without ttlMs, ttlMs without a store, a store that is not one, onProgress beside a store, and verify beside a store', () => {
    expect(() => resolveUploadOptions({ field: 'file', store }, 'upload()')).toThrow(expect.objectContaining(refusal('ttlMs', /ttlMs.*undefined/)));
    expect(() => resolveUploadOptions({ field: 'file', ttlMs: 60_000 }, 'upload()')).toThrow(expect.objectContaining(refusal('store', /upload\(\) needs `store`/)));
    expect(() => resolveUploadOptions({ field: 'file', store: { bucket: 'uploads' }, ttlMs: 60_000 }, 'upload()')).toThrow(expect.objectContaining(refusal('store', /s3Store\(\)/)));
    expect(() => resolveUploadOptions({ field: 'file', store, ttlMs: 60_000, onProgress: () => {} }, 'upload()')).toThrow(expect.objectContaining(refusal('onProgress', /leave it out/)));
    expect(() => resolveUploadOptions({ field: 'file', store, ttlMs: 60_000, verify: () => true }, 'upload()')).toThrow(expect.objectContaining(refusal('verify', /no file here/)));
  });
});

describe('mgr.handoffStream()', () => {
  it('refuses a source that is not a stream, a missing store, an unknown option and a bad limit, reading nothing', async () => {
    const source = Readable.from([Buffer.from('never read')]);
    await expect(mgr.handoffStream('text' as unknown as Readable, { store, ttlMs: 1000 })).rejects.toMatchObject(refusal('source', /readable stream.*"text"/));
    await expect(mgr.handoffStream(source, { ttlMs: 1000 } as never)).rejects.toMatchObject(refusal('store', /needs `store`/));
    await expect(mgr.handoffStream(source, { store, ttlMs: 1000, suffix: '.png' } as never)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'suffix' });
    await expect(mgr.handoffStream(source, { store, ttlMs: 1000, maxBytes: -1 })).rejects.toMatchObject(refusal('maxBytes', /-1/));
    await expect(mgr.handoffStream(source, { store, ttlMs: 1000, accept: ['png'] })).rejects.toMatchObject(refusal('accept', /MIME types/));
    expect(source.readableDidRead).toBe(false);
  });
});
