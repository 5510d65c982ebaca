import type { S3Client } from '@aws-sdk/client-s3';
import { InvalidOptionError } from '../base/errors.js';
import { describe } from '../base/names.js';
import { MAX_TIMER_MS, ownOptions, validateDuration, validateInteger, validateObject, type NoneLeftOut } from '../base/validators.js';
import { isValidPrefix, type HandoffStore, type StoreLocation, type StoreSweepReport } from '../base/stores.js';
import type { BackendClaim, ClaimPlace, HandOffRequest, HandoffSource, StoreBackend, StreamHandOffRequest, StreamHandoff } from '../handoff/backend.js';
import type { HandoffTicket } from '../handoff/ticket.js';
import { ObjectStoreEngine } from '../object-store/engine.js';
import { isValidBucket, parseS3Location, type S3Location } from './location.js';
import { StoreIo } from './io.js';
import { s3Leftover } from './keys.js';
import {
  StoreIntake,
  type ConfirmUploadOptions,
  type IntakePart,
  type PresignedMultipart,
  type PresignedPart,
  type PresignedUpload,
  type PresignMultipartOptions,
  type PresignUploadOptions,
  type UploadReceipt,
} from './intake.js';
type Readable = import('node:stream').Readable;

// The S3 store: a front over the object-store engine (object-store/engine.ts) with S3's requests
// (io.ts), its bucket's rules (location.ts) and what only S3 has: presigned uploads (intake.ts).

/** Options of {@link s3Store}. */
export interface S3StoreOptions {
  /**
   * Your `S3Client` (`@aws-sdk/client-s3`), with its credentials, region and endpoint: the store
   * never reads its credentials, and they never appear in tickets, logs or errors. For a gateway
   * such as Ceph RGW or MinIO: `forcePathStyle: true`, and `requestChecksumCalculation:
   * 'WHEN_REQUIRED'` so that a streamed upload needs no length up front (docs/s3.md).
   */
  readonly client: S3Client;
  /** The bucket (it must exist). */
  readonly bucket: string;
  /**
   * The key prefix of every object of the store: `''`, or segments each ending in `/`. Give each
   * application its own; a bucket lifecycle rule on it backs up the sweep (docs/s3.md).
   * @default 'tempfile-manager/'
   */
  readonly prefix?: string;
  /**
   * The longest any one request may take before the store is reported unreachable (a
   * {@link StoreError} naming the endpoint): a whole number of milliseconds from 100 to
   * 2^31 - 1. A handoff's upload is bounded per request (a small file's PutObject, each part of a
   * larger one's); a claim's download is bounded up to its answer's headers, then per wait for the
   * next bytes, so a download that keeps moving takes as long as its bytes take.
   * @default 30000
   */
  readonly timeoutMs?: number;
  /**
   * The part size of a multipart upload, in bytes (at least 5 MiB): memory used by an upload is
   * at most two parts.
   * @default 8 MiB
   */
  readonly partSize?: number;
}

/** Options of {@link S3Store.sweep}. */
export interface S3SweepOptions {
  /**
   * A lease seen unchanged this long on this process's clock is stale: its expired entry is
   * removed. A whole number of milliseconds from 2000 to 2^31 - 1.
   * @default 30000
   */
  readonly staleMs?: number;
}

/** The names of `s3Store()`'s options: every key of {@link S3StoreOptions} (`NoneLeftOut`). */
const S3_STORE_OPTION_KEYS = ['client', 'bucket', 'prefix', 'timeoutMs', 'partSize'] as const satisfies readonly (keyof S3StoreOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type S3StoreOptionsListed = NoneLeftOut<Exclude<keyof S3StoreOptions, (typeof S3_STORE_OPTION_KEYS)[number]>>;
const STORE_OPTIONS: ReadonlySet<string> = new Set<string>(S3_STORE_OPTION_KEYS);
const MIN_PART_SIZE = 5 * 1024 * 1024;
const DEFAULT_PREFIX = 'tempfile-manager/';

/**
 * An S3 bucket that handoffs go through, for workers that share no disk with the process that
 * hands a file off. Made by {@link s3Store}; give it to `file.handoff({ ttlMs, store })` and to
 * the claiming manager (`new TempFileManager({ stores: [store] })`).
 *
 * **Ownership:** the store owns the objects under its prefix that name an entry
 * (`<id>.<expiresAt>/data`, its copies and `lease`): a claim's consume deletes them, {@link S3Store.sweep}
 * removes what expired or was left over. It owns nothing else in the bucket, and not the client.
 *
 * **Security:** tickets name the bucket and the prefix, never a credential or an endpoint; a
 * claim checks the ticket against the one the store holds, and the downloaded bytes against its
 * digest (docs/s3.md).
 */
export class S3Store implements HandoffStore {
  /** Where its objects live; tickets made through it carry this. */
  readonly location: S3Location;
  readonly #engine: ObjectStoreEngine;
  readonly #intake: StoreIntake;

  /** @internal Made by {@link s3Store}. */
  constructor(io: StoreIo, location: S3Location) {
    this.location = location;
    this.#engine = new ObjectStoreEngine(io, location, s3Leftover);
    this.#intake = new StoreIntake(io, location);
  }

  /**
   * Presigns an upload from a browser straight to the bucket (docs/browser-uploads.md): a key under
   * the store's intake prefix (`<prefix>.intake/`), random and unguessable, and what the browser
   * needs to send its file there (a POST policy, or a PUT). Nothing it uploads is trusted: give
   * the key it sends back to {@link S3Store.confirmUpload}, which checks the object and makes its
   * ticket. An upload never confirmed goes with the sweep once the presign expired.
   *
   * **Security:** the presign binds one key, the size (a POST's `content-length-range`; a PUT's
   * signed length and `If-None-Match: *`) and the content type; it is signed with the client's
   * credentials, which are never read.
   *
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: a missing `maxBytes`, an
   * option out of range, a `'PUT'` without `size`.
   * @throws {@link SizeLimitError} `ERR_TEMPFILE_SIZE_LIMIT` (413): a PUT's `size` over `maxBytes`.
   * @throws {@link TypeNotAcceptedError} `ERR_TEMPFILE_TYPE_NOT_ACCEPTED` (415): `contentType` not in `accept`.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: the presign's record could not be written.
   * @throws {@link MissingPeerError} `ERR_TEMPFILE_MISSING_PEER`: `@aws-sdk/s3-presigned-post` (a
   * POST) or `@aws-sdk/s3-request-presigner` (a PUT) is not installed.
   */
  presignUpload(options: PresignUploadOptions): Promise<PresignedUpload> {
    return this.#intake.presign(options);
  }

  /**
   * Begins a multipart upload from a browser, for a file above one part (`@uppy/aws-s3`'s
   * `createMultipartUpload`): its key and upload id; then {@link S3Store.signPart} for each part,
   * {@link S3Store.completeMultipart}, and {@link S3Store.confirmUpload} as for any presigned upload.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`, {@link TypeNotAcceptedError}
   * `ERR_TEMPFILE_TYPE_NOT_ACCEPTED`, {@link StoreError} `ERR_TEMPFILE_STORE`: as {@link S3Store.presignUpload}.
   */
  presignMultipart(options: PresignMultipartOptions): Promise<PresignedMultipart> {
    return this.#intake.presignMultipart(options);
  }

  /**
   * Presigns one part of a multipart upload begun by {@link S3Store.presignMultipart}; of exactly
   * `size` bytes when given.
   * @throws {@link UploadReceiptError} `ERR_TEMPFILE_BAD_RECEIPT`: a key or upload id this store
   * did not begin (400), expired (410), being confirmed (409).
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `partNumber` not 1 to 10000, `size` not 1 to `maxBytes`.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: the store failed.
   */
  signPart(part: { key: string; uploadId: string; partNumber: number; size?: number }): Promise<PresignedPart> {
    return this.#intake.signPart(part);
  }

  /**
   * The parts uploaded so far of a multipart upload begun by {@link S3Store.presignMultipart}.
   * @throws {@link UploadReceiptError} `ERR_TEMPFILE_BAD_RECEIPT`, {@link StoreError} `ERR_TEMPFILE_STORE`: as {@link S3Store.signPart}.
   */
  listParts(upload: { key: string; uploadId: string }): Promise<IntakePart[]> {
    return this.#intake.listParts(upload);
  }

  /**
   * Completes a multipart upload begun by {@link S3Store.presignMultipart}, once the parts the
   * bucket holds fit its `maxBytes` (else it is aborted: 413). Confirm it then.
   * @throws {@link SizeLimitError} `ERR_TEMPFILE_SIZE_LIMIT` (413): the parts hold more than `maxBytes`; the upload was aborted.
   * @throws {@link UploadReceiptError} `ERR_TEMPFILE_BAD_RECEIPT`, {@link StoreError} `ERR_TEMPFILE_STORE`: as {@link S3Store.signPart}.
   */
  completeMultipart(upload: { key: string; uploadId: string; parts: readonly IntakePart[] }): Promise<{
    /** The receipt's key, to confirm. */
    key: string;
  }> {
    return this.#intake.complete(upload);
  }

  /**
   * Aborts a multipart upload begun by {@link S3Store.presignMultipart}: its parts and its record go.
   * @throws {@link UploadReceiptError} `ERR_TEMPFILE_BAD_RECEIPT`, {@link StoreError} `ERR_TEMPFILE_STORE`: as {@link S3Store.signPart}.
   */
  abortMultipart(upload: { key: string; uploadId: string }): Promise<void> {
    return this.#intake.abort(upload);
  }

  /**
   * Confirms a presigned upload (the key the browser sends back, never its size or type) and
   * makes it a handoff ticket, the same as `file.handoff({ ttlMs, store })` gives: a worker claims
   * it with `mgr.withClaim(ticket, ...)`. The object is copied into the ticket's entry first, and
   * that copy, which no presign can reach, is what is judged: its size against `maxBytes`, its
   * first bytes against `accept` and the declared type, `verify` over its bytes streamed from the
   * bucket, and its SHA-256 digest, which the worker's claim checks again. Every refusal removes
   * the object and throws an error whose `statusCode` the upload routes answer with; a second
   * confirmation of one upload is refused (409): one upload makes one ticket.
   *
   * @throws {@link UploadReceiptError} `ERR_TEMPFILE_BAD_RECEIPT`: a receipt this store's presign
   * did not make (400, nothing touched), one not uploaded yet or confirmed already (409), expired
   * (410), an empty object or a checksum that differs (422).
   * @throws {@link SizeLimitError} `ERR_TEMPFILE_SIZE_LIMIT` (413), {@link TypeNotAcceptedError}
   * `ERR_TEMPFILE_TYPE_NOT_ACCEPTED` (415), {@link VerifyRefusedError} `ERR_TEMPFILE_VERIFY_REFUSED`
   * (422), {@link VerifyFailedError} `ERR_TEMPFILE_VERIFY_FAILED` (503): refused and removed.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE` (503): the store failed, within `timeoutMs` for
   * each request; what was made is removed, or goes with the sweep.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: no `ttlMs`, or an option out of range.
   */
  confirmUpload(receipt: UploadReceipt, options: ConfirmUploadOptions): Promise<HandoffTicket> {
    return this.#intake.confirm(receipt, options);
  }

  /**
   * The bucket.
   * @throws Never. It reads the store's location.
   */
  get bucket(): string {
    return this.location.bucket;
  }

  /**
   * The key prefix of every object of the store.
   * @throws Never. It reads the store's location.
   */
  get prefix(): string {
    return this.location.prefix;
  }

  /** Checks a ticket's location as this kind of store's (its bucket's rules). @internal */
  parseLocation(location: StoreLocation): StoreLocation {
    return parseS3Location(location);
  }

  /** Uploads a file and makes its ticket. @internal */
  handOff(source: HandoffSource, request: HandOffRequest): Promise<HandoffTicket> {
    return this.#engine.handOff(source, request);
  }

  /** Uploads a stream with no local file and makes its ticket. @internal */
  handOffStream(source: Readable, request: StreamHandOffRequest): Promise<StreamHandoff> {
    return this.#engine.handOffStream(source, request);
  }

  /** Claims a ticket of this store: the lease, and the bytes into a local temp file. @internal */
  claim(ticket: HandoffTicket, place: ClaimPlace): Promise<BackendClaim> {
    return this.#engine.claim(ticket, place);
  }

  /**
   * Removes what expired or was left over under the prefix: entries whose ticket expired
   * unclaimed (or whose holder's lease is stale), consumed entries' leases (and any object their
   * consume could not delete), data whose handoff failed after its upload (once its expiry
   * passed), copies left by claimers that lost a takeover, incomplete multipart uploads of
   * expired entries, probes of the store a crashed process left (an hour after), and presigned
   * uploads never confirmed (their objects, records and multipart uploads, once the presign
   * expired). An expired
   * entry a live claimer holds is left. Before an entry is removed the sweep takes its lease (a
   * conditional write, as a claim takes it), so
   * a claimer racing it gets the entry or a {@link HandoffNotFoundError}, never half of it. An
   * entry's lease is deleted 2 s after its data, so that a claim that read the data ahead of its
   * lease can tell that no consume came between: a sweep that removes entries lasts 2 s or more.
   *
   * **Ownership:** it removes only keys of the library's form under the prefix; other keys are
   * counted in `foreign` and never touched. A bucket lifecycle rule backs it up (docs/s3.md).
   *
   * **Security:** it lists and deletes through the caller's client only; the report and its
   * errors carry keys, never a credential.
   *
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `options` is not
   * `{ staleMs? }` or `staleMs` is out of range.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: the bucket could not be listed (unreachable,
   * credentials refused, no such bucket); a key that could not be deleted is reported in
   * `errors` instead.
   */
  sweep(options?: S3SweepOptions): Promise<StoreSweepReport> {
    return this.#engine.sweep(options);
  }
}

/**
 * Makes a store of an S3 bucket for handoffs between hosts that share no disk: pass it to
 * `file.handoff({ ttlMs, store })`, and to the claiming manager's `stores` option. The AWS SDK
 * v3 (`@aws-sdk/client-s3` and `@aws-sdk/lib-storage`, optional peers) is loaded on the first
 * request, never by the core.
 *
 * **Ownership:** the store owns the objects of its entries under the prefix (see
 * {@link S3Store}); the client stays the caller's (the store never destroys it).
 *
 * **Security:** the client's credentials are never read, logged nor put in a ticket or an error.
 *
 * @example
 * import { S3Client } from '@aws-sdk/client-s3';
 * import { s3Store } from 'tempfile-manager/s3';
 * const store = s3Store({ client: new S3Client({ region: 'eu-west-1' }), bucket: 'uploads' });
 * const ticket = await upload.handoff({ ttlMs: 3_600_000, store });
 * // on a worker host:
 * const mgr = new TempFileManager({ stores: [store] });
 * await mgr.withClaim(ticket, (claimed) => transcode(claimed.path));
 *
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: an unknown option, a `client`
 * that is not an S3Client, a `bucket` that is not a valid bucket name, a `prefix` that is not
 * `''` or segments ending in `/`, a `timeoutMs` or `partSize` out of range.
 * @throws {@link MissingPeerError} `ERR_TEMPFILE_MISSING_PEER`: never here; the first handoff,
 * claim or sweep rejects with it when `@aws-sdk/client-s3` or `@aws-sdk/lib-storage` is not
 * installed.
 */
export function s3Store(options: S3StoreOptions): S3Store {
  validateObject(options, 's3Store()', STORE_OPTIONS, "{ client, bucket: 'uploads' }");
  if (options === undefined) throw new InvalidOptionError('client', "s3Store() needs { client, bucket }: your S3Client and the bucket's name.");
  const own = ownOptions(options);
  const client: unknown = own.client;
  if (typeof client !== 'object' || client === null || typeof (client as { send?: unknown }).send !== 'function' || typeof (client as { config?: unknown }).config !== 'object') {
    throw new InvalidOptionError('client', `s3Store(): \`client\` must be an S3Client of @aws-sdk/client-s3, got ${describe(client)}.`);
  }
  const bucket: unknown = own.bucket;
  if (typeof bucket !== 'string' || !isValidBucket(bucket)) {
    throw new InvalidOptionError('bucket', `s3Store(): \`bucket\` must be a bucket name (3 to 63 lower-case letters, digits, dots and dashes), got ${describe(bucket)}.`);
  }
  const prefix: unknown = own.prefix ?? DEFAULT_PREFIX;
  if (typeof prefix !== 'string' || !isValidPrefix(prefix)) {
    throw new InvalidOptionError(
      'prefix',
      `s3Store(): \`prefix\` must be '' or path segments each ending in '/' (letters, digits and !_.*'()-), such as 'uploads/tmp/', got ${describe(prefix)}.`,
    );
  }
  const timeoutMs = own.timeoutMs === undefined ? 30_000 : validateDuration(own.timeoutMs, 'timeoutMs', { min: 100, max: MAX_TIMER_MS }, { where: 's3Store()' });
  const partSize =
    own.partSize === undefined ? 8 * 1024 * 1024 : validateInteger(own.partSize, 'partSize', { where: 's3Store()', min: MIN_PART_SIZE, unit: 'bytes', note: '(5 MiB)' });
  const io = new StoreIo(client as S3Client, bucket, prefix, timeoutMs, partSize);
  const store = new S3Store(io, { kind: 's3', bucket, prefix });
  store satisfies StoreBackend; // the contract the core calls (src/handoff/backend.ts), checked here
  return store;
}
