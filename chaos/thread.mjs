// A worker thread of a producer: makes a scoped file and streams into another without end, until
// the producer terminates it. Posts its session path once both exist.
import { parentPort, workerData } from 'node:worker_threads';
import fs from 'node:fs';
import { TempFileManager } from 'tempfile-manager';

const { root, staleMs } = workerData;
const mgr = new TempFileManager({ root, staleMs, graceMs: 1000, sweepOnStart: false, sweepIntervalMs: 0 });
fs.writeFileSync(mgr.file('.t').path, 'thread data');
async function* endless() {
  for (;;) {
    yield Buffer.alloc(16 * 1024, 3);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
const writing = mgr.write(endless(), { suffix: '.part' });
while (!fs.readdirSync(mgr.sessionPath).some((n) => n.endsWith('.part'))) await new Promise((resolve) => setTimeout(resolve, 2));
parentPort.postMessage(mgr.sessionPath);
await writing;
