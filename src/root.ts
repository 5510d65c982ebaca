import os from 'node:os';
import path from 'node:path';
import { systemErrorCode, toFileSystemError, UnsafeRootError } from './errors.js';
import type { FileSystem } from './fs.js';

/** The default root: one directory per user under the OS temp directory. */
export function defaultRoot(): string {
  const uid = process.getuid?.();
  const owner = uid === undefined ? safeUserName() : String(uid);
  return path.join(os.tmpdir(), `tempfile-manager-${owner}`);
}

function safeUserName(): string {
  try {
    return os.userInfo().username.replace(/[^A-Za-z0-9._-]/g, '_') || 'user';
  } catch {
    return 'user';
  }
}

/**
 * Creates the root (mode 0700, never its parents) or checks that the existing one is safe:
 * a real directory, not a symlink, owned by this uid, not writable by group or others.
 */
export function ensureSafeRoot(fs: FileSystem, root: string): void {
  try {
    fs.mkdirSync(root, { mode: 0o700 });
    return;
  } catch (err) {
    const code = systemErrorCode(err);
    if (code === 'ENOENT') {
      throw new UnsafeRootError(
        'missing-parent',
        root,
        `Cannot create the root ${root}: its parent directory does not exist. ` +
          'Create the parent yourself (the manager never creates directories outside its root).',
        err,
      );
    }
    if (code !== 'EEXIST') throw toFileSystemError('create the root', root, err);
  }
  checkExistingRoot(fs, root);
}

/** Throws {@link UnsafeRootError} unless the existing `root` is a safe directory. */
export function checkExistingRoot(fs: FileSystem, root: string): void {
  const stat = fs.lstatSync(root);
  if (stat.isSymbolicLink()) {
    throw new UnsafeRootError(
      'symlink',
      root,
      `The root ${root} is a symbolic link, which another user could point anywhere. ` +
        'Pass the real directory as `root`, or remove the link.',
    );
  }
  if (!stat.isDirectory()) {
    throw new UnsafeRootError(
      'not-a-directory',
      root,
      `The root ${root} exists but is not a directory: remove it or choose another \`root\`.`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw new UnsafeRootError(
      'wrong-owner',
      root,
      `The root ${root} is owned by uid ${stat.uid}, not by this process (uid ${uid}). ` +
        `Another user could read or replace its files: run \`chown ${uid} ${root}\` or choose another \`root\`.`,
    );
  }
  if (process.platform !== 'win32' && (stat.mode & 0o022) !== 0) {
    throw new UnsafeRootError(
      'writable-by-others',
      root,
      `The root ${root} is writable by group or others (mode ${(stat.mode & 0o777).toString(8)}), ` +
        `so they could plant or swap files in it: run \`chmod 700 ${root}\` or choose another \`root\`.`,
    );
  }
}
