// Sweeps the root again and again until told to stop; records every sweep error.
import fs from 'node:fs';
import { TempFileManager } from 'tempfile-manager';
import { record } from './ledger.mjs';
import { prng } from './prng.mjs';

const [root, ledger, seed, stopFile, staleMs] = process.argv.slice(2);
const rand = prng(Number(seed));
const mgr = new TempFileManager({ root, staleMs: Number(staleMs), graceMs: 1000, sweepOnStart: false });
let sweeps = 0;
let removed = 0;
while (!fs.existsSync(stopFile)) {
  const report = await mgr.sweep();
  sweeps += 1;
  removed += report.sessionsRemoved + report.handoffEntriesRemoved;
  for (const error of report.errors) record(ledger, { type: 'sweep-error', ...error });
  await new Promise((resolve) => setTimeout(resolve, rand.int(50, 400)));
}
record(ledger, { type: 'sweeper-counts', sweeps, removed });
await mgr.close();
