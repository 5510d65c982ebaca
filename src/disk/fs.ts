import * as nodeFs from 'node:fs';

/**
 * The part of `node:fs` the library uses. A manager takes it as the `fs` option so that tests
 * can inject failures (memfs, or a wrapper that throws EIO on the third call); production code
 * never sets it.
 * @internal
 */
export interface FileSystem {
  /** `fs.open`: write() opens its file by descriptor, without a FileHandle. */
  open: typeof nodeFs.open;
  /** `fs.write` (callback) */
  write: typeof nodeFs.write;
  /** `fs.close` (callback) */
  close: typeof nodeFs.close;
  /** `fs.read` (callback): the read streams of temp files read through it. */
  read: typeof nodeFs.read;
  /** `fs.ftruncate` (callback): a truncating write stream empties its file once it was checked. */
  ftruncate: typeof nodeFs.ftruncate;
  /** `fs.openSync` */
  openSync: typeof nodeFs.openSync;
  /** `fs.closeSync` */
  closeSync: typeof nodeFs.closeSync;
  /** `fs.writeSync` */
  writeSync: typeof nodeFs.writeSync;
  /** `fs.readSync` */
  readSync: typeof nodeFs.readSync;
  /** `fs.mkdirSync` */
  mkdirSync: typeof nodeFs.mkdirSync;
  /** `fs.fstatSync` */
  fstatSync: typeof nodeFs.fstatSync;
  /** `fs.readdirSync` */
  readdirSync: typeof nodeFs.readdirSync;
  /** `fs.lstatSync` */
  lstatSync: typeof nodeFs.lstatSync;
  /** `fs.unlinkSync` */
  unlinkSync: typeof nodeFs.unlinkSync;
  /** `fs.rmSync` */
  rmSync: typeof nodeFs.rmSync;
  /** `fs.fchmodSync` */
  fchmodSync: typeof nodeFs.fchmodSync;
  /** `fs.futimesSync`: the heartbeat of sessions and leases. */
  futimesSync: typeof nodeFs.futimesSync;
  /** `fs.chmodSync` */
  chmodSync: typeof nodeFs.chmodSync;
  /** `fs.opendirSync`: directories are read as streams where it is there, else with `readdirSync`. */
  opendirSync?: typeof nodeFs.opendirSync;
  /** `fs.rmdirSync` */
  rmdirSync: typeof nodeFs.rmdirSync;
  /** `fs.linkSync` */
  linkSync: typeof nodeFs.linkSync;
  /** `fs.renameSync` */
  renameSync: typeof nodeFs.renameSync;
  /** `fs.statSync` */
  statSync: typeof nodeFs.statSync;
  /** `fs.utimesSync` */
  utimesSync: typeof nodeFs.utimesSync;
  /** `fs.symlinkSync`: used only to check that O_NOFOLLOW holds; without it, that check is skipped. */
  symlinkSync?: typeof nodeFs.symlinkSync;
  /** `fs.readlinkSync`: the links above a root are followed one by one, each checked (root-parents.ts). */
  readlinkSync: typeof nodeFs.readlinkSync;
  /** `fs.realpathSync` */
  realpathSync: typeof nodeFs.realpathSync;
  /** `fs.statfsSync`: without it, every call goes to the thread pool (see `local-disk.ts`). */
  statfsSync?: typeof nodeFs.statfsSync;
  /** `fs.createReadStream` */
  createReadStream: typeof nodeFs.createReadStream;
  /** `fs.createWriteStream` */
  createWriteStream: typeof nodeFs.createWriteStream;
  /**
   * The platform whose semantics the file system has, when not this process's: a test's layer
   * that behaves as Windows does (holds, delete-pending names) says `'win32'`. Removal reads it
   * through `platformOf` (holds.ts) alone.
   */
  platform?: NodeJS.Platform;
  /** `fs.promises`: the methods the library calls. */
  promises: Pick<
    typeof nodeFs.promises,
    'unlink' | 'rm' | 'rmdir' | 'mkdir' | 'lstat' | 'link' | 'rename' | 'copyFile' | 'open' | 'readdir'
  > &
    Partial<Pick<typeof nodeFs.promises, 'statfs' | 'opendir'>>;
}

/** The real file system. */
export const realFs: FileSystem = nodeFs;

/** Flags of the lstat-free, symlink-refusing opens: O_NOFOLLOW where the platform has it. */
export const O_NOFOLLOW = nodeFs.constants.O_NOFOLLOW ?? 0;
/** Create a new file, fail if the name exists, never follow a symlink at the name. */
export const CREATE_EXCLUSIVE =
  nodeFs.constants.O_CREAT | nodeFs.constants.O_EXCL | nodeFs.constants.O_WRONLY | O_NOFOLLOW;
