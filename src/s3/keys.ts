// The keys of the store, all under its prefix: one folder per handed-off file, named by the
// ticket's id and its expiry (so that the sweep knows an entry's expiry from a listing alone,
// as on disk, layout.ts):
//
//   <prefix><id>.<expiresAt>/data     the bytes, uploaded first (multipart for a large file)
//   <prefix><id>.<expiresAt>/ticket   the ticket, created (If-None-Match: *) only once the data is whole
//   <prefix><id>.<expiresAt>/lease    the lease of the claimer that holds it (lease.ts)

/** The keys of one entry. */
export interface EntryKeys {
  readonly entry: string;
  readonly data: string;
  readonly ticket: string;
  readonly lease: string;
}

export function entryKeys(prefix: string, id: string, expiresAt: number): EntryKeys {
  const entry = `${prefix}${id}.${expiresAt}/`;
  return { entry, data: `${entry}data`, ticket: `${entry}ticket`, lease: `${entry}lease` };
}

const KEY = /^([0-9a-f]{32})\.(\d{1,16})\/(data|ticket|lease)$/;

/** The entry a key of the store belongs to, or `undefined` for a key that is not the library's. */
export function parseKey(prefix: string, key: string): { id: string; expiresAt: number; part: 'data' | 'ticket' | 'lease' } | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const match = KEY.exec(key.slice(prefix.length));
  if (!match) return undefined;
  return { id: match[1]!, expiresAt: Number(match[2]), part: match[3] as 'data' | 'ticket' | 'lease' };
}
