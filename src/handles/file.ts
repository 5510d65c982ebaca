import type { ReadStream, WriteStream } from 'node:fs';
import type { ManagerContext, Owner } from '../context/context.js';
import { InvalidOptionError, isErrorCode, ManagerClosedError, type DetectedType, type DiskErrors } from '../base/errors.js';
import { identityOf, ownFileStreamFs, type FileIdentity } from '../disk/open-checked.js';
import { DiskHandle, handleContext } from './handle.js';
import { checkHandoffOptions, type HandoffOptions } from '../handoff/handoff.js';
import { describeArgument, ownOptions, validateAbortSignal, validateBoolean, validateInteger, validateObject, type NoneLeftOut } from '../base/validators.js';
import { moveFile, resolveDestination, resolveKeepOptions, type KeepOptions } from '../keep/move.js';
import { unlinkAside, unlinkAsideSync, unlinkQuietly, unlinkQuietlySync } from '../disk/remove.js';
import { holdsHappen, newSetAsideName } from '../disk/holds.js';
import { INLINE_IO_MAX_BYTES } from '../disk/local-disk.js';
import { fs } from '../disk/fs.js';
import { Reservation } from '../limits/accounting.js';
import type { IntakeFacts } from '../write/intake.js';
import type { HandoffTicket } from '../handoff/ticket.js';
import type { HandoffSource } from '../handoff/backend.js';
import { CHANNELS, handoffKey, publish, traced, TRACING_CHANNELS } from '../base/channels.js';
import { builtin } from '../base/builtin.js';
const { constants } = builtin('node:fs');

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

/** The names of `createReadStream()`'s options: every key of {@link TempReadStreamOptions} (`NoneLeftOut`). */
const READ_STREAM_OPTION_KEYS = ['start', 'end', 'highWaterMark', 'signal'] as const satisfies readonly (keyof TempReadStreamOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type ReadStreamOptionsListed = NoneLeftOut<Exclude<keyof TempReadStreamOptions, (typeof READ_STREAM_OPTION_KEYS)[number]>>;
const READ_STREAM_OPTIONS: ReadonlySet<string> = new Set<string>(READ_STREAM_OPTION_KEYS);
/** The names of `createWriteStream()`'s options: every key of {@link TempWriteStreamOptions} (`NoneLeftOut`). */
const WRITE_STREAM_OPTION_KEYS = ['append', 'highWaterMark', 'signal'] as const satisfies readonly (keyof TempWriteStreamOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type WriteStreamOptionsListed = NoneLeftOut<Exclude<keyof TempWriteStreamOptions, (typeof WRITE_STREAM_OPTION_KEYS)[number]>>;
const WRITE_STREAM_OPTIONS: ReadonlySet<string> = new Set<string>(WRITE_STREAM_OPTION_KEYS);

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

/** The options of `createReadStream()`, checked as {@link TempFile.createReadStream} checks them. @internal */
export function readStreamOptions(options: unknown): TempReadStreamOptions {
  return streamOptions(options, 'createReadStream()', READ_STREAM_OPTIONS) as TempReadStreamOptions;
}

// No O_TRUNC: a truncating stream empties the file only once it was checked (open-checked.ts).
const WRITE_FLAGS = constants.O_WRONLY;
const READ_FLAGS = constants.O_RDONLY;
const STORE_READ_BYTES = 1024 * 1024;

/** What `new TempFile(...)` takes: the arguments a {@link FileMaker} is given. @internal */
export type TempFileArgs = ConstructorParameters<typeof TempFile>;

/** Makes the file object of a `write()`: `new TempFile(...args)`, or an adapter's subclass. @internal */
export type FileMaker<T extends TempFile> = (...args: TempFileArgs) => T;

/** The {@link FileMaker} of a plain `write()`. @internal */
export const makeTempFile: FileMaker<TempFile> = (...args) => new TempFile(...args);

// A file's content facts and its quota reservation are #private: no property or method of a
// handle can change them (a forged size or digest would reach a handoff's ticket, a negative count
// would free quota another file holds). The intake that filled the file records them once, from
// what it measured, through these functions of this module's.
let contentOf: (file: TempFile) => IntakeFacts | undefined;
let setContent: (file: TempFile, facts: IntakeFacts) => void;

/** Records what the intake that filled `file` measured; once per file. @internal */
export function recordContent(file: TempFile, facts: IntakeFacts): void {
  if (contentOf(file) !== undefined) throw new Error('A file\'s content is recorded once, by the intake that filled it');
  setContent(file, facts);
}

/** The quota reservation of `file`: the intake filling it counts its bytes there. @internal */
export let reservationOf: (file: TempFile) => Reservation;

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
  // What the intake that filled the file measured, and the bytes it counts against the quota:
  // private to this module (see `recordContent`), so no caller can forge or free them.
  #content: IntakeFacts | undefined;
  readonly #reservation: Reservation;

  static {
    contentOf = (file) => file.#content;
    setContent = (file, facts) => {
      file.#content = facts;
    };
    reservationOf = (file) => file.#reservation;
  }
  /**
   * The device and inode every open must find: recorded when `write()` created the file, or, for a
   * `file()` (created with no fstat, which would cost a fifth of a create), at its first open,
   * which finds a regular file with one link (no link to a file outside the root). @internal
   */
  get identity(): FileIdentity | undefined {
    return this.known;
  }
  /** @internal */
  protected known: FileIdentity | undefined;
  readonly #learn = (identity: FileIdentity): void => {
    this.known ??= identity;
  };

  /** @internal */
  constructor(context: ManagerContext, owner: Owner, path: string, access: string, suffix: string, created?: { readonly dev: number; readonly ino: number }) {
    super(context, owner, path, access);
    this.suffix = suffix;
    this.known = created === undefined ? undefined : identityOf(created);
    context.accounting.liveFiles += 1;
    this.#reservation = new Reservation(context.accounting);
  }

  /** The size in bytes, when `write()` made the file (not read from disk). @throws Never. */
  get size(): number | undefined {
    return this.#content?.size;
  }

  /** `'<algorithm>:<hex>'` of the content, when `write()` was given `hash`. @throws Never. */
  get digest(): string | undefined {
    return this.#content?.digest;
  }

  /** The type `write({ accept })` found from the first bytes, if any. @throws Never. */
  get detectedType(): DetectedType | undefined {
    return this.#content?.detectedType;
  }

  /**
   * A write stream to the file (truncating unless `append`); end it before the handle is disposed.
   * What goes wrong once it exists is its 'error' event, never a throw. It opens only the file this
   * handle made, without blocking: a symlink planted there fails (`ELOOP`), anything else (a hard
   * link, a FIFO...) is a {@link TempFileReplacedError}, before a byte is written (docs/security.md).
   *
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: the handle owns the file no more, or a
   * `remove()`, `keep()` or `handoff()` of it is in flight.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: bad `options`.
   */
  createWriteStream(options?: TempWriteStreamOptions): WriteStream {
    this.assertLive('TempFile');
    options = streamOptions(options, 'createWriteStream()', WRITE_STREAM_OPTIONS) as TempWriteStreamOptions;
    const append = options.append === true;
    const flags = WRITE_FLAGS | (append ? constants.O_APPEND : 0);
    return fs.createWriteStream(this.access, {
      flags: flags as unknown as string,
      fs: ownFileStreamFs(this.identity, this.path, !append, this.#learn),
      highWaterMark: options.highWaterMark,
      signal: options.signal,
    });
  }

  /** A read stream of the file, opened as {@link TempFile.createWriteStream} opens one. @throws What {@link TempFile.createWriteStream} throws. */
  createReadStream(options?: TempReadStreamOptions): ReadStream {
    this.assertLive('TempFile');
    options = streamOptions(options, 'createReadStream()', READ_STREAM_OPTIONS) as TempReadStreamOptions;
    return fs.createReadStream(this.access, {
      flags: READ_FLAGS as unknown as string,
      fs: ownFileStreamFs(this.identity, this.path, false, this.#learn),
      start: options.start,
      end: options.end,
      highWaterMark: options.highWaterMark,
      signal: options.signal,
    });
  }

  /**
   * Moves the file to `destination` for good and returns its absolute path; the handle then owns
   * nothing, and the bytes stop counting against `maxLiveBytes`. Never replaces anything there (even
   * a dangling symlink) unless `overwrite` is set, and never writes through a symlink planted there.
   * Killed at any instant, it leaves nothing (or the old file) or the whole file (docs/scoped-files.md,
   * "Keeping a file"). A failed `keep()` leaves the file with the handle.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: a bad `destination` or `options`.
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: the handle owns the file no more, or a
   * `remove()`, `keep()` or `handoff()` of it is in flight.
   * @throws {@link ManagerClosedError} `ERR_TEMPFILE_MANAGER_CLOSED`: the manager closed meanwhile,
   * and the file went with the session: nothing is left at the destination.
   * @throws {@link DestinationExistsError} `ERR_TEMPFILE_DESTINATION_EXISTS`: without `overwrite`,
   * something holds the destination name.
   * @throws {@link TempFileReplacedError} `ERR_TEMPFILE_REPLACED`: the temp file, or a name `keep()`
   * made at the destination, was changed by another process (`err.path`): nothing of yours is removed.
   * @throws {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE`, {@link DiskQuotaError}
   * `ERR_TEMPFILE_DISK_QUOTA`, {@link FileSystemError} `ERR_TEMPFILE_IO`: the destination's file system
   * is full, over quota or failing; nothing is left there.
   * @example
   * const kept = await report.keep(`/srv/invoices/${id}.pdf`); // never overwrites
   */
  async keep(destination: string, options: KeepOptions = {}): Promise<string> {
    const target = resolveDestination(destination);
    const keepOptions = resolveKeepOptions(options);
    return this.moveOut('TempFile', async () => {
      try {
        await moveFile(this.access, target, keepOptions, this.path, this.identity);
      } catch (err) {
        throw this.#closedDuringKeep(err, target) ?? err;
      }
      publish(CHANNELS.fileKeep, () => ({ root: handleContext(this).root, path: this.path, destination: target, size: this.#reservation.bytes, from: 'file' }));
      return target;
    });
  }

  // A close() while keep() ran removed the session, and the file with it: keep() then finds its
  // source gone, which is the close's doing, not a replacement.
  #closedDuringKeep(err: unknown, target: string): ManagerClosedError | undefined {
    if (!handleContext(this).closed()) return undefined;
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
   * Hands the file off and returns a ticket, plain JSON for a job queue or `postMessage`, that
   * carries no path: the file moves into `<root>/handoff/` (whole or not at all), or, with `store`,
   * is uploaded to an object store (docs/s3.md). No process owns it then: a worker claims it with
   * `mgr.claim(ticket)`, or a sweep removes it `ttlMs` later. A failed handoff leaves it with the
   * handle; what was moved is checked to be this handle's file (docs/security.md).
   *
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: the handle owns the file no more, or a
   * `remove()`, `keep()` or `handoff()` of it is in flight.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: bad `options` (`ttlMs` from 1 ms
   * to 366 days; `meta` a plain JSON object of at most 4 KiB); nothing is moved.
   * @throws {@link TempFileReplacedError} `ERR_TEMPFILE_REPLACED`: the path no longer holds the file.
   * @throws {@link UnsafeRootError} `ERR_TEMPFILE_UNSAFE_ROOT`: `<root>/handoff` is not a safe directory.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: with `store`, the upload failed (`err.reason`).
   * @throws {@link HandoffMismatchError} `ERR_TEMPFILE_HANDOFF_MISMATCH`: with `store`, the file
   * changed while it was uploaded.
   * @throws {@link MissingPeerError} `ERR_TEMPFILE_MISSING_PEER`: with `store`, no AWS SDK installed.
   * @throws See {@link DiskErrors}: the root changed, the disk full, over quota or failing.
   */
  async handoff(options: HandoffOptions): Promise<HandoffTicket> {
    this.assertLive('TempFile');
    const { store, ttlMs, meta } = checkHandoffOptions(options); // bad options are refused before any disk access
    const backend = store ?? handleContext(this).handoff;
    return this.moveOut('TempFile', async () => {
      handleContext(this).checkRoot();
      return traced(
        TRACING_CHANNELS.handoff,
        () => ({ root: handleContext(this).root, path: this.path, size: this.#content?.size ?? this.#reservation.bytes, store: store !== undefined }),
        () => backend.handOff(this.#handoffSource(), { ttlMs, meta }),
        (ticket) => ({ handoff: handoffKey(ticket.id), expiresAt: ticket.expiresAt }),
      );
    });
  }

  // The file as a backend reads it: the shared disk moves it by its access path; an object store
  // uploads it through open() and then discards it here (a failed upload leaves it with the handle).
  #handoffSource(): HandoffSource {
    return {
      path: this.path,
      access: this.access,
      suffix: this.suffix,
      size: this.#content?.size,
      digest: this.#content?.digest,
      identity: this.known,
      open: () => this.#openForStore(),
      discard: () => unlinkQuietly(this.access, this.path).catch(() => {}), // the session's removal gets what is left
    };
  }

  // Read in reads of up to 1 MiB: a request body is sent as it is read, and a 64 KiB read per
  // chunk made the reading, not the network, the pace of a handoff to a store on a fast link.
  #openForStore(): ReadStream {
    return fs.createReadStream(this.access, {
      flags: READ_FLAGS as unknown as string,
      highWaterMark: STORE_READ_BYTES,
      fs: ownFileStreamFs(this.identity, this.path, false, this.#learn),
    });
  }

  /** @internal */
  protected override removalFacts(): { kind: 'file' | 'dir'; size: number } {
    return { kind: 'file', size: this.#reservation.bytes };
  }

  /** @internal */
  protected override released(): void {
    handleContext(this).accounting.liveFiles -= 1;
    this.#reservation.release();
  }

  /** @internal */
  protected deleteAsync(): Promise<void> {
    if (holdsHappen()) return unlinkAside(this.access, this.path, this.#asideName()).then(() => {});
    if (handleContext(this).localDisk() === undefined || !isSmallFile(this.access)) return unlinkQuietly(this.access, this.path);
    try {
      unlinkQuietlySync(this.access, this.path);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /** Where its removal first renames it where another handle may hold it (Windows): a set-aside name in the session. */
  #asideName(): string {
    return `${handleContext(this).session().base}/${newSetAsideName()}`;
  }

  /** @internal */
  protected deleteSync(): void {
    if (holdsHappen()) void unlinkAsideSync(this.access, this.path, this.#asideName());
    else unlinkQuietlySync(this.access, this.path);
  }
}

/**
 * True for a file small enough to unlink inline (about 15 µs on a local disk, less than a trip
 * to the thread pool). A larger file takes longer to free (0.4 ms at 8 MiB), and one that cannot
 * be checked is left to the thread pool's unlink, which reports why.
 */
function isSmallFile(path: string): boolean {
  try {
    return fs.lstatSync(path).size <= INLINE_IO_MAX_BYTES;
  } catch {
    return false;
  }
}
