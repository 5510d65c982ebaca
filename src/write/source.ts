import { AbortedError, InvalidOptionError, isTempFileError, SourceError, systemErrorCode, TempFileError } from '../base/errors.js';
import { describe } from '../base/names.js';
import { builtin } from '../base/builtin.js';
import type { Readable } from 'node:stream';
const { finished, Readable: NodeReadable } = builtin('node:stream');

/** What `write()` accepts: a stream, an (async) iterable of chunks, or the bytes themselves. */
export type WriteSource =
  | Readable
  | NodeJS.ReadableStream
  | ReadableStream<Uint8Array | string>
  | AsyncIterable<Uint8Array | string>
  | Iterable<Uint8Array | string>
  | Uint8Array
  | string;

/** A pull-based view of any source, with a way to make its producer stop. @internal */
export interface SourceReader {
  /** The next chunk as bytes, or undefined at the end; a failure is typed ({@link toSourceError}). */
  next(): Promise<Buffer | undefined>;
  /**
   * Stops the producer: destroys a stream (pauses a request), cancels a web stream, returns an
   * iterator. A `next()` pending then, and every one after, rejects with `reason` (the consumer's
   * own failure, so that it is what its caller gets), else with an {@link AbortedError}: a stopped
   * source never looks ended, and no read waits for bytes nobody will take.
   */
  stop(reason?: unknown): void;
  /** True when `stop()` settles a pending `next()` itself (else `openSource()` wraps the reader so that it does). */
  readonly settlesOnStop?: boolean;
}

/** Wraps a source in a {@link SourceReader}; refuses what is not a source. */
export function openSource(source: unknown): SourceReader {
  const reader = readerOf(source);
  return reader.settlesOnStop ? reader : settledByStop(reader);
}

/**
 * The one place where `stop()` settles a pending read, whatever the source: a Readable detached
 * from, a request only paused, an async generator whose `return()` queues behind its pending
 * `next()`, a web stream whose cancel ends its read as if whole.
 */
function settledByStop(reader: SourceReader): SourceReader {
  let stopped: { reason: unknown } | undefined;
  let rejectPending: ((reason: unknown) => void) | undefined;
  return {
    next: () => {
      if (stopped) return Promise.reject(stopped.reason);
      const read = reader.next();
      return new Promise((resolve, reject) => {
        rejectPending = reject;
        read.then(resolve, reject);
      });
    },
    stop: (reason?: unknown) => {
      if (stopped) return;
      stopped = { reason: stopReason(reason) };
      rejectPending?.(stopped.reason);
      rejectPending = undefined;
      reader.stop();
    },
  };
}

function readerOf(source: unknown): SourceReader {
  if (typeof source === 'string' || source instanceof Uint8Array) return singleChunk(toBuffer(source));
  if (typeof source !== 'object' || source === null) return refuse(source);
  if (isWebStream(source)) return webStreamReader(source);
  if (source instanceof NodeReadable || isNodeStream(source)) return nodeStreamReader(source as NodeStreamLike);
  if (Symbol.asyncIterator in source) {
    return iteratorReader((source as AsyncIterable<unknown>)[Symbol.asyncIterator]());
  }
  if (Symbol.iterator in source) return iteratorReader((source as Iterable<unknown>)[Symbol.iterator]());
  return refuse(source);
}

function refuse(source: unknown): never {
  throw new InvalidOptionError(
    'source',
    `write() takes a Readable, a web ReadableStream, an (async) iterable of Uint8Array or string chunks, ` +
      `a Uint8Array or a string; got ${describe(source)}.`,
  );
}

/** A chunk as a Buffer (no copy for a Uint8Array); strings are UTF-8. */
export function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new SourceError(
    `The source produced ${describe(chunk)}, not a Uint8Array or string chunk: ` +
      'give write() bytes or text (an object-mode stream must be mapped to bytes first).',
  );
}

function singleChunk(chunk: Buffer): SourceReader {
  let done = false;
  let stopped: { readonly reason: unknown } | undefined;
  return {
    settlesOnStop: true, // its reads settle at once: none is ever pending
    next: () => {
      if (stopped) return Promise.reject(stopped.reason);
      const next = done ? undefined : chunk;
      done = true;
      return Promise.resolve(next);
    },
    stop: (reason?: unknown) => {
      stopped ??= { reason: stopReason(reason) };
      done = true;
    },
  };
}

/** Why reads fail once a source was stopped: the consumer's failure, else an {@link AbortedError}. */
function stopReason(reason: unknown): unknown {
  return reason ?? new AbortedError('the read was stopped before the source ended');
}

function isWebStream(source: object): source is ReadableStream<unknown> {
  return typeof (source as ReadableStream).getReader === 'function' && typeof (source as ReadableStream).tee === 'function';
}

function isNodeStream(source: object): boolean {
  const candidate = source as { pipe?: unknown; on?: unknown; read?: unknown };
  return typeof candidate.pipe === 'function' && typeof candidate.on === 'function' && typeof candidate.read === 'function';
}

type NodeStreamLike = NodeJS.ReadableStream & { destroy?: (error?: Error) => void };

function nodeStreamReader(stream: NodeStreamLike): SourceReader {
  if (stream instanceof NodeReadable) {
    // A request is only paused on stop: destroying it would kill its response too, and the app
    // must still answer (413...) while TCP flow control holds the client back.
    return readableReader(stream, isHttpRequest(stream) ? () => stream.pause() : () => stream.destroy());
  }
  const iterator: AsyncIterator<unknown> =
    Symbol.asyncIterator in stream
      ? (stream as AsyncIterable<unknown>)[Symbol.asyncIterator]()
      : NodeReadable.prototype[Symbol.asyncIterator].call(stream as Readable);
  const reader = iteratorReader(iterator);
  return { next: reader.next, stop: () => stopNodeStream(stream, reader) };
}

type PendingRead = { resolve: (chunk: Buffer | undefined) => void; reject: (error: unknown) => void };

/**
 * A Readable, chunk by chunk as it emits them ('data'), paused whenever no read waits. Not its
 * async iterator: that calls `read()`, which hands out everything buffered joined into a new
 * buffer, a copy of every byte whenever the producer runs ahead (a socket, busboy), and garbage
 * that makes the heap grow. Nothing stays attached to the stream once it ended or `stop()` ran,
 * so an error handler may still `resume()` a request to drain it.
 */
function readableReader(stream: Readable, halt: () => void): SourceReader {
  const state: ReadState = { queue: [], pending: undefined, outcome: undefined };
  const detach = () => {
    stream.off('data', onData);
    stopWatching();
  };
  const onData = (chunk: unknown) => {
    const read = state.pending;
    state.pending = undefined;
    if (read) deliver(read, chunk);
    else {
      state.queue.push(chunk);
      stream.pause();
    }
  };
  stream.on('data', onData);
  stream.pause();
  const stopWatching = finished(stream, { writable: false }, (error) => {
    state.outcome = { error: error ?? undefined };
    detach();
    const read = state.pending;
    state.pending = undefined;
    if (read) answer(state, stream, read);
  });
  // It settles its own pending read on stop (no wrapper, and no promise more per chunk: this is
  // the reader of every upload and stream).
  let stopped: { readonly reason: unknown } | undefined;
  return {
    settlesOnStop: true,
    next: () => (stopped ? Promise.reject(stopped.reason) : new Promise((resolve, reject) => answer(state, stream, { resolve, reject }))),
    stop: (reason?: unknown) => {
      if (stopped) return;
      stopped = { reason: stopReason(reason) };
      const read = state.pending;
      state.pending = undefined;
      read?.reject(stopped.reason);
      if (state.outcome) return;
      state.outcome = {};
      state.queue.length = 0;
      detach();
      halt();
    },
  };
}

/** What a stream's reader holds: the chunks read ahead, the read waiting for one, and how the stream ended. */
interface ReadState {
  readonly queue: unknown[];
  pending: PendingRead | undefined;
  outcome: { error?: unknown } | undefined;
}

/** Answers `read` from what the stream gave, else waits for its next chunk. */
function answer(state: ReadState, stream: Readable, read: PendingRead): void {
  if (state.queue.length > 0) deliver(read, state.queue.shift());
  else if (state.outcome?.error !== undefined) read.reject(toSourceError(state.outcome.error));
  else if (state.outcome) read.resolve(undefined);
  else {
    state.pending = read;
    stream.resume();
  }
}

function deliver(read: PendingRead, chunk: unknown): void {
  try {
    read.resolve(toBuffer(chunk));
  } catch (error) {
    read.reject(error);
  }
}

function stopNodeStream(stream: NodeStreamLike, reader: SourceReader): void {
  // A pending read would keep an iterator's return() waiting: destroying the stream ends it now.
  if (typeof stream.destroy === 'function') stream.destroy();
  else reader.stop();
}

function isHttpRequest(stream: object): boolean {
  const candidate = stream as { headers?: unknown; socket?: unknown; httpVersion?: unknown };
  return typeof candidate.headers === 'object' && typeof candidate.socket === 'object' && typeof candidate.httpVersion === 'string';
}


function webStreamReader(stream: ReadableStream<unknown>): SourceReader {
  const reader = stream.getReader();
  const onResult = (result: { done?: boolean; value?: unknown }) => (result.done ? undefined : toBuffer(result.value));
  return {
    next: () => reader.read().then(onResult, rejectAsSourceError),
    stop: () => {
      reader.cancel().catch(() => {});
    },
  };
}

function iteratorReader(iterator: Iterator<unknown> | AsyncIterator<unknown>): SourceReader {
  let finished = false;
  const onResult = (result: IteratorResult<unknown>): Buffer | undefined => {
    if (!result.done) return toBuffer(result.value);
    finished = true;
    return undefined;
  };
  // One promise per chunk, not an async function's two: this runs for every chunk of a write,
  // and a sync iterator's result needs no `then`.
  return {
    next: () => {
      try {
        const result = iterator.next();
        if (isThenable(result)) return result.then(onResult, rejectAsSourceError);
        return Promise.resolve(onResult(result));
      } catch (err) {
        return rejectAsSourceError(err);
      }
    },
    stop: () => {
      if (finished) return;
      finished = true;
      try {
        Promise.resolve(iterator.return?.()).catch(() => {});
      } catch {
        // A throwing return() must not hide the failure that made us stop.
      }
    },
  };
}

function isThenable(value: unknown): value is PromiseLike<IteratorResult<unknown>> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

// How Node reports a peer that went away: the request stream errors or closes early.
const CLIENT_GONE = new Set(['ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', 'ABORT_ERR']);

/** A source's failure as a typed error: the client went away ({@link AbortedError}), or {@link SourceError}. */
function toSourceError(err: unknown): TempFileError {
  if (isTempFileError(err)) return err;
  const code = systemErrorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if ((code && CLIENT_GONE.has(code)) || message === 'aborted') {
    return new AbortedError('the source closed before its end: the client went away', err);
  }
  return new SourceError(`The source failed: ${message}. Nothing was kept.`, err);
}

function rejectAsSourceError(err: unknown): Promise<never> {
  return Promise.reject(toSourceError(err));
}
