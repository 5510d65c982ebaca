import { HandoffMismatchError, HandoffNotFoundError, isErrorCode, isTempFileError, ManagerClosedError } from '../base/errors.js';
import { handoffKey } from '../base/channels.js';
import { logger } from '../base/log.js';
import { randomName } from '../base/random-name.js';
import { MAX_TIMER_MS, ownOptions, validateDuration, validateObject } from '../base/validators.js';
import type { StoreLocation, StoreSweepReport } from '../base/stores.js';
import type { BackendClaim, ClaimPlace, HandoffSource, LocalFile, StreamHandOffRequest, StreamHandoff } from '../handoff/backend.js';
import type { HandoffMeta, HandoffTicket } from '../handoff/ticket.js';
import { bindsTicket, META_TICKET, ticketBinding } from './binding.js';
import { StoreClaim } from './claim.js';
import { handOffStream } from './direct.js';
import { FETCH_AHEAD_MAX_BYTES, fetchAheadWindow } from './fetch-ahead.js';
import { isNotFound, type ObjectIo } from './io.js';
import { entryKeys } from './keys.js';
import { StoreLease } from './lease.js';
import { sweepStore, type Leftover } from './sweep.js';
import { builtin } from '../base/builtin.js';
type Readable = import('node:stream').Readable;
const { createHash } = builtin('node:crypto');
const { pipeline } = builtin('node:stream/promises');
const { PassThrough, Transform } = builtin('node:stream');

const log = logger('store');

/** Where a store's objects live, as the engine needs it: a ticket's location, with its key prefix. */
export type EngineLocation = StoreLocation & { readonly prefix: string };

// A file of at most this many bytes (its size known from write()) is uploaded in one request from
// memory; a larger one, or one of unknown size, streams (unless the store streams a known size in
// one request: `ObjectIo.streamsKnownSize`).
const SMALL_FILE_BYTES = 8 * 1024 * 1024;

const SWEEP_OPTIONS: ReadonlySet<string> = new Set(['staleMs']);

/**
 * The object-store engine: a handoff's upload (its data object the commit, bound to its ticket),
 * the claim (the lease under conditional writes, the bytes fetched into a local temp file, checked
 * against the ticket) and the sweep, over any store's requests (an {@link ObjectIo}). A store is a
 * front that makes its I/O and its location and passes them here (s3/store.ts, azure/store.ts);
 * `leftover` names the keys of the store's own under the prefix that the sweep may remove.
 */
export class ObjectStoreEngine {
  readonly #io: ObjectIo;
  readonly #location: EngineLocation;
  readonly #leftover: Leftover;

  constructor(io: ObjectIo, location: EngineLocation, leftover: Leftover = () => undefined) {
    this.#io = io;
    this.#location = location;
    this.#leftover = leftover;
  }

  /** Uploads a file and makes its ticket. */
  async handOff(source: HandoffSource, options: { ttlMs: number; meta: HandoffMeta | undefined }): Promise<HandoffTicket> {
    const id = randomName();
    const createdAt = Date.now();
    const expiresAt = createdAt + options.ttlMs;
    const keys = entryKeys(this.#location.prefix, id, expiresAt);
    const bound = { v: 1, id, suffix: source.suffix, createdAt, expiresAt, meta: options.meta, store: this.#location } as const;
    const algorithm = source.digest ? source.digest.slice(0, source.digest.indexOf(':')) : 'sha256';
    const metadata = { [META_TICKET]: ticketBinding(bound, this.#location, algorithm) };
    try {
      // The data object is the commit: an upload makes it whole, or not at all.
      const { size, digest } =
        source.size !== undefined && source.size <= SMALL_FILE_BYTES && !this.#io.streamsKnownSize
          ? await this.#uploadSmall(id, keys.data, source, algorithm, metadata)
          : await this.#uploadStream(keys.data, source, algorithm, metadata);
      if (source.digest !== undefined && digest !== source.digest) throw new HandoffMismatchError(id, `the file changed while it was uploaded: its digest is not write()'s`);
      if (source.size !== undefined && size !== source.size) throw new HandoffMismatchError(id, `the file changed while it was uploaded: ${size} bytes, write() wrote ${source.size}`);
      log('handed off %s as %s', source.path, keys.entry);
      await source.discard(); // the bytes are in the store: the local file goes (never rejects)
      return { ...bound, size, digest };
    } catch (err) {
      await this.#io.delete(keys.data).catch(() => {}); // else the sweep removes it once expired
      throw await this.#io.failure(err, `hand off ${source.path}`);
    }
  }

  /** Uploads a stream with no local file (direct.ts) and makes its ticket. */
  async handOffStream(source: Readable, request: StreamHandOffRequest): Promise<StreamHandoff> {
    const bind = (id: string, suffix: string, createdAt: number, expiresAt: number) => {
      const bound = { v: 1, id, suffix, createdAt, expiresAt, meta: request.meta, store: this.#location } as const;
      return { bound, metadata: { [META_TICKET]: ticketBinding(bound, this.#location, request.hash ?? 'sha256') } };
    };
    try {
      return await handOffStream(this.#io, this.#location, source, request, bind);
    } catch (err) {
      throw await this.#io.failure(err, 'hand off a stream');
    }
  }

  // A small file is read whole and sent in one request: no multipart machinery, and no more
  // memory than one part of a large upload.
  async #uploadSmall(id: string, key: string, source: HandoffSource, algorithm: string, metadata: Record<string, string>): Promise<{ size: number; digest: string }> {
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
    await this.#io.putBytes(key, body, metadata, algorithm === 'sha256' ? hex : undefined);
    return { size, digest: `${algorithm}:${hex}` };
  }

  async #uploadStream(key: string, source: HandoffSource, algorithm: string, metadata: Record<string, string>): Promise<{ size: number; digest: string }> {
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
      await Promise.all([this.#io.upload(key, body, metadata, source.size), reading]);
    } catch (err) {
      body.destroy();
      throw err;
    }
    return { size, digest: `${algorithm}:${hash.digest('hex')}` };
  }

  /** Claims a ticket of this store: the lease, and the bytes into a local temp file. */
  async claim(ticket: HandoffTicket, place: ClaimPlace): Promise<BackendClaim> {
    const keys = entryKeys(this.#location.prefix, ticket.id, ticket.expiresAt);
    const action = `claim the handoff ${handoffKey(ticket.id)}`; // its id is the ticket's bearer secret: never in a message
    const ahead = ticket.size <= FETCH_AHEAD_MAX_BYTES ? this.#fetchAhead(keys.data, ticket, place) : undefined;
    let lease: StoreLease;
    try {
      lease = await StoreLease.take(this.#io, keys, ticket.id, place);
    } catch (err) {
      await ahead?.drop();
      throw await this.#io.failure(err, action);
    }
    lease.startHeartbeat();
    const local = await this.#fetchHeld(lease, ticket, place, ahead, action);
    const claim = new StoreClaim(this.#io, keys, lease, local);
    if (place.closed()) {
      // Closed while the claim was under way: its local copy went with the scope. The entry is
      // given back at once rather than held for nobody until it goes stale.
      await claim.release().catch(() => {});
      throw new ManagerClosedError();
    }
    return claim;
  }

  // The bytes under the lease: those fetched ahead, kept only under the rules of fetch-ahead.ts,
  // else fetched again. A fetch that fails ends the lease.
  async #fetchHeld(lease: StoreLease, ticket: HandoffTicket, place: ClaimPlace, ahead: FetchAhead | undefined, action: string): Promise<LocalFile> {
    const keepAhead = ahead !== undefined && lease.created && ahead.window.within();
    try {
      if (keepAhead) return await ahead.result;
      await ahead?.drop();
      return await this.#fetch(lease.dataKey, ticket, place);
    } catch (err) {
      lease.stop();
      // Its data gone: consumed, or swept. The lease says so, written under our own ETag (a lease
      // is never deleted but by the sweep, fetch-ahead.ts), and stays as a tombstone.
      await lease.write(isErrorCode(err, 'ERR_TEMPFILE_HANDOFF_NOT_FOUND') ? 'swept' : 'released').catch(() => {}); // else it goes stale
      throw await this.#io.failure(err, action);
    }
  }

  // The fetch of a small file started with the lease's creation: its result, the window it was
  // sent in, and `drop()`, which stops it and removes what it wrote.
  #fetchAhead(key: string, ticket: HandoffTicket, place: ClaimPlace): FetchAhead {
    const window = fetchAheadWindow();
    const stop = new AbortController();
    const result = this.#fetch(key, ticket, place, stop.signal);
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
  async #fetch(key: string, ticket: HandoffTicket, place: ClaimPlace, signal?: AbortSignal): Promise<LocalFile> {
    let got: { body: Readable; metadata: Record<string, string> };
    try {
      got = await this.#io.getStream(key);
    } catch (err) {
      if (isNotFound(err)) throw new HandoffNotFoundError(ticket.id);
      throw err;
    }
    if (signal?.aborted || !bindsTicket(got.metadata[META_TICKET], ticket, this.#location)) {
      got.body.destroy();
      if (signal?.aborted) throw new HandoffNotFoundError(ticket.id); // dropped: nobody reads it
      throw new HandoffMismatchError(ticket.id, 'the ticket differs from the one the store holds');
    }
    signal?.addEventListener('abort', () => got.body.destroy(), { once: true });
    return download(got.body, ticket, place);
  }

  /** Validates the sweep's options (`{ staleMs? }`) and removes what expired or was left over (sweep.ts). */
  sweep(options: { readonly staleMs?: number } | undefined): Promise<StoreSweepReport> {
    validateObject(options, 'sweep()', SWEEP_OPTIONS, '{ staleMs: 30_000 }');
    const own = ownOptions(options);
    const staleMs = own.staleMs === undefined ? 30_000 : validateDuration(own.staleMs, 'staleMs', { min: 2000, max: MAX_TIMER_MS }, { where: 'sweep()' });
    return sweepStore({ io: this.#io, prefix: this.#location.prefix, leftover: this.#leftover }, staleMs);
  }
}

/** A small file's fetch started beside the lease's creation. */
interface FetchAhead {
  readonly result: Promise<LocalFile>;
  readonly window: { within(): boolean };
  drop(): Promise<void>;
}

async function download(body: Readable, ticket: HandoffTicket, place: ClaimPlace): Promise<LocalFile> {
  const digest = ticket.digest ?? '';
  const hash = digest.slice(0, digest.indexOf(':')) || 'sha256';
  // The store's answer broken off (no bytes for timeoutMs, a connection reset) is the store's
  // failure, not the data's nor a client gone: claim() types it as any request's, without the
  // SDK's error, which may quote the request. (The claimer's own refusals are typed.)
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
