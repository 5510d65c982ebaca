import type { FileHandle } from 'node:fs/promises';
import { toFileSystemError } from './errors.js';

/** Bytes gathered while the previous batch is being written: the backpressure bound. Larger batches
 * barely speed up the disk but let garbage pile up between scavenges (Node 24 more than 20). */
export const SINK_HIGH_WATER_MARK = 256 * 1024;

/**
 * Appends chunks to an open file with `writev`, one batch in flight while the next one gathers,
 * so reading the source and writing the disk overlap. `write()` resolves at once while the
 * gathered bytes are below the high-water mark, and waits for the disk otherwise: a slow disk
 * slows the source down, memory stays flat. A chunk of at least the high-water mark, met while
 * nothing is in flight, is written at once on its own: there is nothing to gather it with.
 * @internal
 */
export class FileSink {
  private readonly handle: FileHandle;
  private readonly path: string;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushing: Promise<void> | undefined;
  // The batch being written now: a full queue waits for it alone, not for the whole queue, so
  // the next batch gathers (and the source reads, and the hash runs) while the disk writes.
  private inFlight: Promise<void> | undefined;
  private failure: { error: unknown } | undefined;
  /** Bytes written to the file so far. */
  bytesOnDisk = 0;

  constructor(handle: FileHandle, path: string) {
    this.handle = handle;
    this.path = path;
  }

  async write(chunk: Buffer): Promise<void> {
    this.throwIfFailed();
    if (chunk.length >= SINK_HIGH_WATER_MARK && this.flushing === undefined) {
      await this.writeNow(chunk);
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.flushing ??= this.flushAll();
    if (this.pendingBytes >= SINK_HIGH_WATER_MARK) {
      await this.inFlight?.catch(() => {}); // flushAll() records the failure, typed
      this.throwIfFailed();
    }
  }

  /** Waits until every byte is on disk (not fsynced); throws the first write failure. */
  async end(): Promise<void> {
    await this.flushing;
    this.throwIfFailed();
  }

  private async writeNow(chunk: Buffer): Promise<void> {
    try {
      await writeFully(this.handle, [chunk], chunk.length);
      this.bytesOnDisk += chunk.length;
    } catch (error) {
      throw this.recordFailure(error);
    }
  }

  private async flushAll(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        const bytes = this.pendingBytes;
        this.pending = [];
        this.pendingBytes = 0;
        this.inFlight = writeFully(this.handle, batch, bytes);
        await this.inFlight;
        this.bytesOnDisk += bytes;
      }
    } catch (error) {
      this.recordFailure(error);
      this.pending = [];
      this.pendingBytes = 0;
    } finally {
      this.flushing = undefined;
      this.inFlight = undefined;
    }
  }

  /** Keeps the first failure, typed, for every later call; returns it. */
  private recordFailure(error: unknown): unknown {
    this.failure ??= { error: toFileSystemError('write', this.path, error) };
    return this.failure.error;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}

async function writeFully(handle: FileHandle, batch: Buffer[], total: number): Promise<void> {
  const written = (batch.length === 1 ? await handle.write(batch[0] as Buffer) : await handle.writev(batch)).bytesWritten;
  if (written === total) return;
  // A short write is rare on a regular file; finish the rest before the next batch.
  let rest = Buffer.concat(batch).subarray(written);
  while (rest.length > 0) {
    const { bytesWritten } = await handle.write(rest);
    if (bytesWritten === 0) throw Object.assign(new Error('EIO: the file accepted no bytes'), { code: 'EIO' });
    rest = rest.subarray(bytesWritten);
  }
}
