import { monotonicMs } from '../base/clock.js';
import type { TempFileError } from '../base/errors.js';
import { randomName } from '../base/random-name.js';
import type { StoreSweepReport } from '../base/stores.js';
import { removeData } from './claim.js';
import { uploaderDead } from './direct.js';
import { LEASE_REMOVAL_DELAY_MS } from './fetch-ahead.js';
import { isConditionFailed, type ListedObject, type ObjectIo } from './io.js';
import { entryKeys, parseKey, type EntryKeys } from './keys.js';
import { leaseStale, parseLease } from './lease.js';

// The store's sweep: one listing of the prefix, then each entry judged by its lease (taken under a
// condition, as a claim takes it, before anything of it is removed), the leases last, then what
// the store keeps of its own (`Leftover`), the uploads of dead uploaders and expired entries, and
// those uploaders' heartbeats.

/** When a key of the store's own (not an entry's) may be swept: its expiry; `undefined` for a key that is not the store's. */
export type Leftover = (prefix: string, key: string) => number | undefined;

/** What the sweep works on: the store's requests, its prefix, and its own keys' rule. */
export interface SweepPlace {
  readonly io: ObjectIo;
  readonly prefix: string;
  readonly leftover: Leftover;
}

/** An entry as the sweep's listing found it. */
interface ListedEntry {
  readonly id: string;
  readonly expiresAt: number;
  readonly data: string[];
  hasLease: boolean;
  bytes: number;
}

/** What one listing of the prefix found. */
interface Listing {
  readonly entries: Map<string, ListedEntry>;
  readonly leftovers: ListedObject[];
  readonly uploaders: (ListedObject & { expired: boolean })[];
  foreign: number;
}

/** The sweep's counts as it goes, and the failures it reports instead of throwing. */
class Tally {
  removed = 0;
  objects = 0;
  bytes = 0;
  held = 0;
  uploadsAborted = 0;
  readonly errors: { key: string; error: TempFileError }[] = [];

  constructor(private readonly io: ObjectIo) {}

  /** Runs `work`; its failure is reported against `key` (typed as `action`'s), and false returned. */
  async attempt(key: string, action: string, work: () => Promise<void>): Promise<boolean> {
    try {
      await work();
      return true;
    } catch (err) {
      this.errors.push({ key, error: await this.io.failure(err, action) });
      return false;
    }
  }
}

const SWEEP_CONCURRENCY = 8;

/**
 * Removes what expired or was left over under the prefix (the fronts' `sweep()` say what, in their
 * store's terms). Throws only when the prefix cannot be listed; any other failure is in `errors`.
 */
export async function sweepStore(place: SweepPlace, staleMs: number): Promise<StoreSweepReport> {
  const listing = await listPrefix(place);
  const tally = new Tally(place.io);
  const now = Date.now();
  const tombstones = await sweepEntries(place, listing.entries, now, staleMs, tally);
  await removeLeases(place.io, tombstones, tally);
  // What the store keeps of its own (S3's probes and presigned uploads), once expired.
  await eachAtOnce(listing.leftovers, SWEEP_CONCURRENCY, (object) => removeObject(place.io, object, tally));
  const dead = await deadUploaders(place.io, listing.uploaders, staleMs, tally);
  const abortFailed = await abortUploads(place, now, dead, tally);
  for (const [entry, marker] of dead) {
    if (abortFailed.has(entry) || abortFailed.has(place.prefix)) continue; // kept: the next sweep aborts it
    await removeObject(place.io, marker, tally);
  }
  const { removed, objects, bytes, uploadsAborted, held, errors } = tally;
  return { removed, objects, bytes, uploadsAborted, held, foreign: listing.foreign, errors };
}

async function listPrefix({ io, prefix, leftover }: SweepPlace): Promise<Listing> {
  const listing: Listing = { entries: new Map(), leftovers: [], uploaders: [], foreign: 0 };
  try {
    for await (const page of io.list(prefix)) for (const object of page) sortListed(listing, prefix, object, leftover);
  } catch (err) {
    throw await io.failure(err, `list the bucket under "${prefix}" for the sweep`);
  }
  return listing;
}

function sortListed(listing: Listing, prefix: string, object: ListedObject, leftover: Leftover): void {
  const parsed = parseKey(prefix, object.key);
  if (!parsed) {
    const expiresAt = leftover(prefix, object.key);
    if (expiresAt === undefined) listing.foreign++;
    else if (expiresAt <= Date.now()) listing.leftovers.push(object);
    return;
  }
  if (parsed.part === 'uploading') {
    listing.uploaders.push({ ...object, expired: parsed.expiresAt <= Date.now() });
    return;
  }
  const name = `${parsed.id}.${parsed.expiresAt}`;
  let entry = listing.entries.get(name);
  if (!entry) listing.entries.set(name, (entry = { id: parsed.id, expiresAt: parsed.expiresAt, data: [], hasLease: false, bytes: 0 }));
  if (parsed.part === 'lease') entry.hasLease = true;
  else entry.data.push(object.key);
  entry.bytes += object.size;
}

/** An entry whose data the sweep removed: its lease goes once the data has been gone long enough. */
interface Tombstone {
  readonly keys: EntryKeys;
  readonly entry: ListedEntry;
  readonly goneAt: number;
}

// A few entries at a time: each is a read of its lease and a delete or two, round trips that
// overlap well (consumed entries' leases, left by consume(), are most of them).
async function sweepEntries(place: SweepPlace, entries: Map<string, ListedEntry>, now: number, staleMs: number, tally: Tally): Promise<Tombstone[]> {
  const rules = { staleMs, hostId: 'sweep' };
  const tombstones: Tombstone[] = [];
  await eachAtOnce([...entries.values()], SWEEP_CONCURRENCY, async (entry) => {
    const keys = entryKeys(place.prefix, entry.id, entry.expiresAt);
    await tally.attempt(keys.entry, `sweep ${keys.entry}`, async () => {
      const verdict = await takeForSweep(place.io, keys, entry.expiresAt <= now, entry.hasLease, rules);
      if (verdict === 'held') tally.held++;
      if (verdict === 'take' && (await removeData(place.io, entry.data))) tombstones.push({ keys, entry, goneAt: monotonicMs() });
    });
  });
  return tombstones;
}

// The leases last, once their entries' data has been gone for LEASE_REMOVAL_DELAY_MS: a claim
// that fetched the data ahead of its lease can then tell (fetch-ahead.ts).
async function removeLeases(io: ObjectIo, tombstones: readonly Tombstone[], tally: Tally): Promise<void> {
  const last = tombstones.reduce((latest, t) => Math.max(latest, t.goneAt), 0);
  if (tombstones.length > 0) await delay(last + LEASE_REMOVAL_DELAY_MS - monotonicMs());
  await eachAtOnce(tombstones, SWEEP_CONCURRENCY, async ({ keys, entry }) => {
    // also the one the sweep wrote for an entry that had none
    if (await tally.attempt(keys.lease, `sweep ${keys.lease}`, () => io.delete(keys.lease))) {
      tally.removed++;
      tally.objects += entry.data.length + (entry.hasLease ? 1 : 0);
      tally.bytes += entry.bytes;
    }
  });
}

async function removeObject(io: ObjectIo, object: ListedObject, tally: Tally): Promise<void> {
  if (await tally.attempt(object.key, `sweep ${object.key}`, () => io.delete(object.key))) {
    tally.objects++;
    tally.bytes += object.size;
  }
}

/**
 * Whether the sweep takes an entry: a consumed or swept one at once; an expired one when
 * nobody holds it (its lease then says `swept`, written under a condition); otherwise not.
 */
async function takeForSweep(io: ObjectIo, keys: EntryKeys, expired: boolean, hasLease: boolean, rules: { staleMs: number; hostId: string }): Promise<'take' | 'held' | 'keep'> {
  const sweepBody = JSON.stringify({ v: 1, holder: `sweep/${process.pid}/${randomName().slice(0, 16)}`, state: 'swept', beat: 0 });
  const found = hasLease ? await io.getText(keys.lease) : undefined;
  const seen = found && parseLease(found);
  if (seen && (seen.state === 'consumed' || seen.state === 'swept')) return 'take';
  if (!expired) return 'keep';
  try {
    if (!seen) {
      await io.put(keys.lease, sweepBody, { create: true });
      return 'take';
    }
    if (seen.state !== 'released' && !leaseStale(io, keys.lease, seen, rules)) return 'held';
    await io.put(keys.lease, sweepBody, { ifMatch: seen.etag });
    return 'take';
  } catch (err) {
    if (isConditionFailed(err)) return 'held'; // a claimer got there first
    throw err;
  }
}

/** The heartbeats of uploaders judged dead (or of expired entries), by their entry's key prefix (direct.ts). */
async function deadUploaders(io: ObjectIo, found: readonly (ListedObject & { expired: boolean })[], staleMs: number, tally: Tally): Promise<Map<string, ListedObject>> {
  const dead = new Map<string, ListedObject>();
  await eachAtOnce(found, SWEEP_CONCURRENCY, async (marker) => {
    await tally.attempt(marker.key, `read ${marker.key}`, async () => {
      const seen = marker.expired ? undefined : await io.getText(marker.key);
      if (marker.expired || (seen !== undefined && uploaderDead(io, marker.key, seen, staleMs))) dead.set(marker.key.slice(0, marker.key.lastIndexOf('/') + 1), marker);
    });
  });
  return dead;
}

/**
 * Aborts a stream's upload under way once its uploader is dead, any upload once its entry (or the
 * store's own upload) expired. Returns the entries (or the prefix) whose uploads could not be.
 */
async function abortUploads({ io, prefix, leftover }: SweepPlace, now: number, dead: Map<string, ListedObject>, tally: Tally): Promise<Set<string>> {
  const failed = new Set<string>();
  const listed = await io.uploads(prefix).catch(async (err: unknown) => {
    failed.add(prefix);
    tally.errors.push({ key: prefix, error: await io.failure(err, `list the incomplete uploads under "${prefix}"`) });
    return [];
  });
  for (const upload of listed) {
    const parsed = parseKey(prefix, upload.key);
    const expiresAt = parsed?.expiresAt ?? leftover(prefix, upload.key);
    if (expiresAt === undefined) continue;
    const entry = parsed ? entryKeys(prefix, parsed.id, parsed.expiresAt).entry : upload.key;
    if (expiresAt > now && (!parsed || !dead.has(entry))) continue;
    if (await tally.attempt(upload.key, `abort the upload of ${upload.key}`, () => io.abortUpload(upload.key, upload.uploadId))) tally.uploadsAborted++;
    else failed.add(entry);
  }
  return failed;
}

/** Runs `work` on each item, `width` at a time. */
async function eachAtOnce<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: Math.min(width, queue.length) }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
    }),
  );
}

function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
