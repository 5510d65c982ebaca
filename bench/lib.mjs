// Sampling, statistics and Markdown helpers shared by the benchmarks.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';

/**
 * Where bench/gate.mjs keeps the base build it compared against (its dist/ and base.json, naming
 * its commit), for bench/gate-stores.mjs: gitignored, replaced by each run of the gate.
 */
export const KEPT_BASE = fileURLToPath(new URL('./.gate-base/', import.meta.url));

/** Runs `n` create+dispose operations of a contender; returns the seconds taken. */
export async function runOps(contender, n) {
  return (await timeOps(contender, n)).seconds;
}

/**
 * Runs `n` operations of a contender; returns the wall seconds taken and the process's CPU time
 * (user + system) per operation in microseconds. On a shared machine the CPU time is the steadier
 * figure: time spent waiting for a core is not in it (a pool thread's CPU is, for async contenders).
 */
export async function timeOps(contender, n) {
  const { op } = contender;
  const cpuBefore = process.cpuUsage();
  const start = process.hrtime.bigint();
  if (contender.async) {
    for (let i = 0; i < n; i++) await op();
  } else {
    for (let i = 0; i < n; i++) op();
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  return { seconds, cpuMicros: (cpu.user + cpu.system) / n };
}

/**
 * Takes `samples` ops/s samples of every available contender, round-robin: round r starts at
 * contender r, so machine noise and position effects hit every contender alike. One untimed
 * warm-up round first, for the JIT. `settler.ready()` runs before every sample.
 */
export async function sampleRoundRobin(contenders, { samples, ops, warmup, settler }) {
  const live = contenders.filter((c) => !c.unavailable);
  for (const c of live) await runOps(c, warmup);
  const results = new Map(live.map((c) => [c, []]));
  const cpu = new Map(live.map((c) => [c, []]));
  for (let round = 0; round < samples; round++) {
    for (let k = 0; k < live.length; k++) {
      const c = live[(round + k) % live.length];
      await settler.ready();
      const { seconds, cpuMicros } = await timeOps(c, ops);
      results.get(c).push(ops / seconds);
      cpu.get(c).push(cpuMicros);
    }
  }
  return contenders.map((c) => ({
    ...c,
    samples: results.get(c) ?? [],
    median: median(results.get(c) ?? []),
    cpuMicros: median(cpu.get(c) ?? []),
  }));
}

export function median(values) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The marker a manager leaves in its root on purpose (src/base/layout.ts): never an upload or a file left behind. */
export const ROOT_MARKER = '.tempfile-manager';

export const formatInt = (n) => Math.round(n).toLocaleString('en-US');
export const formatRatio = (r) => `${r.toFixed(2)}x`;

/** A Markdown table; `align` holds 'l' or 'r' per column. Pipes in cells are escaped. */
export function table(headers, rows, align = headers.map(() => 'l')) {
  const line = (cells) => `| ${cells.map((c) => String(c).replaceAll('|', '\\|')).join(' | ')} |`;
  const rule = align.map((a) => (a === 'r' ? '---:' : '---'));
  return [line(headers), line(rule), ...rows.map(line)].join('\n');
}

/**
 * The ops/s table of one suite: median, spread, and ratio to the suite's baseline; then the
 * median CPU time per operation and its ratio (baseline's CPU time over the contender's, so that
 * above 1 is faster), where the samples measured it.
 */
export function speedTable(results) {
  const base = results.find((r) => r.baseline);
  const withCpu = Number.isFinite(base.cpuMicros);
  const rows = results.map((r) => {
    if (r.unavailable) return [r.name, r.unavailable, '', '', ...(withCpu ? ['', ''] : [])];
    const row = [
      r.name,
      formatInt(r.median),
      `${formatInt(Math.min(...r.samples))} – ${formatInt(Math.max(...r.samples))}`,
      formatRatio(r.median / base.median),
    ];
    if (withCpu) row.push(r.cpuMicros.toFixed(2), formatRatio(base.cpuMicros / r.cpuMicros));
    return row;
  });
  const headers = ['Contender', 'ops/s (median)', 'min – max', `vs ${base.short}`];
  if (withCpu) headers.push('CPU µs/op (median)', `vs ${base.short}, by CPU`);
  return table(headers, rows, headers.map((_, i) => (i === 0 ? 'l' : 'r')));
}

/**
 * Takes samples of every available contender, interleaved like {@link sampleRoundRobin}: round
 * r starts at contender r. A contender may take fewer rounds (`c.rounds`). `before()` runs before
 * every sample; `sample(c)` returns one sample (any value). Returns each contender with `samples`.
 */
export async function sampleInterleaved(contenders, { rounds, before, sample }) {
  const live = contenders.filter((c) => !c.unavailable);
  const results = new Map(live.map((c) => [c, []]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < live.length; k++) {
      const c = live[(round + k) % live.length];
      if (round >= (c.rounds ?? rounds)) continue;
      await before?.();
      results.get(c).push(await sample(c));
    }
  }
  return contenders.map((c) => ({ ...c, samples: results.get(c) ?? [] }));
}

/** Median, min and max of one field of the samples. */
export function stats(samples, key) {
  const values = samples.map((s) => (typeof key === 'function' ? key(s) : s[key]));
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/**
 * Runs a bench script in a child Node process (with `nodeArgs` before it) and resolves the JSON
 * of the last line it prints; rejects with its stderr when it fails.
 */
export function runChild(script, args, nodeArgs = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`${script} ${args.join(' ')} failed (${code ?? signal}): ${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').at(-1)));
    });
  });
}

/**
 * Starts `idle-watcher.mjs` beside a sample; `stop()` resolves its longest event-loop stall (ms)
 * since it started: what the machine alone did to a loop doing nothing.
 */
export async function watchIdleLoop() {
  const script = new URL('./idle-watcher.mjs', import.meta.url);
  const child = spawn(process.execPath, [fileURLToPath(script)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.stdout.on('data', () => stdout.includes('ready') && resolve());
  });
  return {
    stop: () =>
      new Promise((resolve) => {
        child.on('close', () => resolve(JSON.parse(stdout.trim().split('\n').at(-1)).stallMs));
        child.kill('SIGUSR2');
      }),
  };
}

/**
 * The Markdown table of an issue's targets: rows of [target, measured, met], where met is a
 * boolean (yes / **no**) or a word of its own ("no (within noise)").
 */
export function targetsTable(rows) {
  const met = (ok) => (typeof ok === 'string' ? ok : ok ? 'yes' : '**no**');
  return table(['Target', 'Measured', 'Met'], rows.map(([target, measured, ok]) => [target, measured, met(ok)]), ['l', 'r', 'l']);
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const formatMiB = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;
/** A size in bytes as `64 KiB`, `1 MiB`, `4 GiB`, `79.5 GiB`. */
export function formatSize(bytes) {
  const [unit, size] = bytes >= GiB ? ['GiB', GiB] : bytes >= MiB ? ['MiB', MiB] : ['KiB', 1024];
  return `${Number((bytes / size).toFixed(1))} ${unit}`;
}

/**
 * Writes and deletes `total` bytes (at most 2 GiB) at `file` first: the VM's balloon takes back
 * memory left idle, and page cache built on it writes several times slower. Priming hands the
 * sample memory that is backed again.
 */
export function primePageCache(file, total) {
  const block = Buffer.alloc(1024 * 1024, 0x5a);
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    for (let left = Math.min(total, 2 ** 31); left > 0; left -= block.length) fs.writeSync(fd, block);
  } finally {
    fs.closeSync(fd);
    fs.unlinkSync(file);
  }
}

/**
 * Times the phases of a cycle: `mark(phase)` starts a phase (ending the one before), `mark('end')`
 * ends the last; `phaseNs` adds up each phase's nanoseconds.
 */
export function phaseClock(phases) {
  const phaseNs = Object.fromEntries(phases.map((p) => [p, 0n]));
  let current;
  let last = 0n;
  const mark = (phase) => {
    const now = process.hrtime.bigint();
    if (current !== undefined) phaseNs[current] += now - last;
    current = phase === 'end' ? undefined : phase;
    last = now;
  };
  return { phaseNs, mark };
}

/**
 * `<host>_<pid>[.<thread>]_<start>` of a dead owner on `hostId`, read from a live session's name
 * (`session_<host>_<pid>.<thread>_<boot>.<pidns>.<ticks>_<created>_<random>`, src/base/layout.ts):
 * this machine's boot and PID namespace, pid and thread 4194303, which no process has, so the
 * sweep judges it dead at first look, with no wait for a heartbeat to go stale. Without /proc a
 * session has no thread, and an owner of the sweeper's host is judged by its pid.
 */
export function deadOwnerOf(liveSession, hostId) {
  const fields = liveSession.slice('session_'.length).split('_');
  const [pid, start] = fields.slice(-4, -2);
  if (!pid.includes('.')) return `${hostId}_4194303_${start}`;
  return `${hostId}_4194303.4194303_${start.slice(0, start.lastIndexOf('.'))}.1`;
}

/**
 * A dead owner of this machine in the session format of the build `TempFileManager` comes from:
 * a probe manager under `place` opens a session, whose name gives the format ({@link deadOwnerOf}).
 */
export function deadOwnerFor(TempFileManager, place, hostId) {
  const probe = path.join(place, 'owner-probe');
  const mgr = new TempFileManager({ root: probe, sweepOnStart: false, exitHook: false });
  mgr.file().removeSync();
  const live = fs.readdirSync(probe).find((name) => name.startsWith('session_') && !name.endsWith('.lock'));
  mgr.closeSync();
  fs.rmSync(probe, { recursive: true, force: true });
  return deadOwnerOf(live, hostId);
}

/**
 * Plants under `root` (a marked root) `sessions` orphaned sessions of `owner`, an hour old, each of
 * `dirs` directories of `files` files holding `data`; `index` keeps their names apart from another
 * planting's.
 */
export function plantDeadSessions(root, { owner, sessions, dirs, files, data, index }) {
  const hourAgo = new Date(Date.now() - 3_600_000);
  for (let s = 0; s < sessions; s++) {
    const random = (index * sessions + s).toString(16).padStart(16, '0');
    const session = `${root}/session_${owner}_${hourAgo.getTime().toString(36)}_${random}`;
    fs.mkdirSync(session, { mode: 0o700 });
    fs.mkdirSync(`${session}.lock`);
    fs.utimesSync(`${session}.lock`, hourAgo, hourAgo);
    for (let d = 0; d < dirs; d++) {
      const sub = `${session}/d${d}`;
      fs.mkdirSync(sub, { mode: 0o700 });
      for (let f = 0; f < files; f++) fs.writeFileSync(`${sub}/f${f}`, data, { mode: 0o600 });
    }
  }
}

/** A Transform that hashes what passes through it with SHA-256; `digest()` once it has ended. */
export function hashing() {
  const hash = createHash('sha256');
  const through = new Transform({
    transform(chunk, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return { through, digest: () => hash.digest('hex') };
}

/**
 * `ops` cycles of a contender, each on an item `prepare()` makes untimed; the mean wall and CPU
 * milliseconds (this process's CPU time) per cycle.
 */
export async function timeCycles(ops, prepare, cycle) {
  let ms = 0;
  let cpu = 0;
  for (let i = 0; i < ops; i++) {
    const item = await prepare();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await cycle(item);
    ms += performance.now() - started;
    const used = process.cpuUsage(cpuBefore);
    cpu += (used.user + used.system) / 1000;
  }
  return { ms: ms / ops, cpu: cpu / ops };
}

/** The share of a floor a build must reach where its target is past that floor (the floor rule). */
export const FLOOR_RULE = 0.9;

/**
 * Judges a floor target: this build at least `target` times its floor's speed (`ratio`, the floor's
 * time over this build's). Where the stricter floor (`stricter`: the same floor doing what the
 * operation promises, `ratio` to this build and `vsFloor` to the plain floor) is itself under
 * `target` of the plain floor, the target is past what any build that keeps the promise reaches,
 * and {@link FLOOR_RULE} of the stricter floor stands for it (`pastBy` says how far). Under 1,
 * `margin` fails.
 */
export function judgeFloorTarget(target, ratio, stricter) {
  if (ratio >= target || stricter === undefined || stricter.vsFloor >= target) return { stricter: false, ratio, bar: target, margin: ratio / target };
  return { stricter: true, ratio: stricter.ratio, bar: FLOOR_RULE, margin: stricter.ratio / FLOOR_RULE, pastBy: stricter.vsFloor };
}

/**
 * The order of the contenders in round `round` of `n`: a balanced Latin square (Williams'), so that
 * over `n` rounds (2n where n is odd) each contender runs right after each other one equally often.
 * Work left over from one sample (a store's deletes, the kernel freeing a swept tree) falls on the
 * next: in a fixed order (round r starting at contender r) the same contender would always pay for
 * the same other.
 */
export function balancedOrder(n, round) {
  const first = [0];
  for (let lo = 1, hi = n - 1; first.length < n; ) first.push(first.length % 2 ? lo++ : hi--);
  const row = first.map((x) => (x + round) % n);
  return n % 2 === 1 && Math.floor(round / n) % 2 === 1 ? row.reverse() : row;
}

/**
 * Resident memory at rest (MiB) of a process that runs `code` as a service starts (`node app.mjs`,
 * a module file), waits, collects garbage and reads its VmRSS. Measure bare Node with an empty
 * `code`: a module file costs Node 1.5 MiB over `node -e ''`, which is not the code's.
 */
export function rssAtRest(code) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tempfile-manager-bench-rss-'));
  const app = path.join(dir, 'app.mjs');
  const src = `${code}\nawait new Promise((r) => setTimeout(r, 500)); globalThis.gc(); await new Promise((r) => setTimeout(r, 200));\nconst s = process.getBuiltinModule('node:fs').readFileSync('/proc/self/status', 'utf8'); console.log(/VmRSS:\\s+(\\d+)/.exec(s)[1]); process.exit(0);`;
  try {
    fs.writeFileSync(app, src);
    const out = spawnSync(process.execPath, ['--expose-gc', app], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(out.stderr);
    return Number(out.stdout.trim()) / 1024;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
