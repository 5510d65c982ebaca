import { sortedKeys, type HandoffMeta, type HandoffTicket } from '../handoff/ticket.js';
import type { StoreLocation } from '../base/stores.js';
import { builtin } from '../base/builtin.js';
const { createHash } = builtin('node:crypto');

// The data object carries, as user metadata, the sha256 of the ticket's fields that are known
// before its bytes are read (all but the size and the digest, which the claim checks against the
// bytes themselves, with the digest's algorithm bound here: a ticket edited to name another, an
// MD5 of the same bytes, is refused): a claim reads it from the headers of its GET, before it
// writes a byte. A ticket whose id, expiry, suffix, meta or algorithm was changed does not match
// it. The store is the store's own location, not the ticket's copy of it, and `meta` is hashed as
// canonical JSON: a ticket whose keys came back from a queue in another order still matches.

/** The user metadata's name. */
export const META_TICKET = 'tfm-ticket-sha256';

/** The ticket's fields as they are bound before its bytes are read. */
export type BoundTicket = Omit<HandoffTicket, 'size' | 'digest'>;

/** The algorithm a ticket's digest names (`sha256` when it names none). */
export function digestAlgorithm(ticket: Pick<HandoffTicket, 'digest'>): string {
  const digest = ticket.digest ?? '';
  return digest.slice(0, digest.indexOf(':')) || 'sha256';
}

function bindingOf(ticket: BoundTicket, store: StoreLocation, algorithm: string, meta: HandoffMeta | undefined): string {
  const { v, id, suffix, createdAt, expiresAt } = ticket;
  // sha256, the default, is left out: entries bound before the algorithm was still match.
  const fields = JSON.stringify({ v, id, suffix, createdAt, expiresAt, meta, store, ...(algorithm !== 'sha256' && { digest: algorithm }) });
  return createHash('sha256').update(fields).digest('hex');
}

/** The binding of a ticket's fields, for {@link META_TICKET}. */
export function ticketBinding(ticket: BoundTicket, store: StoreLocation, algorithm: string): string {
  return bindingOf(ticket, store, algorithm, sortedKeys(ticket.meta));
}

/**
 * True when `found`, the data object's {@link META_TICKET}, binds `ticket`: its meta as canonical
 * JSON, or as it came (the form entries handed off before meta was made canonical were bound in).
 */
export function bindsTicket(found: string | undefined, ticket: HandoffTicket, store: StoreLocation): boolean {
  if (found === undefined) return false;
  const algorithm = digestAlgorithm(ticket);
  if (found === ticketBinding(ticket, store, algorithm)) return true;
  return ticket.meta !== undefined && found === bindingOf(ticket, store, algorithm, ticket.meta);
}

/** The metadata that binds a data object to its ticket. */
export function bindingMetadata(ticket: BoundTicket, store: StoreLocation, algorithm: string): Record<string, string> {
  return { [META_TICKET]: ticketBinding(ticket, store, algorithm) };
}
