// A sweeper: mgr.sweep() on the shared root every 300 ms until SIGTERM (`--once`: one sweep).
import { emit, manager, sleep } from './common.mjs';

const mgr = manager();
let stopping = false;
process.on('SIGTERM', () => (stopping = true));
const totals = { sweeps: 0, sessionsRemoved: 0, handoffEntriesRemoved: 0, errors: 0 };
do {
  try {
    const report = await mgr.sweep();
    totals.sweeps += 1;
    totals.sessionsRemoved += report.sessionsRemoved;
    totals.handoffEntriesRemoved += report.handoffEntriesRemoved;
    totals.errors += report.errors.length;
    if (report.sessionsRemoved > 0) emit('swept-sessions', { count: report.sessionsRemoved });
  } catch (err) {
    totals.errors += 1;
    emit('sweep-error', { code: err.code, message: err.message });
  }
  if (process.argv.includes('--once')) break;
  await sleep(300);
} while (!stopping);
emit('sweeper-done', totals);
await mgr.close();
