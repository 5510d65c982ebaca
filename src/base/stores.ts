import { BadTicketError, type TempFileError } from './errors.js';

// What the core knows of an object store without loading it: where a ticket's objects live, and
// the public face of a store (src/handoff/backend.ts has the contract every backend meets, src/s3/
// the store). The `stores` option is checked in root/, below handoff/: that is why this is here.

/** Where a ticket's bytes live: the backend's name and its own string fields (S3: bucket, prefix), never a credential. */
export interface StoreLocation {
  /** The backend: `'s3'` or `'azure'`. */
  readonly kind: string;
  readonly [field: string]: string;
}

/** The kinds of store this version knows: a ticket naming another is refused. @internal */
export const STORE_KINDS: readonly string[] = Object.freeze(['s3', 'azure']);

/**
 * A store handoffs go through (`s3Store()` of `tempfile-manager/s3`, `azureStore()` of `tempfile-manager/azure`):
 * pass it to `file.handoff({ ttlMs, store })` and as `new TempFileManager({ stores: [store] })`.
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
  /** The store's location (its kind, and its bucket or container and prefix). */
  readonly location: StoreLocation;
  /** What its sweep removed and left, when it ran. */
  readonly report?: StoreSweepReport;
  /** Why it could not sweep (the bucket or container could not be listed), when it did not. */
  readonly error?: TempFileError;
}

/**
 * True when `value` is a store made by a store factory (`s3Store()`, `azureStore()`): a well-formed
 * {@link StoreLocation} and the steps of a store backend (`handOff`, `handOffStream`, `claim`,
 * `sweep`, `parseLocation`). @internal
 */
export function isHandoffStore(value: unknown): value is HandoffStore {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<(typeof STORE_STEPS)[number] | 'location', unknown>>;
  return STORE_STEPS.every((step) => typeof candidate[step] === 'function') && locationProblem(candidate.location) === undefined;
}

/** The steps a store has beside its location (src/handoff/backend.ts, `StoreBackend`). */
const STORE_STEPS = ['handOff', 'handOffStream', 'claim', 'sweep', 'parseLocation'] as const;

const KIND = /^[a-z][a-z0-9]{1,15}$/;
const FIELD = /^[a-z][A-Za-z0-9]{0,31}$/;
// Printable ASCII: a field shows in messages and joins a location's key (`\0` separated).
const VALUE = /^[\x20-\x7e]{0,1024}$/;
const MAX_FIELDS = 8;

/** What is wrong with `value` as a location's generic shape, or `undefined` when nothing is. */
function locationProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'must be an object { kind, ... } naming its store';
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return 'must be a plain object';
  const keys = Object.keys(value);
  if (keys.length > MAX_FIELDS) return `has ${keys.length} fields, at most ${MAX_FIELDS} are taken`;
  const fields = value as Record<string, unknown>;
  const kind = fields.kind;
  if (typeof kind !== 'string' || !KIND.test(kind)) return '`store.kind` must name a backend (a short lower-case word, such as "s3")';
  if (!STORE_KINDS.includes(kind)) return `\`store.kind\` "${kind}" names no backend this version knows (${STORE_KINDS.join(', ')})`;
  for (const key of keys) {
    if (!FIELD.test(key)) return 'a field name of `store` is not a short identifier';
    const field = fields[key];
    if (typeof field !== 'string' || !VALUE.test(field)) return `\`store.${key}\` must be a string of at most 1024 printable ASCII characters`;
  }
  return undefined;
}

/**
 * Checks a ticket's `store` field for its generic shape (a known `kind`, at most 8 fields, each a
 * short string); the backend checks its own fields when a claim finds the store of that kind.
 * Returns a copy. @throws {@link BadTicketError} @internal
 */
export function checkStoreLocation(value: unknown): StoreLocation {
  const problem = locationProblem(value);
  if (problem !== undefined) throw new BadTicketError(problem.startsWith('`store') ? problem : `\`store\` ${problem}`, 'store');
  return { ...(value as StoreLocation) };
}

/**
 * Checks that a location has exactly `fields` beside `kind` (each a string): a backend's own check
 * of a ticket's location starts here. @throws {@link BadTicketError} @internal
 */
export function checkLocationFields(location: StoreLocation, fields: readonly string[]): void {
  for (const key of Object.keys(location)) if (key !== 'kind' && !fields.includes(key)) throw new BadTicketError(`unknown field \`store.${key}\` for a store of kind "${location.kind}"`, 'store');
  for (const key of fields) if (typeof location[key] !== 'string') throw new BadTicketError(`\`store.${key}\` is missing (a store of kind "${location.kind}" names it)`, 'store');
}

const PREFIX = /^(?:[A-Za-z0-9!_.*'()-]+\/)*$/;

/** Whether `prefix` is a valid key prefix: `''`, or path segments each ending in `/`, at most 512 characters, no `.` or `..` segment. @internal */
export function isValidPrefix(prefix: string): boolean {
  return prefix.length <= 512 && PREFIX.test(prefix) && !prefix.split('/').some((part) => part === '.' || part === '..');
}

/** The same location: the same kind and the same fields. @internal */
export function sameLocation(a: StoreLocation, b: StoreLocation): boolean {
  return locationKey(a) === locationKey(b);
}

/** One string per location: equal for the same kind and fields, whatever their order. @internal */
export function locationKey(location: StoreLocation): string {
  const fields = Object.keys(location).filter((key) => key !== 'kind').sort();
  return [location.kind, ...fields.map((key) => `${key}=${location[key]}`)].join('\0');
}

/** A location as messages show it: `s3 bucket "uploads", prefix "tmp/"`. @internal */
export function describeLocation(location: StoreLocation): string {
  const fields = Object.keys(location).filter((key) => key !== 'kind');
  return `${location.kind} ${fields.map((key) => `${key} "${location[key]}"`).join(', ')}`;
}
