import type { Hash } from 'node:crypto';
import type { ManagerContext, Owner } from '../context/context.js';
import { traced, TRACING_CHANNELS } from '../base/channels.js';
import { describeArgument, ownOptions, validateInteger, validateObject, type NoneLeftOut } from '../base/validators.js';
import { resolveNameParts, type NameParts } from './create.js';
import { makeTempFile, recordContent, reservationOf, type TempFile } from './file.js';
import { SpooledTempFile } from './spooled-file.js';
import { openSource, type WriteSource } from '../write/source.js';
import { runVerify } from '../write/verify.js';
import { Meter, pump, sniffSource, type IntakeFacts, type IntakeSink } from '../write/intake.js';
import { Reservation } from '../limits/accounting.js';
import type { StopSource } from '../base/stopper.js';
import { abortable, abortError, NewFile, resolveWriteOptions, throwIfAborted, toWriteError, WRITE_OPTION_KEYS, writeTempFile, type WriteOptions } from './write.js';

/** Options of `spool()`: those of `write()`, and the most bytes kept in memory. */
export interface SpoolOptions extends WriteOptions {
  /** Up to this many bytes (0 to 2^30) stay in memory, no file made. @default 1048576 */
  readonly maxMemory?: number;
}

const DEFAULT_MAX_MEMORY = 1024 * 1024;
const MAX_MEMORY_LIMIT = 2 ** 30;
/** The names of `spool()`'s options: `write()`'s and `maxMemory`, every key of {@link SpoolOptions} (`NoneLeftOut`). */
const SPOOL_OPTION_KEYS = [...WRITE_OPTION_KEYS, 'maxMemory'] as const satisfies readonly (keyof SpoolOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type SpoolOptionsListed = NoneLeftOut<Exclude<keyof SpoolOptions, (typeof SPOOL_OPTION_KEYS)[number]>>;
const SPOOL_OPTIONS: ReadonlySet<string> = new Set<string>(SPOOL_OPTION_KEYS);

/**
 * `write()`, with the data kept in memory while it is at most `maxMemory` bytes: the file is then
 * a {@link SpooledTempFile}, which touches the disk only once a file is needed. One intake, one
 * meter (`maxBytes`, the quota, the digest), pumps the source into a {@link MemorySink}; past
 * `maxMemory`, the same meter goes on into a file as `write()` makes one, with the bytes held
 * first. The bytes held count against `maxLiveBytes` from the first chunk read, as written ones do.
 * @internal
 */
export async function spoolTempFile(
  context: ManagerContext,
  owner: Owner,
  source: WriteSource,
  options: SpoolOptions | undefined,
  ownerSignal: StopSource | undefined,
): Promise<TempFile> {
  const { maxMemory, writeOptions } = splitOptions(options);
  if (knownSize(source) > maxMemory) return writeTempFile(context, owner, source, writeOptions, ownerSignal, makeTempFile);
  const given = resolveWriteOptions(writeOptions, ownerSignal);
  const { signals } = given;
  const parts = resolveNameParts(context, given.name); // a bad name is refused before anything is read
  const reader = openSource(source);
  const read = abortable(reader, signals);
  const held = new Reservation(context.accounting); // the bytes in memory, until a file holds them
  const onDisk = new NewFile(context, owner, makeTempFile);
  let file: TempFile | undefined;
  try {
    throwIfAborted(signals);
    // No free space to look at while the bytes are in memory: `spill()` looks before they go to disk.
    const meter = new Meter({ maxBytes: given.maxBytes, hash: given.hash }, undefined, held);
    const { next, type } = given.accept ? await sniffSource(read.next, given.accept, meter) : { next: read.next, type: undefined };
    const memory = new MemorySink(maxMemory, meter.hash);
    await pump(memory.untilFull(next), meter, memory, given.onProgress);
    const facts = (): IntakeFacts => ({ size: meter.size, digest: meter.digest(), detectedType: type });
    file = memory.full
      ? await tracedSpill(context, onDisk, { memory, rest: next, meter, parts, onProgress: given.onProgress, facts }, given.maxBytes)
      : keptInMemory(new SpooledTempFile(context, owner, parts, memory.content()), meter, facts());
    if (given.verify) await runVerify(given.verify, file, signals, abortError);
    return file;
  } catch (err) {
    reader.stop();
    await onDisk.discard();
    await file?.remove().catch(() => {});
    throw toWriteError(err, signals, onDisk.file?.path);
  } finally {
    held.release();
    read.done();
  }
}

/** A spool that stayed within `maxMemory`: its bytes charged to the file, its facts recorded. */
function keptInMemory(spooled: SpooledTempFile, meter: Meter, facts: IntakeFacts): SpooledTempFile {
  meter.chargeTo(reservationOf(spooled));
  recordContent(spooled, facts);
  return spooled;
}

/** {@link spill}, traced as a write (`tracing:tempfile-manager:write`). */
function tracedSpill(context: ManagerContext, onDisk: NewFile<TempFile>, spilling: Spill, maxBytes: number): Promise<TempFile> {
  return traced(
    TRACING_CHANNELS.write,
    () => ({ root: context.root, maxBytes }),
    () => spill(context, onDisk, spilling),
    (spilled) => ({ path: spilled.path, size: spilled.size ?? 0 }),
  );
}

/** What a spool past `maxMemory` goes on with. */
interface Spill {
  readonly memory: MemorySink;
  /** The rest of the source. */
  readonly rest: () => Promise<Buffer | undefined>;
  readonly meter: Meter;
  readonly parts: NameParts;
  readonly onProgress: ((bytes: number) => void) | undefined;
  readonly facts: () => IntakeFacts;
}

/**
 * Past `maxMemory`: the bytes held, counted already, then the rest of the source through the same
 * meter, go to a file as `write()` makes one (the free-space floor checked first, for the bytes
 * held too; the quota they hold moves to the file).
 */
async function spill(context: ManagerContext, onDisk: NewFile<TempFile>, { memory, rest, meter, parts, onProgress, facts }: Spill): Promise<TempFile> {
  await meter.moveToDisk(context.freeSpace);
  const sink = await onDisk.open(parts, meter);
  for (const counted of memory.drain()) {
    const storing = sink.write(counted);
    if (storing) await storing;
  }
  await pump(rest, meter, sink, onProgress);
  return onDisk.close(facts());
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

/** The least block a spool allocates: blocks grow with the bytes held, up to {@link BLOCK_BYTES}. */
const MIN_BLOCK_BYTES = 256;
/** The largest block: small chunks are copied into blocks of at most this size; a larger chunk is copied whole. */
const BLOCK_BYTES = 64 * 1024;

/**
 * The intake's sink of a spool: the bytes, copied (a source may reuse its buffer) and packed into
 * blocks as they come, so that what is held is the bytes, whatever the chunking: a source of
 * one-byte chunks kept as a `Buffer` each held over 100 bytes of heap per byte. A block is filled
 * before the next is made; each is as large as the bytes held so far (at least 256 bytes, at most
 * 64 KiB, never past `maxMemory`), so its unused tail is bounded by both. The chunk that takes the
 * bytes past `maxMemory` is held as given, not copied: the sink is then full, the source is not
 * read again ({@link MemorySink.untilFull}), and the bytes held go to a file (`spill()`).
 */
class MemorySink implements IntakeSink {
  /**
   * It hashes its blocks itself, in order, once the bytes end in memory (cheaper than chunk by
   * chunk); bytes that go to a file are hashed by the file's sink as it writes them.
   */
  readonly hashes = true;
  private size = 0;
  /** Full blocks, in order; then the block filling, `used` bytes of it. */
  private blocks: Buffer[] = [];
  private block: Buffer | undefined;
  private used = 0;
  /** The chunk that took the bytes past `maxMemory`, as the source gave it, until it is drained. */
  private overflow: Buffer | undefined;
  private passedMemory = false;
  private ended = false;

  constructor(
    private readonly maxMemory: number,
    private readonly hash: Hash | undefined,
  ) {}

  /** Whether the bytes passed `maxMemory`: they go to a file. */
  get full(): boolean {
    return this.passedMemory;
  }

  /** The bytes held, once the source ended within `maxMemory`: a spooled file has no batches on disk to report, so `onProgress` hears of them once. */
  get bytesStored(): number {
    return this.ended ? this.size : 0;
  }

  /** `next`, until the bytes pass `maxMemory`: the source is then left for the file, unread. */
  untilFull(next: () => Promise<Buffer | undefined>): () => Promise<Buffer | undefined> {
    return () => (this.full ? Promise.resolve(undefined) : next());
  }

  /** Holds `chunk`, counted already: copied within `maxMemory`, else held as given (it goes to the file before the source is read again). */
  write(chunk: Buffer): undefined {
    if (this.size + chunk.length > this.maxMemory) {
      this.overflow = chunk;
      this.passedMemory = true;
    } else this.copy(chunk);
    this.size += chunk.length;
    return undefined;
  }

  /** Within `maxMemory`, every byte is held: hashes the blocks, in order. */
  end(): Promise<void> {
    if (!this.full) {
      this.ended = true;
      for (const block of this.content()) this.hash?.update(block);
    }
    return Promise.resolve();
  }

  /** The bytes held, as blocks in order (none when no byte was read). */
  content(): readonly Buffer[] {
    this.seal();
    return this.blocks;
  }

  /** The bytes held, in order, the overflowing chunk last, each let go of as it is handed out. */
  *drain(): Generator<Buffer> {
    const held: (Buffer | undefined)[] = [...this.content(), this.overflow];
    this.blocks = [];
    this.overflow = undefined;
    for (let at = 0; at < held.length; at++) {
      const block = held[at];
      held[at] = undefined;
      if (block) yield block;
    }
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
}
