// The base of every error this library throws on purpose: TempFileError, its stable string `code`
// and the HTTP status that follows from it, and isTempFileError, which tells the library's errors
// apart across copies of the package.

/** The stable error codes, one per failure a caller may want to branch on. */
export type TempFileErrorCode =
  | 'ERR_TEMPFILE_INVALID_NAME'
  | 'ERR_TEMPFILE_INVALID_OPTION'
  | 'ERR_TEMPFILE_UNSAFE_ROOT'
  | 'ERR_TEMPFILE_ROOT_CHANGED'
  | 'ERR_TEMPFILE_DISPOSED'
  | 'ERR_TEMPFILE_MANAGER_CLOSED'
  | 'ERR_TEMPFILE_DESTINATION_EXISTS'
  | 'ERR_TEMPFILE_REPLACED'
  | 'ERR_TEMPFILE_REMOVE_FAILED'
  | 'ERR_TEMPFILE_MOUNT_POINT'
  | 'ERR_TEMPFILE_SIZE_LIMIT'
  | 'ERR_TEMPFILE_QUOTA_EXCEEDED'
  | 'ERR_TEMPFILE_ABORTED'
  | 'ERR_TEMPFILE_SOURCE'
  | 'ERR_TEMPFILE_TYPE_NOT_ACCEPTED'
  | 'ERR_TEMPFILE_VERIFY_REFUSED'
  | 'ERR_TEMPFILE_VERIFY_FAILED'
  | 'ERR_TEMPFILE_CALLBACK'
  | 'ERR_TEMPFILE_HANDOFF_NOT_FOUND'
  | 'ERR_TEMPFILE_HANDOFF_EXPIRED'
  | 'ERR_TEMPFILE_ALREADY_CLAIMED'
  | 'ERR_TEMPFILE_BAD_TICKET'
  | 'ERR_TEMPFILE_HANDOFF_MISMATCH'
  | 'ERR_TEMPFILE_LEASE_LOST'
  | 'ERR_TEMPFILE_NO_SPACE'
  | 'ERR_TEMPFILE_DISK_QUOTA'
  | 'ERR_TEMPFILE_UNSUPPORTED_FS'
  | 'ERR_TEMPFILE_IO'
  | 'ERR_TEMPFILE_UPLOAD_LIMIT'
  | 'ERR_TEMPFILE_UPLOAD_MALFORMED'
  | 'ERR_TEMPFILE_MISSING_PEER'
  | 'ERR_TEMPFILE_STORE'
  | 'ERR_TEMPFILE_BAD_RECEIPT';

/**
 * The HTTP status each code answers with (`err.statusCode`). 413 for size and count limits, 415
 * for a refused type, 400 for a malformed or truncated body, 507 for no space or quota, 499 (the
 * client closed the request) for an abort; 500 for what is the server's own fault.
 */
const STATUS_BY_CODE: Record<TempFileErrorCode, number> = {
  ERR_TEMPFILE_INVALID_NAME: 500,
  ERR_TEMPFILE_INVALID_OPTION: 500,
  ERR_TEMPFILE_UNSAFE_ROOT: 500,
  ERR_TEMPFILE_ROOT_CHANGED: 500,
  ERR_TEMPFILE_DISPOSED: 500,
  ERR_TEMPFILE_MANAGER_CLOSED: 503,
  ERR_TEMPFILE_DESTINATION_EXISTS: 500,
  ERR_TEMPFILE_REPLACED: 500,
  ERR_TEMPFILE_REMOVE_FAILED: 500,
  ERR_TEMPFILE_SIZE_LIMIT: 413,
  ERR_TEMPFILE_QUOTA_EXCEEDED: 507,
  ERR_TEMPFILE_ABORTED: 499,
  ERR_TEMPFILE_SOURCE: 400,
  ERR_TEMPFILE_TYPE_NOT_ACCEPTED: 415,
  ERR_TEMPFILE_VERIFY_REFUSED: 422,
  ERR_TEMPFILE_VERIFY_FAILED: 503,
  ERR_TEMPFILE_CALLBACK: 500,
  ERR_TEMPFILE_HANDOFF_NOT_FOUND: 500,
  ERR_TEMPFILE_HANDOFF_EXPIRED: 500,
  ERR_TEMPFILE_ALREADY_CLAIMED: 500,
  ERR_TEMPFILE_BAD_TICKET: 500,
  ERR_TEMPFILE_HANDOFF_MISMATCH: 500,
  ERR_TEMPFILE_LEASE_LOST: 500,
  ERR_TEMPFILE_NO_SPACE: 507,
  ERR_TEMPFILE_DISK_QUOTA: 507,
  ERR_TEMPFILE_IO: 500,
  ERR_TEMPFILE_UPLOAD_LIMIT: 413,
  ERR_TEMPFILE_UPLOAD_MALFORMED: 400,
  ERR_TEMPFILE_MOUNT_POINT: 500,
  ERR_TEMPFILE_UNSUPPORTED_FS: 500,
  ERR_TEMPFILE_MISSING_PEER: 500,
  ERR_TEMPFILE_STORE: 503,
  ERR_TEMPFILE_BAD_RECEIPT: 400,
};

/** Options accepted by every {@link TempFileError} constructor. */
export interface TempFileErrorOptions {
  /** The underlying error (`err.cause`). */
  readonly cause?: unknown;
  /** The path the failed operation was about (`err.path`). */
  readonly path?: string;
  /** What the developer can do (`err.advice`). */
  readonly advice?: string;
}

/** The fields of a server failure its client's answer has of its own. */
const OWN_TO_ANSWER: ReadonlySet<string> = new Set(['message', 'stack', 'cause']);

/** What a client reads of a server failure, by status: never the failure itself. */
const SERVER_FAILURE_DETAIL: Readonly<Record<number, string>> = {
  503: 'the server cannot take this request now; try again later',
  507: 'the server has no room for this upload now; try again later',
};

/**
 * A server failure (a {@link TempFileError} with `expose: false`, a 5xx) as the client may read
 * it, for an adapter whose rejection reaches a framework's error handler that sends
 * `err.message` (Fastify's default handler does): an error of the same class, `code`,
 * `statusCode`, brand and fields, whose message is only a sentence for the client (`the server
 * has no room for this upload now; try again later`), and whose `cause` is `error` itself, with the path and the system's
 * text, for the server's log (pino prints a cause's message and stack with the error's). Any
 * other value, a client's refusal (exposed already) included, is returned as it is. @internal
 * @throws Never. It builds the error from `error`'s own fields.
 */
export function forClientAnswer<E>(error: E): E {
  if (!isTempFileError(error) || error.expose || error.statusCode < 500) return error;
  const status = error.statusCode;
  const message = SERVER_FAILURE_DETAIL[status] ?? 'the server failed on this request';
  const options: TempFileErrorOptions = { cause: error, ...(error.path !== undefined && { path: error.path }), ...(error.advice !== undefined && { advice: error.advice }) };
  // Built by TempFileError's constructor as an instance of the error's own class (`instanceof`
  // and `name` hold), then given the subclass's fields (`syscallCode`, `reason`...) as they are.
  const ownClass = typeof error.constructor === 'function' ? error.constructor : TempFileError;
  const answer = Reflect.construct(TempFileError, [error.code, message, options], ownClass) as TempFileError;
  for (const key of Object.getOwnPropertyNames(error)) {
    if (OWN_TO_ANSWER.has(key) || (key !== 'statusCode' && Object.prototype.hasOwnProperty.call(answer, key))) continue;
    const field = Object.getOwnPropertyDescriptor(error, key);
    if (field) Object.defineProperty(answer, key, field);
  }
  return answer as E;
}

// Shared by every copy of the package in a process (its ESM and CJS builds, two installed
// versions): `Symbol.for` returns the same symbol to all of them.
const ERROR_BRAND = Symbol.for('tempfile-manager.error');

/**
 * The base class of every error thrown by tempfile-manager. To test for one across the ESM and
 * CJS copies of the package, where `instanceof` can fail, use {@link isTempFileError}.
 *
 * @example
 * try { mgr.file(userSuffix) } catch (err) {
 *   if (err instanceof TempFileError && err.code === 'ERR_TEMPFILE_INVALID_NAME') reply(400);
 * }
 */
export class TempFileError extends Error {
  /** A stable, documented identifier of the failure. */
  readonly code: TempFileErrorCode;
  /** The path the failed operation was about, when there is one. */
  readonly path: string | undefined;
  /**
   * The HTTP status that answers it, read by Express's and Fastify's error handlers: 413 a size or
   * count limit, 415 a refused type, 400 a malformed body, 507 no space or quota, 499 the client
   * went away, 422 (or the hook's own 4xx) a file a `verify` hook refused, 503 the manager closed,
   * a store failed or a `verify` hook gave no answer; 500 otherwise.
   */
  readonly statusCode: number;
  /**
   * True for a 4xx: the message is written for the client (`the data is larger than 1048576
   * bytes`) and may be sent to it, beside {@link statusCode}; what the developer can do is {@link advice}.
   */
  readonly expose: boolean;
  /** What the developer can do about it, kept off a message the client sees; log it with the error. */
  readonly advice: string | undefined;

  /**
   * Makes an error with a stable `code`; `statusCode` and `expose` follow from the code.
   * @throws Never. It only builds the error from its arguments.
   */
  constructor(code: TempFileErrorCode, message: string, options: TempFileErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.path = options.path;
    this.statusCode = STATUS_BY_CODE[code] ?? 500;
    this.expose = this.statusCode >= 400 && this.statusCode < 500;
    this.advice = options.advice;
    Object.defineProperty(this, 'name', { value: new.target.name, enumerable: false, configurable: true });
    Object.defineProperty(this, ERROR_BRAND, { value: true, enumerable: false });
    // V8 keeps a stack unformatted until it is first read, and with it each frame's receiver and
    // function: a refusal kept unprinted pinned what the failed call held (a spool's bytes, 128
    // KiB an error). Formatted now, the error holds a string: a few µs more per error. A throwing
    // Error.prepareStackTrace of the app's must not make the constructor throw.
    try {
      void this.stack;
    } catch {
      // the stack stays unformatted: nothing else is lost
    }
  }
}

/**
 * True when `value` is an error of tempfile-manager, even one another copy of the package made
 * (its CJS build beside its ESM build), where `instanceof` is false: it checks the brand
 * `Symbol.for('tempfile-manager.error')` every copy puts on its errors.
 *
 * @example
 * try { await mgr.write(req, { maxBytes }) } catch (err) {
 *   if (isTempFileError(err) && err.code === 'ERR_TEMPFILE_SIZE_LIMIT') return reply(413);
 *   throw err;
 * }
 * @throws Never: it reads one property of `value` (a `Proxy`'s trap may throw its own error).
 */
export function isTempFileError(value: unknown): value is TempFileError {
  return typeof value === 'object' && value !== null && (value as { [ERROR_BRAND]?: unknown })[ERROR_BRAND] === true;
}
