import { createHash } from 'node:crypto';
import type { ManagerContext, Owner } from '../context/context.js';
import { CallbackError, SizeLimitError } from '../base/errors.js';
import { describeArgument, ownOptions, validateInteger, validateObject } from '../base/validators.js';
import { resolveNameParts } from './create.js';
import { makeTempFile, recordContent, reservationOf, type TempFile } from './file.js';
import { SpooledTempFile } from './spooled-file.js';
import { openSource, type WriteSource } from '../write/source.js';
import { sniffSource } from '../write/intake.js';
import { Reservation } from '../limits/accounting.js';
import { abortable, resolveWriteOptions, throwIfAborted, toWriteError, writeTempFile, type WriteOptions } from './write.js';

/** Options of `spool()`: those of `write()`, and the most bytes kept in memory. */
export interface SpoolOptions extends WriteOptions {
  /** Up to this many bytes (0 to 2^30) stay in memory, no file made. @default 1048576 */
  readonly maxMemory?: number;
}

const DEFAULT_MAX_MEMORY = 1024 * 1024;
const MAX_MEMORY_LIMIT = 2 ** 30;
const SPOOL_OPTIONS: ReadonlySet<string> = new Set(['suffix', 'prefix', 'maxBytes', 'signal', 'onProgress', 'hash', 'accept', 'maxMemory']);

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
  const held = new HeldBytes(context);
  try {
    throwIfAborted(signals);
    const { next, type } = given.accept ? await sniffSource(read.next, given.accept, given.maxBytes) : { next: read.next, type: undefined };
    // Each chunk is taken in a plain function: a suspended async frame keeps the registers it
    // used, and would keep the source's buffer, besides its copy, while the next read waits.
    const take = (chunk: Buffer | undefined): boolean => {
      if (chunk === undefined) return false;
      if (held.size + chunk.length > given.maxBytes) throw new SizeLimitError(given.maxBytes);
      held.add(chunk, held.size + chunk.length > maxMemory);
      return true;
    };
    while (await next().then(take)) {
      if (held.size > maxMemory) {
        return await writeTempFile(context, owner, held.handOn(next), { ...writeOptions, accept: undefined }, ownerSignal, makeTempFile, undefined, { type });
      }
    }
    const content = held.content();
    const file = new SpooledTempFile(context, owner, parts, content);
    held.moveTo(file);
    recordContent(file, { size: content.length, digest: given.hash ? `${given.hash}:${createHash(given.hash).update(content).digest('hex')}` : undefined, detectedType: type });
    reportOnce(given.onProgress, content.length, file);
    return file;
  } catch (err) {
    reader.stop();
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

/**
 * The bytes read so far: copies (a source may reuse its buffer), reserved against the
 * manager's `maxLiveBytes` as they come, released once a file holds them.
 */
class HeldBytes {
  size = 0;
  private chunks: Buffer[] = [];
  private readonly reservation: Reservation;

  constructor(context: ManagerContext) {
    this.reservation = new Reservation(context.accounting);
  }

  /** Holds `chunk`; `last` (it goes to `write()` before the source is read again) is not copied. */
  add(chunk: Buffer, last: boolean): void {
    this.reservation.take(chunk.length);
    this.chunks.push(last ? chunk : Buffer.from(chunk));
    this.size += chunk.length;
  }

  content(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
  }

  /** Counts the bytes against `file` instead: the reservation passes to it in one step. */
  moveTo(file: TempFile): void {
    this.reservation.moveTo(reservationOf(file));
  }

  /** The bytes held, then the rest of the source, as a source for `write()`; its reservation ends. */
  handOn(next: () => Promise<Buffer | undefined>): AsyncIterable<Buffer> {
    const chunks = this.chunks;
    this.chunks = [];
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
