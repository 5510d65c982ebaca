import type { Hash } from 'node:crypto';
import { toFileSystemError } from '../base/errors.js';
import { INLINE_IO_MAX_BYTES, inlineAllowed, runInline } from '../disk/local-disk.js';
import type { WritableFile } from './open-file.js';
import type { IntakeSink } from './intake.js';
import { releaseChunk } from './owned-chunks.js';

/**
 * The size of a batch: chunks smaller than this are copied into a pooled buffer of this size,
 * written whole once full; larger chunks are written as they are. A batch buffer is held by a
 * write while it gathers, and a client that stalls mid-upload stalls its write there: each such
 * client pins one batch buffer for as long as it waits. At 64 KiB, 32 stalled clients pinned
 * 2 MiB where the peers, which write each chunk as it comes, pinned nothing of the file; 16 KiB
 * still makes one write of the many small reads a slow network hands out, and a socket's full
 * reads (up to 64 KiB) are written as they are. (Batches of 256 KiB, two per write for its whole
 * life, were 16 MiB at 32 uploads, and the RSS peak 40 MiB above the peers'.)
 */
const BATCH_BYTES = 16 * 1024;

// Batch buffers whose write is done, shared by every write of the process: a write takes one when
// it starts to gather and gives it back once it is written, so a small write costs no allocation,
// and 32 concurrent uploads need about 32 of them, not 64. Only buffers no write is using are here.
const POOL_LIMIT = 16;
const pool: Buffer[] = [];

function takeBuffer(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
}

function giveBack(buffer: Buffer): void {
  if (pool.length < POOL_LIMIT) pool.push(buffer);
}

/** Writes all of `bytes` now (see {@link runInline}). */
function writeInline(handle: WritableFile, bytes: Buffer): void {
  runInline(() => {
    // A view of the rest only after a short write: a whole write (nearly always) makes no object.
    for (let written = 0; written < bytes.length; ) {
      const bytesWritten = handle.writeSync(written === 0 ? bytes : bytes.subarray(written));
      if (bytesWritten === 0) throw noProgress();
      written += bytesWritten;
    }
  });
}

/**
 * Appends chunks to an open file, hashing them in order on the way. A chunk is consumed before
 * `write()` returns (or its promise settles): a small one is copied into the batch gathering, a
 * large one written, so the source may reuse or change its buffer as soon as it is asked for the
 * next chunk, and memory depends on neither the chunk size nor the chunk count: at most two batch
 * buffers, one gathering and one being written, the latter back in the pool once written (a write
 * whose source stalls holds one). One batch is written while the next one gathers, so the source
 * and the disk overlap; a full batch waits for the one in flight, so a slow disk slows the source
 * down. On a local disk whose writes are quick, chunks are written inline instead (above).
 * @internal
 */
export class FileSink implements IntakeSink {
  private readonly handle: WritableFile;
  private readonly path: string;
  private readonly hash: Hash | undefined;
  private readonly inline: boolean;
  private gathering: Buffer | undefined;
  private gathered = 0;
  // The write in flight, undefined once it is done. It never rejects: a failure is recorded,
  // typed, in `failure`.
  private inFlight: Promise<void> | undefined;
  private failure: { error: unknown } | undefined;
  /** Bytes written to the file so far. */
  bytesOnDisk = 0;
  /** It hashes each batch as it seals it (the intake's contract: `IntakeSink`). */
  readonly hashes = true;

  /** Bytes written to the file so far (the intake's name for them). */
  get bytesStored(): number {
    return this.bytesOnDisk;
  }

  /** With `inline` (a local disk), chunks and batches of at most {@link INLINE_IO_MAX_BYTES} are written inline while the disk keeps up. */
  constructor(handle: WritableFile, path: string, hash: Hash | undefined, inline: boolean) {
    this.handle = handle;
    this.path = path;
    this.hash = hash;
    this.inline = inline;
  }

  /**
   * Takes `chunk`. Returns undefined when it was copied and nothing needs waiting for, else a
   * promise to wait for before the next chunk is read; `chunk` is not referenced after either.
   * A chunk only the library holds is freed once written or copied ({@link releaseChunk}).
   */
  write(chunk: Buffer): Promise<void> | undefined {
    this.throwIfFailed();
    if (this.inline && this.inFlight === undefined && chunk.length <= INLINE_IO_MAX_BYTES && inlineAllowed()) {
      this.writeChunkInline(chunk);
      return undefined;
    }
    if (chunk.length >= BATCH_BYTES) return this.writeLarge(chunk);
    this.gathering ??= takeBuffer();
    const space = BATCH_BYTES - this.gathered;
    if (chunk.length < space) {
      this.gathered += chunk.copy(this.gathering, this.gathered);
      releaseChunk(chunk);
      return undefined;
    }
    this.gathered += chunk.copy(this.gathering, this.gathered, 0, space);
    const rest = chunk.subarray(space);
    // On a disk that keeps up, the last batch is written by now: this one starts at once, and
    // no promise is made. A promise per batch is no cost, but what it keeps alive while the
    // disk is slow is: every collection then moves it to the old generation, which grows.
    if (this.inFlight === undefined) {
      this.sealThenGather(rest);
      releaseChunk(chunk);
      return undefined;
    }
    return this.sealWhenWritten(this.inFlight, chunk, rest);
  }

  // Apart from write(): a closure there would make every call allocate its context, once per
  // chunk, and a client sending 1-byte chunks makes millions of calls.
  private sealWhenWritten(inFlight: Promise<void>, chunk: Buffer, rest: Buffer): Promise<void> {
    return inFlight.then(() => {
      this.throwIfFailed();
      this.sealThenGather(rest);
      releaseChunk(chunk);
    });
  }

  /** Waits until every byte is on disk (not fsynced); throws the first write failure. */
  async end(): Promise<void> {
    if (this.inline && this.inFlight === undefined && inlineAllowed()) this.writeGatheredInline();
    await this.flush();
    if (this.gathering) giveBack(this.gathering);
    this.gathering = undefined;
  }

  /**
   * Writes `chunk` now (nothing is in flight): a large one as it is, after what was gathered; a
   * small one gathered, the batch written once full. A failure is kept, typed, and thrown here.
   */
  private writeChunkInline(chunk: Buffer): void {
    if (chunk.length >= BATCH_BYTES) {
      this.writeGatheredInline();
      this.hash?.update(chunk);
      this.inlineOrFail(chunk);
      releaseChunk(chunk);
    } else {
      this.gathering ??= takeBuffer();
      const space = BATCH_BYTES - this.gathered;
      const taken = chunk.copy(this.gathering, this.gathered, 0, Math.min(space, chunk.length));
      this.gathered += taken;
      if (this.gathered === BATCH_BYTES) this.writeGatheredInline();
      if (taken < chunk.length) this.gathered = chunk.copy(this.gathering!, 0, taken);
    }
    this.throwIfFailed();
  }

  /** Writes the gathered batch now; its buffer stays this write's, for the next batch. */
  private writeGatheredInline(): void {
    if (!this.gathering || this.gathered === 0) return;
    const batch = this.gathering.subarray(0, this.gathered);
    this.gathered = 0;
    this.hash?.update(batch);
    this.inlineOrFail(batch);
  }

  private inlineOrFail(bytes: Buffer): void {
    if (this.failure) return;
    try {
      writeInline(this.handle, bytes);
      this.bytesOnDisk += bytes.length;
    } catch (error) {
      this.failure = { error: toFileSystemError('write', this.path, error) };
    }
  }

  /** Seals the full batch (nothing is in flight), then gathers `rest` into the other buffer. */
  private sealThenGather(rest: Buffer): void {
    this.seal();
    this.gathering ??= takeBuffer();
    this.gathered = rest.copy(this.gathering, 0);
  }

  /** Starts writing the gathered batch; nothing may be in flight. Its buffer goes back to the pool once written. */
  private seal(): void {
    const full = this.gathering;
    if (!full || this.gathered === 0) return;
    const batch = full.subarray(0, this.gathered);
    this.hash?.update(batch);
    this.gathering = undefined;
    this.gathered = 0;
    this.startWrite(batch, full);
  }

  private async writeLarge(chunk: Buffer): Promise<void> {
    await this.flush();
    this.hash?.update(chunk);
    this.startWrite(chunk);
    await this.settle();
    releaseChunk(chunk);
  }

  private async flush(): Promise<void> {
    await this.settle();
    this.seal();
    await this.settle();
  }

  /** Waits for the write in flight; throws if a write failed. */
  private async settle(): Promise<void> {
    await this.inFlight;
    this.throwIfFailed();
  }

  /** Writes `batch`; `pooled`, the batch buffer it is a view of, goes back to the pool once the write is done. */
  private startWrite(batch: Buffer, pooled?: Buffer): void {
    const write: { done: boolean; promise?: Promise<void> } = { done: false };
    write.promise = new Promise((resolve) => {
      writeFully(this.handle, batch, (error) => {
        if (pooled) giveBack(pooled); // the kernel is done with it, failed or not
        if (error === undefined) this.bytesOnDisk += batch.length;
        else this.failure ??= { error: toFileSystemError('write', this.path, error) };
        write.done = true;
        if (this.inFlight === write.promise) this.inFlight = undefined;
        resolve();
      });
    });
    if (!write.done) this.inFlight = write.promise;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}

/** Writes all of `batch`, finishing a short write (rare on a regular file) before calling back. */
function writeFully(handle: WritableFile, batch: Buffer, done: (error?: unknown) => void): void {
  let rest = batch;
  const writeRest = () => {
    try {
      handle.write(rest, onWritten);
    } catch (error) {
      done(error);
    }
  };
  const onWritten = (error: Error | null, bytesWritten: number) => {
    if (error) done(error);
    else if (bytesWritten === 0) done(noProgress());
    else if (bytesWritten < rest.length) {
      rest = rest.subarray(bytesWritten);
      writeRest();
    } else done();
  };
  writeRest();
}

function noProgress(): Error {
  return Object.assign(new Error('EIO: the file accepted no bytes'), { code: 'EIO' });
}
