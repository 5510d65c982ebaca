import { isTempFileError, StoreError, type TempFileError } from '../base/errors.js';
import { builtin } from '../base/builtin.js';
const { Transform } = builtin('node:stream');
type Readable = import('node:stream').Readable;
type Transform = import('node:stream').Transform;

// The port every object store plugs into the engine through: the requests the engine makes
// (`ObjectIo`), and the one error they fail with (`ObjectIoError`), whose `kind` is all the engine
// reads. Each store's own I/O (s3/io.ts, azure/io.ts) turns its SDK's failures into it; what the
// caller finally gets is a `StoreError` worded in that store's terms (`storeFailure`).

/** An object's text and its ETag. */
export interface TextObject {
  readonly etag: string;
  readonly text: string;
}

/** A listed object. */
export interface ListedObject {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
}

/** The condition of a write: create only (`If-None-Match: *`), or replace only this ETag (`If-Match`). */
export type WriteCondition = { readonly create: true } | { readonly ifMatch: string };

/**
 * What a failed request was, as the engine tells failures apart:
 * - `condition-failed`: a conditional write refused (another writer got there first);
 * - `not-found`: no such key; `no-container`: no such bucket or container;
 * - `denied`: the credentials refused; `refused-parts`: a multipart completion's parts are not the upload's;
 * - `no-answer`: none came (a connection lost, a timeout); `failed`: any other answer.
 */
export type IoFailureKind = 'condition-failed' | 'not-found' | 'no-container' | 'denied' | 'refused-parts' | 'no-answer' | 'failed';

/** Networking error codes a message names as they are. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET']);

// Told by its brand, not `instanceof` (test/integration/error-brand.test.ts): one made by another
// copy of the library is one too.
const BRAND = Symbol.for('tempfile-manager.object-io-error');

/**
 * A request of an {@link ObjectIo} that failed. It carries the kind of failure, the HTTP status
 * and the store's own error code, never the SDK's message (which may quote the request).
 */
export class ObjectIoError extends Error {
  readonly kind: IoFailureKind;
  /** The HTTP status, when an answer came. */
  readonly status: number | undefined;
  /** The store's error code (`PreconditionFailed`, `BlobAlreadyExists`...), when it gave one. */
  readonly storeCode: string | undefined;
  /** For `no-answer`: our own timeout stopped the request. */
  readonly timedOut: boolean;
  /** For `no-answer`: the networking code (`ECONNRESET`...), when one was given. */
  readonly networkCode: string | undefined;

  constructor(kind: IoFailureKind, details: { status?: number; storeCode?: string; timedOut?: boolean; networkCode?: string; name?: string } = {}) {
    super(`the store ${details.status === undefined ? 'did not answer' : `answered ${details.status}`} (${details.storeCode ?? details.networkCode ?? details.name ?? kind})`);
    this.name = details.name ?? 'ObjectIoError';
    this.kind = kind;
    this.status = details.status;
    this.storeCode = details.storeCode;
    this.timedOut = details.timedOut ?? false;
    this.networkCode = details.networkCode !== undefined && NETWORK_CODES.has(details.networkCode) ? details.networkCode : undefined;
  }
}
Object.defineProperty(ObjectIoError.prototype, BRAND, { value: true });

/** Whether `err` is an {@link ObjectIoError} (of any copy of the library). */
export function isIoError(err: unknown): err is ObjectIoError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[BRAND] === true;
}

/** A failure with no answer: a timeout, or the networking code or name `err` carries. */
export function noAnswer(err: unknown, timedOut: boolean): ObjectIoError {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { name?: unknown; code?: unknown };
  const name = typeof e.name === 'string' ? e.name : undefined;
  const code = typeof e.code === 'string' && NETWORK_CODES.has(e.code) ? e.code : name !== undefined && NETWORK_CODES.has(name) ? name : undefined;
  const stopped = timedOut || name === 'TimeoutError' || name === 'AbortError';
  return new ObjectIoError('no-answer', { timedOut: stopped, networkCode: code, name: stopped ? 'TimeoutError' : name });
}

/** A conditional write refused. */
export function isConditionFailed(err: unknown): boolean {
  return isIoError(err) && err.kind === 'condition-failed';
}

/** No such key. */
export function isNotFound(err: unknown): boolean {
  return isIoError(err) && err.kind === 'not-found';
}

/** The parts a multipart completion listed are not the upload's (a wrong ETag, a part never sent, one too small): the client's input. */
export function isRefusedParts(err: unknown): boolean {
  return isIoError(err) && err.kind === 'refused-parts';
}

/**
 * A write that failed in a way that may have let it land: the store failed it (5xx), or no answer
 * came. Whether it landed is found by reading the object. (Ceph RGW answers 500 to a conditional
 * write that raced another on the same key.)
 */
export function mayHaveLanded(err: unknown): boolean {
  if (!isIoError(err)) return false;
  return err.kind === 'no-answer' || (err.kind === 'failed' && err.status !== undefined && err.status >= 500);
}

/** How a store names itself and what it advises, for {@link storeFailure}'s messages. */
export interface StoreWording {
  /** The store as a message names it: `the object store at <endpoint> (bucket "b")`. */
  readonly where: string;
  /** Its endpoint or URL, without a credential. */
  readonly endpoint: string;
  readonly timeoutMs: number;
  /** What the client is reached by: `endpoint`, `URL`. */
  readonly address: string;
  /** The call whose `timeoutMs` to raise: `s3Store`, `azureStore`. */
  readonly maker: string;
  /** What the credentials must allow. */
  readonly grant: string;
  /** The message's end when the bucket or container is missing: `has no such bucket. Create it...`. */
  readonly missing: string;
  /** Whose logs to read: `the store's logs`. */
  readonly logs: string;
  /** Fill the deprecated `s3Code` too (S3's errors always did). */
  readonly s3Codes: boolean;
}

/** The typed error a failed request is reported as: the store unreachable, refusing, or answering otherwise. */
export function storeFailure(err: unknown, action: string, wording: StoreWording): TempFileError {
  if (isTempFileError(err)) return err;
  const io = isIoError(err) ? err : noAnswer(err, false);
  const { where, endpoint } = wording;
  if (io.kind === 'no-answer') {
    const why = io.timedOut ? `no answer within ${wording.timeoutMs} ms` : (io.networkCode ?? `no HTTP answer${io.name !== 'ObjectIoError' ? `: ${io.name}` : ''}`);
    return new StoreError(
      'unreachable',
      `Could not ${action}: ${where} did not answer (${why}). Check that it runs and that the client's ${wording.address} is right; raise ${wording.maker}({ timeoutMs }) for a slow link.`,
      { endpoint },
    );
  }
  const code = io.storeCode;
  const details = { endpoint, storeCode: code, ...(wording.s3Codes && { s3Code: code }), httpStatus: io.status };
  if (io.kind === 'denied') {
    return new StoreError('denied', `Could not ${action}: ${where} refused the client's credentials (${code ?? `HTTP ${io.status}`}). Give the client ${wording.grant}.`, details);
  }
  if (io.kind === 'no-container') return new StoreError('no-bucket', `Could not ${action}: ${where} ${wording.missing}`, details);
  return new StoreError('failed', `Could not ${action}: ${where} answered HTTP ${io.status}${code ? ` ${code}` : ''}. Retry; if it persists, see ${wording.logs}.`, details);
}

/**
 * The requests the object-store engine makes of a store (s3/io.ts, azure/io.ts). Each rejects
 * with an {@link ObjectIoError}, or with a {@link TempFileError} of its own making.
 */
export interface ObjectIo {
  /** The store's kind as a heartbeat's address begins: `s3`, `azure` (`s3://bucket/key`). */
  readonly scheme: string;
  /** The bucket (or account/container) as heartbeats and messages name it. */
  readonly bucket: string;
  readonly timeoutMs: number;
  readonly partSize: number;
  /**
   * True when a stream of known size goes up in one request as it is read ({@link upload}), so
   * that reading a small file whole first ({@link putBytes}) only delays its sending.
   */
  readonly streamsKnownSize: boolean;
  /** The typed error a failed request is reported as ({@link storeFailure} in the store's words). */
  failure(err: unknown, action: string): Promise<TempFileError>;
  /** Writes a small object under a condition; resolves with its new ETag. */
  put(key: string, body: string, condition: WriteCondition, metadata?: Record<string, string>): Promise<string>;
  /** Reads a small object; `undefined` when there is none. */
  getText(key: string): Promise<TextObject | undefined>;
  /** The object's bytes as a stream, with its user metadata (names in lower case). */
  getStream(key: string): Promise<{ body: Readable; metadata: Record<string, string> }>;
  /** Copies an object within the store, its metadata with it. */
  copy(from: string, to: string): Promise<void>;
  /** Deletes an object (a missing one is fine). */
  delete(key: string): Promise<void>;
  /** Every object under `prefix`, page by page. */
  list(prefix: string): AsyncGenerator<ListedObject[]>;
  /** Multipart uploads begun under `prefix` and never completed nor aborted. */
  uploads(prefix: string): Promise<{ key: string; uploadId: string }[]>;
  /** Writes a small object with no condition (a heartbeat that only its writer rewrites). */
  putPlain(key: string, body: string): Promise<void>;
  /** Begins a multipart upload with user metadata; resolves with its upload id. */
  createUpload(key: string, metadata: Record<string, string>): Promise<string>;
  /** Sends one part, bounded by `timeoutMs` and by `signal`; resolves with its ETag. */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, signal: AbortSignal): Promise<string>;
  /** Completes a multipart upload: the object appears whole. */
  completeUpload(key: string, uploadId: string, parts: readonly { ETag: string; PartNumber: number }[]): Promise<void>;
  /** Aborts a multipart upload (its parts go). */
  abortUpload(key: string, uploadId: string): Promise<void>;
  /** Writes an object whole from memory; `sha256`, the body's in hex, when the caller has it. */
  putBytes(key: string, body: Buffer, metadata: Record<string, string>, sha256?: string): Promise<void>;
  /** Uploads a stream in constant memory; `size`, when known: the bytes `body` will give. */
  upload(key: string, body: Readable, metadata: Record<string, string>, size?: number): Promise<void>;
}

/** The bound of one request: its signal, and what stops its timer once the request is over. */
export interface RequestTimeout {
  /** Aborts with a `TimeoutError` once the time passed. */
  readonly signal: AbortSignal;
  /** Stops the timer: call it once the request, its answer read, is over. */
  clear(): void;
}

/**
 * A signal that aborts with a `TimeoutError` once `ms` passed. Not `AbortSignal.timeout()`: its
 * timer holds it weakly, so a signal only another one holds weakly (as `AbortSignal.any()` holds
 * its sources) can be garbage-collected before it fires (Node 20: after a collection none of them
 * fired), and a request to a store that stopped answering then waits forever. Here the timer holds
 * the controller, so the signal fires whoever holds it; the timer does not hold the process, as
 * `AbortSignal.timeout()`'s does not. Cleared with its request: a timer left pending holds about
 * 1 KiB for `ms` (30 s by default), 30 MiB at 1,000 requests a second.
 */
export function requestTimeout(ms: number): RequestTimeout {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(timeoutError(ms)), ms);
  timer.unref();
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** The error of a request that got no answer (or no more bytes) within `timeoutMs`. */
export function timeoutError(timeoutMs: number): Error {
  return Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' });
}

/**
 * A pass-through that calls `stalled` once no chunk went through it for `timeoutMs` (one timer,
 * re-armed by each chunk: `refresh()` allocates nothing), and again after its end when `untilAnswer`
 * (a request's body, whose answer comes after its last byte). Its timer is cleared when it closes.
 */
export function idleWatch(timeoutMs: number, stalled: () => void, untilAnswer = false): Transform {
  const timer = setTimeout(stalled, timeoutMs);
  if (untilAnswer) timer.unref();
  const watched = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      timer.refresh();
      done(null, chunk);
    },
    flush(done) {
      if (untilAnswer) timer.refresh();
      else clearTimeout(timer);
      done();
    },
  });
  watched.once('close', () => clearTimeout(timer));
  return watched;
}
