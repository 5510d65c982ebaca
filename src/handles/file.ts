import { constants, type ReadStream, type WriteStream } from 'node:fs';
import type { ManagerContext, Owner } from '../context/context.js';
import { InvalidOptionError, isErrorCode, ManagerClosedError, type DetectedType } from '../base/errors.js';
import { identityOf, ownFileStreamFs, type FileIdentity } from '../disk/open-checked.js';
import { DiskHandle } from './handle.js';
import { checkHandoffOptions, type HandoffOptions } from '../handoff/handoff.js';
import { describeArgument, ownOptions, validateAbortSignal, validateBoolean, validateInteger, validateObject } from '../base/validators.js';
import { moveFile, resolveDestination, resolveKeepOptions, type KeepOptions } from '../keep/move.js';
import { unlinkAside, unlinkAsideSync, unlinkQuietly, unlinkQuietlySync } from '../disk/remove.js';
import { holdsHappen, newSetAsideName } from '../disk/holds.js';
import { INLINE_IO_MAX_BYTES } from '../disk/local-disk.js';
import type { FileSystem } from '../disk/fs.js';
import type { HandoffTicket } from '../handoff/ticket.js';
import type { HandoffSource } from '../handoff/backend.js';

/** Options of {@link TempFile.createReadStream}. */
export interface TempReadStreamOptions {
  /** The first byte to read. */
  readonly start?: number;
  /** The last byte to read (inclusive). */
  readonly end?: number;
  /** The chunk size. */
  readonly highWaterMark?: number;
  /** Destroys the stream when aborted. */
  readonly signal?: AbortSignal;
}

/** Options of {@link TempFile.createWriteStream}. */
export interface TempWriteStreamOptions {
  /** Append instead of truncating. Default: false. */
  readonly append?: boolean;
  /** The buffer size before `write()` returns false. */
  readonly highWaterMark?: number;
  /** Destroys the stream when aborted. */
  readonly signal?: AbortSignal;
}

const READ_STREAM_OPTIONS: ReadonlySet<string> = new Set(['start', 'end', 'highWaterMark', 'signal']);
const WRITE_STREAM_OPTIONS: ReadonlySet<string> = new Set(['append', 'highWaterMark', 'signal']);

/**
 * A stream's options checked (an object of the given keys, each of its type) and read from own
 * properties only, on a null prototype; `undefined` gives none. Throws {@link InvalidOptionError}
 * naming the option.
 */
function streamOptions(options: unknown, call: string, keys: ReadonlySet<string>): Record<string, unknown> {
  validateObject(options, call, keys, `{ ${[...keys].join(', ')} } (or nothing)`, describeArgument);
  const o = ownOptions(options as Record<string, unknown> | undefined);
  const subject = { where: call, show: describeArgument };
  for (const key of ['start', 'end'] as const) {
    if (o[key] !== undefined) validateInteger(o[key], key, { ...subject, min: 0, note: '(a byte offset)' });
  }
  if (typeof o['start'] === 'number' && typeof o['end'] === 'number' && o['start'] > o['end']) {
    throw new InvalidOptionError('end', `${call}: \`end\` (${o['end']}) is before \`start\` (${o['start']}); \`end\` is the last byte read, inclusive.`);
  }
  if (o['highWaterMark'] !== undefined) validateInteger(o['highWaterMark'], 'highWaterMark', { ...subject, min: 1, unit: 'bytes' });
  if (o['signal'] !== undefined) validateAbortSignal(o['signal'], 'signal', subject);
  if (o['append'] !== undefined) validateBoolean(o['append'], 'append', subject);
  return o;
}

// No O_TRUNC: a truncating stream empties the file only once it was checked (open-checked.ts).
const WRITE_FLAGS = constants.O_WRONLY;
const READ_FLAGS = constants.O_RDONLY;

/** What `new TempFile(...)` takes: the arguments a {@link FileMaker} is given. @internal */
export type TempFileArgs = ConstructorParameters<typeof TempFile>;

/** Makes the file object of a `write()`: `new TempFile(...args)`, or an adapter's subclass. @internal */
export type FileMaker<T extends TempFile> = (...args: TempFileArgs) => T;

/** The {@link FileMaker} of a plain `write()`. @internal */
export const makeTempFile: FileMaker<TempFile> = (...args) => new TempFile(...args);

/**
 * A temp file, created empty with mode 0600. Removed when disposed: use it with `using` or
 * `await using`, or call {@link TempFile.remove}. Make one with `mgr.file()` or `scope.file()`.
 *
 * @example
 * await using upload = mgr.file('.pdf');
 * await pipeline(req, upload.createWriteStream());
 * await render(upload.path);
 * // removed here, on return and on throw
 */
export class TempFile extends DiskHandle {
  /** The suffix the file was created with (`''` for none). */
  readonly suffix: string;
  private bytes: number | undefined;
  private hashDigest: string | undefined;
  private sniffedType: DetectedType | undefined;
  private accountedBytes = 0;
  /**
   * The device and inode every open must find: recorded when `write()` created the file, or, for a
   * `file()` (created with no fstat, which would cost a fifth of a create), at its first open,
   * which finds a regular file with one link (no link to a file outside the root). @internal
   */
  get identity(): FileIdentity | undefined {
    return this.known;
  }
  private known: FileIdentity | undefined;
  private readonly learn = (identity: FileIdentity): void => {
    this.known ??= identity;
  };

  /** @internal */
  constructor(context: ManagerContext, owner: Owner, path: string, access: string, suffix: string, created?: { readonly dev: number; readonly ino: number }) {
    super(context, owner, path, access);
    this.suffix = suffix;
    this.known = created === undefined ? undefined : identityOf(created);
    context.accounting.liveFiles += 1;
  }

  /**
   * The size in bytes, when `write()` made the file; undefined for `file()`, whose size is yours.
   * @throws Never. It returns what `write()` recorded; nothing is read from disk.
   */
  get size(): number | undefined {
    return this.bytes;
  }

  /**
   * `'<algorithm>:<hex>'` of the content, when `write()` was given `hash` (e.g. `'sha256:9f86…'`).
   * @throws Never. It returns what `write()` recorded; nothing is read from disk.
   */
  get digest(): string | undefined {
    return this.hashDigest;
  }

  /**
   * The type found from the first bytes (magic numbers) when `write()` was given `accept`, such as
   * `{ mime: 'image/png', ext: 'png' }`; undefined otherwise, or when the bytes match no known type
   * (which only `accept: ['*\/*']` lets through).
   * @throws Never. It returns what `write()` recorded; nothing is read from disk.
   */
  get detectedType(): DetectedType | undefined {
    return this.sniffedType;
  }

  /**
   * A write stream to the file (truncating unless `append`). What goes wrong once the stream
   * exists is its 'error' event, never a throw: every error the open emits is a
   * {@link TempFileError} naming {@link TempFile.path} (a failed open itself, say EMFILE, is a
   * {@link FileSystemError}).
   *
   * **Ownership:** the stream holds a descriptor of the file, not the file: the handle still
   * decides when the file is removed, so end the stream before the handle is disposed.
   *
   * **Security:** it opens only the file this handle created: a symlink planted at the path fails
   * with a {@link FileSystemError} (`syscallCode` `ELOOP`), and anything else found there (a hard
   * link to another file, a FIFO, a device, another file) with a {@link TempFileReplacedError}, as
   * the stream's 'error', before any byte is truncated or written. The open never blocks
   * (docs/security.md, "Threats, one by one").
   *
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: the handle was removed, disposed, kept
   * or handed off, its manager closed, or a `remove()`, `keep()` or `handoff()` of it is in flight.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `options` is not an object,
   * has an unknown key, or a value of the wrong type (`append` not a boolean, `highWaterMark` not
   * a whole number of at least 1, `signal` not an AbortSignal).
   */
  createWriteStream(options?: TempWriteStreamOptions): WriteStream {
    this.assertLive('TempFile');
    options = streamOptions(options, 'createWriteStream()', WRITE_STREAM_OPTIONS) as TempWriteStreamOptions;
    const append = options.append === true;
    const flags = WRITE_FLAGS | (append ? constants.O_APPEND : 0);
    return this.context.fs.createWriteStream(this.access, {
      flags: flags as unknown as string,
      fs: ownFileStreamFs(this.context.fs, this.identity, this.path, !append, this.learn),
      highWaterMark: options.highWaterMark,
      signal: options.signal,
    });
  }

  /**
   * A read stream of the file. What goes wrong once the stream exists is its 'error' event, never
   * a throw: every error the open emits is a {@link TempFileError} naming {@link TempFile.path}.
   *
   * **Ownership:** the stream holds a descriptor of the file, not the file: the handle still
   * decides when the file is removed, so end the stream before the handle is disposed.
   *
   * **Security:** like {@link TempFile.createWriteStream}, it opens only the file this handle
   * created (a {@link FileSystemError} with `syscallCode` `ELOOP` for a symlink, a
   * {@link TempFileReplacedError} as the stream's 'error' for anything else, before a byte is
   * read), and never blocks (docs/security.md, "Threats, one by one").
   *
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: the handle was removed, disposed, kept
   * or handed off, its manager closed, or a `remove()`, `keep()` or `handoff()` of it is in flight.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `options` is not an object,
   * has an unknown key, or a value of the wrong type (`start` and `end` not whole numbers of at
   * least 0, `start` after `end`, `highWaterMark` not a whole number of at least 1, `signal` not
   * an AbortSignal).
   */
  createReadStream(options?: TempReadStreamOptions): ReadStream {
    this.assertLive('TempFile');
    options = streamOptions(options, 'createReadStream()', READ_STREAM_OPTIONS) as TempReadStreamOptions;
    return this.context.fs.createReadStream(this.access, {
      flags: READ_FLAGS as unknown as string,
      fs: ownFileStreamFs(this.context.fs, this.identity, this.path, false, this.learn),
      start: options.start,
      end: options.end,
      highWaterMark: options.highWaterMark,
      signal: options.signal,
    });
  }

  /**
   * Moves the file to `destination` for good and returns its absolute path; the handle then owns
   * nothing, and disposing it does nothing. Refuses to replace anything at the destination (even
   * a dangling symlink) unless `overwrite` is set. A failed `keep()` leaves the file with this
   * handle, to retry or dispose.
   *
   * On one file system: `link` + `unlink` (an atomic "rename unless it exists"), or one `rename`
   * with `overwrite`. Across file systems: the bytes are streamed to a fresh staging name in the
   * destination's directory, `.<basename>.tfm-keep-<32 hex>.partial` (`O_CREAT | O_EXCL |
   * O_NOFOLLOW`, mode 0600), fsync'ed, then given the final name by the same `link` or `rename`;
   * the source is removed last.
   *
   * **Ownership:** once it resolves the file is the caller's: the handle, its scope and its
   * manager no longer remove it, and its bytes stop counting against `maxLiveBytes`. Until then it stays the
   * handle's; a disposal meanwhile waits for it (or, sync, leaves the file to it).
   *
   * **Security:** nothing is opened for writing at the destination name, so a symlink planted
   * there (before or during the move) is never written through: without `overwrite` it is
   * refused, with it the name is replaced. Only the final name is never followed; the
   * directories on the way to it are yours and may be symlinks. On one file system the link or
   * rename goes by name right after the source was checked through its descriptor: a process of
   * this uid that swaps the source name in between is not stopped (docs/security.md, "A process
   * of the same uid, point by point").
   *
   * **Crashes:** Killed at any instant, `keep()` leaves at the destination nothing (or, with
   * `overwrite`, the old file) or the whole file, never a part of it. Retrying then succeeds: a regular file of
   * this user with exactly these bytes at the destination counts as an earlier `keep()` of this
   * file. An end the process still runs code at (SIGINT, SIGTERM, SIGHUP, `process.exit()`, an
   * uncaught exception) leaves no staging name: the exit hook removes it, even with `exitHook:
   * false`; the file itself is still the handle's, and goes with its session. Only a crash mid-copy (SIGKILL, an OOM kill, power
   * loss) can leave a staging name behind; it never blocks a retry, and nothing removes it for
   * you: delete old ones with `find DIR -name '.*.tfm-keep-*.partial' -cmin +60 -delete` (see
   * docs/scoped-files.md).
   *
   * Every failure is a rejection.
   *
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `destination` is not a
   * non-empty path without NUL or names no file, or `options` is not `{ overwrite?: boolean }`.
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: the handle was removed, disposed, kept
   * or handed off, its manager closed, or a `remove()`, `keep()` or `handoff()` of it is in flight.
   * @throws {@link ManagerClosedError} `ERR_TEMPFILE_MANAGER_CLOSED`: the manager was closed while
   * `keep()` ran, and its session went with the file: nothing is left at the destination.
   * @throws {@link DestinationExistsError} `ERR_TEMPFILE_DESTINATION_EXISTS`: without `overwrite`,
   * something else holds the destination name (a file, a symlink, a FIFO...).
   * @throws {@link TempFileReplacedError} `ERR_TEMPFILE_REPLACED`: the temp file's path no longer
   * holds the file this handle created (a hard link to another file, a FIFO...): nothing is moved.
   * Also when, while `keep()` ran, another process changed the staging name or the final name in
   * the destination's directory, or renamed the source away (`err.path` names it): nothing of
   * yours is removed, and what `keep()` had placed is taken back where it is still its own.
   * @throws {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE`: the destination's file system is full
   * (ENOSPC); nothing is left there.
   * @throws {@link DiskQuotaError} `ERR_TEMPFILE_DISK_QUOTA`: this user's disk quota on the
   * destination's file system is exhausted (EDQUOT); nothing is left there.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: any other failure (the destination's
   * directory missing or not writable, EIO...), naming the destination (or its directory).
   * @example
   * const kept = await report.keep(`/srv/invoices/${id}.pdf`); // never overwrites
   */
  async keep(destination: string, options: KeepOptions = {}): Promise<string> {
    const target = resolveDestination(destination);
    const keepOptions = resolveKeepOptions(options);
    return this.moveOut('TempFile', async () => {
      try {
        await moveFile(this.context.fs, this.access, target, keepOptions, this.path, this.identity);
      } catch (err) {
        throw this.closedDuringKeep(err, target) ?? err;
      }
      return target;
    });
  }

  // A close() while keep() ran removed the session, and the file with it: keep() then finds its
  // source gone, which is the close's doing, not a replacement.
  private closedDuringKeep(err: unknown, target: string): ManagerClosedError | undefined {
    if (!this.context.closed()) return undefined;
    // A link or rename on one file system names the destination in its ENOENT, but the
    // destination's directory is held open: the name missing is the source's.
    const sourceGone =
      (isErrorCode(err, 'ERR_TEMPFILE_REPLACED') && err.path === this.path) ||
      (isErrorCode(err, 'ERR_TEMPFILE_IO') && err.syscallCode === 'ENOENT' && (err.path === this.path || err.path === target));
    if (!sourceGone) return undefined;
    return new ManagerClosedError(
      `This TempFileManager was closed while keep() moved ${this.path} to ${target}: the file went with the manager's session, ` +
        `and keep() left nothing of it at ${target}. Await keep() before close(), or close the manager only at shutdown.`,
      err,
    );
  }

  /**
   * Hands the file off: moves it into `<root>/handoff/` (the entry appears whole or not at all),
   * or, with `store`, uploads it to an object store and removes it here (docs/s3.md),
   * and returns a ticket, plain JSON for a job queue or `postMessage`. The file then outlives its
   * scope and this process until a worker claims and consumes it (`mgr.claim(ticket)`), or the
   * sweep removes it after `ttlMs` unclaimed. This handle then owns nothing.
   *
   * **Ownership:** once it resolves no process owns the file: the entry outlives this handle,
   * its scope, its manager and this process, until a claim consumes it (or keeps it) or a sweep
   * removes it, `ttlMs` after the handoff, if unclaimed. Its bytes stop counting against
   * `maxLiveBytes`. Until it resolves the file stays the handle's; a failed handoff leaves it
   * there.
   *
   * **Security:** the ticket carries no path. The entry is built in the session and renamed whole
   * into `<root>/handoff/` (0700, checked to be a real directory of this uid), and what was moved
   * is checked to be this handle's file: anything else is moved back and refused, so that no
   * worker is handed it (docs/security.md, "A process of the same uid, point by point").
   *
   * Every failure is a rejection.
   *
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: the handle was removed, disposed, kept
   * or handed off, its manager closed, or a `remove()`, `keep()` or `handoff()` of it is in flight.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: no options, an unknown key,
   * a `ttlMs` that is not a whole number of milliseconds from 1 to 366 days, or a `meta` that is
   * not a plain JSON object of at most 4 KiB; nothing is moved.
   * @throws {@link TempFileReplacedError} `ERR_TEMPFILE_REPLACED`: the temp file's path no longer
   * holds the file this handle created (a hard link to another file, a FIFO...): nothing is
   * handed off, the file stays.
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root's path, or the
   * manager's session directory, was swapped since the manager started; nothing is moved.
   * @throws {@link UnsafeRootError} `ERR_TEMPFILE_UNSAFE_ROOT`: `<root>/handoff` is a symlink, not
   * a directory, another uid's or writable by others; the file stays.
   * @throws {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE`: the file system is full (ENOSPC) while
   * the entry is made; the file stays.
   * @throws {@link DiskQuotaError} `ERR_TEMPFILE_DISK_QUOTA`: this user's disk quota is exhausted
   * (EDQUOT) while the entry is made; the file stays.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: any other failure of the file system
   * (EACCES, EMFILE, EIO...; `err.syscallCode` says which); the file stays.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: with `store`, the object store could not
   * take the upload (unreachable within its `timeoutMs`, credentials refused, no such bucket...;
   * `err.reason` says which): nothing a ticket names was made, and the file stays.
   * @throws {@link HandoffMismatchError} `ERR_TEMPFILE_HANDOFF_MISMATCH`: with `store`, the file
   * changed while it was uploaded (its size or `write()`'s digest differ): the file stays.
   * @throws {@link MissingPeerError} `ERR_TEMPFILE_MISSING_PEER`: with `store`, the AWS SDK
   * (`@aws-sdk/client-s3`, `@aws-sdk/lib-storage`) is not installed.
   */
  async handoff(options: HandoffOptions): Promise<HandoffTicket> {
    this.assertLive('TempFile');
    const { store, ttlMs, meta } = checkHandoffOptions(options); // bad options are refused before any disk access
    const backend = store ?? this.context.handoff;
    return this.moveOut('TempFile', async () => {
      this.context.checkRoot();
      return backend.handOff(this.handoffSource(), { ttlMs, meta });
    });
  }

  // The file as a backend reads it: the shared disk moves it by its access path; an object store
  // uploads it through open() and then discards it here (a failed upload leaves it with the handle).
  private handoffSource(): HandoffSource {
    const { fs } = this.context;
    return {
      path: this.path,
      access: this.access,
      suffix: this.suffix,
      size: this.bytes,
      digest: this.hashDigest,
      identity: this.known,
      open: () => this.openForStore(),
      discard: () => unlinkQuietly(fs, this.access, this.path).catch(() => {}), // the session's removal gets what is left
    };
  }

  private openForStore(): ReadStream {
    return this.context.fs.createReadStream(this.access, {
      flags: READ_FLAGS as unknown as string,
      fs: ownFileStreamFs(this.context.fs, this.identity, this.path, false, this.learn),
    });
  }

  /** Counts `bytes` more against the manager's quota; throws when it is exhausted. @internal */
  account(bytes: number): void {
    this.context.accounting.reserve(bytes);
    this.accountedBytes += bytes;
  }

  /** Records what `write()` wrote. @internal */
  setContent(size: number, digest: string | undefined): void {
    this.bytes = size;
    this.hashDigest = digest;
  }

  /** Records the type `write()` found. @internal */
  setDetectedType(type: DetectedType | undefined): void {
    this.sniffedType = type;
  }

  /** @internal */
  protected override released(): void {
    this.context.accounting.liveFiles -= 1;
    this.context.accounting.release(this.accountedBytes);
    this.accountedBytes = 0;
  }

  /** @internal */
  protected deleteAsync(): Promise<void> {
    const { fs } = this.context;
    if (holdsHappen(fs)) return unlinkAside(fs, this.access, this.path, this.asideName()).then(() => {});
    if (!this.context.localDisk() || !isSmallFile(fs, this.access)) return unlinkQuietly(fs, this.access, this.path);
    try {
      unlinkQuietlySync(fs, this.access, this.path);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /** Where its removal first renames it where another handle may hold it (Windows): a set-aside name in the session. */
  private asideName(): string {
    return `${this.context.session().base}/${newSetAsideName()}`;
  }

  /** @internal */
  protected deleteSync(): void {
    const { fs } = this.context;
    if (holdsHappen(fs)) void unlinkAsideSync(fs, this.access, this.path, this.asideName());
    else unlinkQuietlySync(fs, this.access, this.path);
  }
}

/**
 * True for a file small enough to unlink inline (about 15 µs on a local disk, less than a trip
 * to the thread pool). A larger file takes longer to free (0.4 ms at 8 MiB), and one that cannot
 * be checked is left to the thread pool's unlink, which reports why.
 */
function isSmallFile(fs: FileSystem, path: string): boolean {
  try {
    return fs.lstatSync(path).size <= INLINE_IO_MAX_BYTES;
  } catch {
    return false;
  }
}
