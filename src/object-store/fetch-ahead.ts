// A claim of a small file downloads it while it creates the lease, rather than after: on a gateway
// a conditional write takes about as long as the download. Bytes read before the lease is held
// are safe to use only if the entry was not consumed in between, and that is proved with two
// rules, one on each side, and no clock compared across hosts:
//
// - Only the sweep deletes a lease (a consumed or swept entry's tombstone; a claim that finds the
//   data gone writes `swept` under its own ETag instead), and only once the entry's data has been
//   gone for at least LEASE_REMOVAL_DELAY_MS on the sweeper's monotonic clock. A lease that was
//   there when the data went is therefore absent again only that long after.
// - A claim keeps the bytes it fetched ahead only if it created the lease (none was there, so none
//   was taken over) and the create's answer came within FETCH_AHEAD_WINDOW_MS of the GET being
//   sent, on both its monotonic clock and its wall clock (the first stops while a host is
//   suspended, the second can be stepped: a claim past either falls back).
//
// If an entry had been consumed between the GET and the create, the GET read the data before it
// went, and the create landed after the tombstone's removal, at least LEASE_REMOVAL_DELAY_MS later:
// outside the window (half of it, so clocks that run at different rates still agree). Otherwise
// the bytes are dropped and the data fetched again under the lease.
import { monotonicMs } from '../base/clock.js';

/** A claim of a file of at most this many bytes fetches it while it creates the lease. */
export const FETCH_AHEAD_MAX_BYTES = 8 * 1024 * 1024;

/** The longest a fetch ahead may precede the lease's creation for its bytes to be kept. */
const FETCH_AHEAD_WINDOW_MS = 1000;

/** How long the sweep waits, after an entry's data is gone, before it deletes the entry's lease. */
export const LEASE_REMOVAL_DELAY_MS = 2 * FETCH_AHEAD_WINDOW_MS;

/** Started when the GET is sent; `within()` says whether the lease came inside the window. */
export function fetchAheadWindow(): { within(): boolean } {
  const sentMono = monotonicMs();
  const sentWall = Date.now();
  return {
    within: () => monotonicMs() - sentMono < FETCH_AHEAD_WINDOW_MS && Math.abs(Date.now() - sentWall) < FETCH_AHEAD_WINDOW_MS,
  };
}
