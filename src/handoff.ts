import path from 'node:path';
import { BadTicketError, InvalidOptionError, systemErrorCode, toFileSystemError, UnsafeRootError } from './errors.js';
import type { FileSystem } from './fs.js';
import { describe, randomName } from './names.js';
import { openPinned } from './pinned-dir.js';
import { removeTree } from './remove.js';
import { checkMeta, type HandoffMeta, type HandoffTicket } from './ticket.js';

/** Options of `file.handoff()`. */
export interface HandoffOptions {
  /** How long the entry waits for a claim before the sweep may remove it (ms). */
  readonly ttlMs: number;
  /** Small JSON data carried by the ticket (at most 4 KiB). */
  readonly meta?: HandoffMeta;
}

/** What handing off needs to know of the file. @internal */
export interface HandoffSource {
  readonly path: string;
  readonly suffix: string;
  readonly size: number | undefined;
  readonly digest: string | undefined;
}

const MAX_TTL_MS = 366 * 24 * 3600 * 1000;
const DATA = 'data';
const STAGING_PREFIX = '.tmp-';
const ENTRY_NAME = /^([0-9a-f]{32})_([0-9a-z]{1,11})$/;

/** `<root>/handoff`: where handed-off entries live, outside every session. */
export function handoffDirOf(root: string): string {
  return path.join(root, 'handoff');
}

/** An entry's directory name: its id and its expiry, so the sweep needs to read nothing. */
export function entryName(id: string, expiresAt: number): string {
  return `${id}_${expiresAt.toString(36)}`;
}

/** Parses an entry directory name; undefined for anything else. */
export function parseEntryName(name: string): { id: string; expiresAt: number } | undefined {
  const match = ENTRY_NAME.exec(name);
  return match ? { id: match[1]!, expiresAt: parseInt(match[2]!, 36) } : undefined;
}

/** True for a staging directory left by a handoff that crashed half-way. */
export function isStagingName(name: string): boolean {
  return name.startsWith(STAGING_PREFIX);
}

/** The data file's name while nobody holds the entry. */
export function dataName(suffix: string): string {
  return `${DATA}${suffix}`;
}

/** Creates `<root>/handoff` (0700) if missing and checks it is a real directory. */
export function ensureHandoffDir(fs: FileSystem, root: string): string {
  const dir = handoffDirOf(root);
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if (systemErrorCode(err) !== 'EEXIST') throw toFileSystemError('create the handoff directory', dir, err);
    let stat: ReturnType<FileSystem['lstatSync']>;
    try {
      stat = fs.lstatSync(dir);
    } catch (statError) {
      throw toFileSystemError('check the handoff directory', dir, statError);
    }
    if (!stat.isDirectory() || stat.isSymbolicLink()) {
      throw new UnsafeRootError('not-a-directory', dir, `${dir} is not a real directory: remove it so that handoff() can create it.`);
    }
  }
  return dir;
}

/**
 * Moves a file into a new handoff entry and returns its ticket. The file is first moved into a
 * staging directory, which is then renamed into place: the entry appears whole or not at all.
 */
export async function handOff(fs: FileSystem, handoffDir: string, file: HandoffSource, options: unknown): Promise<HandoffTicket> {
  const { ttlMs, meta } = checkHandoffOptions(options);
  const size = file.size ?? (await statSize(fs, file.path));
  const id = randomName();
  const createdAt = Date.now();
  const expiresAt = createdAt + ttlMs;
  const staging = path.join(handoffDir, `${STAGING_PREFIX}${id}`);
  const entry = path.join(handoffDir, entryName(id, expiresAt));
  const staged = path.join(staging, dataName(file.suffix));
  try {
    await fs.promises.mkdir(staging, { mode: 0o700 });
    await moveIntoPinned(fs, file.path, staging, dataName(file.suffix));
  } catch (err) {
    await removeTree(fs, staging).catch(() => {});
    throw toFileSystemError('hand off', file.path, err);
  }
  try {
    await fs.promises.rename(staging, entry);
  } catch (err) {
    await fs.promises.rename(staged, file.path).catch(() => {});
    await removeTree(fs, staging).catch(() => {});
    throw toFileSystemError('hand off', file.path, err);
  }
  return {
    v: 1,
    id,
    suffix: file.suffix,
    size,
    ...(file.digest !== undefined && { digest: file.digest }),
    createdAt,
    expiresAt,
    ...(meta !== undefined && { meta }),
  };
}

// The staging directory is pinned by a descriptor: if its path is swapped for a symlink between
// the mkdir and the rename, the file still lands in the directory we made, never elsewhere.
async function moveIntoPinned(fs: FileSystem, from: string, dir: string, name: string): Promise<void> {
  const pinned = await openPinned(fs, dir);
  if (typeof pinned === 'string') throw Object.assign(new Error(`ENOENT: the staging directory ${dir} is gone`), { code: 'ENOENT' });
  try {
    await fs.promises.rename(from, path.join(pinned.base, name));
  } finally {
    await pinned.close();
  }
}

function checkHandoffOptions(options: unknown): { ttlMs: number; meta: HandoffMeta | undefined } {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError('options', `handoff() needs { ttlMs, meta? }, got ${describe(options)}.`);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'ttlMs' && key !== 'meta') throw new InvalidOptionError(key, `Unknown handoff() option \`${key}\`.`);
  }
  const { ttlMs, meta } = options as { ttlMs?: unknown; meta?: unknown };
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_TTL_MS) {
    throw new InvalidOptionError('ttlMs', `\`ttlMs\` must be a whole number of milliseconds from 1 to ${MAX_TTL_MS}, got ${describe(ttlMs)}.`);
  }
  if (meta === undefined) return { ttlMs, meta: undefined };
  try {
    return { ttlMs, meta: checkMeta(meta) };
  } catch (err) {
    throw new InvalidOptionError('meta', (err as BadTicketError).message);
  }
}

async function statSize(fs: FileSystem, file: string): Promise<number> {
  try {
    return (await fs.promises.lstat(file)).size;
  } catch (err) {
    throw toFileSystemError('hand off', file, err);
  }
}
