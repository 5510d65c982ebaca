import type { Hash } from 'node:crypto';
import { CallbackError, SizeLimitError, type DetectedType } from '../base/errors.js';
import type { Reservation } from '../limits/accounting.js';
import type { FreeSpace } from '../limits/free-space.js';
import { assertAccepted, detectType, readHead } from './sniff.js';
import { builtin } from '../base/builtin.js';

// The intake: the one place the rules a byte meets on its way in are kept, whichever sink it
// goes to (a file of `write()`, the memory of `spool()`, a tus upload's data file, the parts of an
// upload straight to a store). A sink only stores what the intake let through. The rules:
// - `maxBytes`: the byte past it is refused (`SizeLimitError`) before it is stored;
// - the quota: every byte is reserved (`Reservation`) before it is stored, and the reservation
//   moves with the bytes to the handle that owns them, released once, when they go;
// - `minFreeBytes`: checked before the first byte and again as the bytes grow, spaced by the
//   headroom seen last (`FreeSpace`), never per chunk;
// - the digest, computed as the bytes pass;
// - the type, sniffed from the first bytes, one way (`sniffSource`), refused unless `accept` takes it.
// What the intake establishes (size, digest, type) is what a handle is built from: see `IntakeFacts`.

/** What an intake established about the bytes it let through: the facts a handle is built from. @internal */
export interface IntakeFacts {
  readonly size: number;
  readonly digest: string | undefined;
  readonly detectedType: DetectedType | undefined;
}

/** The limits one intake applies. @internal */
export interface MeterRules {
  readonly maxBytes: number;
  /** A `crypto` hash algorithm, or undefined for no digest. */
  readonly hash: string | undefined;
  /** Bytes stored before this intake (a resumed upload's offset): `maxBytes` counts them too. @default 0 */
  readonly offset?: number;
  /** A length the client declared (tus's `Upload-Length`), and what passing it throws. */
  readonly declared?: { readonly bytes: number; readonly refusal: () => unknown } | undefined;
}

/**
 * Counts the bytes of one intake against its limits before a sink stores them: `maxBytes`, the
 * quota (through `reservation`, when the bytes are the manager's), the free-space floor (through
 * `freeSpace`, when they go to the root's file system), and hashes them when asked. @internal
 */
export class Meter {
  /** Bytes let through so far, the `offset` stored before included. */
  size: number;
  /** The digest being computed, when a hash was asked for: a sink that batches updates it batch by batch. */
  readonly hash: Hash | undefined;
  /** Bytes that may pass before free space is looked at again. */
  private allowance: number;
  private hex: string | undefined;

  constructor(
    private readonly rules: MeterRules,
    private freeSpace?: FreeSpace,
    private reservation?: Reservation,
  ) {
    this.hash = rules.hash === undefined ? undefined : builtin('node:crypto').createHash(rules.hash);
    this.size = rules.offset ?? 0;
    this.allowance = freeSpace?.guarded ? 0 : Infinity;
  }

  /**
   * Counts the bytes against `reservation` from now on (the handle that owns them, once it
   * exists); what the reservation before held moves to it in one step (a spool's bytes, to the
   * file they go to).
   */
  chargeTo(reservation: Reservation): void {
    this.reservation?.moveTo(reservation);
    this.reservation = reservation;
  }

  /** Checks the free-space floor before anything is stored (also for an empty intake). */
  start(): Promise<void> {
    return this.checkSpace(0);
  }

  /**
   * The bytes go to `freeSpace`'s file system from now on, those counted so far first (a spool's,
   * past its memory): checks the floor for them before any is written, then as the bytes grow.
   */
  moveToDisk(freeSpace: FreeSpace): Promise<void> {
    this.freeSpace = freeSpace;
    return this.checkSpace(this.size - (this.rules.offset ?? 0));
  }

  /**
   * Counts `length` more bytes, or throws and counts none: `SizeLimitError` past `maxBytes`,
   * `QuotaExceededError` past the quota. Returns a promise only when free space must be looked
   * at first (`NoSpaceError` below the floor); the bytes are counted once it resolves.
   */
  count(length: number): Promise<void> | undefined {
    this.refusePast(length);
    if (length > this.allowance) return this.countAfterSpaceCheck(length);
    this.allowance -= length;
    this.take(length);
    return undefined;
  }

  /** `'<algorithm>:<hex>'` of the bytes let through, once they all are (the hash is final from then on). */
  digest(): string | undefined {
    if (this.hash === undefined) return undefined;
    this.hex ??= this.hash.digest('hex');
    return `${this.rules.hash}:${this.hex}`;
  }

  private async checkSpace(incoming: number): Promise<void> {
    if (this.freeSpace === undefined) return;
    const allowance = await this.freeSpace.check(incoming);
    this.allowance = this.freeSpace.guarded ? allowance : Infinity;
  }

  /**
   * Throws what {@link count} throws for `length` more bytes past `maxBytes` or a declared length,
   * and counts nothing: for bytes held before any is stored (a source's head, read to sniff it).
   */
  refusePast(length: number): void {
    const size = this.size + length;
    if (size > this.rules.maxBytes) throw new SizeLimitError(this.rules.maxBytes);
    if (this.rules.declared !== undefined && size > this.rules.declared.bytes) throw this.rules.declared.refusal();
  }

  private async countAfterSpaceCheck(length: number): Promise<void> {
    this.allowance = await this.freeSpace!.check(length);
    this.refusePast(length);
    this.take(length);
  }

  private take(length: number): void {
    this.reservation?.take(length);
    this.size += length;
  }
}

/**
 * Where an intake's bytes are stored: a file (`write()`), memory (`spool()`), a tus upload's data
 * file, the parts of an upload straight to a store. The intake hands a sink only bytes it counted
 * (`Meter.count`), in order; the sink stores them and says how many are stored. The contract:
 * - `write(chunk)` takes the chunk before it returns or its promise settles: the source may reuse
 *   the buffer as soon as it is asked for the next chunk, so a sink that keeps bytes copies them.
 *   It returns a promise only when the next chunk must wait (the sink's own back-pressure);
 * - `end()` resolves once every byte taken is stored, and rejects with the first failure (typed);
 * - `bytesStored` grows as bytes are stored (what `onProgress` reports);
 * - `hashes`: true when the sink updates the meter's hash itself, in order, as it stores (a sink
 *   that batches hashes whole batches, which is cheaper); else the intake hashes each chunk.
 * A failure of the intake (a limit, the source, an abort) ends in the writer's clean-up, not the
 * sink's: the sink is told nothing more, and the writer removes what it made.
 * @internal
 */
export interface IntakeSink {
  write(chunk: Buffer): Promise<void> | undefined;
  end(): Promise<void>;
  readonly bytesStored: number;
  readonly hashes: boolean;
}

/**
 * Moves every chunk `next` gives into `sink`, each one counted by `meter` before it is stored;
 * calls `onProgress` with the bytes stored when they grew (a throw from it fails the intake, as a
 * {@link CallbackError}). Resolves once the sink holds every byte.
 * @internal
 */
export async function pump(next: () => Promise<Buffer | undefined>, meter: Meter, sink: IntakeSink, onProgress: ((bytes: number) => void) | undefined): Promise<void> {
  const progress = progressReporter(sink, onProgress);
  const hash = sink.hashes ? undefined : meter.hash;
  const stored = (): true => {
    progress();
    return true;
  };
  const store = (chunk: Buffer): Promise<true> | true => {
    hash?.update(chunk);
    const storing = sink.write(chunk);
    return storing ? storing.then(stored) : stored();
  };
  // Each chunk is taken in plain functions: a suspended async frame keeps the registers it used,
  // and would keep the source's last buffer alive, beside its copy, while the next read waits.
  const take = (chunk: Buffer | undefined): Promise<true> | boolean => {
    if (chunk === undefined) return false;
    if (chunk.length === 0) return true;
    const counting = meter.count(chunk.length);
    return counting ? counting.then(() => store(chunk)) : store(chunk);
  };
  while (await next().then(take));
  await sink.end();
  progress();
}

/** Calls `onProgress` when more bytes are stored; a throw from it fails the intake, typed. */
function progressReporter(sink: IntakeSink, onProgress: ((bytes: number) => void) | undefined): () => void {
  if (!onProgress) return () => {};
  let reported = 0;
  return () => {
    if (sink.bytesStored === reported) return;
    reported = sink.bytesStored;
    try {
      onProgress(reported);
    } catch (err) {
      throw new CallbackError('onProgress', err);
    }
  };
}

/**
 * Reads the head of a source (enough to tell its type, fewer bytes at the end), held to `meter`'s
 * limits as it is read (a head past `maxBytes` is refused before its type is judged), tells its
 * type, and refuses it unless `accept` (when given) takes it, before any byte is stored; `next`
 * hands the head out first, each chunk dropped as it goes, for the meter to count. The one way a
 * type is sniffed from bytes. Without `meter`, bytes counted already (a finished tus upload's). @internal
 */
export async function sniffSource(
  read: () => Promise<Buffer | undefined>,
  accept: readonly string[] | undefined,
  meter: Meter | undefined,
): Promise<{ next: () => Promise<Buffer | undefined>; type: DetectedType | undefined }> {
  const head = await readHead(read, (bytes) => meter?.refusePast(bytes));
  const type = await detectType(head.sample);
  if (accept) assertAccepted(accept, type);
  return { next: prepend(head.chunks, read), type };
}

/** `next`, after `chunks` are handed out; each is dropped as it goes, so none outlives the next read. */
function prepend(chunks: readonly Buffer[], next: () => Promise<Buffer | undefined>): () => Promise<Buffer | undefined> {
  const queue = [...chunks];
  return () => (queue.length > 0 ? Promise.resolve(queue.shift()) : next());
}
