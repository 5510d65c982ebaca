// The keys of the store, all under its prefix: one folder per handed-off file, named by the
// ticket's id and its expiry (so that the sweep knows an entry's expiry from a listing alone,
// as on disk, layout.ts):
//
//   <prefix><id>.<expiresAt>/data          the bytes, with the ticket's binding in their metadata.
//                                          An upload makes it whole or not at all: it is the commit.
//   <prefix><id>.<expiresAt>/data.<copy>   a copy made by a claimer that took over a stale lease:
//                                          the bytes it works on, which the holder it took over
//                                          never deletes (that one deletes only its own key)
//   <prefix><id>.<expiresAt>/lease         the lease of the claimer that holds it (lease.ts); it
//                                          names the data key its holder works on
//   <prefix><id>.<expiresAt>/uploading     the heartbeat of a stream's multipart upload under way
//                                          (direct.ts), rewritten every second: the sweep aborts
//                                          the upload of a dead uploader, judged by it
//
// A store may keep keys of its own under the prefix beside these (S3's presigned uploads and
// probes, s3/keys.ts): the sweep asks the store's `leftover()` about each key that is not an
// entry's.

import { handoffKey } from '../base/channels.js';

/** The keys of one entry. */
export interface EntryKeys {
  readonly entry: string;
  /** The data key an upload makes. */
  readonly data: string;
  readonly lease: string;
}

export function entryKeys(prefix: string, id: string, expiresAt: number): EntryKeys {
  const entry = `${prefix}${id}.${expiresAt}/`;
  return { entry, data: `${entry}${DATA}`, lease: `${entry}lease` };
}

/** The key of the heartbeat of a stream's upload under way into an entry (direct.ts). */
export function uploadingKey(keys: EntryKeys): string {
  return `${keys.entry}uploading`;
}

const DATA = 'data';

/** The name, within its entry, of a new copy of the data (random: racing claimers never share one). */
export function copyName(random: string): string {
  return `${DATA}.${random}`;
}

/** True for a data name of an entry: the upload's or a copy's. */
export function isDataName(name: unknown): name is string {
  return typeof name === 'string' && DATA_NAME.test(name);
}

const DATA_NAME = /^data(?:\.[0-9a-f]{16})?$/;
// The expiry as the library writes it: a decimal integer with no leading zero (a key that merely
// parses to the same number is not the library's).
const KEY = /^([0-9a-f]{32})\.([1-9]\d{0,15})\/(data(?:\.[0-9a-f]{16})?|lease|uploading)$/;

/** The entry a key of the store belongs to, or `undefined` for a key that is not the library's. */
export function parseKey(prefix: string, key: string): { id: string; expiresAt: number; part: 'data' | 'lease' | 'uploading' } | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const match = KEY.exec(key.slice(prefix.length));
  if (!match) return undefined;
  const part = match[3] === 'lease' || match[3] === 'uploading' ? match[3] : 'data';
  return { id: match[1]!, expiresAt: Number(match[2]), part };
}

/**
 * A key as a message shows it: an entry's id, which is its ticket's bearer secret, replaced by
 * the digest that names the handoff on the diagnostics channels.
 */
export function shownKey(prefix: string, key: string): string {
  const parsed = parseKey(prefix, key);
  if (!parsed) return key;
  return `${prefix}<handoff ${handoffKey(parsed.id)}>${key.slice(prefix.length + parsed.id.length)}`;
}
