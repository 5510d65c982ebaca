import { constants, type ReadStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import fsExtra from 'fs-extra';
import type { ManagerContext, Owner } from './context.js';
import { DestinationExistsError, InvalidOptionError, systemErrorCode, toFileSystemError } from './errors.js';
import { O_NOFOLLOW } from './fs.js';
import { DiskHandle } from './handle.js';
import { describe } from './names.js';
import { unlinkQuietly, unlinkQuietlySync } from './remove.js';

/** Options of {@link TempFile.keep}. */
export interface KeepOptions {
  /** Replace a file already at the destination. Default: false (refuse with `ERR_TEMPFILE_DESTINATION_EXISTS`). */
  readonly overwrite?: boolean;
}

/** Options of {@link TempFile.createReadStream}. */
export interface TempReadStreamOptions {
  readonly start?: number;
  readonly end?: number;
  readonly highWaterMark?: number;
  readonly signal?: AbortSignal;
}

/** Options of {@link TempFile.createWriteStream}. */
export interface TempWriteStreamOptions {
  /** Append instead of truncating. Default: false. */
  readonly append?: boolean;
  readonly highWaterMark?: number;
  readonly signal?: AbortSignal;
}

const WRITE_FLAGS = constants.O_WRONLY | O_NOFOLLOW;
const READ_FLAGS = constants.O_RDONLY | O_NOFOLLOW;

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
  private bytes: number | undefined;
  private hashDigest: string | undefined;
  private accountedBytes = 0;

  /** @internal */
  constructor(context: ManagerContext, owner: Owner, path: string) {
    super(context, owner, path);
    context.accounting.liveFiles += 1;
  }

  /** The size in bytes, when `write()` made the file; undefined for `file()`, whose size is yours. */
  get size(): number | undefined {
    return this.bytes;
  }

  /** The hex digest of the content, when `write()` was given `hash`. */
  get digest(): string | undefined {
    return this.hashDigest;
  }

  /**
   * A write stream to the file (truncating unless `append`). It refuses to follow a symlink
   * planted at the path.
   */
  createWriteStream(options: TempWriteStreamOptions = {}): WriteStream {
    this.assertLive('TempFile');
    const flags = WRITE_FLAGS | (options.append ? constants.O_APPEND : constants.O_TRUNC);
    return this.context.fs.createWriteStream(this.path, {
      flags: flags as unknown as string,
      highWaterMark: options.highWaterMark,
      signal: options.signal,
    });
  }

  /** A read stream of the file. It refuses to follow a symlink planted at the path. */
  createReadStream(options: TempReadStreamOptions = {}): ReadStream {
    this.assertLive('TempFile');
    return this.context.fs.createReadStream(this.path, {
      flags: READ_FLAGS as unknown as string,
      start: options.start,
      end: options.end,
      highWaterMark: options.highWaterMark,
      signal: options.signal,
    });
  }

  /**
   * Moves the file to `destination` for good and returns its absolute path; the handle then owns
   * nothing, and disposing it does nothing. An atomic rename on the same file system; a copy and
   * delete across file systems. Refuses to replace an existing file unless `overwrite` is set.
   */
  async keep(destination: string, options: KeepOptions = {}): Promise<string> {
    this.assertLive('TempFile');
    if (typeof destination !== 'string' || destination.length === 0 || destination.includes('\0')) {
      throw new InvalidOptionError(
        'destination',
        `keep() needs a destination path as a non-empty string, got ${describe(destination)}.`,
      );
    }
    const target = path.resolve(destination);
    if (options.overwrite) await this.moveReplacing(target);
    else await this.moveNoClobber(target);
    this.markGone();
    return target;
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

  /** @internal */
  protected override released(): void {
    this.context.accounting.liveFiles -= 1;
    this.context.accounting.release(this.accountedBytes);
    this.accountedBytes = 0;
  }

  /** @internal */
  protected deleteAsync(): Promise<void> {
    return unlinkQuietly(this.context.fs, this.path);
  }

  /** @internal */
  protected deleteSync(): void {
    unlinkQuietlySync(this.context.fs, this.path);
  }

  private async moveReplacing(target: string): Promise<void> {
    try {
      await this.context.fs.promises.rename(this.path, target);
    } catch (err) {
      if (systemErrorCode(err) !== 'EXDEV') throw toFileSystemError('keep the file at', target, err);
      await this.moveAcrossDevices(target, true);
    }
  }

  // link() fails with EEXIST instead of replacing: an atomic "rename unless it exists".
  private async moveNoClobber(target: string): Promise<void> {
    const fs = this.context.fs;
    try {
      await fs.promises.link(this.path, target);
    } catch (err) {
      const code = systemErrorCode(err);
      if (code === 'EEXIST') throw new DestinationExistsError(target, err);
      if (code === 'EXDEV') return this.moveAcrossDevices(target, false);
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') return this.renameIfAbsent(target);
      throw toFileSystemError('keep the file at', target, err);
    }
    await unlinkQuietly(fs, this.path);
  }

  // For file systems without hard links: a check, then a rename (not atomic against a racer).
  private async renameIfAbsent(target: string): Promise<void> {
    const fs = this.context.fs;
    try {
      await fs.promises.lstat(target);
      throw new DestinationExistsError(target);
    } catch (err) {
      if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('keep the file at', target, err);
    }
    try {
      await fs.promises.rename(this.path, target);
    } catch (err) {
      throw toFileSystemError('keep the file at', target, err);
    }
  }

  private async moveAcrossDevices(target: string, overwrite: boolean): Promise<void> {
    try {
      await fsExtra.move(this.path, target, { overwrite });
    } catch (err) {
      if (!overwrite && err instanceof Error && /already exists/.test(err.message)) {
        throw new DestinationExistsError(target, err);
      }
      throw toFileSystemError('keep the file at', target, err);
    }
  }
}
