// Writes a few CSV files with mgr.write(), hands each off, and posts the tickets to a pool of
// worker threads that claim, process and consume them. Prints the results and what is left.
//   node examples/worker-threads/main.mjs        (EXAMPLE_ROOT=dir to choose the root, THREADS=n)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TempFileManager } from 'tempfile-manager';
import { Pool } from './pool.mjs';

const THREADS = Number(process.env.THREADS ?? 3);
const FILES = 8;
const root = process.env.EXAMPLE_ROOT ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-worker-threads-'));

async function* csv(rows, seed) {
  yield 'id,item,quantity\n';
  for (let i = 1; i <= rows; i += 1) yield `${i},item-${seed}-${i},${(i * seed) % 97}\n`;
}

const mgr = new TempFileManager({ root });
const pool = new Pool(THREADS, new URL('./worker.mjs', import.meta.url), { root });
console.log(`root ${root}, ${THREADS} worker threads`);

const jobs = [];
for (let n = 1; n <= FILES; n += 1) {
  const rows = 2000 * n;
  const file = await mgr.write(csv(rows, n), { suffix: '.csv', hash: 'sha256' });
  const ticket = await file.handoff({ ttlMs: 60_000, meta: { name: `orders-${n}.csv` } });
  jobs.push({ expected: { lines: rows + 1, digest: file.digest }, result: pool.run(ticket) });
}

let failures = 0;
const threads = new Set();
for (const { expected, result } of jobs) {
  const r = await result;
  threads.add(r.thread);
  const ok = r.lines === expected.lines && r.digest === expected.digest;
  if (!ok) failures += 1;
  console.log(`${ok ? 'ok  ' : 'BAD '} ${r.name.padEnd(14)} ${String(r.bytes).padStart(8)} bytes ${String(r.lines).padStart(6)} lines  thread ${r.thread}  ${r.digest.slice(0, 19)}…`);
}
await pool.close();
await mgr.close();

const left = fs.readdirSync(root, { recursive: true }).filter((name) => name !== 'handoff' && name !== '.tempfile-manager');
console.log(`${jobs.length} files processed by ${threads.size} threads; left under the root: ${left.length === 0 ? 'nothing' : left.join(', ')}`);
if (!process.env.EXAMPLE_ROOT) fs.rmSync(root, { recursive: true, force: true });
process.exitCode = failures === 0 && left.length === 0 ? 0 : 1;
