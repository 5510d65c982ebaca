import type { Hash } from 'node:crypto';
import { toFileSystemError } from '../base/errors.js';
import { INLINE_IO_MAX_BYTES, inlineAllowed, runInline } from '../disk/local-disk.js';
import type { WritableFile } from './open-file.js';
import type { IntakeSink } from './intake.js';
import { releaseChunk } from './owned-chunks.js';

/**
 * The size of a batch: chunks smaller than this are copied into a pooled buffer of this size,
 * written whole once full; larger chunks are written as they are. 64 KiB is what a socket hands
 * out per read, so an upload makes one write per read, as a piped `fs.createWriteStream()` does.
 * (Batches of 256 KiB, two per write for its whole life, were 16 MiB at 32 uploads, and the RSS
 * peak 40 MiB above the peers'.)
 */
const BATCH_BYTES = 64 * 1024;

/**
 * The size of a write's batches until one of them fills. A client that stalls mid-upload stalls
 * its write while it gathers, and pins its batch buffer as long as it waits: 64 KiB each, 2 MiB
 * for 32 stalled clients, where the peers, which write each chunk as it comes, pin none of the
 * file. A small first batch bounds that to 16 KiB, unless the source has filled a batch with
 * small chunks; batches of 16 KiB throughout cost 1.5 times the CPU inline and 3 times through
 * the thread pool for a source of 8 KiB chunks.
 */
const FIRST_BATCH_BYTES = 16 * 1024;

/** Chunks of at least this size are written inline as they are; smaller ones are gathered. */
const DIRECT_INLINE_MIN = 16 * 1024;

// Batch buffers whose write is done, of each size, shared by every write of the process: a write
// takes one when it starts to gather and gives it back once it is written, so a small write costs
// no allocation, and 32 concurrent uploads need about 32 of them, not 64. Only buffers no write is
// using are here.
const POOL_LIMIT = 16;
const batchPool: Buffer[] = [];
const firstBatchPool: Buffer[] = [];

function poolOf(size: number): Buffer[] {
  return size === FIRST_BATCH_BYTES ? firstBatchPool : batchPool;
}

function takeBuffer(size: number): Buffer {
  return poolOf(size).pop() ?? Buffer.allocUnsafeSlow(size);
}

function giveBack(buffer: Buffer): void {
  const pool = poolOf(buffer.length);
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
  /** Batches of this write filled so far: the first is small, the second ends at a full batch's size. */
  private filledBatches = 0;
  /** The bytes the batch gathering now is written at: less than its buffer's size for the first two. */
  private batchBytes = 0;
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
    const gathering = this.gathering ?? this.startGathering();
    const space = this.batchBytes - this.gathered;
    if (chunk.length < space) {
      this.gathered += chunk.copy(gathering, this.gathered);
      releaseChunk(chunk);
      return undefined;
    }
    this.gathered += chunk.copy(gathering, this.gathered, 0, space);
    this.filledBatches += 1;
    // Shorter than a full batch: the next batch holds it.
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
    if (chunk.length >= DIRECT_INLINE_MIN) {
      this.writeGatheredInline();
      this.hash?.update(chunk);
      this.inlineOrFail(chunk);
      releaseChunk(chunk);
    } else {
      const gathering = this.gathering ?? this.startGathering();
      const space = this.batchBytes - this.gathered;
      if (chunk.length < space) {
        this.gathered += chunk.copy(gathering, this.gathered);
      } else {
        const taken = chunk.copy(gathering, this.gathered, 0, space);
        this.gathered += taken;
        this.writeFullBatchInline(gathering);
        if (taken < chunk.length) this.gathered = chunk.copy(this.gathering ?? this.startGathering(), 0, taken);
      }
    }
    this.throwIfFailed();
  }

  /** Writes the full batch in `gathering` now; the next one is gathered in a full-size buffer (this one if it is). */
  private writeFullBatchInline(gathering: Buffer): void {
    this.writeGatheredInline();
    this.filledBatches += 1;
    if (gathering.length === BATCH_BYTES) this.batchBytes = BATCH_BYTES;
    else {
      giveBack(gathering);
      this.gathering = undefined;
    }
  }

  /**
   * Takes a buffer for the next batch: a small one until a batch of this write was filled. The
   * batch after the small one ends where a full one would have: a source of small chunks then
   * writes at the same offsets as with full batches throughout. (Measured on ext4: the same
   * 64 KiB writes, 16 KiB off those offsets, cost 1.2 times the CPU, all of it in the kernel.)
   */
  private startGathering(): Buffer {
    const gathering = takeBuffer(this.filledBatches === 0 ? FIRST_BATCH_BYTES : BATCH_BYTES);
    this.batchBytes = this.filledBatches === 1 ? BATCH_BYTES - FIRST_BATCH_BYTES : gathering.length;
    this.gathering = gathering;
    return gathering;
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

  /** Seals the full batch (nothing is in flight), then gathers `rest` (shorter than a full batch) into a new one. */
  private sealThenGather(rest: Buffer): void {
    this.seal();
    if (rest.length === 0) return;
    const gathering = this.startGathering();
    // A rest as long as the realigning batch makes it a full one: a batch never holds more than it may.
    if (rest.length >= this.batchBytes) this.batchBytes = gathering.length;
    this.gathered = rest.copy(gathering, 0);
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
