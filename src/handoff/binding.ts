import { entryName } from '../base/layout.js';
import { digestHex } from '../base/sha256.js';
import { canonicalJson, type HandoffTicket } from './ticket.js';

// A shared-disk entry is bound to its ticket as an object store's is (object-store/binding.ts): 32 hex digits
// of the SHA-256 of the ticket's fields (as canonical JSON: keys sorted), its size and digest included, end the entry's name. A
// ticket whose meta, times, size or digest was edited names no entry, and its claim is refused.
// In the name, it costs no system call: a file beside the data cost an inode made and removed.

/** The name of the entry bound to `ticket`: `entry_<id>_<expiry>_<binding>`. @internal */
export function boundEntryName(ticket: HandoffTicket): string {
  const { v, id, suffix, size, digest, createdAt, expiresAt, meta } = ticket;
  const fields = canonicalJson({ v, id, suffix, size, digest, createdAt, expiresAt, meta });
  return entryName(id, expiresAt, digestHex(fields).slice(0, 32));
}
