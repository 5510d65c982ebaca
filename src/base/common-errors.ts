// The errors callers branch on, exported from the main entry: limits, no space, bad names, an
// unsafe root, a disposed handle, and the handoff's failures. The rest of the catalogue is in
// errors.ts (`tempfile-manager/errors`).
import { handoffKey } from './channels.js';
import { TempFileError } from './error-class.js';

/** A prefix, suffix or other name part was not a safe single path component. */
export class InvalidNameError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_INVALID_NAME';
  /** @throws Never. It only builds the error from its arguments. */
  constructor(message: string) {
    super('ERR_TEMPFILE_INVALID_NAME', message);
  }
}

/** Why a root directory was refused. */
export type UnsafeRootReason =
  | 'symlink'
  | 'not-a-directory'
  | 'wrong-owner'
  | 'writable-by-others'
  | 'missing-parent'
  /** The sweep or the CLI was pointed at a directory without a manager's root marker. */
  | 'not-a-manager-root'
  /** The root's path was swapped while a new manager checked it. */
  | 'changed'
  /** The path passes through a symlink another user could change (root's own, as macOS's `/var`, is followed). */
  | 'symlinked-parent';

/** The root directory cannot be trusted: files in it could be read or swapped by others. */
export class UnsafeRootError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_UNSAFE_ROOT';
  /** What is wrong with the root. */
  readonly reason: UnsafeRootReason;
  /** @throws Never. It only builds the error from its arguments. */
  constructor(reason: UnsafeRootReason, root: string, message: string, cause?: unknown) {
    super('ERR_TEMPFILE_UNSAFE_ROOT', message, { path: root, cause });
    this.reason = reason;
  }
}

/** A handle was used after it was disposed, removed or kept. */
export class DisposedError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_DISPOSED';
  /** @throws Never. It only builds the error from its arguments. */
  constructor(what: string, path?: string) {
    super(
      'ERR_TEMPFILE_DISPOSED',
      `This ${what} was already disposed, removed or kept: create a new one instead of reusing it.`,
      path === undefined ? {} : { path },
    );
  }
}

/** A write would pass its `maxBytes`; the source was stopped at the limit. */
export class SizeLimitError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_SIZE_LIMIT';
  /** The `maxBytes` that was passed. */
  readonly limit: number;
  /** The form field of the file, when the data was a file of an upload (as multer's `field`). */
  readonly field: string | undefined;
  /** @throws Never. It only builds the error from its arguments. */
  constructor(limit: number, field?: string) {
    const what = field === undefined ? 'the data is' : `the file in the field ${JSON.stringify(field.slice(0, 100))} is`;
    super('ERR_TEMPFILE_SIZE_LIMIT', `${what} larger than ${limit} bytes`, {
      advice: `The data passed maxBytes (${limit} bytes) and nothing was kept: raise \`maxBytes\` if such sizes are expected.`,
    });
    this.limit = limit;
    this.field = field;
  }
}

/** A write would make the manager's live files pass `maxLiveBytes`. */
export class QuotaExceededError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_QUOTA_EXCEEDED';
  /** The manager's `maxLiveBytes`. */
  readonly limit: number;
  /** @throws Never. It only builds the error from its arguments. */
  constructor(limit: number) {
    super(
      'ERR_TEMPFILE_QUOTA_EXCEEDED',
      `This manager's live files would hold more than maxLiveBytes (${limit} bytes): nothing was kept. ` +
        'Dispose files sooner, raise `maxLiveBytes`, or retry later (the status is 507).',
    );
    this.limit = limit;
  }
}

/** A type found from a file's first bytes (its magic number). */
export interface DetectedType {
  /** The MIME type, such as `'image/png'`. */
  readonly mime: string;
  /** The usual extension, without the dot, such as `'png'`. */
  readonly ext: string;
}

/** No handoff entry matches the ticket: it was consumed, swept, or never existed here. */
export class HandoffNotFoundError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND';
  /** @throws Never. It only builds the error from its arguments. */
  constructor(id: string) {
    super(
      'ERR_TEMPFILE_HANDOFF_NOT_FOUND',
      `No handoff entry for the ticket of handoff ${handoffKey(id)}: it was consumed already (a retried job), swept after it expired, ` +
        'or the ticket comes from a manager with another root. Treat the job as done or failed; do not retry it.',
    );
  }
}

/** The ticket's entry expired before it was claimed; the sweep removes it. */
export class HandoffExpiredError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_HANDOFF_EXPIRED';
  /** When it expired (epoch ms). */
  readonly expiredAt: number;
  /** @throws Never. It only builds the error from its arguments. */
  constructor(id: string, expiredAt: number) {
    super(
      'ERR_TEMPFILE_HANDOFF_EXPIRED',
      `The entry of handoff ${handoffKey(id)} expired at ${new Date(expiredAt).toISOString()} before it was claimed. ` +
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
  /** @throws Never. It only builds the error from its arguments. */
  constructor(id: string, retryAfterMs: number) {
    super(
      'ERR_TEMPFILE_ALREADY_CLAIMED',
      `The entry of handoff ${handoffKey(id)} is claimed by another live worker. Retry in ${retryAfterMs} ms: ` +
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
  /** @throws Never. It only builds the error from its arguments. */
  constructor(message: string, field?: string) {
    super('ERR_TEMPFILE_BAD_TICKET', `Bad handoff ticket: ${message}. Pass the ticket handoff() returned, unchanged.`);
    this.field = field;
  }
}

/** The entry's bytes do not match the ticket (size, or digest when asked to verify it). */
export class HandoffMismatchError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_HANDOFF_MISMATCH';
  /** @throws Never. It only builds the error from its arguments. */
  constructor(id: string, what: string) {
    super(
      'ERR_TEMPFILE_HANDOFF_MISMATCH',
      `The entry of handoff ${handoffKey(id)} does not match its ticket (${what}): it was given back untouched, and the sweep removes it once it expires.`,
    );
  }
}

/** The lease was taken over by another worker (this one stalled past `staleMs`). */
export class LeaseLostError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_LEASE_LOST';
  /** @throws Never. It only builds the error from its arguments. */
  constructor(id: string) {
    super(
      'ERR_TEMPFILE_LEASE_LOST',
      `The lease on the entry of handoff ${handoffKey(id)} was lost: another worker claimed it after this one stalled past staleMs. ` +
        'Drop this copy of the work; the other worker owns the entry now.',
    );
  }
}

/** The file system is full (ENOSPC), or a write would pass the `minFreeBytes` floor. */
export class NoSpaceError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_NO_SPACE';
  /** @throws Never. It only builds the error from its arguments. */
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
  /** @throws Never. It only builds the error from its arguments. */
  constructor(path: string, cause?: unknown) {
    super(
      'ERR_TEMPFILE_DISK_QUOTA',
      `The disk quota of this user is exhausted on the file system of ${path}: remove files or raise the quota.`,
      { path, cause },
    );
  }
}
