// The run's ledger: one JSON line per event, appended with O_APPEND by every process. A line
// written before a SIGKILL survives it (it is in the page cache), so the ledger is the truth.
import fs from 'node:fs';

export function record(ledger, event) {
  fs.appendFileSync(ledger, `${JSON.stringify({ ...event, pid: process.pid, at: Date.now() })}\n`);
}

export function readLedger(ledger) {
  if (!fs.existsSync(ledger)) return [];
  return fs
    .readFileSync(ledger, 'utf8')
    .split('\n')
    .filter(Boolean)
    .flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return []; // a line cut by a kill mid-write
      }
    });
}
