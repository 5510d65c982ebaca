import { FileSystemError, systemErrorCode, toFileSystemError, UnsafeRootError } from '../base/errors.js';
import { CREATE_EXCLUSIVE, fs } from '../disk/fs.js';
import { OPEN_EXISTING } from '../disk/open-checked.js';
import { HOST_PLATFORM } from '../base/platform.js';
import { mayRead, mayWrite } from '../base/permission-model.js';
import { checkRootParents } from './root-parents.js';
import { openPinnedSync, type PinnedDirSync } from '../disk/pinned-dir.js';
import { LAYOUT_FORMAT, parseRootMarker, ROOT_MARKER, rootMarkerContent } from '../base/layout.js';
import { builtin } from '../base/builtin.js';
const os = builtin('node:os');
const path = builtin('node:path');
const { constants } = builtin('node:fs');

/** The default root: one directory per user under the OS temp directory. */
export function defaultRoot(): string {
  const uid = process.getuid?.();
  const owner = uid === undefined ? safeUserName() : String(uid);
  return path.join(os.tmpdir(), `tempfile-manager-${owner}`);
}

/**
 * A directory every user may write in, such as /tmp: writable by all and sticky, or the OS temp
 * directory itself. Advising `chmod` or `chown` on it would break its other users.
 */
function isSharedDir(root: string, mode: number): boolean {
  const writableByAll = (mode & 0o002) !== 0;
  const sticky = (mode & 0o1000) !== 0;
  return writableByAll && (sticky || path.resolve(root) === path.resolve(os.tmpdir()));
}

function safeUserName(): string {
  try {
    return os.userInfo().username.replace(/[^A-Za-z0-9._-]/g, '_') || 'user';
  } catch {
    return 'user';
  }
}

/** Which directory a path named when it was checked: its device and inode. */
export interface DirIdentity {
  readonly dev: number;
  readonly ino: number;
}

/**
 * Refuses a root below a symbolic link another user could change (root-parents.ts), then creates
 * the root (mode 0700, never its parents) or checks that the existing one is safe: a real
 * directory, not a symlink, owned by this uid, not writable by group or others. Then opens
 * the directory checked once (O_NOFOLLOW), makes sure it is the one the check saw, and marks it
 * through that descriptor (`/proc/<pid>/fd/<fd>/.tempfile-manager`): a root's path swapped for a
 * symlink at any moment of this never makes the marker land elsewhere. Without /proc the marker is
 * reached by the root's path, after the same check. Returns the identity of the directory checked,
 * for the manager to notice a swap later.
 * @throws {@link UnsafeRootError} for an unsafe root, or one that changed while it was checked.
 */
export function ensureSafeRoot(root: string): DirIdentity {
  requirePermittedRoot(root);
  checkRootParents(root);
  try {
    fs.mkdirSync(root, { mode: 0o700 });
  } catch (err) {
    const code = systemErrorCode(err);
    if (code !== 'EEXIST') throw rootCreationError(root, code, err);
  }
  const checked = checkRootDirectory(root);
  const pinned = openCheckedRoot(root, checked);
  try {
    markRoot(root, pinned.base);
  } finally {
    pinned.close();
  }
  return checked;
}

/**
 * Under Node's permission model, refuses a root this process may not write in, before anything
 * is made: every later call would fail. A root that does not exist when node starts is allowed
 * only by `--allow-fs-write=<root>/*`.
 * @throws {@link FileSystemError} `ERR_TEMPFILE_IO` (`syscallCode` `ERR_ACCESS_DENIED`) naming the flag.
 */
function requirePermittedRoot(root: string): void {
  const marker = path.join(root, ROOT_MARKER);
  if (mayWrite(root) && mayWrite(marker) && mayRead(marker)) return;
  const denied = Object.assign(new Error(`the permission model withholds writes to ${root}`), { code: 'ERR_ACCESS_DENIED' });
  throw new FileSystemError(
    'use the root',
    root,
    denied,
    `Node runs with --permission and may not read and write in the root: start it with --allow-fs-write=${root}/* ` +
      `(the root and everything in it, made before node started or not; --allow-fs-write=${root} allows only a root that ` +
      'exists when node starts) and --allow-fs-read for it. tempfile-manager needs writes to its root and to the destinations ' +
      'of keep() alone (and --allow-worker). See docs/crash-recovery.md.',
  );
}

/**
 * Opens the root (O_RDONLY|O_DIRECTORY|O_NOFOLLOW) and checks that the descriptor holds the
 * directory `checked` saw; {@link UnsafeRootError} (reason `'changed'`) if the path was swapped
 * between the check and the open.
 */
function openCheckedRoot(root: string, checked: DirIdentity): PinnedDirSync {
  let pinned: PinnedDirSync | 'gone' | 'not-a-dir';
  try {
    pinned = openPinnedSync(root);
  } catch (err) {
    throw toFileSystemError('open the root', root, err);
  }
  if (pinned === 'gone') throw changedWhileChecked(root, 'nothing is at that path any more');
  if (pinned === 'not-a-dir') throw changedWhileChecked(root, 'a symbolic link or a file is at that path now');
  let opened: { dev: number; ino: number };
  try {
    opened = fs.lstatSync(`${pinned.base}/.`);
  } catch (err) {
    pinned.close();
    throw toFileSystemError('open the root', root, err);
  }
  if (opened.dev !== checked.dev || opened.ino !== checked.ino) {
    pinned.close();
    throw changedWhileChecked(
      root,
      `the directory opened (device ${opened.dev}, inode ${opened.ino}) is not the one checked (device ${checked.dev}, inode ${checked.ino})`,
    );
  }
  return pinned;
}

function changedWhileChecked(root: string, found: string): UnsafeRootError {
  return new UnsafeRootError(
    'changed',
    root,
    `The root ${root} changed while it was being checked: ${found}. Another process is renaming or replacing it ` +
      '(a cleanup job, a deploy, another process of this user): nothing was created through it. Find what moves it, ' +
      'then make the TempFileManager again.',
  );
}

/** Why the root could not be made, said of the directory concerned: most often its parent. */
function rootCreationError(root: string, code: string | undefined, err: unknown): Error {
  const parent = path.dirname(root);
  const elsewhere = `choose another \`root\` (the default is ${defaultRoot()})`;
  if (code === 'ENOENT') {
    if (!exists(parent)) {
      return new UnsafeRootError(
        'missing-parent',
        root,
        `Cannot create the root ${root}: its parent directory ${parent} does not exist. ` +
          `Create ${parent} yourself (the manager never creates directories outside its root), or ${elsewhere}.`,
        err,
      );
    }
    return new FileSystemError(
      'create the root',
      root,
      err,
      `Its parent ${parent} exists but refuses new directories, as virtual file systems such as /proc and /sys do: ${elsewhere}, on a disk.`,
    );
  }
  if (code === 'EACCES' || code === 'EPERM') {
    const uid = process.getuid?.();
    return new FileSystemError(
      'create the root',
      root,
      err,
      `This user${uid === undefined ? '' : ` (uid ${uid})`} may not create directories in its parent ${parent}: ` +
        `${elsewhere}, or create ${root} (mode 700) as this user yourself.`,
    );
  }
  return toFileSystemError('create the root', root, err);
}

function exists(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes the root marker unless it is there: a file created exclusively, never through a link,
 * in the directory `rootBase` reaches (the pinned root). A marker of another format is an
 * {@link UnsafeRootError}: this version cannot share the root.
 */
function markRoot(root: string, rootBase: string): void {
  const marker = path.join(root, ROOT_MARKER);
  const access = `${rootBase}/${ROOT_MARKER}`;
  let fd: number;
  try {
    fd = fs.openSync(access, CREATE_EXCLUSIVE, 0o600);
  } catch (err) {
    if (systemErrorCode(err) !== 'EEXIST') throw toFileSystemError('mark the root', marker, err);
    completeMarker(marker, access);
    requireMarkedRoot(root, rootBase);
    return;
  }
  try {
    fs.writeSync(fd, rootMarkerContent(), 0);
  } catch (err) {
    throw toFileSystemError('mark the root', marker, err);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A marker that holds nothing yet, or the start of this format's content, is one being written by
 * another manager starting at the same instant, or one whose writer died between creating and
 * writing it: write the same bytes at the same place, which either way leaves the whole marker.
 */
function completeMarker(marker: string, access: string): void {
  let fd: number;
  try {
    fd = fs.openSync(access, constants.O_RDWR | OPEN_EXISTING); // a FIFO there never blocks
  } catch {
    return; // requireMarkedRoot says what is wrong with it
  }
  try {
    const expected = rootMarkerContent();
    const buffer = Buffer.alloc(256);
    const found = buffer.toString('utf8', 0, fs.readSync(fd, buffer, 0, buffer.length, 0));
    if (found.length < expected.length && expected.startsWith(found)) fs.writeSync(fd, expected, 0);
  } catch (err) {
    throw toFileSystemError('mark the root', marker, err);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Throws {@link UnsafeRootError} (reason `'not-a-manager-root'`) unless `root` carries this
 * format's marker: the sweep and the CLI refuse a directory that no manager made, whatever the
 * names in it look like.
 */
export function requireMarkedRoot(root: string, rootBase = root): void {
  const marker = path.join(root, ROOT_MARKER);
  let fd: number;
  try {
    fd = fs.openSync(`${rootBase}/${ROOT_MARKER}`, constants.O_RDONLY | OPEN_EXISTING);
  } catch (err) {
    const code = systemErrorCode(err);
    if (code !== 'ENOENT' && code !== 'ELOOP' && code !== 'ENOTDIR') throw toFileSystemError('read the root marker', marker, err);
    throw new UnsafeRootError(
      'not-a-manager-root',
      root,
      `${root} has no ${ROOT_MARKER} marker, so no manager made it: nothing there is swept. ` +
        'Check the path; a root is marked when a TempFileManager first uses it.',
    );
  }
  let content: string;
  try {
    content = readSmallFile(fd);
  } catch (err) {
    throw toFileSystemError('read the root marker', marker, err);
  }
  const format = parseRootMarker(content);
  if (format !== LAYOUT_FORMAT) {
    throw new UnsafeRootError(
      'not-a-manager-root',
      root,
      format === undefined
        ? `${marker} is not a tempfile-manager marker: nothing under ${root} is swept. Check the path.`
        : `${root} holds on-disk format ${format}; this version of tempfile-manager reads format ${LAYOUT_FORMAT}. ` +
          'Use the matching version, or another root.',
    );
  }
}

function readSmallFile(fd: number): string {
  try {
    const buffer = Buffer.alloc(256);
    const length = fs.readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.toString('utf8', 0, length);
  } finally {
    fs.closeSync(fd);
  }
}
/**
 * Throws {@link UnsafeRootError} unless the existing `root` is a safe directory below no link
 * another user could change; returns its identity.
 */
export function checkExistingRoot(root: string): DirIdentity {
  checkRootParents(root);
  return checkRootDirectory(root);
}

function checkRootDirectory(root: string): DirIdentity {
  let stat: ReturnType<typeof fs.lstatSync>;
  try {
    stat = fs.lstatSync(root);
  } catch (err) {
    // Removed between the mkdir that found it and this look, or unreadable: typed, never raw.
    throw toFileSystemError('check the root', root, err);
  }
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
  checkRootAccess(root, stat);
  return { dev: stat.dev, ino: stat.ino };
}

/** The root directory is this user's alone: not shared like /tmp, not another user's, not writable by others. */
function checkRootAccess(root: string, stat: { uid: number; mode: number }): void {
  const uid = process.getuid?.();
  const wrongOwner = uid !== undefined && stat.uid !== uid;
  const writableByOthers = HOST_PLATFORM !== 'win32' && (stat.mode & 0o022) !== 0;
  if (isSharedDir(root, stat.mode)) {
    throw new UnsafeRootError(
      'writable-by-others',
      root,
      `The root ${root} is a shared directory (mode ${(stat.mode & 0o7777).toString(8)}, like /tmp) where other users ` +
        'can create files, so they could plant or swap files in it. Leave its mode as it is and choose another `root`: ' +
        `a directory of your own inside it, such as the default, ${defaultRoot()}.`,
    );
  }
  if (wrongOwner) {
    throw new UnsafeRootError(
      'wrong-owner',
      root,
      `The root ${root} is owned by uid ${stat.uid}, not by this process (uid ${uid}). ` +
        `Another user could read or replace its files: choose another \`root\` (the default is ${defaultRoot()}), ` +
        `or, if this directory is meant for this user alone, \`chown ${uid} ${root}\`.`,
    );
  }
  if (writableByOthers) {
    throw new UnsafeRootError(
      'writable-by-others',
      root,
      `The root ${root} is writable by group or others (mode ${(stat.mode & 0o777).toString(8)}), ` +
        `so they could plant or swap files in it: run \`chmod 700 ${root}\` or choose another \`root\`.`,
    );
  }
}

/**
 * A root and the rules every part that touches it shares: the sessions, the sweep, the leases.
 * A manager builds one; the CLI builds one from its flags. @internal
 */
export interface RootContext {
  /** The absolute root directory. */
  readonly root: string;
  /** A heartbeat seen unchanged for this long has stopped. */
  readonly staleMs: number;
  /** An owner that cannot be checked is watched for at least this long before it is judged. */
  readonly graceMs: number;
  /** This host's id (informative; see docs/crash-recovery.md). */
  readonly hostId: string;
  /** Throws `RootChangedError` when the root's path no longer names the manager's root (a manager's sweeps). */
  readonly verifyRoot?: () => void;
  /**
   * The root as system calls reach it: the manager's descriptor of it (`/proc/<pid>/fd/<fd>`),
   * checked to be the root it was made with. Without it (the CLI), a sweep opens the root itself.
   */
  readonly rootBase?: () => string;
  /**
   * Holds this thread's live signal on the root (owner/live-signal.ts), or starts the beat thread
   * where none can be held: called before an owner's heartbeat starts (a session's lock, a lease).
   */
  readonly holdLive?: () => void;
}
