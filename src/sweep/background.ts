import { monotonicMs } from '../base/clock.js';
import type { RootContext } from '../root/root.js';
import { detached } from '../base/detached.js';
import { logger } from '../base/log.js';
import { sweepStores, type StoreBackend } from '../handoff/backend.js';
import { describeLocation, locationKey } from '../base/stores.js';
import { sweepRoot } from './sweep.js';

const log = logger('sweep');

/** How a manager wants its root swept in the background. @internal */
export interface BackgroundSweep {
  /** Sweep soon after the manager starts. */
  readonly onStart: boolean;
  /** Sweep again every this many ms (jittered by ±20 %); 0 for never. */
  readonly intervalMs: number;
  /** The manager's stores, swept with the root (each once, whichever managers gave it). */
  readonly stores?: readonly StoreBackend[];
}

/** One background sweeper per root (and thresholds) in this process, shared by its managers. */
interface RootSweeper {
  /**
   * The contexts of the attached managers; a sweep goes through the first. A manager's context is
   * dropped when it detaches: a closed manager's would keep it alive, and reopen its root.
   */
  readonly targets: RootContext[];
  intervalMs: number;
  attached: number;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
  lastSweep: number;
  /** The stores of the attached managers, by location, with how many managers gave each. */
  readonly stores: Map<string, { store: StoreBackend; attached: number }>;
}

// A start sweep of a root swept less than this ago is skipped: fifty managers made at once sweep it once.
const START_DEDUP_MS = 1000;
const START_DELAY_MS = 100;

// Per copy of the library, not in the process registry: a sweeper holds its root's context,
// which no other code may reach (two copies in one process each sweep: sweeps are safe together).
const sweepersByRoot = new Map<string, RootSweeper>();

function sweepersOf(): Map<string, RootSweeper> {
  return sweepersByRoot;
}

/**
 * Attaches a manager to the background sweeper of its root: one sweep soon after it starts, then
 * one every `intervalMs`, on unref'd timers (they never keep a process alive), never two at once,
 * never throwing into the app. Returns the detach function: the sweeper stops when its last
 * manager detaches.
 */
export function attachBackgroundSweep(target: RootContext, wanted: BackgroundSweep): () => void {
  if (!wanted.onStart && wanted.intervalMs === 0) return () => {};
  const sweepers = sweepersOf();
  const key = [target.root, target.staleMs, target.graceMs, target.hostId].join('\0');
  let sweeper = sweepers.get(key);
  if (!sweeper) {
    sweeper = { targets: [], intervalMs: 0, attached: 0, timer: undefined, running: false, lastSweep: -Infinity, stores: new Map() };
    sweepers.set(key, sweeper);
  }
  sweeper.targets.push(target);
  sweeper.attached += 1;
  const storeKeys = (wanted.stores ?? []).map((store) => addStore(sweeper, store));
  const shorter = wanted.intervalMs > 0 && (sweeper.intervalMs === 0 || wanted.intervalMs < sweeper.intervalMs);
  if (shorter) sweeper.intervalMs = wanted.intervalMs;
  if (wanted.onStart && monotonicMs() - sweeper.lastSweep >= START_DEDUP_MS) schedule(sweeper, START_DELAY_MS);
  else if (shorter || sweeper.timer === undefined) schedule(sweeper, jittered(sweeper.intervalMs));
  let detached = false;
  return () => {
    if (detached) return;
    detached = true;
    for (const storeKey of storeKeys) removeStore(sweeper, storeKey);
    sweeper.targets.splice(sweeper.targets.indexOf(target), 1);
    sweeper.attached -= 1;
    if (sweeper.attached > 0) return;
    clearTimeout(sweeper.timer);
    sweeper.timer = undefined;
    sweepers.delete(key);
  };
}

function addStore(sweeper: RootSweeper, store: StoreBackend): string {
  const storeKey = locationKey(store.location);
  const known = sweeper.stores.get(storeKey);
  if (known) known.attached += 1;
  else sweeper.stores.set(storeKey, { store, attached: 1 });
  return storeKey;
}

function removeStore(sweeper: RootSweeper, storeKey: string): void {
  const known = sweeper.stores.get(storeKey);
  if (known && --known.attached === 0) sweeper.stores.delete(storeKey);
}

function schedule(sweeper: RootSweeper, delayMs: number): void {
  if (sweeper.running || delayMs <= 0) return; // the running sweep schedules the next one
  clearTimeout(sweeper.timer);
  // Outside the caller's async context: a sweep runs in no request's stores, nor keeps them alive.
  sweeper.timer = detached(() => setTimeout(() => void run(sweeper), delayMs));
  sweeper.timer.unref();
}

async function run(sweeper: RootSweeper): Promise<void> {
  sweeper.timer = undefined;
  sweeper.running = true;
  sweeper.lastSweep = monotonicMs();
  const target = sweeper.targets[0]!; // a sweep is scheduled only while a manager is attached
  try {
    const report = await sweepRoot(target);
    log('background sweep of %s removed %d sessions', target.root, report.sessionsRemoved);
  } catch (err) {
    log('background sweep of %s failed: %O', target.root, err);
  }
  // A root that cannot be swept does not keep the stores' expired objects (sweepStores never throws).
  const stores = [...sweeper.stores.values()].map((known) => known.store);
  for (const swept of await sweepStores(stores, target.staleMs)) {
    log('background sweep of the store %s: %O', describeLocation(swept.location), swept.report ?? swept.error);
  }
  sweeper.running = false;
  if (sweeper.attached > 0) schedule(sweeper, jittered(sweeper.intervalMs));
}

/** ±20 %, so that many processes started together do not sweep in step. 0 stays 0 (never). */
function jittered(intervalMs: number): number {
  if (intervalMs === 0) return 0;
  return Math.min(2 ** 31 - 1, Math.round(intervalMs * (0.8 + 0.4 * Math.random())));
}
