// Sweeps the root again and again until told to stop; records every sweep error, and when each
// sweep that ran to its end started and ended (on the real clock, whatever libfaketime says), so
// that the run can tell a sweep that missed an orphan from one that had not run yet.
import fs from 'node:fs';
import { openManager, retire, rootSwapped } from './resilient.mjs';
import { record } from './ledger.mjs';
import { prng } from './prng.mjs';

const [root, ledger, seed, stopFile, staleMs] = process.argv.slice(2);
const rand = prng(Number(seed));
const options = { root, staleMs: Number(staleMs), graceMs: 1000, sweepOnStart: false };
let mgr = await openManager(options);
let swapsSeen = 0;
let sweeps = 0;
let removed = 0;
const who = process.env.CHAOS_ID;
const offset = Number(process.env.CHAOS_CLOCK_OFFSET_MS ?? 0);
const realNow = () => Date.now() - offset;
while (!fs.existsSync(stopFile)) {
  let report;
  const started = realNow();
  try {
    report = await mgr.sweep();
  } catch (err) {
    if (!rootSwapped(err)) throw err;
    swapsSeen += 1;
    retire(mgr);
    mgr = await openManager(options);
    continue;
  }
  sweeps += 1;
  record(ledger, { type: 'swept', who, started, ended: realNow() });
  removed += report.sessionsRemoved + report.handoffEntriesRemoved;
  for (const error of report.errors) record(ledger, { type: 'sweep-error', ...error });
  await new Promise((resolve) => setTimeout(resolve, rand.int(50, 400)));
}
record(ledger, { type: 'sweeper-counts', sweeps, removed, swapsSeen });
await mgr.close();
