/**
 * Every error this library throws on purpose is a {@link TempFileError} with a stable string
 * `code`: branch on `code` (or `instanceof` a subclass), never on the message.
 * @module
 */

/** The stable error codes, one per failure a caller may want to branch on. */
export type TempFileErrorCode =
  | 'ERR_TEMPFILE_INVALID_NAME'
  | 'ERR_TEMPFILE_INVALID_OPTION'
  | 'ERR_TEMPFILE_UNSAFE_ROOT'
  | 'ERR_TEMPFILE_DISPOSED'
  | 'ERR_TEMPFILE_MANAGER_CLOSED'
  | 'ERR_TEMPFILE_DESTINATION_EXISTS'
  | 'ERR_TEMPFILE_REMOVE_FAILED'
  | 'ERR_TEMPFILE_SIZE_LIMIT'
  | 'ERR_TEMPFILE_QUOTA_EXCEEDED'
  | 'ERR_TEMPFILE_ABORTED'
  | 'ERR_TEMPFILE_SOURCE'
  | 'ERR_TEMPFILE_HANDOFF_NOT_FOUND'
  | 'ERR_TEMPFILE_HANDOFF_EXPIRED'
  | 'ERR_TEMPFILE_ALREADY_CLAIMED'
  | 'ERR_TEMPFILE_BAD_TICKET'
  | 'ERR_TEMPFILE_HANDOFF_MISMATCH'
  | 'ERR_TEMPFILE_LEASE_LOST'
  | 'ERR_TEMPFILE_NO_SPACE'
  | 'ERR_TEMPFILE_DISK_QUOTA'
  | 'ERR_TEMPFILE_IO';

/** Options accepted by every {@link TempFileError} constructor. */
export interface TempFileErrorOptions {
  /** The underlying error, usually a Node.js system error. */
  readonly cause?: unknown;
  /** The path the failed operation was about, when there is one. */
  readonly path?: string;
}

/**
 * The base class of every error thrown by tempfile-manager.
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

  constructor(code: TempFileErrorCode, message: string, options: TempFileErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.path = options.path;
    Object.defineProperty(this, 'name', { value: new.target.name, enumerable: false, configurable: true });
  }
}

/** A prefix, suffix or other name part was not a safe single path component. */
export class InvalidNameError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_INVALID_NAME';
  constructor(message: string) {
    super('ERR_TEMPFILE_INVALID_NAME', message);
  }
}

/** An option had the wrong type, an out-of-range value or an unknown name. */
export class InvalidOptionError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_INVALID_OPTION';
  /** The option that was refused. */
  readonly option: string;
  constructor(option: string, message: string) {
    super('ERR_TEMPFILE_INVALID_OPTION', message);
    this.option = option;
  }
}

/** Why a root directory was refused. */
export type UnsafeRootReason =
  | 'symlink'
  | 'not-a-directory'
  | 'wrong-owner'
  | 'writable-by-others'
  | 'missing-parent';

/** The root directory cannot be trusted: files in it could be read or swapped by others. */
export class UnsafeRootError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_UNSAFE_ROOT';
  /** What is wrong with the root. */
  readonly reason: UnsafeRootReason;
  constructor(reason: UnsafeRootReason, root: string, message: string, cause?: unknown) {
    super('ERR_TEMPFILE_UNSAFE_ROOT', message, { path: root, cause });
    this.reason = reason;
  }
}

/** A handle was used after it was disposed, removed or kept. */
export class DisposedError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_DISPOSED';
  constructor(what: string, path?: string) {
    super(
      'ERR_TEMPFILE_DISPOSED',
      `This ${what} was already disposed, removed or kept: create a new one instead of reusing it.`,
      path === undefined ? {} : { path },
    );
  }
}

/** The manager was closed; it creates nothing more. */
export class ManagerClosedError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_MANAGER_CLOSED';
  constructor() {
    super(
      'ERR_TEMPFILE_MANAGER_CLOSED',
      'This TempFileManager was closed: create a new TempFileManager, or close it only at shutdown.',
    );
  }
}

/** `keep()` found a file at the destination and was not asked to overwrite it. */
export class DestinationExistsError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_DESTINATION_EXISTS';
  constructor(destination: string, cause?: unknown) {
    super(
      'ERR_TEMPFILE_DESTINATION_EXISTS',
      `Cannot keep the file at ${destination}: something already exists there. ` +
        'Choose another destination, or pass { overwrite: true } to replace it.',
      { path: destination, cause },
    );
  }
}

/** Removing one or more temp files failed; `errors` holds every failure, not just the first. */
export class RemoveError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_REMOVE_FAILED';
  /** One error per path that could not be removed. */
  readonly errors: readonly Error[];
  constructor(errors: readonly Error[]) {
    const first = errors[0];
    super(
      'ERR_TEMPFILE_REMOVE_FAILED',
      `Could not remove ${errors.length} temp ${errors.length === 1 ? 'path' : 'paths'}` +
        (first ? ` (first: ${first.message})` : '') +
        '. Check the permissions under the root; a sweep removes what is left once the cause is fixed.',
      { cause: first, path: first && 'path' in first ? String(first.path) : undefined },
    );
    this.errors = errors;
  }
}

/** A write would pass its `maxBytes`; the source was stopped at the limit. */
export class SizeLimitError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_SIZE_LIMIT';
  /** The `maxBytes` that was passed. */
  readonly limit: number;
  constructor(limit: number) {
    super(
      'ERR_TEMPFILE_SIZE_LIMIT',
      `The data is larger than maxBytes (${limit} bytes): nothing was kept. ` +
        'Raise `maxBytes` if such sizes are expected, or answer the client with 413 Payload Too Large.',
    );
    this.limit = limit;
  }
}

/** A write would make the manager's live files pass `maxLiveBytes`. */
export class QuotaExceededError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_QUOTA_EXCEEDED';
  /** The manager's `maxLiveBytes`. */
  readonly limit: number;
  constructor(limit: number) {
    super(
      'ERR_TEMPFILE_QUOTA_EXCEEDED',
      `This manager's live files would hold more than maxLiveBytes (${limit} bytes): nothing was kept. ` +
        'Dispose files sooner, raise `maxLiveBytes`, or retry later (503).',
    );
    this.limit = limit;
  }
}

/** A write was aborted by its `signal`, or its source (a client) went away. */
export class AbortedError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_ABORTED';
  constructor(why: string, cause?: unknown) {
    super('ERR_TEMPFILE_ABORTED', `The write was aborted (${why}): nothing was kept.`, { cause });
  }
}

/** The source of a write failed or produced something that is not bytes. */
export class SourceError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_SOURCE';
  constructor(message: string, cause?: unknown) {
    super('ERR_TEMPFILE_SOURCE', message, { cause });
  }
}

/** No handoff entry matches the ticket: it was consumed, swept, or never existed here. */
export class HandoffNotFoundError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND';
  constructor(id: string) {
    super(
      'ERR_TEMPFILE_HANDOFF_NOT_FOUND',
      `No handoff entry for ticket ${id}: it was consumed already (a retried job), swept after it expired, ` +
        'or the ticket comes from a manager with another root. Treat the job as done or failed; do not retry it.',
    );
  }
}

/** The ticket's entry expired before it was claimed; the sweep removes it. */
export class HandoffExpiredError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_HANDOFF_EXPIRED';
  /** When it expired (epoch ms). */
  readonly expiredAt: number;
  constructor(id: string, expiredAt: number) {
    super(
      'ERR_TEMPFILE_HANDOFF_EXPIRED',
      `The handoff entry ${id} expired at ${new Date(expiredAt).toISOString()} before it was claimed. ` +
        'Give handoff() a longer ttlMs if workers can lag this much.',
    );
    this.expiredAt = expiredAt;
  }
}

/** Another live worker holds the lease of this entry. */
export class AlreadyClaimedError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_ALREADY_CLAIMED';
  /** Milliseconds after which the lease may have gone stale if its holder died: retry then. */
  readonly retryAfterMs: number;
  constructor(id: string, retryAfterMs: number) {
    super(
      'ERR_TEMPFILE_ALREADY_CLAIMED',
      `The handoff entry ${id} is claimed by another live worker. Retry in ${retryAfterMs} ms: ` +
        'if that worker died, its lease is stale by then.',
    );
    this.retryAfterMs = retryAfterMs;
  }
}

/** The ticket is not a valid ticket: wrong type, unknown version, bad or extra field. */
export class BadTicketError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_BAD_TICKET';
  /** The field that was refused, when there is one. */
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super('ERR_TEMPFILE_BAD_TICKET', `Bad handoff ticket: ${message}. Pass the ticket handoff() returned, unchanged.`);
    this.field = field;
  }
}

/** The entry's bytes do not match the ticket (size, or digest when asked to verify it). */
export class HandoffMismatchError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_HANDOFF_MISMATCH';
  constructor(id: string, what: string) {
    super(
      'ERR_TEMPFILE_HANDOFF_MISMATCH',
      `The handoff entry ${id} does not match its ticket (${what}): it was refused and left for the sweep.`,
    );
  }
}

/** The lease was taken over by another worker (this one stalled past `staleMs`). */
export class LeaseLostError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_LEASE_LOST';
  constructor(id: string) {
    super(
      'ERR_TEMPFILE_LEASE_LOST',
      `The lease on handoff entry ${id} was lost: another worker claimed it after this one stalled past staleMs. ` +
        'Drop this copy of the work; the other worker owns the entry now.',
    );
  }
}

/** The file system is full (ENOSPC), or a write would pass the `minFreeBytes` floor. */
export class NoSpaceError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_NO_SPACE';
  constructor(path: string, cause?: unknown, message?: string) {
    super(
      'ERR_TEMPFILE_NO_SPACE',
      message ?? `No space left on the file system of ${path}: free space there, or point \`root\` at a larger volume.`,
      { path, cause },
    );
  }
}

/** The user's disk quota on the file system is exhausted (EDQUOT). */
export class DiskQuotaError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_DISK_QUOTA';
  constructor(path: string, cause?: unknown) {
    super(
      'ERR_TEMPFILE_DISK_QUOTA',
      `The disk quota of this user is exhausted on the file system of ${path}: remove files or raise the quota.`,
      { path, cause },
    );
  }
}

/** Any other file-system failure (EIO, EACCES, EMFILE, ...); `cause` holds the system error. */
export class FileSystemError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_IO';
  /** The system error code, such as `EIO` or `EMFILE`. */
  readonly syscallCode: string | undefined;
  constructor(action: string, path: string, cause: unknown) {
    const syscallCode = systemErrorCode(cause);
    super(
      'ERR_TEMPFILE_IO',
      `Could not ${action} ${path}: ${syscallCode ?? 'unknown error'}. ${adviceFor(syscallCode)}`,
      { path, cause },
    );
    this.syscallCode = syscallCode;
  }
}

function adviceFor(code: string | undefined): string {
  switch (code) {
    case 'EMFILE':
    case 'ENFILE':
      return 'Too many open files: close streams you no longer need, or raise the limit (ulimit -n).';
    case 'EACCES':
    case 'EPERM':
      return 'Permission denied: check the owner and mode of the root directory.';
    case 'EIO':
      return 'The device reported an I/O error: check the disk and the kernel log.';
    case 'EROFS':
      return 'The file system is read-only: point `root` at a writable volume.';
    default:
      return 'See `cause` for the system error.';
  }
}

/** The `code` of a Node.js system error, or undefined. @internal */
export function systemErrorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') {
    return err.code;
  }
  return undefined;
}

/** Maps a failed fs call to the typed error callers branch on. @internal */
export function toFileSystemError(action: string, path: string, err: unknown): TempFileError {
  if (err instanceof TempFileError) return err;
  switch (systemErrorCode(err)) {
    case 'ENOSPC':
      return new NoSpaceError(path, err);
    case 'EDQUOT':
      return new DiskQuotaError(path, err);
    default:
      return new FileSystemError(action, path, err);
  }
}
