// Child of sweep-handoff.mjs: removes one planted handoff tree with one contender and reports
// its time and peak RSS. argv: id root entries. Prints { seconds, maxRssMiB }.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { TempFileManager } from '../dist/index.js';

const [id, root, entries] = process.argv.slice(2);

function rmRf() {
  return new Promise((resolve, reject) => {
    const rm = spawn('rm', ['-rf', `${root}/handoff`], { stdio: 'inherit' });
    rm.on('error', reject);
    rm.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`rm -rf exited with ${code}`))));
  });
}

const mgr = id === 'sweep' ? new TempFileManager({ root, graceMs: 0, sweepOnStart: false, exitHook: false }) : undefined;
const start = process.hrtime.bigint();
if (mgr) {
  const report = await mgr.sweep();
  if (report.handoffEntriesRemoved !== Number(entries) || report.errors.length > 0) throw new Error(`sweep report ${JSON.stringify({ ...report, errors: report.errors.slice(0, 3) })}`);
} else await rmRf();
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const left = fs.existsSync(`${root}/handoff`) ? fs.readdirSync(`${root}/handoff`).length : 0;
if (left > 0) throw new Error(`${left} entries left`);
// maxRSS of this process; for rm -rf, of the Node process that waited on it.
console.log(JSON.stringify({ seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
