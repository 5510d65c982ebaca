import { fs } from '../disk/fs.js';
import { inlineAllowed, runInline, type LocalDiskKind } from '../disk/local-disk.js';
import { identityOf, type FileIdentity } from '../disk/open-checked.js';

/**
 * A new file open for appending, by descriptor through the callback API of `fs`: no FileHandle,
 * whose bookkeeping costs more than a small upload's own writes.
 * @internal
 */
export interface WritableFile {
  /** The new file's device and inode, for every later open of it to check. */
  readonly identity: FileIdentity;
  /** Appends from the start of `buffer` in the thread pool; calls back with the bytes written (maybe fewer). */
  write(buffer: Buffer, done: (error: Error | null, bytesWritten: number) => void): void;
  /** Appends inline (a small batch on a local disk); returns the bytes written (maybe fewer). */
  writeSync(buffer: Buffer): number;
  /** Closes the descriptor, inline when the file was opened `inline`; a second call does nothing. */
  close(): Promise<void>;
}

/**
 * Creates `path` with `flags` (which must hold O_CREAT|O_EXCL: the file is new, and this call's)
 * and `mode`. On a local `disk` the close is made inline (about 2 µs, a tenth of a trip to the
 * thread pool), and on one held in memory the create too while inline calls are not paused (see
 * {@link runInline}). On a device, the create stays in the thread pool, where a busy journal can
 * hold it for milliseconds. If the file cannot be set up once created, it is closed and removed before
 * the promise rejects: nothing is left at `path`.
 * @internal
 */
export function openWritable(path: string, flags: number, mode: number, disk: LocalDiskKind | undefined): Promise<WritableFile> {
  const inline = disk !== undefined;
  if (disk === 'memory' && inlineAllowed()) {
    try {
      const fd = runInline(() => fs.openSync(path, flags, mode));
      return setUp(path, fd, inline);
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }
  return new Promise((resolve, reject) => {
    fs.open(path, flags, mode, (error, fd) => (error ? reject(error) : setUp(path, fd, inline).then(resolve, reject)));
  });
}

/** The new file `fd` opens, checked; closed and removed if it cannot be. */
function setUp(path: string, fd: number, inline: boolean): Promise<WritableFile> {
  let identity: FileIdentity;
  try {
    identity = identityOf(fs.fstatSync(fd)); // inline: about 1 µs on the open descriptor
  } catch (statError) {
    // O_EXCL: the file at `path` is the one just made, empty; a second failure must not hide the first.
    return new Promise((_, reject) => fs.close(fd, () => void fs.promises.unlink(path).catch(() => {}).finally(() => reject(statError as Error))));
  }
  return Promise.resolve(writableFile(fd, inline, identity));
}

function writableFile(fd: number, inline: boolean, identity: FileIdentity): WritableFile {
  let closed = false;
  return {
    identity,
    write: (buffer, done) => fs.write(fd, buffer, 0, buffer.length, null, done),
    writeSync: (buffer) => fs.writeSync(fd, buffer, 0, buffer.length, null),
    close: () => {
      if (closed) return Promise.resolve();
      closed = true;
      if (!inline) return new Promise((resolve, reject) => fs.close(fd, (error) => (error ? reject(error) : resolve())));
      try {
        fs.closeSync(fd);
        return Promise.resolve();
      } catch (error) {
        return Promise.reject(error as Error);
      }
    },
  };
}
