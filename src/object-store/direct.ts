import type { Readable } from 'node:stream';
import { detached } from '../base/detached.js';
import { logger } from '../base/log.js';
import { randomName } from '../base/random-name.js';
import type { StreamHandOffRequest, StreamHandoff } from '../handoff/backend.js';
import type { HandoffTicket } from '../handoff/ticket.js';
import type { StoreLocation } from '../base/stores.js';
import { HEARTBEAT_MS, ownerState, judgeHeartbeat } from '../owner/liveness.js';
import { hostId, processIdentity, type ProcessIdentity } from '../owner/process-identity.js';
import { Meter, pump, sniffSource, type IntakeSink } from '../write/intake.js';
import { openSource, type SourceReader } from '../write/source.js';
import { isNotFound, type ObjectIo, type TextObject } from './io.js';
import { entryKeys, uploadingKey, type EntryKeys } from './keys.js';
import { leaseHeartbeat } from './lease.js';

const log = logger('store-direct');

// A stream handed straight to the store, with no local file: its first bytes sniffed (and refused
// unless `accept` takes their type) before anything is sent, every byte counted against
// `maxBytes` and hashed as it passes, the rest sent in parts of `partSize`, two in flight, so that
// memory stays at about three parts whatever the size. A stream that ends within one part is one
// PutObject. A multipart upload is made only when a part fills, and is aborted on any failure (the
// source gone, a refusal, a request failed): the data object appears when it is completed, never
// before, so a refused or aborted stream leaves no object. While the upload is under way the
// uploader rewrites `<entry>/uploading` every second, naming its process: the store's sweep aborts
// the upload of an uploader it judges dead by that object (`uploaderDead`), and never a live one's.
// A failure stops the heartbeat and settles the call (a part that failed stops the source, and a
// read pending on it rejects with the part's failure); what the store did not let the call remove
// then (the store down) the uploader removes itself once the store answers again (`removeLater`).

/** What the ticket binds before the bytes are read, and the metadata that carries it. */
export interface BoundTicket {
  readonly bound: Omit<HandoffTicket, 'size' | 'digest'>;
  readonly metadata: Record<string, string>;
}

/** Makes the ticket's bound fields once the suffix is known (store.ts owns the binding). */
export type BindTicket = (id: string, suffix: string, createdAt: number, expiresAt: number) => BoundTicket;

/** Hands `source` to the store at `location`; resolves with its ticket once the data object is complete. */
export async function handOffStream(io: ObjectIo, location: StoreLocation & { readonly prefix: string }, source: Readable, request: StreamHandOffRequest, bind: BindTicket): Promise<StreamHandoff> {
  const id = randomName();
  const createdAt = Date.now();
  const expiresAt = createdAt + request.ttlMs;
  const keys = entryKeys(location.prefix, id, expiresAt);
  const reader = openSource(source); // the source's failures typed as write()'s: AbortedError, SourceError
  // The intake's meter: maxBytes and the digest; no quota nor free space (the bytes go to the store).
  const meter = new Meter({ maxBytes: request.maxBytes, hash: request.hash });
  let sniffed: Awaited<ReturnType<typeof sniffSource>>;
  try {
    sniffed = request.detectType === false && !request.accept ? { next: () => reader.next(), type: undefined } : await sniffSource(() => reader.next(), request.accept, meter);
  } catch (err) {
    reader.stop(); // refused before anything was sent: nothing in the store
    throw err;
  }
  const detectedType = sniffed.type;
  const { bound, metadata } = bind(id, request.suffixOf(detectedType), createdAt, expiresAt);
  const upload = new PartedUpload(io, keys, expiresAt, metadata, request.hash, () => meter.digest()!, reader);
  try {
    await pump(sniffed.next, meter, upload, undefined);
    const size = meter.size;
    const digest = meter.digest();
    log('handed off a stream as %s (%d bytes)', keys.entry, size);
    const discard = (): Promise<void> => io.delete(keys.data).catch(() => {}); // else the sweep, once expired
    return { ticket: { ...bound, size, digest }, detectedType, discard };
  } catch (err) {
    const cause = upload.failure ?? err; // a part that failed stopped the source: its failure is the cause
    await upload.abort();
    throw cause;
  }
}

/**
 * One stream's upload, the intake's sink: buffered into parts, sent two at a time, completed or
 * aborted. The intake counts and hashes each chunk before it is taken here.
 */
class PartedUpload implements IntakeSink {
  readonly hashes = false;
  bytesStored = 0;
  private readonly stop = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly parts: { ETag: string; PartNumber: number }[] = [];
  /** The part being filled, and how much of it is; parts sent, to be filled again (memory stays flat). */
  private part: Buffer;
  private readonly spare: Buffer[] = [];
  private filled = 0;
  private uploadId: string | undefined;
  /** Whether the multipart upload's creation was sent (it may exist when its answer was lost). */
  private created = false;
  /** The first request that failed, if one did. */
  failure: unknown;
  private beat: UploaderBeat | undefined;
  /** Whether the heartbeat's first write was sent (`<entry>/uploading` may exist). */
  private beatSent = false;

  constructor(
    private readonly io: ObjectIo,
    private readonly keys: EntryKeys,
    private readonly expiresAt: number,
    private readonly metadata: Record<string, string>,
    private readonly hashName: string,
    private readonly digest: () => string,
    private readonly source: SourceReader,
  ) {
    this.part = Buffer.allocUnsafe(Math.min(io.partSize, FIRST_PART_BYTES));
  }

  /** Takes a chunk the intake counted: copied into the part (the source may reuse its buffer once asked for the next chunk). */
  async write(chunk: Buffer): Promise<void> {
    this.throwIfFailed();
    // Copied into the part (the source may reuse its buffer once asked for the next chunk).
    for (let at = 0; at < chunk.length; ) {
      const copied = chunk.copy(this.part, this.filled, at);
      this.filled += copied;
      at += copied;
      if (this.filled < this.part.length) continue;
      if (this.part.length < this.io.partSize) this.grow();
      else await this.sendPart();
    }
  }

  /** Completes the upload: one PutObject (its checksum the digest, when it is SHA-256) for a stream within one part. */
  async end(): Promise<void> {
    if (this.uploadId === undefined) {
      const hex = this.digest().slice(this.hashName.length + 1);
      await this.io.putBytes(this.keys.data, this.part.subarray(0, this.filled), this.metadata, this.hashName === 'sha256' ? hex : undefined);
      this.bytesStored += this.filled;
      return;
    }
    if (this.filled > 0) await this.sendPart();
    await Promise.all(this.inFlight);
    this.throwIfFailed();
    const parts = [...this.parts].sort((a, b) => a.PartNumber - b.PartNumber);
    // The heartbeat ends beside the completion, one round trip for both: once the last part is
    // in, a process killed before the completion lands leaves an upload that its entry's expiry
    // ends, as a handoff's does.
    await Promise.all([this.io.completeUpload(this.keys.data, this.uploadId, parts), this.endBeat()]);
  }

  /**
   * Stops the parts in flight and the heartbeat, then aborts the multipart upload and deletes the
   * heartbeat: no object, no parts left. What the store does not take now is removed later
   * ({@link removeLater}); this never waits for a store that does not answer past its requests' bounds.
   */
  async abort(): Promise<void> {
    this.stop.abort();
    this.source.stop(this.failure);
    await Promise.allSettled(this.inFlight);
    const beatStopped = this.beat?.stop(); // while the upload is aborted: a silent store costs one bound, not two
    const left: Leftovers = { uploadId: this.uploadId, uploadMayExist: this.created, uploading: this.beatSent };
    try {
      await removeLeftovers(this.io, this.keys, left, beatStopped);
    } catch (err) {
      log('abort of %s failed, tried again later: %s', this.keys.data, (err as Error)?.name);
      removeLater(this.io, this.keys, left, this.expiresAt, beatStopped);
    }
  }

  // The first part starts small and doubles up to `partSize`: a small upload never holds a whole part.
  private grow(): void {
    const larger = Buffer.allocUnsafe(Math.min(this.io.partSize, this.part.length * 2));
    this.part.copy(larger, 0, 0, this.filled);
    this.part = larger;
  }

  private async sendPart(): Promise<void> {
    const uploadId = this.uploadId ?? (await this.startUpload());
    while (this.inFlight.size >= PARTS_IN_FLIGHT) await Promise.race(this.inFlight);
    this.throwIfFailed();
    const sent = this.part;
    const body = sent.subarray(0, this.filled);
    this.part = this.spare.pop() ?? Buffer.allocUnsafe(this.io.partSize);
    this.filled = 0;
    const partNumber = this.parts.length + this.inFlight.size + 1;
    const sending: Promise<void> = this.io.uploadPart(this.keys.data, uploadId, partNumber, body, this.stop.signal).then(
      (etag) => {
        this.parts.push({ ETag: etag, PartNumber: partNumber });
        this.bytesStored += body.length;
        this.inFlight.delete(sending);
        if (sent.length === this.io.partSize) this.spare.push(sent); // sent: the next part fills it again
      },
      (err: unknown) => {
        this.failure ??= err;
        this.inFlight.delete(sending);
        // The reader stops waiting for bytes that can no longer go anywhere: a read pending on the
        // source rejects with this failure, the cause the caller gets.
        this.source.stop(this.failure);
      },
    );
    this.inFlight.add(sending);
  }

  /**
   * Makes the heartbeat and the multipart upload at once, one round trip for both. A process
   * killed between the two leaves an upload without a heartbeat, which the sweep aborts once its
   * entry expires; one whose heartbeat landed, as soon as the heartbeat is judged dead.
   */
  private async startUpload(): Promise<string> {
    this.beatSent = true;
    this.created = true;
    const [beat, upload] = await Promise.allSettled([UploaderBeat.start(this.io, uploadingKey(this.keys)), this.io.createUpload(this.keys.data, this.metadata)]);
    if (beat.status === 'fulfilled') this.beat = beat.value;
    if (upload.status === 'fulfilled') this.uploadId = upload.value;
    if (beat.status === 'rejected') throw beat.reason;
    if (upload.status === 'rejected') throw upload.reason;
    return upload.value;
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private async endBeat(): Promise<void> {
    if (!this.beat) return;
    await this.beat.stop();
    const left: Leftovers = { uploadId: undefined, uploadMayExist: false, uploading: true };
    await removeLeftovers(this.io, this.keys, left).catch(() => removeLater(this.io, this.keys, left, this.expiresAt));
  }
}

const PARTS_IN_FLIGHT = 2;
const FIRST_PART_BYTES = 256 * 1024;

/** What a stream's upload may have left in the store once it ended: its multipart upload, its heartbeat. */
interface Leftovers {
  /** The multipart upload to abort, when its creation answered. */
  readonly uploadId: string | undefined;
  /** Its creation was sent: without an id, every upload of the data key is aborted (the answer was lost). */
  readonly uploadMayExist: boolean;
  /** `<entry>/uploading` may exist. */
  readonly uploading: boolean;
}

/**
 * Aborts the upload (one already gone is fine), then deletes the heartbeat once `beatStopped` (its
 * last write) settled; rejects when the store fails a request.
 */
async function removeLeftovers(io: ObjectIo, keys: EntryKeys, left: Leftovers, beatStopped?: Promise<void>): Promise<void> {
  const ids = left.uploadId !== undefined ? [left.uploadId] : left.uploadMayExist ? (await io.uploads(keys.data)).filter((u) => u.key === keys.data).map((u) => u.uploadId) : [];
  for (const id of ids) {
    try {
      await io.abortUpload(keys.data, id);
    } catch (err) {
      if (!isNotFound(err)) throw err; // NoSuchUpload: aborted already (an answer lost, or the sweep)
    }
  }
  await beatStopped;
  if (left.uploading) await io.delete(uploadingKey(keys));
}

/**
 * Removes what a failed upload left once the store answers again: tried every second at first,
 * then less often (at most every {@link RETRY_MAX_MS}), until it succeeds or the entry expires
 * (the sweep then removes it as any expired entry's). The uploader's process alone can do it
 * while it lives: the sweep never aborts a live uploader's upload. Timers do not hold the process,
 * and run outside the caller's async context.
 */
function removeLater(io: ObjectIo, keys: EntryKeys, left: Leftovers, expiresAt: number, beatStopped?: Promise<void>): void {
  let wait = HEARTBEAT_MS;
  const attempt = (): void => {
    detached(() => setTimeout(() => {
      removeLeftovers(io, keys, left, beatStopped).then(
        () => log('removed what the failed upload of %s left', keys.data),
        (err: unknown) => {
          wait = Math.min(wait * 2, RETRY_MAX_MS);
          if (Date.now() + wait < expiresAt) attempt();
          else log('removal of what %s left failed, left to the sweep once it expires: %s', keys.data, (err as Error)?.name);
        },
      );
    }, wait)).unref();
  };
  attempt();
}

const RETRY_MAX_MS = 30_000;

/** The heartbeat of an upload under way: `<entry>/uploading`, naming its process, rewritten every second. */
class UploaderBeat {
  private timer: NodeJS.Timeout | undefined;
  private beats = 0;
  private writing: Promise<void> | undefined;

  private constructor(
    private readonly io: ObjectIo,
    private readonly key: string,
    private readonly owner: ProcessIdentity,
  ) {}

  static async start(io: ObjectIo, key: string): Promise<UploaderBeat> {
    const beat = new UploaderBeat(io, key, processIdentity(hostId()));
    await beat.write();
    // Outside the caller's async context: the beats run in no request's store, nor keep one alive.
    beat.timer = detached(() => setInterval(() => {
      if (beat.writing) return; // a slow store: beats do not queue
      beat.write().catch((err: unknown) => log('heartbeat of %s failed: %s', key, (err as Error)?.name));
    }, HEARTBEAT_MS));
    beat.timer.unref();
    return beat;
  }

  /** No more beats; resolves once a beat in flight has landed or failed (a delete after it is the last word). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.writing?.catch(() => {});
  }

  private write(): Promise<void> {
    const writing = this.io.putPlain(this.key, JSON.stringify({ v: 1, owner: this.owner, beat: ++this.beats }));
    this.writing = writing;
    return writing.finally(() => {
      if (this.writing === writing) this.writing = undefined;
    });
  }
}

/**
 * Whether the uploader whose heartbeat `<entry>/uploading` is `found` is dead: its process gone,
 * when it ran on this machine; else its heartbeat seen unchanged for `staleMs` on this process's
 * monotonic clock (a one-shot sweep that sees it for the first time leaves it for a later sweep).
 */
export function uploaderDead(io: ObjectIo, key: string, found: TextObject, staleMs: number): boolean {
  const owner = ownerOf(found.text);
  const here = owner === undefined ? 'unknown' : ownerState(owner, hostId());
  if (here === 'dead' || here === 'alive') return here === 'dead';
  return judgeHeartbeat(leaseHeartbeat(io, key, found.etag), { staleMs, graceMs: 0, hostId: 'sweep' }) === 'dead';
}

function ownerOf(text: string): ProcessIdentity | undefined {
  try {
    const { owner } = JSON.parse(text) as { owner?: Partial<ProcessIdentity> };
    if (typeof owner?.host !== 'string' || typeof owner.pid !== 'number' || typeof owner.start !== 'string') return undefined;
    if (owner.thread !== undefined && typeof owner.thread !== 'number') return undefined;
    return { host: owner.host, pid: owner.pid, start: owner.start, ...(owner.thread !== undefined && { thread: owner.thread }) };
  } catch {
    return undefined; // not ours to read: judged by its heartbeat alone
  }
}
