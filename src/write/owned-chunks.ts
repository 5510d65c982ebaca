import type { Readable } from 'node:stream';

// A request's body chunk is a buffer Node made for that read alone (its parser copies each one).
// Once its bytes are on disk nobody needs it, but V8 frees such a buffer only when a collection
// finds it dead, and an upload server that makes few objects per byte runs few collections: at
// 32 uploads of 1 MiB the dead chunks waiting for one were 20 to 40 MiB of the peak RSS
// (bench/analyses/uploads.md). A chunk only the library holds is freed as soon as it is written.

/** The chunks that reached nobody but the library's own reader, each with the body it came in. */
const owned = new WeakMap<ArrayBufferLike, BodyChunks>();

/** Smaller chunks are left to the collector: freeing one costs about what copying it does. */
const RELEASE_MIN_BYTES = 16 * 1024;

/**
 * Chunks of a body kept to be freed once the body is read: at most this many (two per file, its
 * first and its last, in the usual form), so that a body whose every chunk is written in part
 * holds no more than this until it ends.
 */
const MAX_PARTLY_WRITTEN = 16;

/**
 * The chunks of one request's body that only the library got. A chunk written whole is freed
 * once written ({@link releaseChunk}). One written in part (it also holds a boundary, a part's
 * headers or a field: the form's first and last chunks) is freed by {@link freeRest}, once the
 * parser is done with the body and every write of it has settled: views of it may be in use
 * until then. It is kept weakly: a client that stalls mid-file keeps its body unfinished for as
 * long as it likes, and a strong reference pinned its first chunk (up to 64 KiB) all that time,
 * where the collector may free it as soon as the parser is past it. @internal
 */
export class BodyChunks {
  readonly #partlyWritten: WeakRef<ArrayBufferLike>[] = [];

  /**
   * Marks `chunk`, just emitted by `stream`, as the library's own when the library's `listeners`
   * 'data' listeners are all the stream has and it has no 'readable' one: no one else got it.
   * Only a chunk that is all of its buffer: a view of part of a larger one (a runtime that hands
   * out slices of a buffer it reads into) shares its memory with what it does not show.
   * Call it from the library's 'data' listener, for a stream whose chunks are buffers of their own.
   */
  own(stream: Readable, chunk: unknown, listeners: number): void {
    if (!(chunk instanceof Uint8Array) || chunk.byteOffset !== 0 || chunk.byteLength !== chunk.buffer.byteLength) return;
    if (stream.listenerCount('data') === listeners && stream.listenerCount('readable') === 0) owned.set(chunk.buffer, this);
  }

  /** Keeps `buffer`, a chunk of which a part was written, for {@link freeRest}. */
  keep(buffer: ArrayBufferLike): void {
    if (this.#partlyWritten.length >= MAX_PARTLY_WRITTEN || this.#partlyWritten.some((kept) => kept.deref() === buffer)) return;
    this.#partlyWritten.push(new WeakRef(buffer));
  }

  /**
   * Frees the chunks written in part. Call it once the parser is done with the body and every
   * write that took its bytes has settled, and only when no chunk went anywhere but to a file.
   */
  freeRest(): void {
    for (const kept of this.#partlyWritten.splice(0)) {
      const buffer = kept.deref();
      if (buffer === undefined || owned.get(buffer) !== this) continue;
      owned.delete(buffer);
      free(buffer as ArrayBuffer);
    }
  }
}

/**
 * Frees the memory of `chunk` now if it is all of a buffer only the library holds (marked by
 * {@link BodyChunks.own}); a part of one is kept for its body's {@link BodyChunks.freeRest}.
 * Call it once the chunk's bytes are on disk or copied. @internal
 */
export function releaseChunk(chunk: Uint8Array): void {
  const buffer = chunk.buffer;
  if (buffer.byteLength < RELEASE_MIN_BYTES) return;
  const body = owned.get(buffer);
  if (body === undefined) return;
  if (chunk.byteOffset !== 0 || chunk.byteLength !== buffer.byteLength) return body.keep(buffer);
  owned.delete(buffer);
  free(buffer as ArrayBuffer);
}

type Transfer = (this: ArrayBuffer, newLength: number) => ArrayBuffer;
const transfer = (ArrayBuffer.prototype as { transfer?: Transfer }).transfer;

/**
 * Detaches `buffer`, which drops its memory at once: `transfer(0)` (Node 21 and later, Bun,
 * Deno); on Node 20, a transfer through a closed MessagePort, whose message is dropped.
 */
function free(buffer: ArrayBuffer): void {
  try {
    if (transfer) transfer.call(buffer, 0);
    else closedPort()?.postMessage(null, [buffer]);
  } catch {
    // Not transferable (Node marks some buffers so): the collector frees it.
  }
}

type Port = InstanceType<typeof MessageChannel>['port1'];
let port: Port | null | undefined;

function closedPort(): Port | null {
  if (port === undefined) {
    port = typeof MessageChannel === 'function' ? new MessageChannel().port1 : null;
    port?.close();
  }
  return port;
}
