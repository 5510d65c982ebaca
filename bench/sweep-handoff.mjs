// The sweep of expired handoff entries (`handoff/<32hex>_<expiry>/` with a `data` file and a
// stale `lock` directory each) against `rm -rf handoff` on the same tree, at 10,000 and 100,000
// entries: time and peak RSS. Writes bench/results/node-<major>/sweep-handoff.md.
// argv (optional): sizes, e.g. `node bench/sweep-handoff.mjs 10000 100000`; SAMPLES=n.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const here = import.meta.dirname;
const major = process.versions.node.split('.')[0];
const sizes = process.argv.slice(2).map(Number);
if (sizes.length === 0) sizes.push(10_000, 100_000);
const SAMPLES = Number(process.env.SAMPLES ?? 3);
const CONTENDERS = ['rm-rf', 'sweep'];

function plant(root, count) {
  fs.mkdirSync(path.join(root, 'handoff'), { recursive: true, mode: 0o700 });
  const past = Date.now() - 3_600_000;
  for (let i = 0; i < count; i++) {
    const entry = path.join(root, 'handoff', `${i.toString(16).padStart(32, '0')}_${past.toString(36)}`);
    fs.mkdirSync(entry);
    fs.writeFileSync(path.join(entry, 'data'), 'x');
    fs.mkdirSync(path.join(entry, 'lock'));
    fs.utimesSync(path.join(entry, 'lock'), past / 1000, past / 1000);
  }
}

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
      plant(root, size);
      settle();
      const run = spawnSync(process.execPath, [path.join(here, 'sweep-handoff-worker.mjs'), id, root, String(size)], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(`${id} failed: ${run.stderr}`);
      samples[id].push(JSON.parse(run.stdout));
      fs.rmSync(path.dirname(root), { recursive: true, force: true });
      console.log(size, id, run.stdout.trim());
    }
  }
  const rm = median(samples['rm-rf'].map((s) => s.seconds));
  const sweep = median(samples.sweep.map((s) => s.seconds));
  rows.push(`| ${size.toLocaleString('en')} | ${rm.toFixed(2)} s | ${sweep.toFixed(2)} s | ${(sweep / rm).toFixed(2)}x | ${median(samples.sweep.map((s) => s.maxRssMiB)).toFixed(0)} MiB |`);
}

const doc = `### Sweep of expired handoff entries (Node ${process.version})

Run on ${new Date().toISOString().slice(0, 10)}: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, bench root under \`${os.tmpdir()}\`.

Each sample removes \`handoff/\` holding N expired entries (\`<32hex>_<expiry base36>/\` with a
1-byte \`data\` file and a \`lock\` directory an hour old), planted with raw \`fs\`, then \`sync\`
and a 1 s settle; \`mgr.sweep()\` and \`rm -rf handoff\` alternate, each in a child of its own
(\`bench/sweep-handoff-worker.mjs\`). Medians of ${SAMPLES} sample(s) per contender and size; RSS is the sweeping
process's peak (\`resourceUsage().maxRSS\`). Target: the sweep within 1.5x of \`rm -rf\`, its RSS
flat from 10,000 to 100,000 entries.

#### Time and memory

| entries | \`rm -rf\` | \`mgr.sweep()\` | sweep / rm -rf | sweep peak RSS |
| ---: | ---: | ---: | ---: | ---: |
${rows.join('\n')}
`;
const out = path.join(here, 'results', `node-${major}`);
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'sweep-handoff.md'), doc);
console.log(doc);
