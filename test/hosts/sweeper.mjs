// A sweeper: mgr.sweep() on the shared root every 300 ms (TFM_SWEEP_EVERY_MS) until SIGTERM (`--once`: one sweep). In
// the object-store mode it sweeps this host's root and the store. `--final`: two sweeps STALE_MS
// apart (a lease is judged stale only once watched unchanged that long), then what they removed.
import { emit, manager, sleep, STALE_MS } from './common.mjs';

const mgr = manager();
let stopping = false;
process.on('SIGTERM', () => (stopping = true));
const final = process.argv.includes('--final');
let rounds = 0;
const totals = { sweeps: 0, sessionsRemoved: 0, handoffEntriesRemoved: 0, storeEntriesRemoved: 0, storeObjectsRemoved: 0, storeUploadsAborted: 0, storeHeld: 0, errors: 0 };
do {
  rounds += 1;
  try {
    const report = await mgr.sweep();
    totals.sweeps += 1;
    totals.sessionsRemoved += report.sessionsRemoved;
    totals.handoffEntriesRemoved += report.handoffEntriesRemoved;
    totals.errors += report.errors.length;
    for (const { report: storeReport, error } of report.stores ?? []) {
      if (error) {
        totals.errors += 1;
        emit('sweep-error', { code: error.code, message: error.message });
        continue;
      }
      totals.storeEntriesRemoved += storeReport.removed;
      totals.storeObjectsRemoved += storeReport.objects;
      totals.storeUploadsAborted += storeReport.uploadsAborted;
      totals.storeHeld = storeReport.held; // the last sweep's
      totals.errors += storeReport.errors.length;
      for (const { key, error: keyError } of storeReport.errors) emit('sweep-error', { key, code: keyError.code, message: keyError.message });
    }
    if (report.sessionsRemoved > 0) emit('swept-sessions', { count: report.sessionsRemoved });
  } catch (err) {
    totals.errors += 1;
    emit('sweep-error', { code: err.code, message: err.message });
  }
  if (process.argv.includes('--once') || (final && rounds >= 2)) break;
  await sleep(final ? STALE_MS + 1000 : Number(process.env.TFM_SWEEP_EVERY_MS || 300));
} while (!stopping);
emit('sweeper-done', totals);
await mgr.close();
