import { fs } from '../disk/fs.js';
import type { IntakeSink } from '../write/intake.js';

/**
 * The most bytes queued behind the write in flight before the reader waits: what one PATCH holds
 * in memory, and sixteen uploads at once sixteen times: one chunk of the socket's, as fs.WriteStream
 * holds about as much.
 */
const MAX_QUEUED_BYTES = 64 * 1024;

/**
 * Bytes written between two flushes started while the PATCH still comes: the disk then takes an
 * upload's bytes as they arrive, and the fsync before the answer has at most this much left.
 */
const FLUSH_EVERY_BYTES = 8 * 1024 * 1024;

/**
 * Flushes in flight in this process, at most one: the disk writes one file's pages at a time
 * anyway, and the thread pool's other threads stay free for the writes.
 */
let flushesInFlight = 0;

// A PATCH's chunks are appended in the order the client sent them, one write in flight at a time:
// a process killed mid-PATCH then leaves in the file only bytes in order, never one past a gap,
// so that the file's size stays the offset. The chunks that come while a write is in flight are
// queued and written by the writes that follow, as fs.WriteStream does, so that the request is read
// on while the disk writes: a write per chunk, each awaited before the next chunk was read, left the
// socket idle half the time.
//
// Every FLUSH_EVERY_BYTES the queue starts an fdatasync beside its writes, never awaited by them:
// with one fsync before the answer, the dirty pages of a 256 MiB PATCH waited for the kernel's own
// writeback (from 10 % of memory dirty), and that fsync wrote them all while the socket stood idle.
// A flush that fails fails the PATCH: Linux reports a writeback error once per open file, so the
// fsync after it, on the same descriptor, could succeed over bytes the disk lost.

/** Appends chunks to an upload's data file in order, from `position`. @internal */
export class AppendQueue implements IntakeSink {
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private inFlight: Promise<void> | undefined;
  private flushing: Promise<void> | undefined;
  private flushedAt = 0;
  private written = 0;
  private failure: { readonly error: unknown } | undefined;

  constructor(
    private readonly fd: number,
    private readonly position: number,
  ) {}

  /** It hashes nothing: a tus upload has no digest. */
  readonly hashes = false;

  /** Bytes written so far. */
  get bytesStored(): number {
    return this.written;
  }

  /**
   * The intake's sink (`IntakeSink`): queues `chunk`, a request's own buffer, which its stream
   * never reuses, so it is kept without a copy.
   */
  write(chunk: Buffer): Promise<void> {
    return this.push(chunk);
  }

  /** Every byte written and no flush in flight. */
  async end(): Promise<void> {
    await this.flush();
  }

  /** Queues `chunk` after those before it; waits while the queue is full. Throws what a write threw. */
  async push(chunk: Buffer): Promise<void> {
    this.throwFailure();
    this.queued.push(chunk);
    this.queuedBytes += chunk.length;
    this.pump();
    while (this.queuedBytes > MAX_QUEUED_BYTES && this.inFlight) await this.inFlight;
    this.throwFailure();
  }

  /**
   * Waits until every queued chunk is written and no flush is in flight (the descriptor may be
   * fsynced and closed then); the bytes written in all. Throws what a write or a flush threw.
   */
  async flush(): Promise<number> {
    while (this.inFlight || this.flushing) await (this.inFlight ?? this.flushing);
    this.throwFailure();
    return this.written;
  }

  private pump(): void {
    if (this.inFlight || this.queued.length === 0 || this.failure) return;
    const batch = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    // Counted write by write: a batch cut short (ENOSPC) leaves its first bytes in the file.
    this.inFlight = writeAllAt(this.fd, batch, this.position + this.written, (n) => (this.written += n)).then(
      () => {
        this.inFlight = undefined;
        this.startFlush();
        this.pump();
      },
      (error: unknown) => {
        this.failure = { error };
        this.inFlight = undefined;
      },
    );
  }

  private startFlush(): void {
    if (this.flushing || flushesInFlight > 0 || this.failure || this.written - this.flushedAt < FLUSH_EVERY_BYTES) return;
    const upTo = this.written;
    flushesInFlight += 1;
    this.flushing = new Promise<void>((resolve) => {
      fs.fdatasync(this.fd, (err) => {
        flushesInFlight -= 1;
        this.flushing = undefined;
        if (err) this.failure ??= { error: err };
        else this.flushedAt = upTo;
        resolve();
      });
    });
  }

  private throwFailure(): void {
    if (this.failure) throw this.failure.error;
  }
}

/**
 * Writes `buffers` at `position`, one after the other: no copy into one buffer, whose garbage,
 * sixteen uploads at once, held the server's RSS tens of MiB above @tus/file-store's
 * (bench/tus.mjs). A short write goes on from where it stopped; one that takes nothing is an EIO,
 * never a loop.
 */
async function writeAllAt(fd: number, buffers: readonly Buffer[], position: number, onWritten: (bytes: number) => void): Promise<void> {
  let at = position;
  for (const bytes of buffers) {
    for (let done = 0; done < bytes.length; ) {
      const written = await new Promise<number>((resolve, reject) => {
        fs.write(fd, bytes, done, bytes.length - done, at + done, (err, n) => (err ? reject(err) : resolve(n)));
      });
      if (written === 0) throw Object.assign(new Error('EIO: the data file took no byte of a write'), { code: 'EIO' });
      onWritten(written);
      done += written;
    }
    at += bytes.length;
  }
}
