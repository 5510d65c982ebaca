// confirmUpload() reads the object through the intake: the meter holds what is read to the
// presign's maxBytes, whatever the store's HEAD said before (an object replaced between the two),
// and what it counted and hashed is what the ticket carries. A scripted store, since a gateway
// never answers a HEAD and a GET of one key with two sizes on cue; test/s3/presign.test.ts runs
// the same confirmation against Ceph RGW.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { StoreIntake } from '../../src/s3/intake.js';
import type { StoreIo } from '../../src/s3/io.js';
import { intakeKeys } from '../../src/s3/keys.js';

const PREFIX = 'app/';

/**
 * A store holding one presigned upload of `maxBytes`, whose HEAD reports `headSize` and whose read
 * gives `bytes`, the first 4200 (past the sniffer's window) in one chunk.
 */
function scriptedStore(bytes: Buffer, headSize: number, maxBytes: number) {
  const keys = intakeKeys(PREFIX, 'a'.repeat(32), Date.now() + 60_000);
  const record = { v: 1, state: 'open', maxBytes, accept: null, contentType: 'application/octet-stream', meta: null, checksumSha256: null, uploadId: null, suffix: '' };
  const deleted: string[] = [];
  const io = {
    getText: (key: string) => Promise.resolve(key === keys.record ? { text: JSON.stringify(record), etag: '"record"' } : undefined),
    head: () => Promise.resolve({ size: headSize, etag: '"object"', contentType: undefined }),
    put: () => Promise.resolve('"taken"'),
    copyAs: () => Promise.resolve('"object"'),
    getStream: () => Promise.resolve({ body: Readable.from([bytes.subarray(0, 4200), bytes.subarray(4200)]), metadata: {}, etag: '"object"' }),
    delete: (key: string) => Promise.resolve(void deleted.push(key)),
    failure: (err: unknown) => Promise.resolve(err),
  };
  const intake = new StoreIntake(io as unknown as StoreIo, { kind: 's3', bucket: 'uploads', prefix: PREFIX });
  return { intake, receipt: { key: keys.upload }, keys, deleted };
}

it('an object read past maxBytes is a 413 though its HEAD fit, and the copy, the upload and the record are removed', async () => {
  const { intake, receipt, keys, deleted } = scriptedStore(Buffer.alloc(5000, 1), 4500, 4500);
  await expect(intake.confirm(receipt, { ttlMs: 60_000 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_SIZE_LIMIT', statusCode: 413, limit: 4500 });
  expect(deleted).toEqual(expect.arrayContaining([keys.upload, keys.record]));
  expect(deleted.filter((key) => key.endsWith('/data'))).toHaveLength(1);
});

it('the ticket carries the size and the SHA-256 of the bytes the meter counted, not the HEAD\'s size', async () => {
  const bytes = Buffer.from('the bytes that were read, not the ones announced');
  const { intake, receipt } = scriptedStore(bytes, 7, 100);
  const ticket = await intake.confirm(receipt, { ttlMs: 60_000 });
  expect(ticket).toMatchObject({ size: bytes.length, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` });
});
