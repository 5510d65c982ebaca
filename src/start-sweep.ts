import { logger } from './log.js';
import { sweepRoot, type SweepTarget } from './sweep.js';

const log = logger('sweep');

// Roots this process swept at start, and when: fifty managers on one root sweep it once.
const lastStartSweep = new Map<string, number>();

/**
 * Runs one sweep of the root in the background, soon after a manager starts: on an unref'd
 * timer, so it never keeps a process alive on its own, and never throwing into the app.
 */
export function scheduleStartSweep(target: SweepTarget): void {
  const now = Date.now();
  const last = lastStartSweep.get(target.root);
  if (last !== undefined && now - last < target.graceMs) return;
  lastStartSweep.set(target.root, now);
  const timer = setTimeout(() => {
    sweepRoot(target).then(
      (report) => log('start sweep of %s removed %d sessions', target.root, report.sessionsRemoved),
      (err: unknown) => log('start sweep of %s failed: %O', target.root, err),
    );
  }, 100);
  timer.unref();
}
