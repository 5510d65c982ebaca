// Handoff throughput: `file.handoff()` + `mgr.claim()` + `claimed.consume()` per second on a small
// file already written, against the floor of the same disk (a bare rename into a directory, a
// mkdir lock, an unlink and an rmdir of the lock), with the system calls, thread-pool round trips
// and CPU profile per cycle that explain the gap.
//
//   node bench/handoff.mjs            writes bench/results/node-<major>/handoff.md and prints it
//   node bench/handoff.mjs --quick    fewer, shorter samples, to try it out (printed, not written)
//   node bench/handoff.mjs --tmpfs    tmpfs only: the interleaved samples, the targets' tmpfs row and
//                                     the CPU profile, without the disk, strace or counts (printed,
//                                     not written); with --quick, fewer samples. ROUNDS=<n> sets the
//                                     number of samples per contender.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { makeContender, NAMES, SHORT, SMALL_BYTES } from './handoff-contenders.mjs';
import { formatInt, formatRatio, median, phaseClock, runChild, sampleInterleaved, table, targetsTable } from './lib.mjs';
import { Settler } from './settle.mjs';
import { FS_SYSCALLS, straceProblem } from './syscalls.mjs';
import { commitOf } from './report.mjs';

const WORKER = fileURLToPath(new URL('./handoff-worker.mjs', import.meta.url));
const NODE_MAJOR = process.versions.node.split('.')[0];
const RESULTS = fileURLToPath(new URL(`./results/node-${NODE_MAJOR}/`, import.meta.url));
const COUNTED = new Set(FS_SYSCALLS);

const params = {
  rounds: 15,
  ops: 500,
  warmup: 200,
  traceOps: 300,
  countOps: 300,
  profileOps: 3000,
  ramRounds: 9,
  waitBudgetMs: 60_000,
};
const QUICK = process.argv.includes('--quick');
if (QUICK) Object.assign(params, { rounds: 2, ramRounds: 2, ops: 200, warmup: 50, traceOps: 50, countOps: 50, profileOps: 300 });
// The software's cost alone, in a minute: what a change to the library's JavaScript moves.
const TMPFS_ONLY = process.argv.includes('--tmpfs');
if (process.env.ROUNDS) params.ramRounds = Number(process.env.ROUNDS);
const IDS = ['lib', 'floor', 'floor-sync', 'mirror', 'layout'];

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tempfile-manager-handoff-bench-'));
const subdir = (name, under = root) => {
  const dir = path.join(under, name);
  fs.mkdirSync(dir, { mode: 0o700 });
  return dir;
};
// The same cycles where no device is involved: what the software costs by itself.
const RAM_DIR = '/dev/shm';
const ramRoot = isTmpfs(RAM_DIR) ? fs.mkdtempSync(path.join(RAM_DIR, 'tempfile-manager-handoff-bench-')) : undefined;

async function main() {
  try {
    if (TMPFS_ONLY) return await tmpfsOnly();
    const disk = await sample(root, params.rounds);
    console.error(`disk: ${disk.results.map((r) => `${r.id} ${formatInt(r.speed.median)}/s`).join(', ')}`);
    const ram = ramRoot ? await sample(ramRoot, params.ramRounds) : undefined;
    if (ram) console.error(`tmpfs: ${ram.results.map((r) => `${r.id} ${formatInt(r.speed.median)}/s`).join(', ')}`);

    const counts = {};
    for (const id of IDS) counts[id] = await runChild(WORKER, ['count', id, String(params.countOps), subdir(`count-${id}`)]);
    const problem = straceProblem();
    const traces = {};
    if (!problem) {
      for (const id of IDS) traces[id] = traceSyscalls(id);
    }
    const profiles = {};
    // On tmpfs when there is one: the software's cost, without the device's stalls in the samples.
    const profileBase = ramRoot ?? root;
    for (const id of ['lib', 'mirror']) profiles[id] = await runChild(WORKER, ['profile', id, String(params.profileOps), subdir(`profile-${id}`, profileBase)]);

    const section = render({ disk, ram, counts, traces, problem, profiles });
    // A quick run is a try-out: printed only, never written over the results.
    if (!QUICK) {
      fs.mkdirSync(RESULTS, { recursive: true });
      fs.writeFileSync(path.join(RESULTS, 'handoff.md'), section);
    }
    console.log(section);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
    if (ramRoot) fs.rmSync(ramRoot, { recursive: true, force: true });
  }
}

/** The tmpfs samples and the library's profile there, printed: a try-out, never written over the results. */
async function tmpfsOnly() {
  if (!ramRoot) throw new Error(`--tmpfs needs a tmpfs at ${RAM_DIR}`);
  const ram = await sample(ramRoot, params.ramRounds);
  const profiles = {};
  for (const id of ['lib', 'mirror']) profiles[id] = await runChild(WORKER, ['profile', id, String(params.profileOps), subdir(`profile-${id}`, ramRoot)]);
  const [load1] = os.loadavg();
  console.log(
    [
      `### Handoff on tmpfs only (Node ${process.version}, ${ram.rounds} samples of ${formatInt(params.ops)} cycles, load average ${load1.toFixed(1)} on ${os.cpus().length} CPUs)`,
      '',
      targetsTable([tmpfsTargetRow(ram)]),
      '',
      speedTable(ram),
      '',
      profileTables(profiles),
    ].join('\n'),
  );
}

function isTmpfs(dir) {
  try {
    return fs.readFileSync('/proc/mounts', 'utf8').split('\n').some((line) => {
      const [, mountPoint, type] = line.split(' ');
      return mountPoint === dir && type === 'tmpfs';
    });
  } catch {
    return false;
  }
}

/** The mount under which `dir` lives: its type and options (the longest matching mount point). */
function mountOf(dir) {
  let best = { mountPoint: '', type: '?', options: '' };
  try {
    for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mountPoint, type, options] = line.split(' ');
      if (!mountPoint) continue;
      const inside = dir === mountPoint || dir.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`);
      if (inside && mountPoint.length >= best.mountPoint.length) best = { mountPoint, type, options };
    }
  } catch {
    // not Linux
  }
  return best;
}

/** Samples every contender under `base`, interleaved; returns the per-contender medians. */
async function sample(base, rounds) {
  const contenders = [];
  for (const id of IDS) {
    const state = await makeContender(id, subdir(id, base));
    contenders.push({ id, name: NAMES[id], short: SHORT[id], baseline: id === 'floor', state });
  }
  // Warm-up, untimed: JIT, the handoff directory.
  for (const c of contenders) await runCycles(c.state, params.warmup);

  const settler = new Settler(subdir('probe', base), params.waitBudgetMs);
  const probeDir = subdir('rmdir-probe', base);
  const rmdirUs = [];
  const unlinkUs = [];
  const sampled = await sampleInterleaved(contenders, {
    rounds,
    before: async () => {
      await settler.ready();
      probeRemovals(probeDir, rmdirUs, unlinkUs);
    },
    sample: (c) => runCycles(c.state, params.ops),
  });
  for (const c of contenders) {
    await c.state.check();
    await c.state.close();
  }
  const results = sampled.map((r) => ({
    ...r,
    speed: summary(r.samples.map((s) => s.opsPerSec)),
    total: median(r.samples.map((s) => s.totalOpsPerSec)),
    usPerCycle: median(r.samples.map((s) => 1e6 / s.opsPerSec)),
    p50Us: median(r.samples.map((s) => s.p50Us)),
    bestP50Us: Math.min(...r.samples.map((s) => s.p50Us)),
    p90Us: median(r.samples.map((s) => s.p90Us)),
    phaseUs: Object.fromEntries(r.state.phases.map((p) => [p, median(r.samples.map((s) => s.phaseUs[p]))])),
    busyUs: median(r.samples.map((s) => s.busyUs)),
    idleUs: median(r.samples.map((s) => s.idleUs)),
  }));
  return { results, settler, rounds, mount: mountOf(fs.realpathSync(base)), rmdirUs: median(rmdirUs), unlinkUs: median(unlinkUs) };
}

/**
 * What removing costs on this file system right now: an rmdir of an empty directory (which frees
 * the directory's block) against an unlink of an empty file (which frees no block).
 */
function probeRemovals(dir, rmdirUs, unlinkUs) {
  for (let i = 0; i < 20; i++) {
    const d = path.join(dir, `d${i}`);
    const f = path.join(dir, `f${i}`);
    fs.mkdirSync(d);
    fs.closeSync(fs.openSync(f, 'wx'));
    let t = process.hrtime.bigint();
    fs.rmdirSync(d);
    rmdirUs.push(Number(process.hrtime.bigint() - t) / 1e3);
    t = process.hrtime.bigint();
    fs.unlinkSync(f);
    unlinkUs.push(Number(process.hrtime.bigint() - t) / 1e3);
  }
}

/** n cycles, each on a file made just before it, untimed; the clock runs over the cycles only. */
async function runCycles(state, n) {
  const { phaseNs, mark } = phaseClock(state.phases);
  let timedNs = 0n;
  const each = new Float64Array(n);
  let busy = 0;
  let idle = 0;
  const totalStart = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const item = await state.create();
    const elu = performance.eventLoopUtilization();
    const start = process.hrtime.bigint();
    await state.cycle(item, mark);
    const took = process.hrtime.bigint() - start;
    timedNs += took;
    each[i] = Number(took) / 1e3;
    const d = performance.eventLoopUtilization(elu);
    busy += d.active;
    idle += d.idle;
  }
  const totalNs = process.hrtime.bigint() - totalStart;
  return {
    opsPerSec: n / (Number(timedNs) / 1e9),
    p50Us: percentile(each, 0.5),
    p90Us: percentile(each, 0.9),
    totalOpsPerSec: n / (Number(totalNs) / 1e9),
    phaseUs: Object.fromEntries(Object.entries(phaseNs).map(([p, ns]) => [p, Number(ns) / 1e3 / n])),
    busyUs: (busy * 1e3) / n,
    idleUs: (idle * 1e3) / n,
  };
}

function percentile(values, q) {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summary(values) {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

// ---------------------------------------------------------------------------------------------
// strace: every syscall of every thread, attributed to the phase whose marker came last.

const MARKER = /^\d+\s+(?:access|faccessat2?)\((?:AT_FDCWD, )?"\/__handoff_bench__\/([a-z]+)"/;
const CALL = /^\d+\s+([a-z_0-9]+)\(/;

function traceSyscalls(id) {
  const dir = subdir(`trace-${id}`);
  const out = path.join(dir, 'trace.txt');
  const work = path.join(dir, 'work');
  fs.mkdirSync(work);
  execFileSync('sync');
  const run = spawnSync('strace', ['-f', '-o', out, process.execPath, WORKER, 'trace', id, String(params.traceOps), work], {
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`strace of ${id} failed: ${run.stderr}`);
  const lines = fs.readFileSync(out, 'utf8').split('\n');
  const perPhase = {};
  const cycles = [];
  let phase;
  let cycle;
  for (const line of lines) {
    const marker = MARKER.exec(line);
    if (marker) {
      if (phase === undefined) cycles.push((cycle = []));
      phase = marker[1] === 'end' ? undefined : marker[1];
      continue;
    }
    if (phase === undefined) continue;
    const call = CALL.exec(line);
    if (!call) continue; // "<... resumed>", exits, signals
    const counts = (perPhase[phase] ??= {});
    counts[call[1]] = (counts[call[1]] ?? 0) + 1;
    cycle.push({ phase, line });
  }
  const n = cycles.length;
  if (n !== params.traceOps) throw new Error(`trace of ${id}: ${n} cycles seen, ${params.traceOps} run`);
  for (const counts of Object.values(perPhase)) for (const k of Object.keys(counts)) counts[k] /= n;
  fs.rmSync(dir, { recursive: true, force: true });
  return { perPhase, last: cycles.at(-1).filter(({ line }) => COUNTED.has(CALL.exec(line)[1])) };
}

const sum = (values) => values.reduce((a, b) => a + b, 0);
const fsCount = (counts) => sum(Object.entries(counts).filter(([k]) => COUNTED.has(k)).map(([, v]) => v));
const allCount = (counts) => sum(Object.values(counts));
const merge = (perPhase) => {
  const all = {};
  for (const counts of Object.values(perPhase)) for (const [k, v] of Object.entries(counts)) all[k] = (all[k] ?? 0) + v;
  return all;
};
const fmt = (x) => (Math.abs(x) < 0.005 ? '0' : Number.isInteger(Math.round(x * 100) / 100) ? String(Math.round(x)) : x.toFixed(2));
const breakdown = (counts) =>
  FS_SYSCALLS.filter((k) => (counts[k] ?? 0) >= 0.005)
    .map((k) => `${k} ${fmt(counts[k])}`)
    .join(', ');

/** One traced syscall line, shortened: names and descriptors, not the bench's paths. */
function shorten(line) {
  return line
    .replace(/^\d+\s+/, '')
    .replaceAll(root, '<bench>')
    .replace(/<bench>\/trace-[a-z-]+\/work\/root/g, '<root>')
    .replace(/[0-9a-f]{32}_[0-9a-z]+/g, '<id>_<expiry>')
    .replace(/[0-9a-f]{32}/g, '<id>')
    .replace(/held_[A-Za-z0-9.-]+_\d+_[0-9a-z.]+_[0-9a-z]+_[0-9a-f]{16}/g, 'held_<owner>')
    .replace(/<root>\/[A-Za-z0-9.-]+_\d+_[0-9a-z.]+_[0-9a-z]+_[0-9a-f]{16}/g, '<root>/<session>')
    .replace(/, \{st(?:x)?_[^}]*\}/g, ', {...}')
    .replace(/0x[0-9a-f]+ \/\* (\d+) entries \*\//, '/* $1 entries */')
    .replace(/\s*<unfinished \.\.\.>/, ' ...')
    .replace(/\s+=/, ' =');
}

// ---------------------------------------------------------------------------------------------

/**
 * Handoff + claim + consume at 0.8x the floor or more, on the disk, where a service's handoffs
 * are, and on tmpfs, where the floor is four system calls with no device behind them and the
 * library's JavaScript weighs most.
 */
const TARGET = 0.8;

function handoffTargets(disk, ram) {
  return targetsTable([targetRow(disk, `on ${os.tmpdir()} (${disk.mount.type})`), ...(ram ? [tmpfsTargetRow(ram)] : [])]);
}

const tmpfsTargetRow = (ram) => targetRow(ram, 'on tmpfs');

function targetRow(run, where) {
  const lib = run.results.find((r) => r.id === 'lib').speed.median;
  const floor = run.results.find((r) => r.id === 'floor').speed.median;
  return [
    `handoff + claim + consume at ${formatRatio(TARGET)} the floor or more, ${where}`,
    `${formatRatio(lib / floor)} (${formatInt(lib)} against ${formatInt(floor)} cycles/s, medians)`,
    lib / floor >= TARGET,
  ];
}

function speedTable(run) {
  const floor = run.results.find((r) => r.id === 'floor');
  return table(
    ['Contender', 'cycles/s (median)', 'min – max', 'vs floor', 'µs / cycle (mean)', 'one cycle, p50 / p90 µs', 'p50 vs floor', 'busy / waiting µs', 'incl. creating the file, cycles/s'],
    run.results.map((r) => [
      r.name,
      formatInt(r.speed.median),
      `${formatInt(r.speed.min)} – ${formatInt(r.speed.max)}`,
      formatRatio(r.speed.median / floor.speed.median),
      r.usPerCycle.toFixed(0),
      `${r.p50Us.toFixed(0)} / ${r.p90Us.toFixed(0)}`,
      formatRatio(floor.p50Us / r.p50Us),
      `${r.busyUs.toFixed(0)} / ${r.idleUs.toFixed(0)}`,
      formatInt(r.total),
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

const mountText = ({ mount }) => `${mount.type} at \`${mount.mountPoint}\` (${mount.options.split(',').filter((o) => /discard|journal|^data=/.test(o)).join(', ') || 'no discard option'})`;

/** The CPU profiles' tables: self time by origin, the top functions, the library's own top functions. */
function profileTables(profiles) {
  const out = ['#### CPU profile: self time per cycle, by origin', ''];
  const ids = Object.keys(profiles);
  const groupNames = [...new Set(ids.flatMap((id) => Object.keys(profiles[id].groups)))].sort(
    (a, b) => (profiles.lib.groups[b] ?? 0) - (profiles.lib.groups[a] ?? 0),
  );
  const perCycle = (p, ms) => ((ms * 1e3) / p.n).toFixed(1);
  const functionTable = (rows) => table(['Function', 'µs / cycle'], rows.map(([name, ms]) => [`\`${name}\``, perCycle(profiles.lib, ms)]), ['l', 'r']);
  out.push(
    table(
      ['Origin', ...ids.map((id) => `${SHORT[id]}, µs / cycle`)],
      [
        ...groupNames.map((g) => [g, ...ids.map((id) => perCycle(profiles[id], profiles[id].groups[g] ?? 0))]),
        ['wall clock', ...ids.map((id) => perCycle(profiles[id], profiles[id].wallMs))],
      ],
      ['l', ...ids.map(() => 'r')],
    ),
    '',
    '`(idle)` is the main thread waiting in the event loop (for the thread pool); "native: fs bindings" is the ' +
      'C++ side of the fs calls (a synchronous call runs its system call there; an asynchronous one queues it); ' +
      '`(program)` is other native code. The profiler itself slows the cycles down several times on this machine.',
    '',
    'Top functions of the library cycle by self time (any origin):',
    '',
    functionTable(profiles.lib.top),
    '',
    "The library's own functions by self time (functions V8 inlined count in their caller):",
    '',
    functionTable(profiles.lib.libTop),
    '',
  );
  return out.join('\n');
}

function render({ disk, ram, counts, traces, problem, profiles }) {
  const byId = (run, id) => run.results.find((r) => r.id === id);
  const lib = byId(disk, 'lib');
  const floor = byId(disk, 'floor');
  const layout = byId(disk, 'layout');
  const cpus = os.cpus();
  const out = [];
  out.push(`### Handoff + claim + consume (Node ${process.version})`, '');
  out.push(
    `Run on ${new Date().toISOString().slice(0, 10)} at commit ${commitOf()}: ${os.type()} ${os.release()}, ${cpus.length} × ${cpus[0]?.model.trim()}, ` +
      `bench root under \`${os.tmpdir()}\`, ${mountText(disk)}. ${disk.rounds} samples of ${formatInt(params.ops)} cycles per ` +
      `contender, interleaved; files of ${SMALL_BYTES} bytes. Waited ${Math.round(disk.settler.waitedMs / 1000)} s for the ` +
      `file system's slow mode to pass; ${disk.settler.slowSamples} of ${disk.settler.samples} samples still started in it.` +
      (ram ? ` The same on tmpfs (\`${RAM_DIR}\`, no device): ${ram.rounds} samples.` : ''),
    '',
  );
  out.push('#### Method', '');
  out.push(
    `- One cycle: a small file already written (${SMALL_BYTES} bytes) is handed off, claimed and consumed. ` +
      'The file is made right before each cycle, untimed (the library: `await mgr.write(bytes)`, which records ' +
      'the size, as an upload would; the others: `fs.promises.writeFile(p, bytes, { flag: "wx" })`), so every ' +
      "cycle reuses the inodes the previous one freed, as a service's steady state does, and the clock runs over " +
      'the cycle alone. "incl. creating the file" is the same run clocked over everything.',
    "- A cycle's handoff and claim run in one run of JavaScript (nothing between them waits for the event loop), " +
      "and the library looks at the root's path and at the handoff directory once per run (docs/design.md): the " +
      'claim reuses the looks its handoff made. A claim in a run of its own (a worker) makes both: two `statx` more.',
    '- The floor is what the issue names: `fs.promises.rename()` of the file into another directory, ' +
      '`fs.promises.mkdir()` of a lock directory, `fs.promises.unlink()` of the file, `fs.promises.rmdir()` of the ' +
      "lock, on the same disk. Three references: the same four calls synchronous; the library's exact system " +
      'calls made with bare `fs` (the "mirror": the same calls, each made the same way, through the thread pool or ' +
      "synchronously, in the same order, as `strace` shows them below); and the library's on-disk layout done bare " +
      'with `fs.promises` (staging directory, entry directory, held name; 6 calls).',
    '- Contenders are interleaved round-robin (round r starts with contender r) after ' +
      `${params.warmup} untimed warm-up cycles each; before every sample the bench runs \`sync\`, settles 150 ms ` +
      "and waits out ext4's slow-create mode (bench/settle.mjs). Tables give medians, the spread, and ratios of medians.",
    '- Before every sample the bench also times 20 `rmdirSync()` of empty directories and 20 `unlinkSync()` of ' +
      'empty files. On ext4 mounted with `discard` and no journal, freeing a block discards it synchronously: an ' +
      "rmdir frees the directory's block and waits for the device, an unlink of an empty (or not yet written back) " +
      'file frees no block. Every lock or entry directory a cycle makes costs one such rmdir.',
    '- "µs / cycle (mean)" is the sample\'s time over its cycles; "one cycle, p50 / p90" are percentiles of ' +
      "the cycles' own times within a sample (medians over the samples): the device's occasional stalls of " +
      'several milliseconds move the mean, hardly the p50. "p50 vs floor" is the floor\'s p50 over the contender\'s.',
    '- Phases are timed with `process.hrtime` at each phase boundary. "busy" and "waiting" split each cycle by ' +
      '`performance.eventLoopUtilization()`: busy is the main thread running (JavaScript and synchronous system ' +
      "calls), waiting is the event loop idle in epoll while libuv's thread pool runs an `fs.promises` call.",
    `- System calls: \`strace -f\` of a child (\`bench/handoff-worker.mjs\`) doing ${params.traceOps} cycles after ` +
      '5 warm-up ones; each phase starts with a marker `access("/__handoff_bench__/<phase>")`, and every syscall of ' +
      'every thread is counted in the phase of the last marker (the creation of each file falls outside). The fs ' +
      'count uses the list of bench/syscalls.mjs; "all" adds the event loop (epoll, eventfd read/write) and the ' +
      "thread pool's futexes. Thread-pool requests are the `FSREQCALLBACK`/`FSREQPROMISE`/`FILEHANDLECLOSEREQ` " +
      `resources created per phase (async_hooks, ${params.countOps} cycles, a run of its own).`,
    `- CPU profile: the V8 sampling profiler (50 µs) over ${formatInt(params.profileOps)} cycles on files made ` +
      `beforehand, in a child, ${ramRoot ? 'on tmpfs (the software alone)' : 'on the disk'}; self time grouped by where the code comes from.`,
    '',
  );

  out.push('#### Targets', '');
  out.push(handoffTargets(disk, ram), '');
  out.push(`#### Cycles per second, ${os.tmpdir()} (${disk.mount.type})`, '');
  out.push(speedTable(disk), '');
  out.push(
    `Removal on this disk during the run (median of ${disk.rounds * IDS.length * 20}): \`rmdir\` of an empty directory ` +
      `${disk.rmdirUs.toFixed(0)} µs, \`unlink\` of an empty file ${disk.unlinkUs.toFixed(1)} µs.`,
    '',
  );
  if (ram) {
    out.push(`#### Cycles per second, tmpfs (${RAM_DIR})`, '');
    out.push(speedTable(ram), '');
    out.push(`Removal on tmpfs: \`rmdir\` ${ram.rmdirUs.toFixed(1)} µs, \`unlink\` ${ram.unlinkUs.toFixed(1)} µs.`, '');
  }

  out.push('#### System calls and thread-pool requests per cycle', '');
  if (problem) out.push(`Not counted: ${problem}.`, '');
  const syscallRows = [];
  for (const r of disk.results) {
    const perPhase = traces[r.id]?.perPhase;
    const all = perPhase ? merge(perPhase) : undefined;
    syscallRows.push([
      r.short,
      'all',
      fmt(sum(Object.values(counts[r.id]))),
      all ? fmt(fsCount(all)) : 'n/a',
      all ? fmt(allCount(all)) : 'n/a',
      all ? breakdown(all) : '',
    ]);
    if (r.state.phases.length > 1) {
      for (const p of r.state.phases) {
        const c = perPhase?.[p];
        syscallRows.push([
          '',
          `${p} (${r.phaseUs[p].toFixed(0)} µs)`,
          fmt(counts[r.id][p] ?? 0),
          c ? fmt(fsCount(c)) : 'n/a',
          c ? fmt(allCount(c)) : 'n/a',
          c ? breakdown(c) : '',
        ]);
      }
    }
  }
  out.push(
    table(['Contender', 'phase (median µs on disk)', 'thread-pool requests', 'fs syscalls', 'all syscalls', 'fs syscalls by name'], syscallRows, [
      'l', 'l', 'r', 'r', 'r', 'l',
    ]),
    '',
  );

  if (traces.lib) {
    out.push('#### One library cycle, every file-system call in order', '');
    out.push('```');
    let phase;
    for (const { phase: p, line } of traces.lib.last) {
      if (p !== phase) out.push(`# ${(phase = p)}`);
      out.push(shorten(line));
    }
    out.push('```', '');
  }

  out.push(profileTables(profiles));

  out.push('#### Where the time goes', '');
  const libAll = traces.lib ? merge(traces.lib.perPhase) : undefined;
  const floorAll = traces.floor ? merge(traces.floor.perPhase) : undefined;
  const pool = (id) => sum(Object.values(counts[id]));
  const mirror = byId(disk, 'mirror');
  // The split uses each contender's best sample (the lowest p50 of one cycle over the samples):
  // on a loaded machine the medians of separate contenders wander too far to be subtracted.
  const line = (run) => {
    const [l, f, m, b] = ['lib', 'floor', 'mirror', 'layout'].map((id) => byId(run, id).bestP50Us);
    const steps = [b - f, m - b, l - m];
    const figures = `library ${l.toFixed(0)} µs, floor ${f.toFixed(0)}, bare layout ${b.toFixed(0)}, bare mirror ${m.toFixed(0)}`;
    if (steps.some((x) => x < 0)) return `${figures} (too noisy in this run to split)`;
    return (
      `${figures}: the layout (staging and entry directories, held name) adds ${steps[0].toFixed(0)} µs to the floor, ` +
      `the library's extra calls (pinned descriptors, lstat) ${steps[1].toFixed(0)} µs, ` +
      `and its JavaScript ${steps[2].toFixed(0)} µs`
    );
  };
  out.push(
    `- On the disk the library runs at ${formatRatio(lib.speed.median / floor.speed.median)} of the floor in cycles/s ` +
      `(${formatRatio(floor.p50Us / lib.p50Us)} by the p50 of one cycle). Its cycle makes ` +
      `${fmt(pool('lib'))} thread-pool round trips against the floor's ${fmt(pool('floor'))}` +
      (libAll && floorAll
        ? `, ${fmt(fsCount(libAll))} file-system calls against ${fmt(fsCount(floorAll))}, and ${fmt(libAll.rmdir ?? 0)} ` +
          `rmdirs of a directory (each waiting for a discard, ${disk.rmdirUs.toFixed(0)} µs median here) against ${fmt(floorAll.rmdir ?? 0)}`
        : '') +
      '.',
    `- Split by the references (the best sample's p50 of one cycle), on the disk: ${line(disk)}.` +
      (ram ? ` On tmpfs: ${line(ram)}.` : ''),
    `- Per phase on the disk (median µs): ${lib.state.phases.map((p) => `${p} ${lib.phaseUs[p].toFixed(0)}`).join(', ')}; ` +
      `the mirror: ${mirror.state.phases.map((p) => `${p} ${mirror.phaseUs[p].toFixed(0)}`).join(', ')}. ` +
      'handoff() and claim() make only synchronous calls (a mkdir, renames, pinned opens of the staging and entry ' +
      'directories, lstats; the handoff directory is held open from the first call and looked at again by one lstat); ' +
      'consume() unlinks the small data file inline and makes one thread-pool call, the rmdir of the entry, which on this disk ' +
      'waits for a discard, in the thread pool, while the event loop runs on.',
    '',
  );
  return `${out.join('\n')}\n`;
}

await main();
