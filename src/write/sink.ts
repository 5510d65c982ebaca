import type { Hash } from 'node:crypto';
import { toFileSystemError } from '../errors.js';
import { INLINE_IO_MAX_BYTES } from '../disk/local-disk.js';
import type { WritableFile } from './open-file.js';

/** The size of a batch: chunks smaller than this are copied into a pooled buffer of this size,
 * which is written whole while the next one fills. Larger batches barely speed up the disk. */
export const SINK_HIGH_WATER_MARK = 256 * 1024;

// Batch buffers of finished writes, for the next writes: a small write then costs no 256 KiB
// allocation. Only buffers no write is using are put here.
const POOL_LIMIT = 8;
const pool: Buffer[] = [];

function takeBuffer(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(SINK_HIGH_WATER_MARK);
}

function giveBack(buffer: Buffer): void {
  if (pool.length < POOL_LIMIT) pool.push(buffer);
}

/**
 * Appends chunks to an open file, hashing them in order on the way. A chunk is consumed before
 * `write()` returns (or its promise settles): a small one is copied into the batch gathering, a
 * large one written, so the source may reuse or change its buffer as soon as it is asked for the
 * next chunk, and memory depends on neither the chunk size nor the chunk count: two batch buffers.
 * One batch is written while the next one gathers, so the source and the disk overlap; a full
 * batch waits for the one in flight, so a slow disk slows the source down.
 * @internal
 */
export class FileSink {
  private readonly handle: WritableFile;
  private readonly path: string;
  private readonly hash: Hash | undefined;
  private readonly inline: boolean;
  private gathering: Buffer | undefined;
  private gathered = 0;
  private spare: Buffer | undefined;
  // The batch being written now; it never rejects: a failure is recorded, typed, in `failure`.
  private inFlight: Promise<void> | undefined;
  private failure: { error: unknown } | undefined;
  /** Bytes written to the file so far. */
  bytesOnDisk = 0;

  /** With `inline` (a local disk), a last batch of at most {@link INLINE_IO_MAX_BYTES} is written inline. */
  constructor(handle: WritableFile, path: string, hash: Hash | undefined, inline: boolean) {
    this.handle = handle;
    this.path = path;
    this.hash = hash;
    this.inline = inline;
  }

  /**
   * Takes `chunk`. Returns undefined when it was copied and nothing needs waiting for, else a
   * promise to wait for before the next chunk is read; `chunk` is not referenced after either.
   */
  write(chunk: Buffer): Promise<void> | undefined {
    this.throwIfFailed();
    if (chunk.length >= SINK_HIGH_WATER_MARK) return this.writeLarge(chunk);
    this.gathering ??= takeBuffer();
    const space = SINK_HIGH_WATER_MARK - this.gathered;
    if (chunk.length < space) {
      this.gathered += chunk.copy(this.gathering, this.gathered);
      return undefined;
    }
    this.gathered += chunk.copy(this.gathering, this.gathered, 0, space);
    return this.sealThenGather(chunk.subarray(space));
  }

  /** Waits until every byte is on disk (not fsynced); throws the first write failure. */
  async end(): Promise<void> {
    if (this.inline && this.inFlight === undefined && this.gathered <= INLINE_IO_MAX_BYTES) this.writeLastBatchInline();
    await this.flush();
    if (this.gathering) giveBack(this.gathering);
    if (this.spare) giveBack(this.spare);
    this.gathering = this.spare = undefined;
  }

  /** A small file's only batch costs less written inline (about 8 µs for 10 KiB) than a trip to the thread pool. */
  private writeLastBatchInline(): void {
    if (!this.gathering || this.gathered === 0) return;
    const batch = this.gathering.subarray(0, this.gathered);
    this.gathered = 0;
    this.hash?.update(batch);
    try {
      for (let rest = batch; rest.length > 0; ) {
        const bytesWritten = this.handle.writeSync(rest);
        if (bytesWritten === 0) throw noProgress();
        rest = rest.subarray(bytesWritten);
      }
      this.bytesOnDisk += batch.length;
    } catch (error) {
      this.failure ??= { error: toFileSystemError('write', this.path, error) };
    }
  }

  private async sealThenGather(rest: Buffer): Promise<void> {
    await this.seal();
    this.gathering ??= takeBuffer();
    this.gathered = rest.copy(this.gathering, 0);
  }

  /** Starts writing the gathered batch, once the one in flight is done; its buffer is then free. */
  private async seal(): Promise<void> {
    await this.settle();
    const full = this.gathering;
    if (!full || this.gathered === 0) return;
    const batch = full.subarray(0, this.gathered);
    this.hash?.update(batch);
    this.inFlight = this.writeBatch(batch);
    this.gathering = this.spare;
    this.spare = full;
    this.gathered = 0;
  }

  private async writeLarge(chunk: Buffer): Promise<void> {
    await this.flush();
    this.hash?.update(chunk);
    this.inFlight = this.writeBatch(chunk);
    await this.settle();
  }

  private async flush(): Promise<void> {
    await this.seal();
    await this.settle();
  }

  /** Waits for the batch in flight; throws if a write failed. */
  private async settle(): Promise<void> {
    await this.inFlight;
    this.inFlight = undefined;
    this.throwIfFailed();
  }

  private async writeBatch(batch: Buffer): Promise<void> {
    try {
      await writeFully(this.handle, batch);
      this.bytesOnDisk += batch.length;
    } catch (error) {
      this.failure ??= { error: toFileSystemError('write', this.path, error) };
    }
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}

async function writeFully(handle: WritableFile, batch: Buffer): Promise<void> {
  let rest = batch;
  while (rest.length > 0) {
    // A short write is rare on a regular file; finish the rest before the next batch.
    const bytesWritten = await handle.write(rest);
    if (bytesWritten === 0) throw noProgress();
    rest = rest.subarray(bytesWritten);
  }
}

function noProgress(): Error {
  return Object.assign(new Error('EIO: the file accepted no bytes'), { code: 'EIO' });
}
