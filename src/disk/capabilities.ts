import { isErrorCode, systemErrorCode, toFileSystemError, UnsupportedFileSystemError, type FileSystemPrimitive } from '../base/errors.js';
import { CREATE_EXCLUSIVE, O_NOFOLLOW, fs } from './fs.js';
import { OPEN_EXISTING } from './open-checked.js';
import { openPinnedSync } from './pinned-dir.js';
import { removeTreeSync } from './remove.js';
import { logger } from '../base/log.js';
import { mayMakeSymlinks } from '../base/permission-model.js';
import { probeName } from '../base/layout.js';
import { randomName } from '../base/random-name.js';
import { builtin } from '../base/builtin.js';
const { constants } = builtin('node:fs');
const path = builtin('node:path');

const log = logger('capabilities');

// Roots whose file system passed: the probe runs once per root per process.
const probed = new Set<string>();

/**
 * Checks, once per root and process, that the root's file system gives what sessions, leases and
 * handoff rely on: exclusive create, exclusive mkdir, rename (onto a free name, a directory, and
 * replacing a file), hard links or their refusal, utimes that sticks, O_NOFOLLOW. It works in a
 * scratch directory `name` made inside `dir` (a directory of ours) and removes it; a crash
 * half-way leaves it where the sweep removes it (in a session, or named like a staging directory).
 * @throws {@link UnsupportedFileSystemError} naming the first primitive missing.
 * @internal
 */
export function ensureCapabilities(root: string, dir: string, name = probeName(randomName())): void {
  if (capabilitiesProbed(root)) return;
  const scratch = path.join(dir, name);
  try {
    probeIn(scratch, root);
  } catch (err) {
    if (isErrorCode(err, 'ERR_TEMPFILE_UNSUPPORTED_FS')) throw err;
    throw toFileSystemError('probe the file system of', root, err);
  } finally {
    removeScratch(scratch);
  }
  probed.add(root);
  log('file system of %s: every primitive present', root);
}

/** Whether `root`'s file system was probed in this thread already: nothing to open for it. @internal */
export function capabilitiesProbed(root: string): boolean {
  return probed.has(root);
}

function probeIn(scratch: string, root: string): void {
  const missing = (primitive: FileSystemPrimitive, observed: string) => new UnsupportedFileSystemError(primitive, root, observed);
  fs.mkdirSync(scratch, { mode: 0o700 });
  if (succeeds(() => fs.mkdirSync(scratch), 'EEXIST')) throw missing('exclusive-mkdir', 'a second mkdir of the same name succeeded');
  // Its entries are reached through its descriptor: the scratch name could be swapped meanwhile.
  const pinned = openPinnedSync(scratch);
  if (typeof pinned === 'string') throw Object.assign(new Error(`ENOENT: the probe directory ${scratch} is gone`), { code: 'ENOENT' });
  try {
    probePrimitives((name) => `${pinned.base}/${name}`, missing);
  } finally {
    pinned.close();
  }
}

function probePrimitives(at: (name: string) => string, missing: Missing): void {

  fs.closeSync(fs.openSync(at('a'), CREATE_EXCLUSIVE, 0o600));
  if (succeeds(() => fs.closeSync(fs.openSync(at('a'), CREATE_EXCLUSIVE, 0o600)), 'EEXIST')) {
    throw missing('exclusive-create', 'an O_CREAT|O_EXCL open of an existing file succeeded');
  }

  renameOrMissing(at('a'), at('b'), missing);
  if (exists(at('a'))) throw missing('rename', 'after rename(a, b), a is still there');
  fs.mkdirSync(at('d'), { mode: 0o700 });
  renameOrMissing(at('d'), at('e'), missing);
  if (exists(at('d'))) throw missing('rename', 'a directory renamed is still at its old name');
  fs.closeSync(fs.openSync(at('c'), CREATE_EXCLUSIVE, 0o600));
  try {
    fs.renameSync(at('c'), at('b'));
  } catch (err) {
    const code = systemErrorCode(err) ?? '';
    if (code === 'EEXIST' || REFUSED.includes(code)) throw missing('rename-replace', `rename() onto an existing file failed with ${code}`);
    throw err;
  }
  if (exists(at('c'))) throw missing('rename-replace', 'rename() onto an existing file left the source in place');

  probeLink(at, missing);
  probeUtimes(at('b'), missing);
  probeNoFollow(at, missing);
}

// link() must fail on an existing name (keep() relies on it never replacing); a file system
// without hard links may refuse link() altogether: keep() then falls back to check-then-rename.
function probeLink(at: (name: string) => string, missing: Missing): void {
  try {
    fs.linkSync(at('b'), at('f'));
  } catch (err) {
    if (REFUSED.includes(systemErrorCode(err) ?? '')) return;
    throw err;
  }
  if (succeeds(() => fs.linkSync(at('b'), at('f')), 'EEXIST')) throw missing('hard-link', 'link() onto an existing name succeeded');
}

// Leases and sessions stay alive by utimes() on their lock: a time set must read back (to the second).
function probeUtimes(file: string, missing: Missing): void {
  const seconds = Math.floor(Date.now() / 1000) - 3600;
  fs.utimesSync(file, seconds, seconds);
  const mtimeMs = fs.lstatSync(file).mtimeMs;
  if (Math.abs(mtimeMs - seconds * 1000) >= 1000) {
    throw missing('utimes', `utimes() set the mtime to ${new Date(seconds * 1000).toISOString()}, it reads back ${new Date(mtimeMs).toISOString()}`);
  }
}

// Where symlinks can be made, opening one with O_NOFOLLOW must fail (ELOOP). Node's permission
// model withholds symlink() from a process that may not read and write everywhere: it cannot
// plant one, so the check is left out (permission-model.ts).
function probeNoFollow(at: (name: string) => string, missing: Missing): void {
  if (O_NOFOLLOW === 0 || typeof fs.symlinkSync !== 'function') return;
  if (!mayMakeSymlinks()) {
    log('the permission model withholds symlink(): the O_NOFOLLOW check is left out');
    return;
  }
  try {
    fs.symlinkSync('b', at('l'));
  } catch (err) {
    if (REFUSED.includes(systemErrorCode(err) ?? '')) return; // no symlinks: none can be planted
    throw err;
  }
  if (succeeds(() => fs.closeSync(fs.openSync(at('l'), constants.O_RDONLY | OPEN_EXISTING)), 'ELOOP', 'EMLINK')) {
    throw missing('no-follow', 'an O_NOFOLLOW open of a symlink followed it');
  }
}

const REFUSED = ['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'];

// In a scratch directory of our own, a rename onto a free name can only be refused by the file system.
function renameOrMissing(from: string, to: string, missing: Missing): void {
  try {
    fs.renameSync(from, to);
  } catch (err) {
    if (REFUSED.includes(systemErrorCode(err) ?? '')) throw missing('rename', `rename() onto a free name failed with ${systemErrorCode(err)}`);
    throw err;
  }
}

type Missing = (primitive: FileSystemPrimitive, observed: string) => UnsupportedFileSystemError;

/** Runs `call`; true if it succeeded, false if it failed with one of `expected`; rethrows anything else. */
function succeeds(call: () => void, ...expected: string[]): boolean {
  try {
    call();
    return true;
  } catch (err) {
    if (expected.includes(systemErrorCode(err) ?? '')) return false;
    throw err;
  }
}

function exists(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return false;
    throw err;
  }
}

// Tried twice (a passing EMFILE or EIO); what still fails is left for the sweep.
function removeScratch(scratch: string): void {
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      removeTreeSync(scratch); // the library's own walk: it never follows the scratch name
      return;
    } catch (err) {
      if (attempt === 2) log('probe directory %s left for the sweep: %s', scratch, systemErrorCode(err) ?? err);
    }
  }
}
