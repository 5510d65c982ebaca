// Child of sweep.mjs: removes one planted tree with one contender, timing it and watching this
// process's event loop. argv: id dir files bytes. Prints { seconds, stallMs }.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { TempFileManager } from '../dist/index.js';
import { HOST_ID } from './sweep.mjs';

const [id, dir, files, bytes] = process.argv.slice(2);

function rmRf() {
  return new Promise((resolve, reject) => {
    const rm = spawn('rm', ['-rf', dir], { stdio: 'inherit' });
    rm.on('error', reject);
    rm.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`rm -rf exited with ${code}`))));
  });
}

async function sweep(mgr) {
  const report = await mgr.sweep();
  const expected = { filesRemoved: Number(files), bytesFreed: Number(bytes), errors: 0 };
  const got = { filesRemoved: report.filesRemoved, bytesFreed: report.bytesFreed, errors: report.errors.length };
  if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error(`sweep report ${JSON.stringify(got)}`);
}

// The manager is made before the clock starts (its constructor checks the root).
const mgr = id === 'sweep' ? new TempFileManager({ root: dir, hostId: HOST_ID, graceMs: 0, sweepOnStart: false, exitHook: false }) : undefined;
const REMOVERS = {
  sweep: () => sweep(mgr),
  'rm-rf': rmRf,
  'rm-promises': () => fs.promises.rm(dir, { recursive: true, force: true }),
  'rm-sync': () => fs.rmSync(dir, { recursive: true, force: true }),
};
const remove = REMOVERS[id];
if (!remove) throw new Error(`unknown contender ${id}`);

// The histogram's first timer tick only starts its clock: give it a few ticks before the removal,
// or a removal that blocks from the start (rmSync) would go unrecorded.
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
await sleep(10);
const start = process.hrtime.bigint();
await remove();
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
await sleep(5); // lets the histogram's timer fire once more: after a blocking call, it records the block
delay.disable();

// The sweep leaves the (empty) root; the others remove it.
if (fs.existsSync(dir)) {
  if (fs.readdirSync(dir).length > 0) throw new Error(`${id} left ${fs.readdirSync(dir).join(', ')}`);
  fs.rmdirSync(dir);
}
await mgr?.close();
console.log(JSON.stringify({ seconds, stallMs: delay.max / 1e6 }));
