import { DestinationExistsError, InvalidOptionError, systemErrorCode, toFileSystemError } from '../base/errors.js';
import { toDestinationError } from './destination-error.js';
import { fs } from '../disk/fs.js';
import { describe } from '../base/names.js';
import { HOST_PLATFORM, type Platform } from '../base/platform.js';
import { windowsPathProblem } from '../base/windows-names.js';
import { ownOptions, validateBoolean, validateObject, type NoneLeftOut } from '../base/validators.js';
import { openPinned, type PinnedDir } from '../disk/pinned-dir.js';
import { otherThan, type FileIdentity } from '../disk/open-checked.js';
import {
  assertPlaced,
  copyAcrossDevices,
  holdsSameFile,
  lacksHardLinks,
  openSource,
  removeSource,
  removeSourceOrUndo,
  renameIfAbsent,
  type Move,
} from './staged-copy.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

/** Options of `keep()`. */
export interface KeepOptions {
  /** Replace a file already at the destination. Default: false (refuse with `ERR_TEMPFILE_DESTINATION_EXISTS`). */
  readonly overwrite?: boolean;
}

/** The names of `keep()`'s options: every key of {@link KeepOptions} (`NoneLeftOut`). */
const KEEP_OPTION_KEYS = ['overwrite'] as const satisfies readonly (keyof KeepOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type KeepOptionsListed = NoneLeftOut<Exclude<keyof KeepOptions, (typeof KEEP_OPTION_KEYS)[number]>>;
const KEEP_OPTIONS: ReadonlySet<string> = new Set<string>(KEEP_OPTION_KEYS);

/** Checks the options of `keep()`, before anything moves. */
export function resolveKeepOptions(options: unknown): { readonly overwrite: boolean } {
  validateObject(options, 'keep()', KEEP_OPTIONS, '{ overwrite: true }');
  const { overwrite } = ownOptions(options as KeepOptions | undefined);
  return { overwrite: overwrite === undefined ? false : validateBoolean(overwrite, 'overwrite', { where: 'keep()' }) };
}

/**
 * Checks a `keep()` destination and makes it absolute, by the rules of `platform`: on Windows a
 * path Windows would read as another file or a device is refused before anything moves.
 */
export function resolveDestination(destination: unknown, platform: Platform = HOST_PLATFORM): string {
  if (typeof destination !== 'string' || destination.length === 0 || destination.includes('\0')) {
    throw new InvalidOptionError(
      'destination',
      `keep() needs a \`destination\` path as a non-empty string without NUL, got ${describe(destination)}.`,
    );
  }
  const paths = platform === 'win32' ? path.win32 : path;
  const resolved = paths.resolve(destination);
  if (paths.basename(resolved) === '') {
    throw new InvalidOptionError('destination', `keep() needs a destination that names a file, got ${resolved}.`);
  }
  const problem = windowsPathProblem(resolved, platform);
  if (problem !== undefined) {
    throw new InvalidOptionError(
      'destination',
      `keep() cannot use the destination ${shownPath(destination)} on Windows: ${problem}. Choose another name or ` +
        'directory (remove trailing dots and spaces; shorten the path; see docs/windows-macos.md). Nothing was moved.',
    );
  }
  return resolved;
}

/** A path as the user wrote it (a Windows path's backslashes single), its control characters escaped as `\uNNNN`. */
function shownPath(file: string): string {
  // eslint-disable-next-line no-control-regex
  return file.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Moves a file for good. On one file system: an atomic rename (overwrite), or `link` + `unlink`
 * (an atomic "rename unless it exists"). Across file systems: a copy to a fresh staging name next
 * to the destination, then the same link or rename (see staged-copy.ts). The destination's
 * directory is opened once and every name in it is reached through that descriptor; no step
 * follows a symlink at the destination name. `shownFrom` is the source's path for error messages,
 * when `from` is a `/proc/self/fd` path.
 *
 * The source is first opened (never blocking, never following) and must be the library's own
 * file: a regular file with one link and, when known, the `identity` it was created with; else a
 * {@link TempFileReplacedError} and nothing moves. On one file system the link or rename then
 * goes by name: a same-uid process that swaps the source name in the microseconds between the
 * check and that call is not stopped (docs/security.md); across file systems the bytes are read
 * from the descriptor that was checked.
 */
export async function moveFile(
  from: string,
  to: string,
  options: KeepOptions,
  shownFrom: string = from,
  identity?: FileIdentity,
): Promise<void> {
  // A keep() interrupted between its link and its unlink left the file with two names, the
  // source's and the destination's: that second name is the only one let through.
  const source = await openSource(from, shownFrom, identity, (stat) => interruptedKeep(to, stat, identity));
  try {
    const dir = await openDestinationDir(to);
    try {
      const stat = await source.stat();
      const move: Move = {
        from,
        shownFrom,
        to,
        dir,
        target: path.join(dir.base, path.basename(to)),
        overwrite: options.overwrite === true,
        source,
        identity: { dev: stat.dev, ino: stat.ino },
      };
      if (await moveOnDevice(move)) return;
      await copyAcrossDevices(move);
    } finally {
      await dir.close();
    }
  } finally {
    await source.close().catch(() => {});
  }
}

// The directory part is the caller's own choice and may pass through symlinks; only the final
// name is ours to never follow. A directory that cannot be opened for reading (mode 0300, or a
// platform that does not open directories) is used by path: each step still refuses to follow
// a symlink at the final name.
async function openDestinationDir(to: string): Promise<PinnedDir> {
  const dir = path.dirname(to);
  let pinned: Awaited<ReturnType<typeof openPinned>>;
  try {
    pinned = await openPinned(dir, { followLinks: true });
  } catch (err) {
    const code = systemErrorCode(err);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EISDIR') return unpinned(dir);
    throw toFileSystemError('open the destination directory', dir, err);
  }
  if (pinned === 'gone') throw toFileSystemError('open the destination directory', dir, systemError('ENOENT'));
  if (pinned === 'not-a-dir') throw toFileSystemError('open the destination directory', dir, systemError('ENOTDIR'));
  return pinned;
}

function unpinned(dir: string): PinnedDir {
  return { base: dir, sync: async () => {}, close: async () => {} };
}

async function interruptedKeep(to: string, stat: import('node:fs').Stats, identity: FileIdentity | undefined): Promise<boolean> {
  if (!stat.isFile() || stat.nlink !== 2 || (identity !== undefined && otherThan(stat, identity) !== undefined)) return false;
  try {
    const there = await fs.promises.lstat(to);
    return there.isFile() && there.dev === stat.dev && there.ino === stat.ino;
  } catch {
    return false;
  }
}

function systemError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code });
}

/**
 * Moves within one file system; false when the destination is on another one (EXDEV). After a
 * link, the destination name must be the source's file before the source name goes (whoever can
 * write to the destination's directory could have put something else there meanwhile); and the
 * source name gone by then takes the link back (for a claim: the entry was taken over).
 */
async function moveOnDevice(move: Move): Promise<boolean> {
  try {
    if (move.overwrite) await fs.promises.rename(move.from, move.target);
    else await fs.promises.link(move.from, move.target);
  } catch (err) {
    const code = systemErrorCode(err);
    if (code === 'EXDEV') return false;
    if (move.overwrite) throw toDestinationError('keep the file at', move.to, err);
    if (code === 'EEXIST') {
      // A keep() interrupted between link and unlink left the same file at both names.
      if (!(await holdsSameFile(move))) throw new DestinationExistsError(move.to, err);
      await removeSourceOrUndo(move, undefined);
    } else if (lacksHardLinks(code)) {
      await renameIfAbsent(move, move.from);
    } else {
      throw toDestinationError('keep the file at', move.to, err);
    }
    return true;
  }
  if (move.overwrite) {
    // The source name is normally gone already; it stays when both names were one file (a keep()
    // interrupted between link and unlink, retried with overwrite).
    await removeSource(move);
  } else {
    await assertPlaced(move, move.identity);
    await removeSourceOrUndo(move, move.identity);
  }
  return true;
}
