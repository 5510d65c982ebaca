import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { HandoffMismatchError, HandoffNotFoundError, InvalidOptionError, isErrorCode, isTempFileError, ManagerClosedError, TempFileError } from '../base/errors.js';
import { handoffKey } from '../base/channels.js';
import { logger } from '../base/log.js';
import { describe } from '../base/names.js';
import { randomName } from '../base/random-name.js';
import { MAX_TIMER_MS, ownOptions, validateDuration, validateInteger, validateObject, type NoneLeftOut } from '../base/validators.js';
import { isValidPrefix, type HandoffStore, type StoreLocation, type StoreSweepReport } from '../base/stores.js';
import { isValidBucket, parseS3Location, type S3Location } from './location.js';
import type { BackendClaim, ClaimPlace, HandoffSource, LocalFile, StoreBackend, StreamHandOffRequest, StreamHandoff } from '../handoff/backend.js';
import type { HandoffMeta, HandoffTicket } from '../handoff/ticket.js';
import { isConditionFailed, isNotFound, StoreIo, type ListedObject, type ObjectIo } from './io.js';
import { entryKeys, parseIntakeKey, parseKey, parseProbeKey, type EntryKeys } from './keys.js';
import { FETCH_AHEAD_MAX_BYTES, fetchAheadWindow, LEASE_REMOVAL_DELAY_MS } from './fetch-ahead.js';
import { leaseStale, parseLease, StoreLease } from './lease.js';
import { removeData, S3Claim } from './claim.js';
import { handOffStream, uploaderDead } from './direct.js';
import { bindsTicket, META_TICKET, ticketBinding } from './binding.js';
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
import { builtin } from '../base/builtin.js';
const { createHash } = builtin('node:crypto');
const { pipeline } = builtin('node:stream/promises');
const { PassThrough, Transform } = builtin('node:stream');

const log = logger('s3');

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

/** The names of `s3Store()`'s options: every key of {@link S3StoreOptions} (`NoneLeftOut`). @internal */
export const S3_STORE_OPTION_KEYS = ['client', 'bucket', 'prefix', 'timeoutMs', 'partSize'] as const satisfies readonly (keyof S3StoreOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type S3StoreOptionsListed = NoneLeftOut<Exclude<keyof S3StoreOptions, (typeof S3_STORE_OPTION_KEYS)[number]>>;
const STORE_OPTIONS: ReadonlySet<string> = new Set<string>(S3_STORE_OPTION_KEYS);
const MIN_PART_SIZE = 5 * 1024 * 1024;
const DEFAULT_PREFIX = 'tempfile-manager/';

// A file of at most this many bytes (its size known from write()) is uploaded in one PutObject from
// memory; a larger one, or one of unknown size, streams through lib-storage's Upload.
const SMALL_FILE_BYTES = 8 * 1024 * 1024;

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
  private readonly io: ObjectIo;
  private readonly intakeOfStore: StoreIntake | undefined;

  /** @internal `intake`: the presigned uploads, which only an S3 bucket's own requests make. */
  constructor(io: ObjectIo, location: S3Location, intake?: StoreIntake) {
    this.io = io;
    this.location = location;
    this.intakeOfStore = intake;
  }

  private get intake(): StoreIntake {
    if (!this.intakeOfStore) throw new InvalidOptionError('store', 'Presigned uploads need a store made by s3Store(): this object-store engine has no S3 client to sign with.');
    return this.intakeOfStore;
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
    return this.intake.presign(options);
  }

  /**
   * Begins a multipart upload from a browser, for a file above one part (`@uppy/aws-s3`'s
   * `createMultipartUpload`): its key and upload id; then {@link S3Store.signPart} for each part,
   * {@link S3Store.completeMultipart}, and {@link S3Store.confirmUpload} as for any presigned upload.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`, {@link TypeNotAcceptedError}
   * `ERR_TEMPFILE_TYPE_NOT_ACCEPTED`, {@link StoreError} `ERR_TEMPFILE_STORE`: as {@link S3Store.presignUpload}.
   */
  presignMultipart(options: PresignMultipartOptions): Promise<PresignedMultipart> {
    return this.intake.presignMultipart(options);
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
    return this.intake.signPart(part);
  }

  /**
   * The parts uploaded so far of a multipart upload begun by {@link S3Store.presignMultipart}.
   * @throws {@link UploadReceiptError} `ERR_TEMPFILE_BAD_RECEIPT`, {@link StoreError} `ERR_TEMPFILE_STORE`: as {@link S3Store.signPart}.
   */
  listParts(upload: { key: string; uploadId: string }): Promise<IntakePart[]> {
    return this.intake.listParts(upload);
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
    return this.intake.complete(upload);
  }

  /**
   * Aborts a multipart upload begun by {@link S3Store.presignMultipart}: its parts and its record go.
   * @throws {@link UploadReceiptError} `ERR_TEMPFILE_BAD_RECEIPT`, {@link StoreError} `ERR_TEMPFILE_STORE`: as {@link S3Store.signPart}.
   */
  abortMultipart(upload: { key: string; uploadId: string }): Promise<void> {
    return this.intake.abort(upload);
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
    return this.intake.confirm(receipt, options);
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
  async handOff(source: HandoffSource, options: { ttlMs: number; meta: HandoffMeta | undefined }): Promise<HandoffTicket> {
    const id = randomName();
    const createdAt = Date.now();
    const expiresAt = createdAt + options.ttlMs;
    const keys = entryKeys(this.location.prefix, id, expiresAt);
    const bound = { v: 1, id, suffix: source.suffix, createdAt, expiresAt, meta: options.meta, store: this.location } as const;
    const algorithm = source.digest ? source.digest.slice(0, source.digest.indexOf(':')) : 'sha256';
    const metadata = { [META_TICKET]: ticketBinding(bound, this.location, algorithm) };
    try {
      // The data object is the commit: an upload makes it whole, or not at all.
      const { size, digest } =
        source.size !== undefined && source.size <= SMALL_FILE_BYTES && !this.io.streamsKnownSize
          ? await this.uploadSmall(id, keys.data, source, algorithm, metadata)
          : await this.uploadStream(keys.data, source, algorithm, metadata);
      if (source.digest !== undefined && digest !== source.digest) throw new HandoffMismatchError(id, `the file changed while it was uploaded: its digest is not write()'s`);
      if (source.size !== undefined && size !== source.size) throw new HandoffMismatchError(id, `the file changed while it was uploaded: ${size} bytes, write() wrote ${source.size}`);
      log('handed off %s as %s', source.path, keys.entry);
      await source.discard(); // the bytes are in the store: the local file goes (never rejects)
      return { ...bound, size, digest };
    } catch (err) {
      await this.io.delete(keys.data).catch(() => {}); // else the sweep removes it once expired
      throw await this.io.failure(err, `hand off ${source.path}`);
    }
  }

  /** Uploads a stream with no local file (direct.ts) and makes its ticket. @internal */
  async handOffStream(source: Readable, request: StreamHandOffRequest): Promise<StreamHandoff> {
    const bind = (id: string, suffix: string, createdAt: number, expiresAt: number) => {
      const bound = { v: 1, id, suffix, createdAt, expiresAt, meta: request.meta, store: this.location } as const;
      return { bound, metadata: { [META_TICKET]: ticketBinding(bound, this.location, request.hash ?? 'sha256') } };
    };
    try {
      return await handOffStream(this.io, this.location, source, request, bind);
    } catch (err) {
      throw await this.io.failure(err, 'hand off a stream');
    }
  }

  // A small file is read whole and sent in one PutObject: no multipart machinery, and no more
  // memory than one part of a large upload.
  private async uploadSmall(id: string, key: string, source: HandoffSource, algorithm: string, metadata: Record<string, string>): Promise<{ size: number; digest: string }> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of source.open()) {
      const bytes = chunk as Buffer;
      size += bytes.length;
      if (size > SMALL_FILE_BYTES) throw new HandoffMismatchError(id, `the file grew past ${SMALL_FILE_BYTES} bytes while it was read`);
      chunks.push(bytes);
    }
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
    const hex = createHash(algorithm).update(body).digest('hex');
    await this.io.putBytes(key, body, metadata, algorithm === 'sha256' ? hex : undefined);
    return { size, digest: `${algorithm}:${hex}` };
  }

  private async uploadStream(key: string, source: HandoffSource, algorithm: string, metadata: Record<string, string>): Promise<{ size: number; digest: string }> {
    const hash = createHash(algorithm);
    let size = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    const body = new PassThrough();
    const reading = pipeline(source.open(), counted, body);
    try {
      await Promise.all([this.io.upload(key, body, metadata, source.size), reading]);
    } catch (err) {
      body.destroy();
      throw err;
    }
    return { size, digest: `${algorithm}:${hash.digest('hex')}` };
  }

  /** Claims a ticket of this store: the lease, and the bytes into a local temp file. @internal */
  async claim(ticket: HandoffTicket, place: ClaimPlace): Promise<BackendClaim> {
    const keys = entryKeys(this.location.prefix, ticket.id, ticket.expiresAt);
    const action = `claim the handoff ${handoffKey(ticket.id)}`; // its id is the ticket's bearer secret: never in a message
    const ahead = ticket.size <= FETCH_AHEAD_MAX_BYTES ? this.fetchAhead(keys.data, ticket, place) : undefined;
    let lease: StoreLease;
    try {
      lease = await StoreLease.take(this.io, keys, ticket.id, place);
    } catch (err) {
      await ahead?.drop();
      throw await this.io.failure(err, action);
    }
    lease.startHeartbeat();
    // The bytes fetched ahead are kept only under the rules of fetch-ahead.ts; else fetched again.
    const keepAhead = ahead !== undefined && lease.created && ahead.window.within();
    let local: LocalFile;
    try {
      if (keepAhead) local = await ahead.result;
      else {
        await ahead?.drop();
        local = await this.fetch(lease.dataKey, ticket, place);
      }
    } catch (err) {
      lease.stop();
      // Its data gone: consumed, or swept. The lease says so, written under our own ETag (a lease
      // is never deleted but by the sweep, fetch-ahead.ts), and stays as a tombstone.
      await lease.write(isErrorCode(err, 'ERR_TEMPFILE_HANDOFF_NOT_FOUND') ? 'swept' : 'released').catch(() => {}); // else it goes stale
      throw await this.io.failure(err, action);
    }
    const claim = new S3Claim(this.io, keys, lease, local);
    if (place.closed()) {
      // Closed while the claim was under way: its local copy went with the scope. The entry is
      // given back at once rather than held for nobody until it goes stale.
      await claim.release().catch(() => {});
      throw new ManagerClosedError();
    }
    return claim;
  }

  // The fetch of a small file started with the lease's creation: its result, the window it was
  // sent in, and `drop()`, which stops it and removes what it wrote.
  private fetchAhead(key: string, ticket: HandoffTicket, place: ClaimPlace): { result: Promise<LocalFile>; window: { within(): boolean }; drop(): Promise<void> } {
    const window = fetchAheadWindow();
    const stop = new AbortController();
    const result = this.fetch(key, ticket, place, stop.signal);
    result.catch(() => {}); // an answer that comes before the lease is read after it
    const drop = async (): Promise<void> => {
      stop.abort();
      const local = await result.catch(() => undefined);
      await local?.remove().catch(() => {});
    };
    return { result, window, drop };
  }

  // Streams the data into a local temp file with the claimer's write(): constant memory, its limits
  // held, no partial file left; the ticket checked against the object's metadata before a byte is
  // written, the size capped at the ticket's and the digest checked after.
  private async fetch(key: string, ticket: HandoffTicket, place: ClaimPlace, signal?: AbortSignal): Promise<LocalFile> {
    let got: { body: Readable; metadata: Record<string, string> };
    try {
      got = await this.io.getStream(key);
    } catch (err) {
      if (isNotFound(err)) throw new HandoffNotFoundError(ticket.id);
      throw err;
    }
    if (signal?.aborted || !bindsTicket(got.metadata[META_TICKET], ticket, this.location)) {
      got.body.destroy();
      if (signal?.aborted) throw new HandoffNotFoundError(ticket.id); // dropped: nobody reads it
      throw new HandoffMismatchError(ticket.id, 'the ticket differs from the one the store holds');
    }
    signal?.addEventListener('abort', () => got.body.destroy(), { once: true });
    return this.download(got.body, ticket, place);
  }

  private async download(body: Readable, ticket: HandoffTicket, place: ClaimPlace): Promise<LocalFile> {
    const digest = ticket.digest ?? '';
    const hash = digest.slice(0, digest.indexOf(':')) || 'sha256';
    // The store's answer broken off (no bytes for timeoutMs, io.ts; a connection reset) is the
    // store's failure, not the data's nor a client gone: claim() types it as any request's,
    // without the SDK's error, which may quote the request. (The claimer's own refusals are typed.)
    let broken: unknown;
    body.once('error', (err: unknown) => {
      if (!isTempFileError(err)) broken = err;
    });
    let local: LocalFile;
    try {
      local = await place.download(body, { suffix: ticket.suffix, maxBytes: ticket.size, hash });
    } catch (err) {
      if (isErrorCode(err, 'ERR_TEMPFILE_SIZE_LIMIT')) throw new HandoffMismatchError(ticket.id, `more bytes arrived than the ticket's ${ticket.size}`);
      throw broken ?? err;
    }
    const why =
      local.size !== ticket.size ? `${local.size ?? 0} bytes arrived, the ticket says ${ticket.size}` : local.digest !== digest ? 'the digest of the bytes that arrived differs' : undefined;
    if (why !== undefined) {
      await local.remove().catch(() => {});
      throw new HandoffMismatchError(ticket.id, why);
    }
    return local;
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
  async sweep(options?: S3SweepOptions): Promise<StoreSweepReport> {
    validateObject(options, 'sweep()', SWEEP_OPTIONS, '{ staleMs: 30_000 }');
    const own = ownOptions(options as S3SweepOptions | undefined);
    const staleMs = own.staleMs === undefined ? 30_000 : validateDuration(own.staleMs, 'staleMs', { min: 2000, max: MAX_TIMER_MS }, { where: 'sweep()' });
    const rules = { staleMs, hostId: 'sweep' };
    const { prefix } = this.location;
    const entries = new Map<string, ListedEntry>();
    const leftovers: ListedObject[] = [];
    const uploaders: (ListedObject & { expired: boolean })[] = [];
    let foreign = 0;
    try {
      for await (const page of this.io.list(prefix)) {
        for (const object of page) {
          const parsed = parseKey(prefix, object.key);
          if (!parsed) {
            const leftover = parseProbeKey(prefix, object.key) ?? parseIntakeKey(prefix, object.key)?.expiresAt;
            if (leftover === undefined) foreign++;
            else if (leftover <= Date.now()) leftovers.push(object);
            continue;
          }
          if (parsed.part === 'uploading') {
            uploaders.push({ ...object, expired: parsed.expiresAt <= Date.now() });
            continue;
          }
          const name = `${parsed.id}.${parsed.expiresAt}`;
          let entry = entries.get(name);
          if (!entry) entries.set(name, (entry = { id: parsed.id, expiresAt: parsed.expiresAt, data: [], hasLease: false, bytes: 0 }));
          if (parsed.part === 'lease') entry.hasLease = true;
          else entry.data.push(object.key);
          entry.bytes += object.size;
        }
      }
    } catch (err) {
      throw await this.io.failure(err, `list the bucket under "${prefix}" for the sweep`);
    }
    let removed = 0;
    let objects = 0;
    let bytes = 0;
    let held = 0;
    const errors: { key: string; error: TempFileError }[] = [];
    const now = Date.now();
    const tombstones: { keys: EntryKeys; entry: ListedEntry; goneAt: number }[] = [];
    const sweepEntry = async (entry: ListedEntry): Promise<void> => {
      const keys = entryKeys(prefix, entry.id, entry.expiresAt);
      try {
        const verdict = await this.takeForSweep(keys, entry.expiresAt <= now, entry.hasLease, rules);
        if (verdict === 'held') held++;
        if (verdict === 'take' && (await removeData(this.io, entry.data))) tombstones.push({ keys, entry, goneAt: performance.now() });
      } catch (err) {
        errors.push({ key: keys.entry, error: await this.io.failure(err, `sweep ${keys.entry}`) });
      }
    };
    // A few entries at a time: each is a read of its lease and a delete or two, round trips that
    // overlap well (consumed entries' leases, left by consume(), are most of them).
    await eachAtOnce([...entries.values()], SWEEP_CONCURRENCY, sweepEntry);
    // The leases last, once their entries' data has been gone for LEASE_REMOVAL_DELAY_MS: a claim
    // that fetched the data ahead of its lease can then tell (fetch-ahead.ts).
    const last = tombstones.reduce((latest, t) => Math.max(latest, t.goneAt), 0);
    if (tombstones.length > 0) await delay(last + LEASE_REMOVAL_DELAY_MS - performance.now());
    await eachAtOnce(tombstones, SWEEP_CONCURRENCY, async ({ keys, entry }) => {
      try {
        await this.io.delete(keys.lease); // also the one the sweep wrote for an entry that had none
        removed++;
        objects += entry.data.length + (entry.hasLease ? 1 : 0);
        bytes += entry.bytes;
      } catch (err) {
        errors.push({ key: keys.lease, error: await this.io.failure(err, `sweep ${keys.lease}`) });
      }
    });
    // Probes a crashed process left behind (io.ts), once their hour passed, and presigned uploads
    // (intake.ts) never confirmed, or whose confirmation died, once their presign expired.
    for (const probe of leftovers) {
      try {
        await this.io.delete(probe.key);
        objects++;
        bytes += probe.size;
      } catch (err) {
        errors.push({ key: probe.key, error: await this.io.failure(err, `sweep ${probe.key}`) });
      }
    }
    // A stream's upload under way is aborted once its uploader is dead (direct.ts), any upload once
    // its entry expired; then the heartbeats of the dead uploaders whose uploads are gone.
    const deadUploaders = await this.deadUploaders(uploaders, staleMs, errors);
    const abortFailed = new Set<string>();
    let uploadsAborted = 0;
    try {
      for (const upload of await this.io.uploads(prefix)) {
        const parsed = parseKey(prefix, upload.key) ?? parseIntakeKey(prefix, upload.key);
        if (!parsed) continue;
        const entry = entryKeys(prefix, parsed.id, parsed.expiresAt).entry;
        if (parsed.expiresAt > now && (parsed.part === 'upload' || !deadUploaders.has(entry))) continue;
        try {
          await this.io.abortUpload(upload.key, upload.uploadId);
          uploadsAborted++;
        } catch (err) {
          abortFailed.add(entry);
          errors.push({ key: upload.key, error: await this.io.failure(err, `abort the upload of ${upload.key}`) });
        }
      }
    } catch (err) {
      abortFailed.add(prefix);
      errors.push({ key: prefix, error: await this.io.failure(err, `list the incomplete uploads under "${prefix}"`) });
    }
    for (const [entry, marker] of deadUploaders) {
      if (abortFailed.has(entry) || abortFailed.has(prefix)) continue; // kept: the next sweep aborts it
      try {
        await this.io.delete(marker.key);
        objects++;
        bytes += marker.size;
      } catch (err) {
        errors.push({ key: marker.key, error: await this.io.failure(err, `sweep ${marker.key}`) });
      }
    }
    return { removed, objects, bytes, uploadsAborted, held, foreign, errors };
  }

  /** The heartbeats of uploaders judged dead (or of expired entries), by their entry's key prefix. */
  private async deadUploaders(
    found: readonly (ListedObject & { expired: boolean })[],
    staleMs: number,
    errors: { key: string; error: TempFileError }[],
  ): Promise<Map<string, ListedObject>> {
    const dead = new Map<string, ListedObject>();
    await eachAtOnce(found, SWEEP_CONCURRENCY, async (marker) => {
      try {
        const seen = marker.expired ? undefined : await this.io.getText(marker.key);
        if (marker.expired || (seen !== undefined && uploaderDead(this.io, marker.key, seen, staleMs))) dead.set(marker.key.slice(0, marker.key.lastIndexOf('/') + 1), marker);
      } catch (err) {
        errors.push({ key: marker.key, error: await this.io.failure(err, `read ${marker.key}`) });
      }
    });
    return dead;
  }

  /**
   * Whether the sweep takes an entry: a consumed or swept one at once; an expired one when
   * nobody holds it (its lease then says `swept`, written under a condition); otherwise not.
   */
  private async takeForSweep(keys: EntryKeys, expired: boolean, hasLease: boolean, rules: { staleMs: number; hostId: string }): Promise<'take' | 'held' | 'keep'> {
    const sweepBody = JSON.stringify({ v: 1, holder: `sweep/${process.pid}/${randomName().slice(0, 16)}`, state: 'swept', beat: 0 });
    const found = hasLease ? await this.io.getText(keys.lease) : undefined;
    const seen = found && parseLease(found);
    if (seen && (seen.state === 'consumed' || seen.state === 'swept')) return 'take';
    if (!expired) return 'keep';
    try {
      if (!seen) {
        await this.io.put(keys.lease, sweepBody, { create: true });
        return 'take';
      }
      if (seen.state !== 'released' && !leaseStale(this.io, keys.lease, seen, rules)) return 'held';
      await this.io.put(keys.lease, sweepBody, { ifMatch: seen.etag });
      return 'take';
    } catch (err) {
      if (isConditionFailed(err)) return 'held'; // a claimer got there first
      throw err;
    }
  }
}

const SWEEP_OPTIONS: ReadonlySet<string> = new Set(['staleMs']);
const SWEEP_CONCURRENCY = 8;

/** Runs `work` on each item, `width` at a time. */
async function eachAtOnce<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: Math.min(width, queue.length) }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  }));
}

function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

/** An entry as the sweep's listing found it. */
interface ListedEntry {
  readonly id: string;
  readonly expiresAt: number;
  readonly data: string[];
  hasLease: boolean;
  bytes: number;
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
  const location = { kind: 's3', bucket, prefix } as const;
  const store = new S3Store(io, location, new StoreIntake(io, location));
  store satisfies StoreBackend; // the contract the core calls (src/handoff/backend.ts), checked here
  return store;
}
