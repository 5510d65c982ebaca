import type { HandoffTicket } from '../handoff/ticket.js';
import { builtin } from '../base/builtin.js';
const { createHash } = builtin('node:crypto');

// The data object carries, as user metadata, the sha256 of the ticket's fields that are known
// before its bytes are read (all but the size and the digest, which the claim checks against the
// bytes themselves): a claim reads it from the headers of its GET, before it writes a byte. A
// ticket whose id, expiry, suffix, meta or store was changed does not match it.

/** The user metadata's name. */
export const META_TICKET = 'tfm-ticket-sha256';

/** The ticket's fields as they are bound before its bytes are read. */
export type BoundTicket = Omit<HandoffTicket, 'size' | 'digest'>;

/** The binding of a ticket's fields, for {@link META_TICKET}. */
export function ticketBinding(ticket: BoundTicket): string {
  const { v, id, suffix, createdAt, expiresAt, meta, store } = ticket;
  return createHash('sha256').update(JSON.stringify({ v, id, suffix, createdAt, expiresAt, meta, store })).digest('hex');
}

/** The metadata that binds a data object to its ticket. */
export function bindingMetadata(ticket: BoundTicket): Record<string, string> {
  return { [META_TICKET]: ticketBinding(ticket) };
}
