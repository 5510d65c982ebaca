// What liveness costs a running process (issue: no thread per claim, a few MiB at rest):
// 1. claim+consume by a worker that holds nothing but its claim, against the same in a worker that
//    holds one file, interleaved rounds of two child processes, medians;
// 2. resident memory at rest (VmRSS after a collection), interleaved children: bare Node, `tmp`
//    holding one file, the library imported with a manager, and holding one file.
// With --baseline <checkout> (a built checkout of an earlier version), its build runs beside this
// one in the same interleaved rounds.
//   node bench/liveness.mjs [--rounds 8] [--cycles 50] [--baseline ../earlier]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { median, rssAtRest, table } from './lib.mjs';
import { runInfo } from './report.mjs';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '8' }, cycles: { type: 'string', default: '50' }, baseline: { type: 'string' } } });
const rounds = Number(args.rounds);
const cycles = Number(args.cycles);
const here = path.dirname(fileURLToPath(import.meta.url));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-liveness-'));
const root = path.join(work, 'root');

const builds = { this: path.join(here, '../dist/index.js'), ...(args.baseline && { baseline: path.resolve(args.baseline, 'dist/index.js') }) };

function startWorker(mode, dist) {
  const child = spawn(process.execPath, [path.join(here, 'liveness-worker.mjs'), root, mode, pathToFileURL(dist).href], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return { child, next: async () => (await lines.next()).value };
}

async function ticketsFile(n, round, who) {
  const { TempFileManager } = await import(pathToFileURL(builds.this).href);
  const producer = new TempFileManager({ root, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
  const tickets = [];
  for (let i = 0; i < n; i++) tickets.push(await (await producer.write(`job ${i}`)).handoff({ ttlMs: 600_000 }));
  await producer.close();
  const file = path.join(work, `tickets-${who}-${round}.json`);
  fs.writeFileSync(file, JSON.stringify(tickets));
  return file;
}

const workers = {};
for (const [build, dist] of Object.entries(builds)) for (const mode of ['bare', 'holding']) workers[`${build} ${mode}`] = startWorker(mode, dist);
for (const w of Object.values(workers)) await w.next();
const cycleTimes = Object.fromEntries(Object.keys(workers).map((k) => [k, []]));
const lastReport = {};
const names = Object.keys(workers);
for (let round = 0; round <= rounds; round++) {
  const order = names.map((_, i) => names[(i + round) % names.length]);
  for (const who of order) {
    const file = await ticketsFile(cycles, round, who);
    workers[who].child.stdin.write(`${file}\n`);
    const report = JSON.parse(await workers[who].next());
    lastReport[who] = report;
    if (round > 0) cycleTimes[who].push(report.median); // round 0 warms up
  }
}
for (const w of Object.values(workers)) w.child.kill();

const RSS_CASES = {
  'bare Node': '',
  'tmp holding one file': `const { default: tmp } = await import(${JSON.stringify(pathToFileURL(path.join(here, '../node_modules/tmp/lib/tmp.js')).href)}); globalThis.f = tmp.fileSync();`,
};
for (const [build, dist] of Object.entries(builds)) {
  const load = `const { TempFileManager } = await import(${JSON.stringify(pathToFileURL(dist).href)});`;
  RSS_CASES[`${build}: imported, a manager`] = `${load} globalThis.m = new TempFileManager({ root: ${JSON.stringify(root)} });`;
  RSS_CASES[`${build}: holding one file`] = `${load} const m = new TempFileManager({ root: ${JSON.stringify(root)} }); globalThis.f = await m.file();`;
}
const rss = Object.fromEntries(Object.keys(RSS_CASES).map((k) => [k, []]));
for (let round = 0; round < Math.max(3, Math.ceil(rounds / 2)); round++) {
  for (const [name, code] of Object.entries(RSS_CASES)) {
    rss[name].push(rssAtRest(code));
  }
}
fs.rmSync(work, { recursive: true, force: true });

const major = process.versions.node.split('.')[0];
const rows = [];
for (const build of Object.keys(builds)) {
  const bare = median(cycleTimes[`${build} bare`]);
  const holding = median(cycleTimes[`${build} holding`]);
  for (const mode of ['bare', 'holding']) {
    const last = lastReport[`${build} ${mode}`];
    const what = mode === 'bare' ? 'a worker holding nothing but its claim' : 'a worker holding one file (the floor)';
    rows.push([`${build}: ${what}`, median(cycleTimes[`${build} ${mode}`]).toFixed(3), last.p90.toFixed(3), String(last.threads), last.liveness]);
  }
  rows.push([`${build}: ratio (target at most 1.1x)`, `${(bare / holding).toFixed(2)}x`, '', '', '']);
}
const base = median(rss['bare Node']);
const doc = `### Liveness: what a running process pays (Node ${process.version})

${runInfo()}${args.baseline ? ` Baseline: the build of \`${path.resolve(args.baseline)}\` at commit ${baselineCommit()}, in the same interleaved rounds.` : ''}

Claim+consume of a one-line handoff by a worker process that holds nothing but its claim (the usual
queue worker), against one that holds one file besides: medians of ${rounds} interleaved rounds of
${cycles} cycles each (a first round warms up), the p90 and the process's threads of the last round.

${table([`claim+consume`, 'median ms', 'p90 ms', 'threads', 'liveness'], rows, ['l', 'r', 'r', 'r', 'l'])}

Resident memory at rest: VmRSS of a process that runs what the row says as a service starts (a
module file, \`node app.mjs\`; bare Node is an empty one, as the cost gate measures it), waits,
collects garbage and reads \`/proc/self/status\`; medians of interleaved children. \`tmp\` holding
one file is the peer the issue names.

${table(['resident memory at rest', 'median MiB', 'over bare Node'], Object.entries(rss).map(([name, v]) => [name, median(v).toFixed(1), `+${(median(v) - base).toFixed(1)}`]), ['l', 'r', 'r'])}
`;
const out = path.join(here, 'results', `node-${major}`);
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'liveness.md'), doc);
console.log(doc);

function baselineCommit() {
  try {
    return spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: args.baseline, encoding: 'utf8' }).stdout.trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}
