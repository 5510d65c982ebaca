import { fs } from '../disk/fs.js';

/**
 * The most bytes queued behind the write in flight before the reader waits: what one PATCH holds
 * in memory, and sixteen uploads at once sixteen times: one chunk of the socket's, as fs.WriteStream
 * holds about as much.
 */
const MAX_QUEUED_BYTES = 64 * 1024;

// A PATCH's chunks are appended in the order the client sent them, one write in flight at a time:
// a process killed mid-PATCH then leaves in the file only bytes in order, never one past a gap,
// so that the file's size stays the offset. The chunks that come while a write is in flight are
// queued and written by the writes that follow, as fs.WriteStream does, so that the request is read
// on while the disk writes: a write per chunk, each awaited before the next chunk was read, left the
// socket idle half the time.

/** Appends chunks to an upload's data file in order, from `position`. @internal */
export class AppendQueue {
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private inFlight: Promise<void> | undefined;
  private written = 0;
  private failure: { readonly error: unknown } | undefined;

  constructor(
    private readonly fd: number,
    private readonly position: number,
  ) {}

  /** Queues `chunk` after those before it; waits while the queue is full. Throws what a write threw. */
  async push(chunk: Buffer): Promise<void> {
    this.throwFailure();
    this.queued.push(chunk);
    this.queuedBytes += chunk.length;
    this.pump();
    while (this.queuedBytes > MAX_QUEUED_BYTES && this.inFlight) await this.inFlight;
    this.throwFailure();
  }

  /** Waits until every queued chunk is written; the bytes written in all. Throws what a write threw. */
  async flush(): Promise<number> {
    while (this.inFlight) await this.inFlight;
    this.throwFailure();
    return this.written;
  }

  private pump(): void {
    if (this.inFlight || this.queued.length === 0 || this.failure) return;
    const batch = this.queued;
    const bytes = this.queuedBytes;
    this.queued = [];
    this.queuedBytes = 0;
    this.inFlight = writeAllAt(this.fd, batch, this.position + this.written).then(
      () => {
        this.written += bytes;
        this.inFlight = undefined;
        this.pump();
      },
      (error: unknown) => {
        this.failure = { error };
        this.inFlight = undefined;
      },
    );
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
async function writeAllAt(fd: number, buffers: readonly Buffer[], position: number): Promise<void> {
  let at = position;
  for (const bytes of buffers) {
    for (let done = 0; done < bytes.length; ) {
      const written = await new Promise<number>((resolve, reject) => {
        fs.write(fd, bytes, done, bytes.length - done, at + done, (err, n) => (err ? reject(err) : resolve(n)));
      });
      if (written === 0) throw Object.assign(new Error('EIO: the data file took no byte of a write'), { code: 'EIO' });
      done += written;
    }
    at += bytes.length;
  }
}
