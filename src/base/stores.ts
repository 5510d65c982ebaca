import { BadTicketError, type TempFileError } from './errors.js';

// What the core knows of an object store without loading it: where a ticket's objects live, and
// the public face of a store (src/handoff/backend.ts has the contract every backend meets, src/s3/
// the store). The `stores` option is checked in root/, below handoff/: that is why this is here.

/** Where a ticket's objects live: the kind of store, the bucket and the key prefix. Never a credential. */
export interface StoreLocation {
  /** The kind of store; `'s3'` is the only one. */
  readonly kind: 's3';
  /** The bucket. */
  readonly bucket: string;
  /** The key prefix every object of the store starts with (`''`, or ending in `/`). */
  readonly prefix: string;
}

/**
 * An object store that handoffs go through, as `s3Store()` (`tempfile-manager/s3`) makes one: pass
 * it to `file.handoff({ ttlMs, store })`, and to the claiming manager as
 * `new TempFileManager({ stores: [store] })`.
 */
export interface HandoffStore {
  /** Where its objects live; tickets made through it carry this. */
  readonly location: StoreLocation;
}

/** What a store's sweep (`store.sweep()`, or `mgr.sweep()` for the manager's `stores`) removed and left. */
export interface StoreSweepReport {
  /** Entries removed (expired unclaimed, consumed but left over, or an upload's leftovers). */
  readonly removed: number;
  /** Objects deleted. */
  readonly objects: number;
  /** Bytes the deleted objects held. */
  readonly bytes: number;
  /** Incomplete multipart uploads aborted. */
  readonly uploadsAborted: number;
  /** Expired entries left because a live claimer holds them (or its heartbeat was not watched long enough yet). */
  readonly held: number;
  /** Keys under the prefix that are not the library's: never touched. */
  readonly foreign: number;
  /** What could not be removed, by key. */
  readonly errors: readonly StoreSweepError[];
}

/** A key a store's sweep could not remove, and why. */
export interface StoreSweepError {
  /** The entry's key prefix (`<prefix><id>.<expiresAt>/`), or an upload's key. */
  readonly key: string;
  /** What the store answered, typed (a `StoreError` for a failed request). */
  readonly error: TempFileError;
}

/** What `mgr.sweep()` did with one of its `stores`: the store's report, or why it could not sweep. */
export interface StoreSweepResult {
  /** The store's bucket and prefix. */
  readonly location: StoreLocation;
  /** What its sweep removed and left, when it ran. */
  readonly report?: StoreSweepReport;
  /** Why it could not sweep (the bucket could not be listed), when it did not. */
  readonly error?: TempFileError;
}

/**
 * True when `value` has the shape of a store made by a store factory (`s3Store()`): its location
 * and its handoff and claim steps. @internal
 */
export function isHandoffStore(value: unknown): value is HandoffStore {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<'location' | 'handOff' | 'claim', unknown>>;
  return typeof candidate.handOff === 'function' && typeof candidate.claim === 'function' && typeof candidate.location === 'object' && candidate.location !== null;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX = /^(?:[A-Za-z0-9!_.*'()-]+\/)*$/;
const STORE_FIELDS = new Set(['kind', 'bucket', 'prefix']);

/** Whether `prefix` is a valid key prefix: `''`, or path segments each ending in `/`, at most 512 characters, no `.` or `..` segment. @internal */
export function isValidPrefix(prefix: string): boolean {
  return prefix.length <= 512 && PREFIX.test(prefix) && !prefix.split('/').some((part) => part === '.' || part === '..');
}

/** Whether `bucket` is a valid S3 bucket name. @internal */
export function isValidBucket(bucket: string): boolean {
  return BUCKET.test(bucket) && !bucket.includes('..');
}

/** Checks a ticket's `store` field. @throws {@link BadTicketError} @internal */
export function checkStoreLocation(value: unknown): StoreLocation {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BadTicketError('`store` must be an object { kind, bucket, prefix }', 'store');
  for (const key of Object.keys(value)) if (!STORE_FIELDS.has(key)) throw new BadTicketError(`unknown field \`store.${key}\``, 'store');
  const { kind, bucket, prefix } = value as Record<string, unknown>;
  if (kind !== 's3') throw new BadTicketError('`store.kind` must be "s3"', 'store');
  if (typeof bucket !== 'string' || !isValidBucket(bucket)) throw new BadTicketError('`store.bucket` is not a valid bucket name', 'store');
  if (typeof prefix !== 'string' || !isValidPrefix(prefix)) throw new BadTicketError('`store.prefix` is not a valid key prefix', 'store');
  return { kind, bucket, prefix };
}

/** The same location: the same kind, bucket and prefix. @internal */
export function sameLocation(a: StoreLocation, b: StoreLocation): boolean {
  return locationKey(a) === locationKey(b);
}

/** One string per location: equal for the same kind, bucket and prefix. @internal */
export function locationKey(location: StoreLocation): string {
  return `${location.kind}\0${location.bucket}\0${location.prefix}`;
}
