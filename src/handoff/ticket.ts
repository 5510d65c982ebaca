import { builtin } from '../base/builtin.js';
import { BadTicketError, HandoffExpiredError } from '../base/errors.js';
import { describe, validateNameLength, validateNamePart } from '../base/names.js';
import { ownOptions } from '../base/validators.js';
import { checkStoreLocation, type StoreLocation } from '../base/stores.js';

/**
 * A handoff ticket: plain, versioned JSON that names a handed-off file without any host path.
 * It survives `JSON.stringify`, a job queue and `postMessage`.
 */
export interface HandoffTicket {
  /** The ticket format version. */
  readonly v: 1;
  /** 128 random bits, hex. */
  readonly id: string;
  /** The file name suffix, e.g. `'.mkv'` (may be empty). */
  readonly suffix: string;
  /** Size in bytes. */
  readonly size: number;
  /** `'<algorithm>:<hex>'` when the file was written with `hash`. */
  readonly digest?: string;
  /** When it was handed off (epoch ms). */
  readonly createdAt: number;
  /** When an unclaimed entry expires (epoch ms). */
  readonly expiresAt: number;
  /** Small user data (at most 4 KiB as JSON). */
  readonly meta?: HandoffMeta;
  /** The object store it was handed off through (`handoff({ store })`); never a credential. */
  readonly store?: StoreLocation;
}

/** JSON values allowed in a ticket's `meta`. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The `meta` object of a ticket. */
export type HandoffMeta = { [key: string]: JsonValue };

/** The most JSON `meta` may take. */
export const MAX_META_BYTES = 4096;
const FIELDS = new Set(['v', 'id', 'suffix', 'size', 'digest', 'createdAt', 'expiresAt', 'meta', 'store']);
const MAX_TICKET_CHARS = 16 * 1024;
const ID = /^[0-9a-f]{32}$/;
const DIGEST = /^[a-z0-9-]{1,32}:[0-9a-f]{16,256}$/;

/**
 * Validates a ticket (an object, or its JSON text) strictly, touching no disk, and returns a new
 * plain object sharing nothing with the input (`digest` and `meta` always own properties). A
 * tampered ticket cannot name a path: it carries none, and its suffix must be a safe name part
 * (docs/security.md).
 *
 * @throws {@link BadTicketError} `ERR_TEMPFILE_BAD_TICKET`: not a plain object or its JSON (at most
 * 16 KiB), an unknown field, or a field of the wrong type or range (`err.field`).
 */
export function parseTicket(input: unknown): HandoffTicket {
  const raw = typeof input === 'string' ? parseJson(input) : input;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || Buffer.isBuffer(raw)) {
    throw new BadTicketError(`expected a ticket object or its JSON, got ${describe(raw)}`);
  }
  const prototype: unknown = Object.getPrototypeOf(raw);
  if (prototype !== Object.prototype && prototype !== null) {
    throw new BadTicketError('expected a plain object');
  }
  for (const key of Object.keys(raw)) if (!FIELDS.has(key)) throw new BadTicketError(`unknown field \`${key}\``, key);
  // Own fields only, on a null prototype: a field missing from the ticket is never read from a
  // polluted Object.prototype.
  const t = ownOptions(raw as Record<string, unknown>);
  if (t.v !== 1) throw new BadTicketError(`unknown version (${describe(t.v)})`, 'v');
  if (typeof t.id !== 'string' || !ID.test(t.id)) throw new BadTicketError('`id` must be 32 hex digits', 'id');
  const suffix = checkSuffix(t.suffix);
  const size = checkInteger(t.size, 'size');
  const createdAt = checkInteger(t.createdAt, 'createdAt');
  const expiresAt = checkInteger(t.expiresAt, 'expiresAt');
  if (expiresAt < createdAt) throw new BadTicketError('`expiresAt` is before `createdAt`', 'expiresAt');
  if (t.digest !== undefined) checkDigest(t.digest);
  // `digest` and `meta` are always own properties (undefined when absent), so that reading them
  // from the ticket never reaches a polluted Object.prototype either.
  const ticket: HandoffTicket = {
    v: 1,
    id: t.id,
    suffix,
    size,
    createdAt,
    expiresAt,
    digest: t.digest as string | undefined,
    meta: t.meta === undefined ? undefined : checkMeta(t.meta),
  };
  // Present only on a store's ticket, so that a shared-disk ticket keeps its shape.
  return t.store === undefined ? ticket : { ...ticket, store: checkStoreLocation(t.store) };
}

/**
 * Refuses a ticket past its expiry: once per claim, before its backend is asked, so that an
 * expired ticket touches neither a disk nor a store. @throws {@link HandoffExpiredError} @internal
 */
export function refuseExpired(ticket: HandoffTicket): void {
  if (Date.now() > ticket.expiresAt) throw new HandoffExpiredError(ticket.id, ticket.expiresAt);
}

/** Checks `meta` for `handoff()`: a plain JSON object of at most 4 KiB; returns a copy. */
export function checkMeta(meta: unknown): HandoffMeta {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
    throw new BadTicketError('`meta` must be a plain object', 'meta');
  }
  let json: unknown;
  try {
    json = JSON.stringify(meta);
  } catch {
    throw new BadTicketError('`meta` must be JSON (no cycles, no BigInt)', 'meta');
  }
  if (typeof json !== 'string') throw new BadTicketError('`meta` must be a plain JSON object', 'meta');
  if (Buffer.byteLength(json) > MAX_META_BYTES) {
    throw new BadTicketError(`\`meta\` is over ${MAX_META_BYTES} bytes as JSON: keep large data in the file`, 'meta');
  }
  const copy: unknown = JSON.parse(json);
  if (typeof copy !== 'object' || copy === null || Array.isArray(copy)) {
    throw new BadTicketError('`meta` must be a plain JSON object', 'meta');
  }
  return copy as HandoffMeta;
}

function parseJson(text: string): unknown {
  if (text.length > MAX_TICKET_CHARS) throw new BadTicketError(`the JSON is over ${MAX_TICKET_CHARS} characters`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BadTicketError('not valid JSON');
  }
}

// The algorithm is checked here, before any disk access: a claim must never find out half-way
// that it cannot verify the entry it has taken.
function checkDigest(digest: unknown): void {
  if (typeof digest !== 'string' || !DIGEST.test(digest)) throw new BadTicketError('`digest` must be "<algorithm>:<hex>"', 'digest');
  const algorithm = digest.slice(0, digest.indexOf(':'));
  if (!knownHashes().has(algorithm)) {
    throw new BadTicketError(`\`digest\` names the hash algorithm "${algorithm}", which this Node.js does not have`, 'digest');
  }
}

let hashes: Set<string> | undefined;

/** The hash algorithms of node:crypto, lower-cased as `write({ hash })` puts them in tickets. */
function knownHashes(): Set<string> {
  hashes ??= new Set(builtin('node:crypto').getHashes().map((name) => name.toLowerCase()));
  return hashes;
}

function checkSuffix(value: unknown): string {
  try {
    const suffix = validateNamePart(value, 'suffix');
    validateNameLength('', suffix);
    return suffix;
  } catch (err) {
    throw new BadTicketError(`\`suffix\` is not a safe name part (${(err as Error).message})`, 'suffix');
  }
}

function checkInteger(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new BadTicketError(`\`${field}\` must be a non-negative safe integer`, field);
  }
  return value;
}

/**
 * `value` as JSON with every object's keys sorted: what a ticket's binding hashes, so that a ticket
 * whose `meta` came back from a queue with its keys in another order (Postgres `jsonb`, Go's maps,
 * a `sort_keys` serializer) is still the ticket it was. @internal
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortedKeys(value));
}

/** `value` with every object's keys sorted, deeply (arrays keep their order). @internal */
export function sortedKeys<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((item: unknown) => sortedKeys(item)) as T;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) sorted[key] = sortedKeys((value as Record<string, unknown>)[key]);
  return sorted as T;
}
