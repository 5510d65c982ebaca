import { isGone, systemErrorCode, toFileSystemError } from '../base/errors.js';
import { O_NOFOLLOW, fs } from '../disk/fs.js';
import { procFdPath } from '../disk/proc.js';
import { listSmallDir, readDirBatches, type ListedEntry, type WholeListing } from '../disk/dir-stream.js';
import { openHandoffDir } from './handoff.js';
import { handoffDirOf, holderOf, isDataFile, parseEntryName } from '../base/layout.js';
import { holderAlive, type HolderStates, type LeaseContext } from './lease.js';
import { heartbeatOf } from '../owner/heartbeat.js';
import type { Heartbeat } from '../owner/liveness.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');
const { constants } = builtin('node:fs');

const OPEN_DIRECTORY = constants.O_RDONLY | (constants.O_DIRECTORY ?? 0) | O_NOFOLLOW;

/** The state of a handoff entry. */
export type EntryState =
  /** Unclaimed, before its expiry. */
  | 'waiting'
  /** Under the lease of a live claimer. */
  | 'claimed'
  /**
   * Held by a claimer that is dead (its held file is still there), before its expiry: the next
   * claim takes it over, and the sweep leaves it, as a waiting entry.
   */
  | 'abandoned'
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
  /** The claimer's host and pid, when it is claimed, or held by a claimer now dead (abandoned, or expired since). */
  readonly holder?: { readonly host: string; readonly pid: number };
}

/** What lies in `<root>/handoff`: entries, and names that are not ours (never removed). */
export interface HandoffListing {
  readonly entries: EntryInfo[];
  /** Paths in the handoff directory whose names are not the library's. */
  readonly foreign: string[];
}

/** Lists the handoff entries under a root with their state; never follows a symlink. */
export async function listEntries(lease: LeaseContext, root: string, now = Date.now()): Promise<HandoffListing> {
  const listing: HandoffListing = { entries: [], foreign: [] };
  await scanHandoff(lease, root, now, {
    entry: async (info) => void listing.entries.push(info),
    foreign: (file) => void listing.foreign.push(file),
  });
  return listing;
}

/** An entry as {@link scanHandoff} found it, beyond its {@link EntryInfo}. @internal */
export interface FoundEntry {
  /**
   * The entry as calls reach it during the visit: its own descriptor, held from the moment it is
   * listed (`/proc/<pid>/fd/<fd>`), or without /proc its path through the pinned handoff directory.
   */
  readonly access: string;
  /** Its name in the pinned handoff directory (`<handoff>/<entry>`), for what takes a name: rmdir. */
  readonly at: string;
  /** The names it held when it was inspected, when none was a directory. */
  readonly files: readonly string[] | undefined;
  /** The data file's name then (`data<suffix>` or a holder's; `removing` once a sweep took it), if it had one. */
  readonly data: string | undefined;
}

/** A root's path, and how system calls reach it (its descriptor's `/proc` path). @internal */
export interface RootPlaces {
  readonly root: string;
  readonly rootBase: string;
}

/** What {@link scanHandoff} calls for each name in the handoff directory. @internal */
export interface HandoffVisitor {
  entry(info: EntryInfo, found: FoundEntry): Promise<void>;
  foreign(file: string): void;
}

/**
 * Visits every name in `<root>/handoff`, opened without following links (an unsafe handoff
 * directory is an {@link UnsafeRootError}); entries are reached relative to its descriptor.
 * @internal
 */
export async function scanHandoff(lease: LeaseContext, where: string | RootPlaces, now: number, visit: HandoffVisitor): Promise<void> {
  const { root, rootBase } = typeof where === 'string' ? { root: where, rootBase: where } : where;
  const dir = handoffDirOf(root);
  const handoff = await openHandoffDir(root, rootBase);
  if (!handoff) return;
  const holders: HolderStates = new Map();
  try {
    const pinnedEntries = handoff.base !== handoffDirOf(rootBase);
    const dev = await deviceOf(handoff.base);
    for await (const dirents of listingOf(handoff.base, dev)) {
      // A batch is inspected, then visited, in parallel: memory stays flat, the thread pool busy.
      const held: HeldEntry[] = [];
      try {
        const found = await Promise.all(dirents.map((dirent) => inspectDirent(lease, { dir, base: handoff.base, pinnedEntries, held }, dirent, now, holders)));
        const visits: Promise<void>[] = [];
        for (const item of found) {
          if (item === undefined) continue;
          if ('foreign' in item) visit.foreign(item.foreign);
          else visits.push(visit.entry(item.info, item.found));
        }
        await Promise.all(visits);
      } finally {
        for (const entry of held) entry.close();
      }
    }
  } catch (err) {
    throw toFileSystemError('read the handoff directory', dir, err);
  } finally {
    await handoff.close();
  }
}

/**
 * The handoff directory's entries in batches; an entry that vanishes while it is read is left
 * out (readDirBatches). The directory itself removed while it is read (ENOENT, or ESTALE on a
 * network file system) has no more entries; any other failure to read it throws. Only the
 * reading is guarded here: a failure while an entry is inspected or visited is never taken for
 * an empty directory.
 */
async function* listingOf(base: string, dev: number | undefined): AsyncGenerator<ListedEntry[]> {
  try {
    yield* readDirBatches(base, dev);
  } catch (err) {
    if (!isGone(systemErrorCode(err))) throw err;
  }
}

/** An entry directory held open for one batch of a scan. */
interface HeldEntry {
  close(): void;
}

/** The device of the directory `base` leads to, where it can be read: what its listings learn is kept by it. */
async function deviceOf(base: string): Promise<number | undefined> {
  try {
    return (await fs.promises.lstat(`${base}/.`)).dev;
  } catch {
    return undefined;
  }
}

/** Where a scan lists: the handoff directory's path, its pinned base, and the entries it holds. */
interface ScanPlace {
  readonly dir: string;
  readonly base: string;
  /** Entries are held by descriptor (Linux, /proc, the real file system). */
  readonly pinnedEntries: boolean;
  readonly held: HeldEntry[];
}

async function inspectDirent(
  lease: LeaseContext,
  place: ScanPlace,
  dirent: ListedEntry,
  now: number,
  holders: HolderStates,
): Promise<{ info: EntryInfo; found: FoundEntry } | { foreign: string } | undefined> {
  const logical = path.join(place.dir, dirent.name);
  const parsed = parseEntryName(dirent.name);
  if (!parsed || !dirent.isDir) return { foreign: logical };
  const at = `${place.base}/${dirent.name}`;
  const access = place.pinnedEntries ? holdEntry(at, place.held) : at;
  if (access === undefined) return undefined; // gone or swapped since it was listed: judged next time
  const inspected = await inspectEntry(lease, { logical, access }, parsed, now, holders);
  return inspected && { info: inspected.info, found: { access, at, files: inspected.files, data: inspected.data } };
}

/**
 * Opens an entry just listed (O_NOFOLLOW, a directory: nothing to block on) and holds it for the
 * batch: what is read of it, what a sweep judges and what it renames in it then all concern this
 * one directory, whatever is renamed or swapped at its name meanwhile. Inline: opening a
 * directory just listed does no I/O (remove.ts). Undefined when its name no longer leads to a
 * directory.
 */
function holdEntry(at: string, held: HeldEntry[]): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(at, OPEN_DIRECTORY);
  } catch (err) {
    const code = systemErrorCode(err);
    if (isGone(code) || code === 'ELOOP' || code === 'ENOTDIR') return undefined;
    throw err;
  }
  held.push({ close: () => closeQuietly(fd) });
  return procFdPath(fd);
}

/** Closes a held entry: a failing close (EIO) still releases the descriptor, and the batch's other entries are closed too. */
function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // the descriptor is released whatever close() answers
  }
}

async function inspectEntry(
  lease: LeaseContext,
  entry: { readonly logical: string; readonly access: string },
  parsed: { id: string; expiresAt: number },
  now: number,
  holders: HolderStates,
): Promise<{ info: EntryInfo; files: readonly string[] | undefined; data: string | undefined } | undefined> {
  const base = { id: parsed.id, path: entry.logical, expiresAt: parsed.expiresAt };
  // The data file may change its name under us (a claim, a release): look again, then keep.
  for (let attempt = 0; attempt < 3; attempt++) {
    let listed: WholeListing;
    try {
      listed = await listSmallDir(entry.access);
    } catch {
      return undefined; // gone under us
    }
    const names = listed.entries.map((dirent) => dirent.name);
    const files = listed.entries.some((dirent) => dirent.isDir) ? undefined : names;
    const data = names.find(isDataFile);
    // A name that vanished while the entry was read may be its data file being renamed: look again.
    if (data === undefined && listed.vanished > 0) continue;
    if (data === undefined) return { info: { ...base, state: 'consumed', bytes: 0 }, files, data };
    const file = await fileOf(path.join(entry.access, data));
    if (file === 'gone') continue;
    const holder = holderOf(data);
    // A held file that cannot be read (EMFILE, EIO...) may be a live holder's: keep the entry.
    const heartbeat: Heartbeat = { key: path.join(entry.logical, data), stamp: file?.stamp ?? 'unreadable' };
    const claimed = holder !== undefined && holderAlive(lease, holder, heartbeat, holders);
    const state: EntryState = claimed ? 'claimed' : now > parsed.expiresAt ? 'expired' : holder ? 'abandoned' : 'waiting';
    const info: EntryInfo = { ...base, state, bytes: file?.size ?? 0, ...(holder && { holder: { host: holder.host, pid: holder.pid } }) };
    return { info, files, data };
  }
  return { info: { ...base, state: 'claimed', bytes: 0 }, files: undefined, data: undefined };
}

async function fileOf(file: string): Promise<{ size: number; stamp: number } | 'gone' | undefined> {
  try {
    const stat = await fs.promises.lstat(file);
    return { size: stat.size, stamp: heartbeatOf(stat) };
  } catch (err) {
    return isGone(systemErrorCode(err)) ? 'gone' : undefined;
  }
}
