import type { Readable } from 'node:stream';

// A request's body chunk is a buffer Node made for that read alone (its parser copies each one).
// Once its bytes are on disk nobody needs it, but V8 frees such a buffer only when a collection
// finds it dead, and an upload server that makes few objects per byte runs few collections: at
// 32 uploads of 1 MiB the dead chunks waiting for one were 20 to 40 MiB of the peak RSS
// (bench/analyses/uploads.md). A chunk only the library holds is freed as soon as it is written.

/** The memory of chunks that reached nobody but the library's own reader. */
const owned = new WeakSet<ArrayBufferLike>();

/** Smaller chunks are left to the collector: freeing one costs about what copying it does. */
const RELEASE_MIN_BYTES = 16 * 1024;

/**
 * Marks `chunk`, just emitted by `stream`, as the library's own when the library's `listeners`
 * 'data' listeners are all the stream has and it has no 'readable' one: no one else got it. Call
 * it from the library's 'data' listener, for a stream whose chunks are buffers of their own. @internal
 */
export function ownIfSoleReader(stream: Readable, chunk: unknown, listeners: number): void {
  if (stream.listenerCount('data') === listeners && stream.listenerCount('readable') === 0 && chunk instanceof Uint8Array) owned.add(chunk.buffer);
}

/**
 * Frees the memory of `chunk` now, if it is all of a buffer only the library holds (marked by
 * {@link ownIfSoleReader}); a view of part of one, and any other, is left as it is.
 * Call it once the chunk's bytes are on disk or copied. @internal
 */
export function releaseChunk(chunk: Uint8Array): void {
  const buffer = chunk.buffer;
  if (chunk.byteLength < RELEASE_MIN_BYTES || chunk.byteOffset !== 0 || chunk.byteLength !== buffer.byteLength || !owned.has(buffer)) return;
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
