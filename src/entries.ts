import type { Dirent } from 'node:fs';
import path from 'node:path';
import { systemErrorCode, toFileSystemError } from './errors.js';
import type { FileSystem } from './fs.js';
import { handoffDirOf, isStagingName, parseEntryName } from './handoff.js';
import { holderAlive, holderOf, type LeaseContext } from './lease.js';
import { processAlive } from './liveness.js';
import type { SessionName } from './session.js';

/** The state of a handoff entry. */
export type EntryState =
  /** Unclaimed, before its expiry. */
  | 'waiting'
  /** Under the lease of a live claimer. */
  | 'claimed'
  /** Unclaimed past its expiry: the sweep removes it. */
  | 'expired'
  /** No data left (consumed, the entry not yet removed): the sweep removes it. */
  | 'consumed';

/** One handoff entry, as the sweep and `ls` see it. */
export interface EntryInfo {
  readonly id: string;
  readonly path: string;
  readonly expiresAt: number;
  readonly state: EntryState;
  /** The data file's size, when there is one. */
  readonly bytes: number;
  /** The claimer's host and pid, when it is claimed. */
  readonly holder?: { readonly host: string; readonly pid: number };
}

/** What lies in `<root>/handoff`: entries, and staging directories of interrupted handoffs. */
export interface HandoffListing {
  readonly entries: EntryInfo[];
  readonly staging: { readonly path: string; readonly ageMs: number }[];
}

/** Lists the handoff entries under a root with their state; never follows a symlink. */
export async function listEntries(lease: LeaseContext, root: string, now = Date.now()): Promise<HandoffListing> {
  const dir = handoffDirOf(root);
  let dirents: Dirent[];
  try {
    dirents = await lease.fs.promises.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return { entries: [], staging: [] };
    throw toFileSystemError('read the handoff directory', dir, err);
  }
  const listing: HandoffListing = { entries: [], staging: [] };
  for (const dirent of dirents) {
    const entryPath = path.join(dir, dirent.name);
    if (isStagingName(dirent.name)) {
      const mtime = await mtimeOf(lease.fs, entryPath);
      if (mtime !== undefined) listing.staging.push({ path: entryPath, ageMs: now - mtime });
      continue;
    }
    const parsed = parseEntryName(dirent.name);
    if (!parsed || !dirent.isDirectory()) continue;
    const info = await inspectEntry(lease, entryPath, parsed, now);
    if (info) listing.entries.push(info);
  }
  return listing;
}

async function inspectEntry(
  lease: LeaseContext,
  entryPath: string,
  parsed: { id: string; expiresAt: number },
  now: number,
): Promise<EntryInfo | undefined> {
  let names: string[];
  try {
    names = await lease.fs.promises.readdir(entryPath);
  } catch {
    return undefined; // gone under us
  }
  const data = names.find((name) => name.startsWith('data') || name.startsWith('held_'));
  const holder = data === undefined ? undefined : holderOf(data);
  // A holder of this host that is alive keeps its entry even if its lock cannot be read.
  const claimed =
    (names.includes('lock') && (await lockHeld(lease, path.join(entryPath, 'lock'), holder, now))) ||
    (holder !== undefined && holder.host === lease.hostId && processAlive(holder.pid, holder.start));
  const bytes = data === undefined ? 0 : ((await sizeOf(lease.fs, path.join(entryPath, data))) ?? 0);
  const state: EntryState = claimed ? 'claimed' : data === undefined ? 'consumed' : now > parsed.expiresAt ? 'expired' : 'waiting';
  return {
    id: parsed.id,
    path: entryPath,
    expiresAt: parsed.expiresAt,
    state,
    bytes,
    ...(claimed && holder && { holder: { host: holder.host, pid: holder.pid } }),
  };
}

// A lock that cannot be read (EMFILE, EIO...) may be a live one: keep the entry.
async function lockHeld(lease: LeaseContext, lockPath: string, holder: SessionName | undefined, now: number): Promise<boolean> {
  try {
    return holderAlive(lease, holder, (await lease.fs.promises.lstat(lockPath)).mtimeMs, now);
  } catch (err) {
    return systemErrorCode(err) !== 'ENOENT';
  }
}

async function mtimeOf(fs: FileSystem, file: string): Promise<number | undefined> {
  try {
    return (await fs.promises.lstat(file)).mtimeMs;
  } catch {
    return undefined;
  }
}

async function sizeOf(fs: FileSystem, file: string): Promise<number | undefined> {
  try {
    return (await fs.promises.lstat(file)).size;
  } catch {
    return undefined;
  }
}
