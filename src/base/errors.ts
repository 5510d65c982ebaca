/**
 * Every error this library throws on purpose is a {@link TempFileError} with a stable string
 * `code`: branch on `code` (or `instanceof` a subclass), never on the message.
 * @module
 */
import { HOST_PLATFORM, type Platform } from './platform.js';
import { isTempFileError, TempFileError, type TempFileErrorCode } from './error-class.js';
import {
  AlreadyClaimedError,
  BadTicketError,
  DiskQuotaError,
  DisposedError,
  HandoffExpiredError,
  HandoffMismatchError,
  HandoffNotFoundError,
  InvalidNameError,
  LeaseLostError,
  NoSpaceError,
  QuotaExceededError,
  SizeLimitError,
  UnsafeRootError,
  type DetectedType,
} from './common-errors.js';
import { builtin } from './builtin.js';
const os = builtin('node:os');
const { dirname } = builtin('node:path');

export * from './error-class.js';
export * from './common-errors.js';

/**
 * True when `value` is an error of tempfile-manager (of any copy of the package, see
 * {@link isTempFileError}) with the code `code`: the library tells its own errors apart this way,
 * never by `instanceof`, which is false for an error another copy made. A subclass's own fields
 * are typed as possibly missing: a plain `TempFileError` may carry the same code. @internal
 * @throws Never. It reads two properties of `value`.
 */
export function isErrorCode<C extends TempFileErrorCode>(value: unknown, code: C): value is ErrorOfCode<C> {
  return isTempFileError(value) && value.code === code;
}

/** The error of `code`: the class the library makes it with, its own fields possibly missing. @internal */
export type ErrorOfCode<C extends TempFileErrorCode> = TempFileError & { readonly code: C } & Partial<Omit<ClassOfCode[C], keyof TempFileError>>;

/** The class of each code the library makes its errors of. */
interface ClassOfCode {
  ERR_TEMPFILE_INVALID_NAME: InvalidNameError;
  ERR_TEMPFILE_INVALID_OPTION: InvalidOptionError;
  ERR_TEMPFILE_UNSAFE_ROOT: UnsafeRootError;
  ERR_TEMPFILE_ROOT_CHANGED: RootChangedError;
  ERR_TEMPFILE_DISPOSED: DisposedError;
  ERR_TEMPFILE_MANAGER_CLOSED: ManagerClosedError;
  ERR_TEMPFILE_DESTINATION_EXISTS: DestinationExistsError;
  ERR_TEMPFILE_REPLACED: TempFileReplacedError;
  ERR_TEMPFILE_REMOVE_FAILED: RemoveError;
  ERR_TEMPFILE_MOUNT_POINT: MountPointError;
  ERR_TEMPFILE_SIZE_LIMIT: SizeLimitError;
  ERR_TEMPFILE_QUOTA_EXCEEDED: QuotaExceededError;
  ERR_TEMPFILE_ABORTED: AbortedError;
  ERR_TEMPFILE_SOURCE: SourceError;
  ERR_TEMPFILE_TYPE_NOT_ACCEPTED: TypeNotAcceptedError;
  ERR_TEMPFILE_VERIFY_REFUSED: VerifyRefusedError;
  ERR_TEMPFILE_VERIFY_FAILED: VerifyFailedError;
  ERR_TEMPFILE_CALLBACK: CallbackError;
  ERR_TEMPFILE_HANDOFF_NOT_FOUND: HandoffNotFoundError;
  ERR_TEMPFILE_HANDOFF_EXPIRED: HandoffExpiredError;
  ERR_TEMPFILE_ALREADY_CLAIMED: AlreadyClaimedError;
  ERR_TEMPFILE_BAD_TICKET: BadTicketError;
  ERR_TEMPFILE_HANDOFF_MISMATCH: HandoffMismatchError;
  ERR_TEMPFILE_LEASE_LOST: LeaseLostError;
  ERR_TEMPFILE_NO_SPACE: NoSpaceError;
  ERR_TEMPFILE_DISK_QUOTA: DiskQuotaError;
  ERR_TEMPFILE_UNSUPPORTED_FS: UnsupportedFileSystemError;
  ERR_TEMPFILE_IO: FileSystemError;
  ERR_TEMPFILE_UPLOAD_LIMIT: UploadLimitError;
  ERR_TEMPFILE_UPLOAD_MALFORMED: MalformedUploadError;
  ERR_TEMPFILE_MISSING_PEER: MissingPeerError;
  ERR_TEMPFILE_STORE: StoreError;
  ERR_TEMPFILE_BAD_RECEIPT: UploadReceiptError;
}

/** An option had the wrong type, an out-of-range value or an unknown name. */
export class InvalidOptionError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_INVALID_OPTION';
  /** The option that was refused. */
  readonly option: string;
  /** @throws Never. It only builds the error from its arguments. */
  constructor(option: string, message: string) {
    super('ERR_TEMPFILE_INVALID_OPTION', message);
    this.option = option;
  }
}

/** What a manager found at its root's path instead of the directory it started with. */
export type RootChange =
  /** The root's path is now a symbolic link. */
  | 'symlink'
  /** Nothing is at the root's path (or at its session's) any more. */
  | 'missing'
  /** Another file or directory is at the root's path, or at its session's. */
  | 'replaced';

/**
 * The root (or the manager's session directory in it) was renamed, removed or replaced after the
 * manager started: the path now leads somewhere the manager never made. From then on the manager
 * creates and removes nothing through that path; `close()` still removes its own files through
 * the directories it holds open (where `/proc` lets it), and throws this error too.
 */
export class RootChangedError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_ROOT_CHANGED';
  /** What is at the root's path now. */
  readonly change: RootChange;
  /** @throws Never. It only builds the error from its arguments. */
  constructor(change: RootChange, root: string, found: string) {
    super(
      'ERR_TEMPFILE_ROOT_CHANGED',
      `The root ${root} changed after this manager started: ${found}. It creates and removes nothing more through that path ` +
        '(paths it handed out may now name other files). Find what moved the root (a cleanup job, a deploy, another process of ' +
        'this user), close this manager, and make a new TempFileManager once the root is a directory of yours again.',
      { path: root },
    );
    this.change = change;
  }
}

/** The manager was closed; it creates nothing more. */
export class ManagerClosedError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_MANAGER_CLOSED';
  /**
   * `message` says what the close cut short, when it cut a call short; `cause` is the failure
   * that call met.
   * @throws Never. It only builds the error from its arguments.
   */
  constructor(message?: string, cause?: unknown) {
    super(
      'ERR_TEMPFILE_MANAGER_CLOSED',
      message ?? 'This TempFileManager was closed: create a new TempFileManager, or close it only at shutdown.',
      { cause },
    );
  }
}

/** `keep()` found a file at the destination and was not asked to overwrite it. */
export class DestinationExistsError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_DESTINATION_EXISTS';
  /** @throws Never. It only builds the error from its arguments. */
  constructor(destination: string, cause?: unknown) {
    super(
      'ERR_TEMPFILE_DESTINATION_EXISTS',
      `Cannot keep the file at ${destination}: something already exists there. ` +
        'Choose another destination, or pass { overwrite: true } to replace it.',
      { path: destination, cause },
    );
  }
}

/**
 * A temp file (or a claimed handoff file) is no longer the file the library made: something
 * else was put at its path, such as a hard link to another file, a FIFO, a socket, a device or
 * another file. Nothing was read from it or written to it; `found` says what was there.
 */
export class TempFileReplacedError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_REPLACED';
  /** What was found at the path: `'a hard link (2 links)'`, `'a FIFO'`, `'another file (inode changed)'`... */
  readonly found: string;
  /**
   * @param advice What to do, when the name is outside the root (a `keep()`'s staging or final
   * name); by default, to check who writes under the root.
   * @throws Never. It only builds the error from its arguments.
   */
  constructor(path: string, found: string, advice?: string) {
    super(
      'ERR_TEMPFILE_REPLACED',
      `The temp file ${path} was replaced: found ${found} where the library's own file was, so nothing was read or written. ` +
        (advice ?? 'Something else with access to the root changed it: dispose of this handle and check who writes under the root.'),
      { path },
    );
    this.found = found;
  }
}

/** Removing one or more temp files failed; `errors` holds every failure, not just the first. */
export class RemoveError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_REMOVE_FAILED';
  /** One error per path that could not be removed. */
  readonly errors: readonly Error[];
  /**
   * `platform` words the advice: on Windows a path another handle holds open is the likely cause.
   * @throws Never. It only builds the error from its arguments.
   */
  constructor(errors: readonly Error[], platform: Platform = HOST_PLATFORM) {
    const first = errors[0];
    super(
      'ERR_TEMPFILE_REMOVE_FAILED',
      `Could not remove ${errors.length} temp ${errors.length === 1 ? 'path' : 'paths'}` +
        (first ? ` (first: ${first.message})` : '') +
        (platform === 'win32'
          ? '. On Windows, close what holds them open (see the first error); a sweep removes what is left once it lets go.'
          : '. Check the permissions under the root; a sweep removes what is left once the cause is fixed.'),
      { cause: first, path: first && 'path' in first ? String(first.path) : undefined },
    );
    this.errors = errors;
  }
}

/**
 * A removal met one or more mount points in the tree it removed. Removal never crosses into
 * another file system: everything else was removed, the mount points were left in place with
 * everything under them.
 */
export class MountPointError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_MOUNT_POINT';
  /** The mount points that were left. */
  readonly paths: readonly string[];
  /** @throws Never. It only builds the error from its arguments. */
  constructor(paths: readonly string[]) {
    const first = paths[0] ?? '';
    super(
      'ERR_TEMPFILE_MOUNT_POINT',
      `${first}${paths.length > 1 ? ` (and ${paths.length - 1} more)` : ''} is a mount point inside a temp directory: ` +
        'it was left in place with everything under it, and everything else was removed. ' +
        `Unmount it (umount ${JSON.stringify(first)}), then remove what is left or let a sweep do it.`,
      { path: first },
    );
    this.paths = paths;
  }
}

/**
 * A write was aborted by its `signal`, or its source (a client) went away; or a confirmation of a
 * presigned upload was given up by its `signal`.
 */
export class AbortedError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_ABORTED';
  /**
   * `what` was aborted for `why`; `after` says what is left.
   * @throws Never. It only builds the error from its arguments.
   */
  constructor(why: string, cause?: unknown, what = 'the write', after = 'nothing was kept') {
    super('ERR_TEMPFILE_ABORTED', `${what} was aborted (${why}); ${after}`, { cause });
  }
}

/** The source of a write failed or produced something that is not bytes. */
export class SourceError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_SOURCE';
  /**
   * `message` is the developer's, kept as {@link TempFileError.advice}: the client reads only that the data could not be read.
   * @throws Never. It only builds the error from its arguments.
   */
  constructor(message: string, cause?: unknown) {
    super('ERR_TEMPFILE_SOURCE', 'the data could not be read', { cause, advice: message });
  }
}

/** A callback given to the library (`onProgress`) threw; the operation was stopped. `cause` is what it threw. */
export class CallbackError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_CALLBACK';
  /** The option that held the callback, such as `'onProgress'`. */
  readonly callback: string;
  /** @throws Never. It only builds the error from its arguments. */
  constructor(callback: string, cause: unknown) {
    const thrown = cause instanceof Error ? cause.message : String(cause);
    super(
      'ERR_TEMPFILE_CALLBACK',
      `The \`${callback}\` callback threw (${thrown}): the write was stopped and nothing was kept. ` +
        `Catch errors inside \`${callback}\` if they should not end the write.`,
      { cause },
    );
    this.callback = callback;
  }
}

/**
 * The first bytes of a write's source are not of a type its `accept` lists; nothing was written.
 * `statusCode` is 415 (Unsupported Media Type), for HTTP error handlers.
 */
export class TypeNotAcceptedError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_TYPE_NOT_ACCEPTED';
  /** The type found from the first bytes, or undefined when they match no known type (text, say). */
  readonly detected: DetectedType | undefined;
  /** The `accept` patterns of the write, normalised to lower case. */
  readonly accept: readonly string[];
  /** The type the client declared, when the bytes contradict it (a presigned upload's `contentType`). */
  readonly declaredType: string | undefined;
  /**
   * With `declaredType`, the bytes are refused for not being what the client declared, whatever
   * `accept` takes. @throws Never. It only builds the error from its arguments.
   */
  constructor(detected: DetectedType | undefined, accept: readonly string[], declaredType?: string) {
    const found = detected ? detected.mime : 'data of no type known by its magic bytes';
    const said = declaredType === undefined ? `${found} is not accepted` : `the bytes are ${found}, not the declared ${declaredType}`;
    super('ERR_TEMPFILE_TYPE_NOT_ACCEPTED', said, {
      advice:
        declaredType === undefined
          ? `\`accept\` (${accept.join(', ')}) does not list ${found}: nothing was kept. Add the type to \`accept\` if it should be taken.`
          : `The client declared ${declaredType} for bytes of ${found}: nothing was kept. Have it declare the file's own type.`,
    });
    this.detected = detected;
    this.accept = accept;
    this.declaredType = declaredType;
  }
}

/**
 * A write's `verify` hook refused the complete file (an antivirus found something, a checksum
 * did not match): the file was removed. `statusCode` is the hook's own 4xx, else 422
 * (Unprocessable Entity); the message, for the client, carries the hook's `reason`.
 */
export class VerifyRefusedError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_VERIFY_REFUSED';
  /** Why the hook refused the file, as it said: it is sent to the client. */
  readonly reason: string;
  /**
   * `statusCode`, a 4xx, answers the client instead of 422.
   * @throws Never. It only builds the error from its arguments.
   */
  constructor(reason: string, statusCode = 422) {
    super('ERR_TEMPFILE_VERIFY_REFUSED', `the file was refused: ${reason}`, {
      advice: 'The write\'s `verify` hook refused the file, and it was removed: nothing was kept.',
    });
    this.reason = reason;
    Object.defineProperty(this, 'statusCode', { value: statusCode });
  }
}

/** Why a `verify` hook gave no answer: it threw (`cause` is what it threw), or did not settle within `verifyTimeoutMs`. */
export type VerifyFailure = 'threw' | 'timeout';

/**
 * A write's `verify` hook gave no answer: it threw (a scanner that is down, a socket closed) or
 * did not settle within `verifyTimeoutMs`. The file was removed, never accepted unchecked.
 * `statusCode` is 503 (Service Unavailable): the client may send the file again later.
 */
export class VerifyFailedError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_VERIFY_FAILED';
  /** Whether the hook threw or did not settle in time. */
  readonly reason: VerifyFailure;
  /**
   * `cause` is what the hook threw; `timeoutMs`, with `'timeout'`, the time it was given.
   * @throws Never. It only builds the error from its arguments.
   */
  constructor(reason: VerifyFailure, cause?: unknown, timeoutMs?: number) {
    const what =
      reason === 'timeout'
        ? `did not settle within \`verifyTimeoutMs\` (${timeoutMs} ms)`
        : `threw (${cause instanceof Error ? cause.message : String(cause)})`;
    super(
      'ERR_TEMPFILE_VERIFY_FAILED',
      `The \`verify\` hook ${what}: the file was removed, not accepted unchecked. ` +
        (reason === 'timeout'
          ? 'Raise `verifyTimeoutMs` if the check needs longer, or find what holds it (a scanner that hangs).'
          : 'Bring the checker back (a scanner that is down or unreachable); return false instead of throwing to refuse a file.'),
      { cause },
    );
    this.reason = reason;
  }
}

/**
 * A primitive of the file system that sessions, leases and handoff rely on:
 * - `exclusive-create`: open with O_CREAT|O_EXCL fails on an existing name
 * - `exclusive-mkdir`: a second mkdir of a name fails (locks are directories)
 * - `rename`: rename() moves a file or a directory onto a free name in one call
 * - `rename-replace`: rename() replaces an existing file (`keep(dest, { overwrite: true })`)
 * - `hard-link`: link() onto an existing name fails (or link() is refused altogether)
 * - `utimes`: an mtime set by utimes() reads back, to the second (locks are kept alive by it)
 * - `no-follow`: an O_NOFOLLOW open of a symlink fails
 */
export type FileSystemPrimitive = 'exclusive-create' | 'exclusive-mkdir' | 'rename' | 'rename-replace' | 'hard-link' | 'utimes' | 'no-follow';

const PRIMITIVE_ADVICE: Record<FileSystemPrimitive, string> = {
  'exclusive-create': 'Two processes could both create the same temp file: on NFS use v3 or later (v2 has no exclusive create).',
  'exclusive-mkdir': 'Two processes could both take the same lock: use a file system whose mkdir fails on an existing name.',
  rename:
    'Handoff and claim move entries by rename: use a POSIX file system for the root (on sshfs, a server that allows posix-rename@openssh.com, such as OpenSSH).',
  'rename-replace':
    'keep() with overwrite relies on rename() replacing: on sshfs, serve it from OpenSSH (posix-rename@openssh.com); `-o workaround=rename` makes it work, but not atomically.',
  'hard-link': 'keep() without overwrite relies on link() failing on an existing name: use another file system for the root.',
  utimes:
    'Locks are kept alive by setting their mtime: mount the root so that utimes() is honoured (not read-only, not with noatime-style mtime overrides, and attribute caches short: sshfs `-o attr_timeout=0`, NFS `actimeo` of a second or less).',
  'no-follow': 'A symlink planted in the root would be followed: use a file system that honours O_NOFOLLOW.',
};

/**
 * The root's file system lacks a primitive the library's guarantees rest on (checked once per root
 * and process, when sessions or handoff first use it): rather than weaker guarantees, this error.
 */
export class UnsupportedFileSystemError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_UNSUPPORTED_FS';
  /** The primitive that is missing. */
  readonly primitive: FileSystemPrimitive;
  /** @throws Never. It only builds the error from its arguments. */
  constructor(primitive: FileSystemPrimitive, root: string, observed: string) {
    super(
      'ERR_TEMPFILE_UNSUPPORTED_FS',
      `The file system of the root ${root} lacks \`${primitive}\`: ${observed}. ${PRIMITIVE_ADVICE[primitive]}`,
      { path: root },
    );
    this.primitive = primitive;
  }
}

/** Any other file-system failure (EIO, EACCES, EMFILE, ...); `cause` holds the system error. */
export class FileSystemError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_IO';
  /** The system error code, such as `EIO` or `EMFILE`; `NotCapable` where Deno's permissions refused the call. */
  readonly syscallCode: string | undefined;
  /**
   * @param advice What to do, when the caller knows better than the generic advice for the
   * system error code (which directory a permission concerns, say).
   * @throws Never. It only builds the error from its arguments.
   */
  constructor(action: string, path: string, cause: unknown, advice?: string) {
    const syscallCode = systemErrorCode(cause);
    super(
      'ERR_TEMPFILE_IO',
      `Could not ${action} ${path}: ${syscallCode ?? 'unknown error'}. ${advice ?? adviceFor(syscallCode, path, HOST_PLATFORM)}`,
      { path, cause },
    );
    this.syscallCode = syscallCode;
  }
}

/**
 * The errors every call that makes a file or directory under the root can throw, described
 * once: a method whose "Throws" says "See DiskErrors" throws these as written here, besides the
 * errors it lists itself.
 *
 * - {@link ManagerClosedError} `ERR_TEMPFILE_MANAGER_CLOSED` (503): the manager was closed.
 * - {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root's path, or the manager's
 *   session directory, was renamed, removed or replaced since the manager started (later calls
 *   throw it too).
 * - {@link UnsupportedFileSystemError} `ERR_TEMPFILE_UNSUPPORTED_FS`: at the session's first use,
 *   the root's file system lacks a primitive the guarantees rest on (probed once per root and
 *   process).
 * - {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE` (507): the file system is full (ENOSPC).
 * - {@link DiskQuotaError} `ERR_TEMPFILE_DISK_QUOTA` (507): this user's disk quota is exhausted
 *   (EDQUOT).
 * - {@link FileSystemError} `ERR_TEMPFILE_IO`: any other failure of the file system (EACCES,
 *   EMFILE, EIO...; `err.syscallCode` says which).
 *
 * The union names their classes, for a caught error narrowed by `instanceof` or by `code`.
 *
 * @group Errors
 */
export type DiskErrors = ManagerClosedError | RootChangedError | UnsupportedFileSystemError | NoSpaceError | DiskQuotaError | FileSystemError;

/**
 * The limits a form's largest size follows from: `files` files of `maxBytes` each and `fields`
 * text fields of `maxFieldBytes` each (the message of a `bodyBytes` refusal names them).
 */
export interface FormLimits {
  /** The files the route takes. */
  readonly files: number;
  /** The option `maxBytes`. */
  readonly maxBytes: number;
  /** The text fields the form may have (`maxFields`, or fewer when `maxParts` is lower). */
  readonly fields: number;
  /** The option `maxFieldBytes`. */
  readonly maxFieldBytes: number;
}

/** Which limit of an upload was passed. */
export type UploadLimit = 'files' | 'fields' | 'parts' | 'fieldNameBytes' | 'fieldBytes' | 'bodyBytes';

/**
 * An upload passed a count or length limit (files, fields, parts, a field's name or value), or
 * declared a `Content-Length` no form within its limits can have (`bodyBytes`: refused from the
 * request's head, before any of its body was read): 413.
 */
export class UploadLimitError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_UPLOAD_LIMIT';
  /**
   * The option whose limit was passed, as named in the upload options (`maxFiles` is `files`);
   * `bodyBytes` is the most bytes a form within all of them can have.
   */
  readonly limit: UploadLimit;
  /** The limit's value. */
  readonly max: number;
  /** The form field concerned, when there is one. */
  readonly field: string | undefined;
  /** With `bodyBytes`: the request's declared `Content-Length`. */
  readonly declared: number | undefined;
  /**
   * `form`, with `bodyBytes`: the limits `max` follows from, named in the message.
   * @throws Never. It only builds the error from its arguments.
   */
  constructor(limit: UploadLimit, max: number, field?: string, declared?: number, form?: FormLimits) {
    super('ERR_TEMPFILE_UPLOAD_LIMIT', describeLimit(limit, max, field, declared, form), {
      advice:
        limit === 'bodyBytes'
          ? `The request declared ${declared} bytes of body, more than any form within the route's limits can have (${max} bytes: ` +
            'maxBytes for each file the route takes, maxFieldBytes for each of maxFields fields, 16 KiB of headers for each part); ' +
            'it was refused before any of its body was read. Lower `maxFields` or `maxFieldBytes` to bring that bound closer to ' +
            "the files' `maxBytes`, or raise the limit that is too low if such forms are expected."
          : `Nothing was kept. Raise \`${optionOf(limit)}\` if such forms are expected.`,
    });
    this.limit = limit;
    this.max = max;
    this.field = field;
    this.declared = declared;
  }
}

function optionOf(limit: UploadLimit): string {
  return `max${limit[0]!.toUpperCase()}${limit.slice(1)}`;
}

function describeLimit(limit: UploadLimit, max: number, field: string | undefined, declared: number | undefined, form: FormLimits | undefined): string {
  const where = field === undefined ? '' : ` (field ${JSON.stringify(field.slice(0, 100))})`;
  switch (limit) {
    case 'fieldNameBytes':
      return `a field name is longer than ${max} bytes`;
    case 'fieldBytes':
      return `the value of a field${where} is longer than ${max} bytes`;
    case 'bodyBytes':
      return form === undefined
        ? `the request body of ${declared} bytes is larger than the ${max} bytes this form may have`
        : `the request body of ${declared} bytes is more than this form may have: ${describeForm(form)}, at most ${max} bytes with their headers`;
    default:
      return `the form has more ${limit} than the ${max} allowed${where}`;
  }
}

/** `1 file of at most 1 MiB (maxBytes) and 100 text fields of at most 1 MiB (maxFields, maxFieldBytes)`. */
function describeForm({ files, maxBytes, fields, maxFieldBytes }: FormLimits): string {
  const counted = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
  const parts = [
    files > 0 && `${counted(files, 'file')} of at most ${formatSize(maxBytes)} (maxBytes)`,
    fields > 0 && `${counted(fields, 'text field')} of at most ${formatSize(maxFieldBytes)} (maxFields, maxFieldBytes)`,
  ].filter((part): part is string => part !== false);
  return parts.length === 0 ? 'no file and no text field' : parts.join(' and ');
}

/** A size as its options are usually written: `1 MiB`, `512 KiB`, else in bytes. */
function formatSize(bytes: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} byte${bytes === 1 ? '' : 's'}`;
}

/** Why an upload's body was refused as malformed. */
export type MalformedUploadReason = 'not-multipart' | 'malformed' | 'truncated' | 'unexpected-file' | 'missing-file' | 'missing-field-name';

/** The body is not a usable multipart form: not multipart, no boundary, cut off, or not the files asked for: 400. */
export class MalformedUploadError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_UPLOAD_MALFORMED';
  /** What is wrong with it. */
  readonly reason: MalformedUploadReason;
  /** The form field concerned, when there is one. */
  readonly field: string | undefined;
  /**
   * `message` is for the client (what is wrong with the body, what to send), after the status: `...`.
   * @throws Never. It only builds the error from its arguments.
   */
  constructor(reason: MalformedUploadReason, message: string, options: { field?: string; cause?: unknown } = {}) {
    super('ERR_TEMPFILE_UPLOAD_MALFORMED', afterStatus(message), { cause: options.cause });
    this.reason = reason;
    this.field = options.field;
  }
}

/**
 * A sentence as it reads after ``: its first letter lowered, unless its first word
 * is a header's name (`Upload-Metadata`, `Content-Type`), which keeps its case.
 */
function afterStatus(message: string): string {
  if (/^[A-Z][A-Za-z]*-[A-Z]/.test(message)) return message;
  return message.charAt(0).toLowerCase() + message.slice(1);
}

/**
 * An adapter needs an optional peer package that is not installed (npm does not install optional
 * peers): the message names the package and the command that installs it.
 */
export class MissingPeerError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_MISSING_PEER';
  /** The package that is missing, such as `@fastify/multipart`. */
  readonly peer: string;
  /** The command that installs it, such as `npm install @fastify/multipart`. */
  readonly install: string;
  /** @throws Never. It only builds the error from its arguments. */
  constructor(peer: string, neededBy: string, cause?: unknown) {
    const install = `npm install ${peer}`;
    super(
      'ERR_TEMPFILE_MISSING_PEER',
      `${neededBy} needs the package ${peer}, which is not installed: it is an optional peer dependency, ` +
        `so npm does not install it with tempfile-manager. Run \`${install}\`.`,
      { cause },
    );
    this.peer = peer;
    this.install = install;
  }
}

/**
 * Why an object store refused or failed a step: `unreachable` (no answer within the timeout, the
 * connection refused or cut), `denied` (the client's credentials were refused), `no-bucket` (the
 * bucket does not exist), `not-configured` (a ticket names a store this manager was not given),
 * `sync` (a synchronous call on a claim that lives in a store), `failed` (any other answer).
 */
export type StoreFailure = 'unreachable' | 'denied' | 'no-bucket' | 'not-configured' | 'sync' | 'failed';

/**
 * An object store (`tempfile-manager/s3`, `tempfile-manager/azure`) did not do what a handoff, a claim or a sweep asked.
 * The message names the endpoint and the bucket, never a credential, and says what to do.
 */
export class StoreError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_STORE';
  /** What went wrong, to branch on. */
  readonly reason: StoreFailure;
  /** The store's endpoint (scheme, host and port), when known. */
  readonly endpoint: string | undefined;
  /**
   * The error code the store answered with, when it answered: S3's error name (such as
   * `NoSuchBucket`), or Azure's `x-ms-error-code` (such as `ContainerNotFound`).
   */
  readonly storeCode: string | undefined;
  /**
   * The S3 error name the store answered with, when an S3 store answered.
   * @deprecated Read {@link StoreError.storeCode}, which Azure's stores fill too.
   */
  readonly s3Code: string | undefined;
  /** The HTTP status the store answered with, when it answered. */
  readonly httpStatus: number | undefined;
  /** @throws Never. It only builds the error from its arguments. */
  constructor(reason: StoreFailure, message: string, details: { endpoint?: string; storeCode?: string; s3Code?: string; httpStatus?: number } = {}) {
    super('ERR_TEMPFILE_STORE', message);
    this.reason = reason;
    this.endpoint = details.endpoint;
    this.storeCode = details.storeCode ?? details.s3Code;
    this.s3Code = details.s3Code;
    this.httpStatus = details.httpStatus;
  }
}

/**
 * On Windows a file another handle holds open without sharing (the app's own stream, an editor,
 * Explorer's preview, an antivirus or the indexer scanning it) cannot be renamed, replaced or
 * removed: the system answers EPERM (access denied), EBUSY (sharing violation) or EACCES, and the
 * mode bits have nothing to do with it.
 */
const WINDOWS_HELD_OPEN =
  'On Windows this is most often a file held open by another handle: close it (a stream of this app not yet ' +
  "closed, an editor, Explorer's preview pane), and exclude the root and the destination from the antivirus and the " +
  'indexer, which open new files to scan them. See docs/windows-macos.md.';

/** What to do when Deno withholds a permission (deno-permissions.ts), in Deno's own terms. @internal */
export const DENO_ALL_ACCESS_ADVICE =
  'tempfile-manager needs all of Deno\'s permissions: run deno with --allow-all (-A) and no --deny-* flag. Short of them, ' +
  'Deno resolves symbolic links before it opens a path (an O_NOFOLLOW open would follow a link planted in the root) and ' +
  'refuses /proc/self/fd, through which the library reaches the directories it holds open ("Requires all access"). ' +
  'See docs/platforms.md.';

/** What to do about the system error `code` met at `path`, in the words of `platform`. @internal */
export function adviceFor(code: string | undefined, path: string, platform: Platform): string {
  if (platform === 'win32' && (code === 'EPERM' || code === 'EBUSY' || code === 'EACCES')) return WINDOWS_HELD_OPEN;
  switch (code) {
    case 'EMFILE':
    case 'ENFILE':
      return 'Too many open files: close streams you no longer need, or raise the limit (ulimit -n).';
    case 'EACCES':
    case 'EPERM':
      return `Permission denied: check the owner and mode of ${path} and of the directory it is in.`;
    case 'EIO':
      return 'The device reported an I/O error: check the disk and the kernel log.';
    case 'EROFS':
      return 'The file system is read-only: point `root` at a writable volume.';
    case 'ERR_ACCESS_DENIED':
      return (
        `Node's permission model (--permission) refused it: allow writes there, e.g. --allow-fs-write=${dirname(path)}/* ` +
        '(a path without /* allows only what exists when node starts). tempfile-manager needs writes to its root and to ' +
        'the destinations of keep() alone. See docs/crash-recovery.md.'
      );
    case 'NotCapable':
      return `Deno refused it. ${DENO_ALL_ACCESS_ADVICE}`;
    case 'EFBIG':
      return "The file would pass the process's file size limit (ulimit -f): raise the limit, or cap the write with `maxBytes`.";
    default:
      return 'See `cause` for the system error.';
  }
}

const ERRNO_NAMES = new Map(Object.entries(os.constants.errno).map(([name, errno]) => [errno, name]));

/** The `code` of a Node.js system error, or undefined. @internal */
export function systemErrorCode(err: unknown): string | undefined {
  // Deno's permission errors carry no code: their name says it.
  if (err instanceof Error && err.name === 'NotCapable') return 'NotCapable';
  if (typeof err !== 'object' || err === null || !('code' in err) || typeof err.code !== 'string') return undefined;
  // libuv names only the errors it knows: ESTALE (sshfs, NFS) arrives as "Unknown system error -116".
  if (err.code.startsWith('Unknown system error') && 'errno' in err && typeof err.errno === 'number') {
    return ERRNO_NAMES.get(-err.errno) ?? err.code;
  }
  return err.code;
}

/** Whether a system error code says the path is gone: ENOENT, or ESTALE on sshfs and NFS. @internal */
export function isGone(code: string | undefined): boolean {
  return code === 'ENOENT' || code === 'ESTALE';
}

/**
 * Maps a failed fs call to the typed error callers branch on; its advice is in the words of
 * `platform` (the host's, unless a test names another). @internal
 */
export function toFileSystemError(action: string, path: string, err: unknown, platform: Platform = HOST_PLATFORM): TempFileError {
  if (isTempFileError(err)) return err;
  const code = systemErrorCode(err);
  switch (code) {
    case 'ENOSPC':
      return new NoSpaceError(path, err);
    case 'EDQUOT':
      return new DiskQuotaError(path, err);
    default:
      return new FileSystemError(action, path, err, adviceFor(code, path, platform));
  }
}

/**
 * Why a presigned upload's confirmation was refused before its bytes were judged: `malformed` (the
 * receipt is not `{ key }` of this store's intake: 400), `unknown` (no presign of this store made
 * that key: 400), `expired` (its presign expired: 410), `not-uploaded` (nothing was uploaded to it
 * yet, or its multipart upload is not complete: 409), `in-progress` (another confirmation of it is
 * under way, or was: 409), `changed` (the upload was sent again while it was confirmed: 409), `empty` (the object has no bytes: 422), `checksum` (its bytes are not
 * the checksum the presign bound: 422).
 */
export type ReceiptFailure = 'malformed' | 'unknown' | 'expired' | 'not-uploaded' | 'in-progress' | 'changed' | 'empty' | 'checksum';

const RECEIPT_STATUS: Readonly<Record<ReceiptFailure, number>> = {
  malformed: 400,
  unknown: 400,
  expired: 410,
  'not-uploaded': 409,
  'in-progress': 409,
  changed: 409,
  empty: 422,
  checksum: 422,
};

/**
 * A presigned upload's receipt was refused (`S3Store.confirmUpload()` and the multipart calls):
 * `statusCode` follows `reason` (400, 409, 410 or 422), and the message, for the client, says
 * what to do. A refusal of a receipt the store never made touches nothing.
 */
export class UploadReceiptError extends TempFileError {
  declare readonly code: 'ERR_TEMPFILE_BAD_RECEIPT';
  /** Why, to branch on. */
  readonly reason: ReceiptFailure;
  /** @throws Never. It only builds the error from its arguments. */
  constructor(reason: ReceiptFailure, detail: string) {
    const status = RECEIPT_STATUS[reason];
    super('ERR_TEMPFILE_BAD_RECEIPT', detail);
    this.reason = reason;
    Object.defineProperty(this, 'statusCode', { value: status });
  }
}
