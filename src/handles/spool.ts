import { createHash } from 'node:crypto';
import type { ManagerContext, Owner } from '../context/context.js';
import { CallbackError } from '../base/errors.js';
import { describeArgument, ownOptions, validateInteger, validateObject, type NoneLeftOut } from '../base/validators.js';
import { resolveNameParts } from './create.js';
import { makeTempFile, recordContent, reservationOf, type TempFile } from './file.js';
import { SpooledTempFile } from './spooled-file.js';
import { openSource, type WriteSource } from '../write/source.js';
import { runVerify } from '../write/verify.js';
import { Meter, sniffSource } from '../write/intake.js';
import { Reservation } from '../limits/accounting.js';
import { abortable, abortError, resolveWriteOptions, throwIfAborted, toWriteError, WRITE_OPTION_KEYS, writeTempFile, type WriteOptions } from './write.js';

/** Options of `spool()`: those of `write()`, and the most bytes kept in memory. */
export interface SpoolOptions extends WriteOptions {
  /** Up to this many bytes (0 to 2^30) stay in memory, no file made. @default 1048576 */
  readonly maxMemory?: number;
}

const DEFAULT_MAX_MEMORY = 1024 * 1024;
const MAX_MEMORY_LIMIT = 2 ** 30;
/** The names of `spool()`'s options: `write()`'s and `maxMemory`, every key of {@link SpoolOptions} (`NoneLeftOut`). @internal */
export const SPOOL_OPTION_KEYS = [...WRITE_OPTION_KEYS, 'maxMemory'] as const satisfies readonly (keyof SpoolOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type SpoolOptionsListed = NoneLeftOut<Exclude<keyof SpoolOptions, (typeof SPOOL_OPTION_KEYS)[number]>>;
const SPOOL_OPTIONS: ReadonlySet<string> = new Set<string>(SPOOL_OPTION_KEYS);

/**
 * `write()`, with the data kept in memory while it is at most `maxMemory` bytes: the file is then
 * a {@link SpooledTempFile}, which touches the disk only once a file is needed. Past `maxMemory`,
 * what was read so far and the rest of the source go to `write()`. The bytes held count against
 * `maxLiveBytes` from the first chunk read, as written ones do.
 * @internal
 */
export async function spoolTempFile(
  context: ManagerContext,
  owner: Owner,
  source: WriteSource,
  options: SpoolOptions | undefined,
  ownerSignal: AbortSignal | undefined,
): Promise<TempFile> {
  const { maxMemory, writeOptions } = splitOptions(options);
  if (knownSize(source) > maxMemory) return writeTempFile(context, owner, source, writeOptions, ownerSignal, makeTempFile);
  const given = resolveWriteOptions(writeOptions, ownerSignal);
  const { signals } = given;
  const parts = resolveNameParts(context, given.name); // a bad name is refused before anything is read
  const reader = openSource(source);
  const read = abortable(reader, signals);
  const held = new HeldBytes(context, maxMemory);
  let file: TempFile | undefined;
  try {
    throwIfAborted(signals);
    const { next, type } = given.accept ? await sniffSource(read.next, given.accept, given.maxBytes) : { next: read.next, type: undefined };
    // The intake's meter: maxBytes and the quota (the bytes in memory reserved as they come); no
    // free space to look at until a file is made, nor a digest to compute chunk by chunk.
    const meter = new Meter({ maxBytes: given.maxBytes, hash: undefined }, undefined, held.reservation);
    // Each chunk is taken in a plain function: a suspended async frame keeps the registers it
    // used, and would keep the source's buffer, besides its copy, while the next read waits.
    const take = (chunk: Buffer | undefined): boolean => {
      if (chunk === undefined) return false;
      void meter.count(chunk.length); // settles at once: there is no free space to look at
      held.add(chunk, held.size + chunk.length > maxMemory);
      return true;
    };
    while (await next().then(take)) {
      if (held.size > maxMemory) {
        // Checked below, once the type found in memory is the file's.
        const rest = { ...writeOptions, accept: undefined, verify: undefined, verifyTimeoutMs: undefined };
        file = await writeTempFile(context, owner, held.handOn(next), rest, ownerSignal, makeTempFile, undefined, { type });
        break;
      }
    }
    if (file === undefined) {
      const content = held.content();
      const spooled = new SpooledTempFile(context, owner, parts, content);
      held.moveTo(spooled);
      recordContent(spooled, { size: held.size, digest: given.hash ? digestOf(given.hash, content) : undefined, detectedType: type });
      reportOnce(given.onProgress, held.size, spooled);
      file = spooled;
    }
    if (given.verify) await runVerify(given.verify, file, signals, abortError);
    return file;
  } catch (err) {
    reader.stop();
    await file?.remove().catch(() => {});
    throw toWriteError(err, signals, undefined);
  } finally {
    held.release();
    read.done();
  }
}

/** `maxMemory`, checked, and the options `write()` takes; an unknown name is refused as `spool()`'s. */
function splitOptions(options: unknown): { maxMemory: number; writeOptions: WriteOptions } {
  validateObject(options, 'spool()', SPOOL_OPTIONS, '{ maxMemory, maxBytes }', describeArgument);
  const { maxMemory, ...writeOptions } = ownOptions(options as SpoolOptions | undefined);
  const checked = maxMemory === undefined ? DEFAULT_MAX_MEMORY : validateInteger(maxMemory, 'maxMemory', { where: 'spool()', min: 0, max: MAX_MEMORY_LIMIT, unit: 'bytes' });
  return { maxMemory: checked, writeOptions };
}

/** The size of bytes or a string given whole (one past `maxMemory` goes straight to `write()`), else -1. */
function knownSize(source: unknown): number {
  if (typeof source === 'string') return Buffer.byteLength(source);
  return source instanceof Uint8Array ? source.byteLength : -1;
}

/** `'<algorithm>:<hex>'` of the blocks, in order. */
function digestOf(algorithm: string, blocks: readonly Buffer[]): string {
  const hash = createHash(algorithm);
  for (const block of blocks) hash.update(block);
  return `${algorithm}:${hash.digest('hex')}`;
}

/** `onProgress` once, with every byte: a spooled file has no batches on disk to report. */
function reportOnce(onProgress: ((bytes: number) => void) | undefined, bytes: number, file: TempFile): void {
  if (!onProgress) return;
  try {
    onProgress(bytes);
  } catch (err) {
    file.removeSync();
    throw new CallbackError('onProgress', err);
  }
}

/** The least block a spool allocates: blocks grow with the bytes held, up to {@link BLOCK_BYTES}. */
const MIN_BLOCK_BYTES = 256;
/** The largest block: small chunks are copied into blocks of at most this size; a larger chunk is copied whole. */
const BLOCK_BYTES = 64 * 1024;

/**
 * The bytes read so far, copied (a source may reuse its buffer) and packed into blocks as they
 * come, so that what is held is the bytes, whatever the chunking: a source of one-byte chunks
 * kept as a `Buffer` each held over 100 bytes of heap per byte. A block is filled before the next
 * is made; each is as large as the bytes held so far (at least 256 bytes, at most 64 KiB, never
 * past `maxMemory`), so its unused tail is bounded by both. A chunk is reserved against the
 * manager's `maxLiveBytes` as it comes, released once a file holds the bytes.
 */
class HeldBytes {
  size = 0;
  /** Full blocks, in order; then the block filling, `used` bytes of it. */
  private blocks: Buffer[] = [];
  private block: Buffer | undefined;
  private used = 0;
  /** What the bytes held count against the quota, until a file holds them. */
  readonly reservation: Reservation;
  private readonly maxMemory: number;

  constructor(context: ManagerContext, maxMemory: number) {
    this.reservation = new Reservation(context.accounting);
    this.maxMemory = maxMemory;
  }

  /** Holds `chunk`, counted already; `last` (it goes to `write()` before the source is read again) is not copied. */
  add(chunk: Buffer, last: boolean): void {
    if (last) {
      this.seal();
      this.blocks.push(chunk);
    } else this.copy(chunk);
    this.size += chunk.length;
  }

  /** Copies `chunk` into the block filling, then into a new block if it did not fit. */
  private copy(chunk: Buffer): void {
    if (chunk.length === 0) return;
    let taken = 0;
    if (this.block !== undefined) {
      taken = chunk.copy(this.block, this.used);
      this.used += taken;
      if (taken === chunk.length) return;
      this.blocks.push(this.block);
    }
    const held = this.size + taken;
    const rest = chunk.length - taken;
    // A copied chunk ends within maxMemory (held + rest <= maxMemory): the block holds the rest.
    const capacity = Math.max(rest, Math.min(BLOCK_BYTES, Math.max(MIN_BLOCK_BYTES, held), this.maxMemory - held));
    this.block = Buffer.allocUnsafeSlow(capacity);
    this.used = chunk.copy(this.block, 0, taken);
  }

  /** Ends the block filling: what of it is used joins the full blocks. */
  private seal(): void {
    if (this.block !== undefined && this.used > 0) this.blocks.push(this.block.subarray(0, this.used));
    this.block = undefined;
    this.used = 0;
  }

  /** The bytes held, as blocks in order (none when no byte was read). */
  content(): readonly Buffer[] {
    this.seal();
    return this.blocks;
  }

  /** Counts the bytes against `file` instead: the reservation passes to it in one step. */
  moveTo(file: TempFile): void {
    this.reservation.moveTo(reservationOf(file));
  }

  /** The bytes held, then the rest of the source, as a source for `write()`; its reservation ends. */
  handOn(next: () => Promise<Buffer | undefined>): AsyncIterable<Buffer> {
    const chunks = [...this.content()];
    this.blocks = [];
    this.release();
    return (async function* rest() {
      while (chunks.length > 0) yield chunks.shift()!;
      for (let chunk = await next(); chunk !== undefined; chunk = await next()) yield chunk;
    })();
  }

  release(): void {
    this.reservation.release();
  }
}
