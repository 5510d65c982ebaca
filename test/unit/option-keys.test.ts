// The option names each entry point takes at run time are listed once, typed against its options'
// interface: a name the interface lacks does not compile (`satisfies`), and neither does an
// interface key left out of the list (`NoneLeftOut`, proven by option-keys-compile.test.ts). This
// file holds the run-time refusals to the lists.
import path from 'node:path';
import { expect, expectTypeOf, it } from 'vitest';
import { Readable } from 'node:stream';
import type { ClaimOptions } from '../../src/handoff/claim.js';
import type { HandoffOptions } from '../../src/handoff/handoff.js';
import type { TempReadStreamOptions, TempWriteStreamOptions } from '../../src/handles/file.js';
import type { SpoolOptions } from '../../src/handles/spool.js';
import type { WriteOptions } from '../../src/handles/write.js';
import type { KeepOptions } from '../../src/keep/move.js';
import type { StreamHandoffOptions } from '../../src/manager/stream-handoff.js';
import type { SweepOptions } from '../../src/sweep/sweep.js';
import { upload, type ExpressUploadOptions } from '../../src/adapters/express.js';
import type { UploadOptions } from '../../src/uploads/upload-options.js';
import { tempScopeFixture, type TestScopeOptions } from '../../src/testing/fixture.js';
import { tusStore, type TusStoreOptions } from '../../src/tus/tus-store.js';
import { s3Store, type S3StoreOptions } from '../../src/s3/store.js';
import { azureStore, type AzureStoreOptions } from '../../src/azure/store.js';
import {
  type ConfirmUploadOptions,
  type PresignMultipartOptions,
  type PresignUploadOptions,
} from '../../src/s3/intake.js';
import { TempFileManager, type TempFileManagerOptions } from '../../src/index.js';
import { manager, scratchDir } from '../helpers/roots.js';


// Each entry point's option names as this file expects them, in the order its refusal lists them:
// tsc holds each list to its interface below, and the run-time refusals to each list.
const WRITE = ['suffix', 'prefix', 'maxBytes', 'signal', 'onProgress', 'hash', 'accept', 'verify', 'verifyTimeoutMs'] as const;
const SPOOL = [...WRITE, 'maxMemory'] as const;
const READ_STREAM = ['start', 'end', 'highWaterMark', 'signal'] as const;
const WRITE_STREAM = ['append', 'highWaterMark', 'signal'] as const;
const SWEEP = ['dryRun', 'onProgress'] as const;
const KEEP = ['overwrite'] as const;
const CLAIM = ['verifyDigest'] as const;
const HANDOFF = ['ttlMs', 'meta', 'store'] as const;
const STREAM_HANDOFF = ['store', 'ttlMs', 'meta', 'maxBytes', 'accept', 'hash'] as const;
const MANAGER = ['root', 'prefix', 'staleMs', 'graceMs', 'sweepOnStart', 'sweepIntervalMs', 'exitHook', 'maxLiveBytes', 'minFreeBytes', 'hostId', 'stores'] as const;
const UPLOAD = [
  'field', 'array', 'maxCount', 'fields', 'maxBytes', 'maxFiles', 'maxFields', 'maxParts',
  'maxFieldNameBytes', 'maxFieldBytes', 'accept', 'detectType', 'hash', 'onProgress', 'verify', 'verifyTimeoutMs', 'drain', 'store', 'ttlMs',
] as const;
const EXPRESS_UPLOAD = ['manager', 'refusals'] as const;
const TEST_SCOPE = ['manager', 'root'] as const;
const TUS_STORE = ['manager', 'maxBytes', 'expirationMs', 'accept', 'verify', 'verifyTimeoutMs', 'onUploadFinish', 'lockTimeoutMs'] as const;
const S3_STORE = ['client', 'bucket', 'prefix', 'timeoutMs', 'partSize'] as const;
const AZURE_STORE = ['client', 'prefix', 'timeoutMs', 'blockSize'] as const;
const PRESIGN_MULTIPART = ['maxBytes', 'accept', 'contentType', 'ttlMs', 'meta', 'suffix'] as const;
const PRESIGN = [...PRESIGN_MULTIPART, 'method', 'size', 'checksumSha256'] as const;
const CONFIRM = ['ttlMs', 'verify', 'verifyTimeoutMs', 'signal'] as const;

it('lists every key of each options interface, and only those (checked by tsc)', () => {
  expectTypeOf<(typeof WRITE)[number]>().toEqualTypeOf<keyof WriteOptions>();
  expectTypeOf<(typeof SPOOL)[number]>().toEqualTypeOf<keyof SpoolOptions>();
  expectTypeOf<(typeof READ_STREAM)[number]>().toEqualTypeOf<keyof TempReadStreamOptions>();
  expectTypeOf<(typeof WRITE_STREAM)[number]>().toEqualTypeOf<keyof TempWriteStreamOptions>();
  expectTypeOf<(typeof SWEEP)[number]>().toEqualTypeOf<keyof SweepOptions>();
  expectTypeOf<(typeof KEEP)[number]>().toEqualTypeOf<keyof KeepOptions>();
  expectTypeOf<(typeof CLAIM)[number]>().toEqualTypeOf<keyof ClaimOptions>();
  expectTypeOf<(typeof HANDOFF)[number]>().toEqualTypeOf<keyof HandoffOptions>();
  expectTypeOf<(typeof STREAM_HANDOFF)[number]>().toEqualTypeOf<keyof StreamHandoffOptions>();
  expectTypeOf<(typeof MANAGER)[number]>().toEqualTypeOf<keyof TempFileManagerOptions>();
  expectTypeOf<(typeof UPLOAD)[number]>().toEqualTypeOf<keyof UploadOptions>();
  expectTypeOf<(typeof EXPRESS_UPLOAD)[number]>().toEqualTypeOf<Exclude<keyof ExpressUploadOptions, keyof UploadOptions>>();
  expectTypeOf<(typeof TEST_SCOPE)[number]>().toEqualTypeOf<keyof TestScopeOptions>();
  expectTypeOf<(typeof TUS_STORE)[number]>().toEqualTypeOf<keyof TusStoreOptions>();
  expectTypeOf<(typeof S3_STORE)[number]>().toEqualTypeOf<keyof S3StoreOptions>();
  expectTypeOf<(typeof AZURE_STORE)[number]>().toEqualTypeOf<keyof AzureStoreOptions>();
  expectTypeOf<(typeof PRESIGN)[number]>().toEqualTypeOf<keyof PresignUploadOptions>();
  expectTypeOf<(typeof PRESIGN_MULTIPART)[number]>().toEqualTypeOf<keyof PresignMultipartOptions>();
  expectTypeOf<(typeof CONFIRM)[number]>().toEqualTypeOf<keyof ConfirmUploadOptions>();
});

/** What `call` throws or rejects with (an Error saying it was not refused, when it is not). */
async function refusal(call: () => unknown): Promise<Error> {
  try {
    await call();
  } catch (err) {
    return err as Error;
  }
  return new Error('not refused');
}

/** Checks that `error` refuses `unknownOption` and names exactly `keys`, in their order, as the options. */
function expectRefusalNaming(error: Error, keys: readonly string[], call: string): void {
  expect(error, call).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'unknownOption' });
  expect(/The options are: (.*)\.$/.exec(error.message)?.[1], call).toBe(keys.map((key) => `\`${key}\``).join(', '));
}

it('the library\'s calls take at run time every option their types declare, and name them all when one is unknown', async () => {
  const mgr = manager();
  const unknown = { unknownOption: 1 } as never;
  const file = await mgr.write('x');
  const ticket = await (await mgr.write('y')).handoff({ ttlMs: 60_000 });
  const calls = [
    ['write()', WRITE, () => mgr.write('x', unknown)],
    ['spool()', SPOOL, () => mgr.spool('x', unknown)],
    ['createReadStream()', READ_STREAM, () => file.createReadStream(unknown)],
    ['createWriteStream()', WRITE_STREAM, () => file.createWriteStream(unknown)],
    ['sweep()', SWEEP, () => mgr.sweep(unknown)],
    ['keep()', KEEP, () => file.keep(path.join(scratchDir(), 'kept'), unknown)],
    ['claim()', CLAIM, () => mgr.claim(ticket, unknown)],
    ['handoff()', HANDOFF, () => file.handoff(unknown)],
    ['handoffStream()', STREAM_HANDOFF, () => mgr.handoffStream(Readable.from([]), unknown)],
    ['new TempFileManager()', MANAGER, () => new TempFileManager(unknown)],
    ['upload()', [...UPLOAD, ...EXPRESS_UPLOAD], () => upload(unknown)],
    ['tempScopeFixture()', TEST_SCOPE, () => tempScopeFixture(unknown)],
    ['tusStore()', TUS_STORE, () => tusStore(unknown)],
  ] as const;
  for (const [call, keys, make] of calls) expectRefusalNaming(await refusal(make), keys, call);
  await file.remove();
});

it('the stores and the presigned uploads take at run time every option their types declare, and name them all when one is unknown', async () => {
  const s3 = s3Store({ client: { send: () => {}, config: {} } as never, bucket: 'uploads' });
  const calls = [
    ['s3Store()', S3_STORE, () => s3Store({ unknownOption: 1 } as never)],
    ['azureStore()', AZURE_STORE, () => azureStore({ unknownOption: 1 } as never)],
    ['presignUpload()', PRESIGN, () => s3.presignUpload({ unknownOption: 1 } as never)],
    ['presignMultipart()', PRESIGN_MULTIPART, () => s3.presignMultipart({ unknownOption: 1 } as never)],
    ['confirmUpload()', CONFIRM, () => s3.confirmUpload('key', { unknownOption: 1 } as never)],
  ] as const;
  for (const [call, keys, make] of calls) expectRefusalNaming(await refusal(make), keys, call);
});
