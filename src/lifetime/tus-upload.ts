import { isGone, systemErrorCode } from '../base/errors.js';
import { dataName, holderOf, isHeldName } from '../base/layout.js';
import { holderAlive, type HolderStates, type LeaseContext } from '../handoff/lease.js';
import { readHeartbeat } from '../owner/heartbeat.js';
import { fs } from '../disk/fs.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

// The rules of one tus upload on disk (layout.ts draws its names), written once for the two that
// judge it: the store of tempfile-manager/tus, and the root's sweep, which needs no store.
// - its info file (`info.json`), written once: its length, metadata, creation date and expiry;
// - its data file: `data` while free, `held_<owner>` while a request holds it (the lease is the
//   name), `removing` once taken for removal;
// - its expiry: the one its info records; an upload of an earlier version, which records none,
//   by its store's `expirationMs` from its creation (a sweep, which knows no store, leaves it).

/** What `info.json` holds: written once, when the upload is made. @internal */
export interface UploadInfo {
  readonly size: number | undefined;
  readonly metadata: Readonly<Record<string, string | null>> | undefined;
  readonly creationDate: string;
  /** When the upload expires, in ms since the epoch. None: never, or made by an earlier version. */
  readonly expiresAt?: number;
}

/** The longest info file read: metadata is bounded (tus/metadata.ts), so a longer one is not the store's. */
export const MAX_INFO_BYTES = 128 * 1024;

/** An info file's text, parsed and checked; undefined when it is not one the store wrote. @internal */
export function parseUploadInfo(text: string): UploadInfo | undefined {
  try {
    const value = JSON.parse(text) as Partial<UploadInfo> | null;
    if (typeof value?.creationDate !== 'string') return undefined;
    if (value.size !== undefined && !Number.isSafeInteger(value.size)) return undefined;
    const expiresAt = typeof value.expiresAt === 'number' && Number.isFinite(value.expiresAt) ? value.expiresAt : undefined;
    return { size: value.size, metadata: value.metadata ?? undefined, creationDate: value.creationDate, ...(expiresAt !== undefined && { expiresAt }) };
  } catch {
    return undefined;
  }
}

/**
 * When an upload expires, in ms since the epoch: the expiry its info records; else, for an upload
 * of an earlier version, `expirationMs` (its store's; 0 where no store is known) from its
 * creation; undefined: never. @internal
 */
export function uploadExpiry(info: UploadInfo, expirationMs: number): number | undefined {
  if (info.expiresAt !== undefined) return info.expiresAt;
  const created = Date.parse(info.creationDate);
  return expirationMs > 0 && Number.isFinite(created) ? created + expirationMs : undefined;
}

/** The data file among an upload directory's names: a holder's name, else `data`; undefined when there is none. @internal */
export function dataFileIn(names: readonly string[]): string | undefined {
  return names.find((name) => isHeldName(name, '')) ?? (names.includes(dataName('')) ? dataName('') : undefined);
}

/** The data file's name now in the upload directory reached at `at`; undefined when it (or the directory) is gone. @internal */
export async function dataFileName(at: string): Promise<string | undefined> {
  try {
    return dataFileIn(await fs.promises.readdir(at));
  } catch (err) {
    if (isGone(systemErrorCode(err))) return undefined;
    throw err;
  }
}

/**
 * Whether the request holding the upload at `at` (its data file named `held`) is alive, by the one
 * liveness rule of leases (handoff/lease.ts); a name gone meanwhile holds nothing. @internal
 */
export function uploadHolderLives(lease: LeaseContext, at: string, shown: string, held: string, seen?: HolderStates): boolean {
  const stamp = readHeartbeat(`${at}/${held}`);
  if (stamp === 'missing') return false;
  return holderAlive(lease, holderOf(held)!, { key: path.join(shown, held), stamp }, seen);
}
