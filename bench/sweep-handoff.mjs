// The sweep of expired handoff entries (half unclaimed with their data file, half holding the
// lease of a claimer killed with SIGKILL) against `rm -rf handoff` on the same tree, at 10,000 and 100,000
// entries: time and peak RSS. Writes bench/results/node-<major>/sweep-handoff.md.
// argv (optional): sizes, e.g. `node bench/sweep-handoff.mjs 10000 100000`; SAMPLES=n.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TempFileManager } from '../dist/index.js';
import { commitOf } from './report.mjs';

const here = import.meta.dirname;
const major = process.versions.node.split('.')[0];
const sizes = process.argv.slice(2).map(Number);
if (sizes.length === 0) sizes.push(10_000, 100_000);
const SAMPLES = Number(process.env.SAMPLES ?? 3);
const CONTENDERS = ['rm-rf', 'sweep'];

// The entries are shaped by the library itself: one handed off and left unclaimed, one claimed
// by a process killed with SIGKILL (its lease left behind), both past their expiry; each is then
// cloned with raw fs under fresh ids, half of each kind. Names are never spelt here.
async function plant(root, count) {
  const mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
  const tickets = [];
  for (let i = 0; i < 2; i++) {
    const file = mgr.file('.bin');
    fs.writeFileSync(file.path, 'x');
    tickets.push(await file.handoff({ ttlMs: 2000 }));
  }
  const claimer = spawnSync(process.execPath, ['--input-type=module', '-e', DIE_HOLDING, path.join(here, '..', 'dist', 'index.js'), root, JSON.stringify(tickets[1])], { encoding: 'utf8' });
  if (claimer.signal !== 'SIGKILL') throw new Error(`the claimer did not die holding its lease: ${claimer.stderr}`);
  await mgr.close();
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, tickets[1].expiresAt + 10 - Date.now())));
  const handoff = path.join(root, 'handoff');
  const shapes = fs.readdirSync(handoff).map((name, i) => ({ name, id: tickets.find((t) => name.includes(t.id)).id, data: fs.readdirSync(path.join(handoff, name)) }));
  for (const shape of shapes) {
    for (let i = 0; i < count / 2; i++) {
      const id = ((i << 1) | (shape.id === tickets[1].id ? 1 : 0)).toString(16).padStart(shape.id.length, '0');
      const entry = path.join(handoff, shape.name.replace(shape.id, id));
      fs.mkdirSync(entry, { mode: 0o700 });
      for (const data of shape.data) fs.writeFileSync(path.join(entry, data), 'x', { mode: 0o600 });
    }
    fs.rmSync(path.join(handoff, shape.name), { recursive: true });
  }
  const planted = fs.readdirSync(handoff).length;
  if (planted !== count) throw new Error(`planted ${planted} entries, not ${count}`);
}

/** A claimer that takes the lease and dies with it (argv: dist entry, root, ticket). */
const DIE_HOLDING = `
const [dist, root, ticket] = process.argv.slice(1);
const { TempFileManager } = await import(dist);
const mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
await mgr.claim(JSON.parse(ticket));
process.kill(process.pid, 'SIGKILL');
`;

function settle() {
  execFileSync('sync');
  spawnSync('sleep', ['1']);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const size of sizes) {
  const samples = { 'rm-rf': [], sweep: [] };
  for (let round = 0; round < SAMPLES; round++) {
    for (const id of round % 2 ? [...CONTENDERS].reverse() : CONTENDERS) {
      const root = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-bench-')), 'root');
      fs.mkdirSync(root, { mode: 0o700 });
      await plant(root, size);
      settle();
      const run = spawnSync(process.execPath, [path.join(here, 'sweep-handoff-worker.mjs'), id, root, String(size)], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(`${id} failed: ${run.stderr}`);
      samples[id].push(JSON.parse(run.stdout));
      fs.rmSync(path.dirname(root), { recursive: true, force: true });
      console.log(size, id, run.stdout.trim());
    }
  }
  const seconds = (id) => samples[id].map((s) => s.seconds);
  const range = (xs) => `${Math.min(...xs).toFixed(2)} – ${Math.max(...xs).toFixed(2)}`;
  const rm = median(seconds('rm-rf'));
  const sweep = median(seconds('sweep'));
  rows.push(
    `| ${size.toLocaleString('en')} | ${rm.toFixed(2)} s (${range(seconds('rm-rf'))}) | ${sweep.toFixed(2)} s (${range(seconds('sweep'))}) | ${(rm / sweep).toFixed(2)}x | ${median(samples.sweep.map((s) => s.maxRssMiB)).toFixed(0)} MiB |`,
  );
}

const doc = `### Sweep of expired handoff entries (Node ${process.version})

Run on ${new Date().toISOString().slice(0, 10)} at commit ${commitOf()}: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, bench root under \`${os.tmpdir()}\`.

Each sample removes \`handoff/\` holding N expired entries, half unclaimed (a 1-byte data file),
half under the lease of a claimer killed with SIGKILL: two made by the library, cloned with raw
\`fs\` under fresh ids, then \`sync\` and a 1 s settle; \`mgr.sweep()\` and \`rm -rf handoff\` alternate, each in a child of its own
(\`bench/sweep-handoff-worker.mjs\`). Medians of ${SAMPLES} sample(s) per contender and size; RSS is the sweeping
process's peak (\`resourceUsage().maxRSS\`). Speed vs \`rm -rf\` is its time over the sweep's.
Target: the sweep at 1.5x or more the speed of \`rm -rf\`, its RSS flat from 10,000 to 100,000
entries.

#### Time and memory

| entries | \`rm -rf\` (min – max) | \`mgr.sweep()\` (min – max) | speed vs rm -rf | sweep peak RSS |
| ---: | ---: | ---: | ---: | ---: |
${rows.join('\n')}
`;
const out = path.join(here, 'results', `node-${major}`);
fs.mkdirSync(out, { recursive: true });
// Notes written by hand below the marker (what a run showed, why) survive a rerun.
const file = path.join(out, 'sweep-handoff.md');
const NOTES = '<!-- notes: kept when bench/sweep-handoff.mjs reruns -->';
const previous = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
const notes = previous.includes(NOTES) ? `\n${previous.slice(previous.indexOf(NOTES))}` : '';
fs.writeFileSync(file, doc + notes);
console.log(doc);
