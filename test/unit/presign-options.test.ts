// The presign's and the confirmation's options and receipts are checked before any request: each
// refusal names the option, shows the value and says what to do (no gateway needed: the client
// points at a port nothing listens on, and nothing may reach it).
import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { s3Store } from '../../src/s3/index.js';

const client = new S3Client({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 });
const store = s3Store({ client, bucket: 'uploads', prefix: 'app/', timeoutMs: 200 });

async function refusal(promise: Promise<unknown>): Promise<Error & { code?: string; option?: string; statusCode?: number; reason?: string }> {
  return promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (err: Error) => err,
  );
}

describe('presignUpload() options', () => {
  it.each([
    [{}, 'maxBytes', /needs `maxBytes`/],
    [{ maxBytes: 0 }, 'maxBytes', /`maxBytes` must be a whole number of bytes .*got 0/],
    [{ maxBytes: 6 * 1024 ** 3 }, 'maxBytes', /5 GiB, the most one CopyObject copies/],
    [{ maxBytes: 10, accept: ['png'] }, 'accept', /give MIME types, not file extensions/],
    [{ maxBytes: 10, contentType: 'not a type' }, 'contentType', /must be a MIME type such as 'image\/png', got "not a type"/],
    [{ maxBytes: 10, ttlMs: 10 }, 'ttlMs', /`ttlMs` must be a whole number of milliseconds from 1000 to 604800000.*got 10/],
    [{ maxBytes: 10, method: 'GET' }, 'method', /'POST' or 'PUT', got "GET"/],
    [{ maxBytes: 10, method: 'PUT' }, 'size', /a 'PUT' needs `size`/],
    [{ maxBytes: 10, method: 'PUT', size: 5, checksumSha256: 'abc' }, 'checksumSha256', /SHA-256 as base64 .*got "abc"/],
    [{ maxBytes: 10, suffix: '../x' }, undefined, /suffix/],
    [{ maxBytes: 10, bogus: 1 }, 'bogus', /bogus/],
  ] as const)('%o is refused, naming %s', async (options, option, message) => {
    const err = await refusal(store.presignUpload(options as never));
    expect(err.message).toMatch(message);
    if (option !== undefined) expect(err).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option });
  });

  it('a declared type accept does not list is a 415 at the presign; a PUT size over maxBytes a 413', async () => {
    expect(await refusal(store.presignUpload({ maxBytes: 10, accept: ['image/*'], contentType: 'application/pdf' }))).toMatchObject({ code: 'ERR_TEMPFILE_TYPE_NOT_ACCEPTED', statusCode: 415 });
    expect(await refusal(store.presignUpload({ maxBytes: 10, method: 'PUT', size: 11 }))).toMatchObject({ code: 'ERR_TEMPFILE_SIZE_LIMIT', statusCode: 413 });
  });
});

describe('confirmUpload() options and receipts', () => {
  const key = `app/.intake/${'a'.repeat(32)}.${Date.now() + 60_000}/upload`;
  it('needs ttlMs; refuses a bad verify', async () => {
    expect(await refusal(store.confirmUpload(key, undefined as never))).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'ttlMs' });
    expect((await refusal(store.confirmUpload(key, { ttlMs: 1000, verify: 'clamav' as never }))).message).toMatch(/`verify` must be a function/);
  });

  it.each([[null], [42], ['app/x'], [{ key: 'other/.intake/' + 'a'.repeat(32) + '.123/upload' }], [{ key: key.replace('upload', 'record') }], [{ key: `${key}\n` }], [{}]])('receipt %o is a 400 before any request', async (receipt) => {
    const err = await refusal(store.confirmUpload(receipt as never, { ttlMs: 1000 }));
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_BAD_RECEIPT', reason: 'malformed', statusCode: 400 });
    expect(err.message).toMatch(/^the receipt must be \{ key \}.*under "app\/\.intake\/" of bucket "uploads"/);
  });

  it.each([
    [{ key: 'garbage' }, /its key "garbage" is not under "app\/\.intake\/"/],
    [{ key: key.replace('upload', 'record') }, /its key "app\/\.intake\/a{32}\.\d+\/record" is not one a presign gives/],
    [{}, /got an object without `key`/],
    [{ key: 42 }, /its key is 42, not a string/],
    [{ key: 'x'.repeat(2000) }, /its key is 2000 characters long/],
    [null, /got null/],
  ])('receipt %o: the message says what is wrong with it', async (receipt, says) => {
    expect((await refusal(store.confirmUpload(receipt as never, { ttlMs: 1000 }))).message).toMatch(says);
  });
});
