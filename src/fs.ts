import nodeFs from 'node:fs';

/**
 * The part of `node:fs` the library uses. A manager takes it as the `fs` option so that tests
 * can inject failures (memfs, or a wrapper that throws EIO on the third call); production code
 * never sets it.
 */
export interface FileSystem {
  openSync: typeof nodeFs.openSync;
  closeSync: typeof nodeFs.closeSync;
  mkdirSync: typeof nodeFs.mkdirSync;
  lstatSync: typeof nodeFs.lstatSync;
  unlinkSync: typeof nodeFs.unlinkSync;
  rmSync: typeof nodeFs.rmSync;
  rmdirSync: typeof nodeFs.rmdirSync;
  linkSync: typeof nodeFs.linkSync;
  renameSync: typeof nodeFs.renameSync;
  statSync: typeof nodeFs.statSync;
  utimesSync: typeof nodeFs.utimesSync;
  realpathSync: typeof nodeFs.realpathSync;
  createReadStream: typeof nodeFs.createReadStream;
  createWriteStream: typeof nodeFs.createWriteStream;
  promises: Pick<
    typeof nodeFs.promises,
    'unlink' | 'rm' | 'rmdir' | 'mkdir' | 'lstat' | 'link' | 'rename' | 'copyFile' | 'open' | 'readdir'
  > &
    Partial<Pick<typeof nodeFs.promises, 'statfs'>>;
}

/** The real file system. */
export const realFs: FileSystem = nodeFs;

/** Flags of the lstat-free, symlink-refusing opens: O_NOFOLLOW where the platform has it. */
export const O_NOFOLLOW = nodeFs.constants.O_NOFOLLOW ?? 0;
/** Create a new file, fail if the name exists, never follow a symlink at the name. */
export const CREATE_EXCLUSIVE =
  nodeFs.constants.O_CREAT | nodeFs.constants.O_EXCL | nodeFs.constants.O_WRONLY | O_NOFOLLOW;
