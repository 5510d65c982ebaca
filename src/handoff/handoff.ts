import type { Stats } from 'node:fs';
import { InvalidOptionError, isErrorCode, systemErrorCode, TempFileReplacedError, toFileSystemError, UnsafeRootError } from '../base/errors.js';
import { replacedBy } from '../disk/open-checked.js';
import { fs } from '../disk/fs.js';
import { describe } from '../base/names.js';
import { randomName } from '../base/random-name.js';
import { openPinned, openPinnedSync, type PinnedDir, type PinnedDirSync } from '../disk/pinned-dir.js';
import { dataName, handoffDirOf, stagingName } from '../base/layout.js';
import { boundEntryName } from './binding.js';
import { ownOptions, validateDuration, validateObject, type DurationRange, type NoneLeftOut } from '../base/validators.js';
import { removeTree } from '../disk/remove.js';
import { checkMeta, MAX_META_BYTES, type HandoffMeta, type HandoffTicket } from './ticket.js';
import { isStoreBackend, type HandoffSource, type StoreBackend } from './backend.js';
import type { HandoffStore } from '../base/stores.js';
import { HOST_PLATFORM } from '../base/platform.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

/** Options of `file.handoff()`. */
export interface HandoffOptions {
  /** How long the entry waits for a claim before a sweep may remove it: 1 ms to 366 days. */
  readonly ttlMs: number;
  /** Small JSON data carried by the ticket (at most 4 KiB). */
  readonly meta?: HandoffMeta;
  /** Hand it off through this object store (`s3Store()`), for workers sharing no disk (docs/s3.md). */
  readonly store?: HandoffStore;
}

// Not a timer: the expiry is stamped in the entry's name and compared with the clock.
const TTL_MS_RANGE: DurationRange = { min: 1, max: 366 * 24 * 3600 * 1000 };

/**
 * Creates `<root>/handoff` (0700) if missing and checks that it is ours; returns its path.
 * `rootBase` reaches the root (its pinned descriptor's path); errors name `root`.
 */
export function ensureHandoffDir(root: string, rootBase = root): string {
  const dir = handoffDirOf(root);
  try {
    fs.mkdirSync(handoffDirOf(rootBase), { mode: 0o700 });
  } catch (err) {
    if (systemErrorCode(err) !== 'EEXIST') throw toFileSystemError('create the handoff directory', dir, err);
  }
  openHandoffDirSync(root, rootBase)?.close();
  return dir;
}

/**
 * Opens `<root>/handoff` without following a link, for entries to be reached relative to it:
 * a handoff directory that is a symlink, not a directory, not ours or writable by others is an
 * {@link UnsafeRootError}; a missing one is `undefined`.
 */
export async function openHandoffDir(root: string, rootBase = root): Promise<PinnedDir | undefined> {
  const dir = handoffDirOf(root);
  let pinned: Awaited<ReturnType<typeof openPinned>>;
  try {
    pinned = await openPinned(handoffDirOf(rootBase));
  } catch (err) {
    throw toFileSystemError('open the handoff directory', dir, err);
  }
  const checked = checkOpened(dir, pinned);
  if (checked instanceof Error) {
    if (typeof pinned !== 'string') await pinned.close();
    throw checked;
  }
  return checked?.pinned;
}

/** Sync twin of {@link openHandoffDir}. */
export function openHandoffDirSync(root: string, rootBase = root): PinnedDirSync | undefined {
  return openHandoffDirChecked(root, rootBase)?.pinned;
}

/** {@link openHandoffDirSync}, with what the check saw of the directory (its device and inode). @internal */
export function openHandoffDirChecked(root: string, rootBase = root): { pinned: PinnedDirSync; stat: Stats } | undefined {
  const dir = handoffDirOf(root);
  let pinned: ReturnType<typeof openPinnedSync>;
  try {
    pinned = openPinnedSync(handoffDirOf(rootBase));
  } catch (err) {
    throw toFileSystemError('open the handoff directory', dir, err);
  }
  const checked = checkOpened(dir, pinned);
  if (checked instanceof Error) {
    if (typeof pinned !== 'string') pinned.close();
    throw checked;
  }
  return checked;
}

/** The opened handoff directory and its lstat if it is ours; `undefined` if missing; else the error to throw. */
function checkOpened<T extends { readonly base: string }>(
  dir: string,
  pinned: T | 'gone' | 'not-a-dir',
): { pinned: T; stat: Stats } | undefined | Error {
  if (pinned === 'gone') return undefined;
  if (pinned === 'not-a-dir') return notADirectory(dir);
  try {
    const stat = fs.lstatSync(`${pinned.base}/.`);
    checkOwnDirectory(stat, dir);
    return { pinned, stat };
  } catch (err) {
    return isErrorCode(err, 'ERR_TEMPFILE_UNSAFE_ROOT') ? err : toFileSystemError('check the handoff directory', dir, err);
  }
}

function notADirectory(dir: string): UnsafeRootError {
  return new UnsafeRootError(
    'not-a-directory',
    dir,
    `${dir} is a symbolic link or not a directory: the handoff directory must be a real directory inside the root. ` +
      'Remove it so that handoff() can create it.',
  );
}

/** Throws {@link UnsafeRootError} unless `stat` is a directory of this uid, closed to group and others. @internal */
export function checkOwnDirectory(stat: { uid: number; mode: number; isDirectory(): boolean }, dir: string): void {
  if (!stat.isDirectory()) throw notADirectory(dir);
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw new UnsafeRootError('wrong-owner', dir, `The handoff directory ${dir} is owned by uid ${stat.uid}, not by this process (uid ${uid}): remove it.`);
  }
  if (HOST_PLATFORM !== 'win32' && (stat.mode & 0o022) !== 0) {
    throw new UnsafeRootError(
      'writable-by-others',
      dir,
      `The handoff directory ${dir} is writable by group or others (mode ${(stat.mode & 0o777).toString(8)}): run \`chmod 700 ${dir}\`.`,
    );
  }
}

/**
 * Where a handoff moves its file: the owner's session (staging) and the root (entries), each by
 * its public path (for errors) and the base its entries are reached through (pinned). @internal
 */
export interface HandoffPlaces {
  readonly sessionDir: string;
  readonly sessionBase: string;
  readonly root: string;
  readonly rootBase: string;
  /** The handoff directory held across calls (`HandoffDirHold`), when the caller keeps one. */
  readonly handoffDir?: { acquire(root: string, rootBase: string): PinnedDirSync | undefined } | undefined;
}

/**
 * Moves a file into a new handoff entry and returns its ticket; `options` are those
 * {@link checkHandoffOptions} returned (checked once, `meta` its copy). The entry is built inside the
 * owner's session directory (so it is judged by that session's liveness, and dies with it), then
 * renamed into `<root>/handoff/`: it appears there whole or not at all.
 */
export async function handOff(
  places: HandoffPlaces,
  file: HandoffSource,
  { ttlMs, meta }: { readonly ttlMs: number; readonly meta: HandoffMeta | undefined },
): Promise<HandoffTicket> {
  const size = file.size ?? (await statSize(file.access, file.path));
  const id = randomName();
  const createdAt = Date.now();
  const expiresAt = createdAt + ttlMs;
  const staging = stagingName(id);
  const stagingAccess = `${places.sessionBase}/${staging}`;
  const data = dataName(file.suffix);
  // `digest` and `meta` are own properties even when undefined (dropped by JSON), as parseTicket's.
  const ticket: HandoffTicket = { v: 1, id, suffix: file.suffix, size, digest: file.digest, createdAt, expiresAt, meta };
  // The staging directory's public path, for a failure's removal only.
  const removeStaging = () => removeTree(path.join(places.sessionDir, staging), { access: stagingAccess }).catch(() => {});
  // Synchronous: a mkdir, two pinned opens and two renames cost less than thread-pool round trips.
  try {
    fs.mkdirSync(stagingAccess, { mode: 0o700 });
    moveIntoPinned(file, stagingAccess, data);
  } catch (err) {
    await removeStaging();
    throw toFileSystemError('hand off', file.path, err);
  }
  try {
    publish(places, stagingAccess, boundEntryName(ticket));
  } catch (err) {
    await fs.promises.rename(`${stagingAccess}/${data}`, file.access).catch(() => {});
    await removeStaging();
    throw isErrorCode(err, 'ERR_TEMPFILE_UNSAFE_ROOT') ? err : toFileSystemError('hand off', file.path, err);
  }
  return ticket;
}

// The rename goes into the handoff directory opened without following links, through the pinned root.
function publish(places: HandoffPlaces, staging: string, entry: string): void {
  const { root, rootBase } = places;
  const open = () => (places.handoffDir ? places.handoffDir.acquire(root, rootBase) : openHandoffDirSync(root, rootBase));
  const handoff = open() ?? (ensureHandoffDir(root, rootBase), open());
  if (!handoff) throw Object.assign(new Error(`ENOENT: the handoff directory of ${root} is gone`), { code: 'ENOENT' });
  try {
    fs.renameSync(staging, `${handoff.base}/${entry}`);
  } finally {
    handoff.close();
  }
}

// The staging directory is pinned by a descriptor: if its path is swapped for a symlink between
// the mkdir and the rename, the file still lands in the directory we made, never elsewhere. What
// landed is then checked (one lstat): the file the handle created, a regular file with one link.
// Anything else (a hard link to a file outside the root, a FIFO, another file) is renamed back
// and refused, so that no worker is ever handed it.
function moveIntoPinned(file: HandoffSource, dir: string, name: string): void {
  const pinned = openPinnedSync(dir);
  if (typeof pinned === 'string') throw Object.assign(new Error(`ENOENT: the staging directory ${dir} is gone`), { code: 'ENOENT' });
  try {
    const staged = `${pinned.base}/${name}`;
    fs.renameSync(file.access, staged);
    let found: string | undefined;
    try {
      found = replacedBy(fs.lstatSync(staged), file.identity);
    } catch (err) {
      // Unchecked is not handed off: the file goes back to its name before the staging is removed.
      fs.renameSync(staged, file.access);
      throw err;
    }
    if (found !== undefined) {
      fs.renameSync(staged, file.access);
      throw new TempFileReplacedError(file.path, found);
    }
  } finally {
    pinned.close();
  }
}

/** The names of `handoff()`'s options: every key of {@link HandoffOptions} (`NoneLeftOut`). */
const HANDOFF_OPTION_KEYS = ['ttlMs', 'meta', 'store'] as const satisfies readonly (keyof HandoffOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type HandoffOptionsListed = NoneLeftOut<Exclude<keyof HandoffOptions, (typeof HANDOFF_OPTION_KEYS)[number]>>;
const HANDOFF_OPTIONS: ReadonlySet<string> = new Set<string>(HANDOFF_OPTION_KEYS);

/** Checks `handoff()` options: `{ ttlMs, meta? }`, own properties only. @throws {@link InvalidOptionError} @internal */
export function checkHandoffOptions(options: unknown): { ttlMs: number; meta: HandoffMeta | undefined; store: StoreBackend | undefined } {
  if (options === undefined) {
    throw new InvalidOptionError(
      'ttlMs',
      `handoff() needs { ttlMs }, how long the entry waits for a worker: a whole number of milliseconds from ${TTL_MS_RANGE.min} ` +
        `to ${TTL_MS_RANGE.max}, got undefined (no options). E.g. file.handoff({ ttlMs: 3_600_000 }).`,
    );
  }
  validateObject(options, 'handoff()', HANDOFF_OPTIONS, '{ ttlMs: 3_600_000, meta }');
  const own = ownOptions(options as { ttlMs?: unknown; meta?: unknown; store?: unknown });
  const ttlMs = validateDuration(own.ttlMs, 'ttlMs', TTL_MS_RANGE, { where: 'handoff()' });
  const store = own.store;
  if (store !== undefined && !isStoreBackend(store)) {
    throw new InvalidOptionError(
      'store',
      `handoff(): \`store\` must be a store made by s3Store() of tempfile-manager/s3 or azureStore() of tempfile-manager/azure, got ${describe(store)}. E.g. file.handoff({ ttlMs, store: s3Store({ client, bucket }) }).`,
    );
  }
  const meta = own.meta;
  if (meta === undefined) return { ttlMs, meta: undefined, store };
  try {
    return { ttlMs, meta: checkMeta(meta), store };
  } catch (err) {
    if (!isErrorCode(err, 'ERR_TEMPFILE_BAD_TICKET')) throw err;
    throw new InvalidOptionError(
      'meta',
      `handoff(): \`meta\` must be a plain JSON object (no cycles, no BigInt) of at most ${MAX_META_BYTES} bytes as JSON, ` +
        `got ${describe(meta)}${typeof meta === 'object' && meta !== null ? ' that is not' : ''}.`,
    );
  }
}

async function statSize(access: string, file: string): Promise<number> {
  try {
    return (await fs.promises.lstat(access)).size;
  } catch (err) {
    throw toFileSystemError('hand off', file, err);
  }
}
