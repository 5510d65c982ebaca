// Leak check: a child process (run with --expose-gc) does 10,000 create/dispose cycles (file()
// and dir(), sync and async, in the manager, in a long-lived scope and in short-lived scopes,
// plus a short-lived manager every 50 cycles), 1,000 write/dispose cycles and 1,000
// handoff/claim/consume cycles. Every phase is sampled 50 times after a full GC; the first tenth
// of the samples is compared with the last tenth. A second child plants a leak of one small
// object per cycle, to prove that the tolerances catch a leak that small.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runToEnd, stderrTail } from '../helpers/child.js';

const FIXTURE = path.join(import.meta.dirname, 'fixtures/leak-child.mjs');
const ENTRY = path.join(import.meta.dirname, 'fixtures/leak-entry.ts');
const KiB = 1024;
const MiB = 1024 * KiB;

interface Sample {
  cycle: number;
  heapUsed: number;
  heapData: number;
  rss: number;
  external: number;
  arrayBuffers: number;
  fds: number;
  liveFiles: number;
  liveBytes: number;
  exitClosers: number;
  registeredForExit: number;
  heldLocks: number;
  lockDirs: number;
  handoffEntries: number;
  sessionFiles: number;
  jobScope: number;
  listeners: number;
}

interface Phase {
  phase: string;
  cycles: number;
  ms: number;
  samples: Sample[];
  objects: { first: number; last: number; grown: Array<[string, number]> };
}

interface Run {
  phases: Map<string, Phase>;
  done: { done: true; retained: number; exitClosers: number; heldLocks: number; left: string[] };
}

/**
 * How much may grow from the first tenth of a phase to its last tenth (medians of 5 samples
 * each, after a warm-up of a fifth of the phase). `objects` counts heap objects the program can
 * hold (a snapshot census): a leak of one object per cycle adds 9,000 (900) of them. `heapData`
 * is the heap without the JIT's code, which V8 keeps tiering for minutes.
 */
const LIMITS: Record<string, { heapUsed: number; heapData: number; rss: number; objects: number }> = {
  create: { heapUsed: 1 * MiB, heapData: 256 * KiB, rss: 16 * MiB, objects: 1000 },
  write: { heapUsed: 512 * KiB, heapData: 192 * KiB, rss: 16 * MiB, objects: 300 },
  handoff: { heapUsed: 512 * KiB, heapData: 192 * KiB, rss: 16 * MiB, objects: 300 },
};

// The registries: their value in every sample must be the value in the first one, and these.
const FLAT_AT: Partial<Record<keyof Sample, number>> = {
  liveFiles: 0,
  liveBytes: 0,
  handoffEntries: 0,
  sessionFiles: 0,
  jobScope: 0,
};
const FLAT: Array<keyof Sample> = ['fds', 'exitClosers', 'registeredForExit', 'heldLocks', 'lockDirs', 'listeners'];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Everything that did not stay flat in a phase, in words. */
function leaks(phase: Phase): string[] {
  const problems: string[] = [];
  const limits = LIMITS[phase.phase]!;
  const tenth = Math.max(1, Math.floor(phase.samples.length / 10));
  const first = phase.samples.slice(0, tenth);
  const last = phase.samples.slice(-tenth);
  for (const key of ['heapUsed', 'heapData', 'rss'] as const) {
    const growth = median(last.map((s) => s[key])) - median(first.map((s) => s[key]));
    if (growth > limits[key]) problems.push(`${phase.phase}: ${key} grew by ${(growth / KiB).toFixed(0)} KiB (limit ${limits[key] / KiB} KiB)`);
  }
  const objects = phase.objects.last - phase.objects.first;
  if (objects > limits.objects) {
    problems.push(`${phase.phase}: ${objects} more heap objects (limit ${limits.objects}): ${JSON.stringify(phase.objects.grown)}`);
  }
  for (const sample of phase.samples) {
    for (const [key, expected] of Object.entries(FLAT_AT) as Array<[keyof Sample, number]>) {
      if (sample[key] !== expected) problems.push(`${phase.phase}: ${key} is ${sample[key]} after ${sample.cycle} cycles (expected ${expected})`);
    }
    for (const key of FLAT) {
      if (sample[key] !== phase.samples[0]![key]) {
        problems.push(`${phase.phase}: ${key} went from ${phase.samples[0]![key]} to ${sample[key]} after ${sample.cycle} cycles`);
      }
    }
  }
  const first0 = phase.samples[0]!;
  if (first0.exitClosers !== first0.registeredForExit) problems.push(`${phase.phase}: two views of the exit registry disagree`);
  if (first0.heldLocks !== first0.lockDirs) problems.push(`${phase.phase}: ${first0.heldLocks} locks held but ${first0.lockDirs} lock directories on disk`);
  return [...new Set(problems)];
}

/** One line per phase: what grew between the first and the last tenth (LEAK_REPORT=1 prints it). */
function summary(phase: Phase): string {
  const tenth = Math.max(1, Math.floor(phase.samples.length / 10));
  const growth = (key: 'heapUsed' | 'heapData' | 'rss') =>
    `${key} ${((median(phase.samples.slice(-tenth).map((s) => s[key])) - median(phase.samples.slice(0, tenth).map((s) => s[key]))) / KiB).toFixed(0)} KiB`;
  const last = phase.samples.at(-1)!;
  return (
    `${phase.phase}: ${phase.cycles} cycles in ${phase.ms} ms; ${growth('heapUsed')}, ${growth('heapData')}, ${growth('rss')}, ` +
    `objects ${phase.objects.last - phase.objects.first}, fds ${phase.samples[0]!.fds}->${last.fds}, ` +
    `locks ${last.heldLocks}, lock dirs ${last.lockDirs}, exit closers ${last.exitClosers}, job scope ${last.jobScope}`
  );
}

function leakRoot(): string {
  // tmpfs when there is one: the cycles measure the library, not ext4's inode allocator.
  for (const base of ['/dev/shm', os.tmpdir()]) {
    try {
      return fs.mkdtempSync(path.join(base, 'tfm-leak-'));
    } catch {
      // next
    }
  }
  throw new Error('no place for a scratch directory');
}

// A run takes about 15 s of CPU; on a machine loaded at twice its cores a child gets a third of a
// core or less. The deadline is the test's, well below vitest's, so that a run cut short says so.
const CHILD_TIMEOUT_MS = 240_000;
const TEST_TIMEOUT_MS = CHILD_TIMEOUT_MS + 20_000;

async function runChild(bundle: string, root: string, flags: string[]): Promise<Run> {
  const what = `the leak child (${flags.join(' ') || 'clean'})`;
  const { stdout, stderr } = await runToEnd(process.execPath, ['--expose-gc', FIXTURE, bundle, root, ...flags], { what, timeoutMs: CHILD_TIMEOUT_MS });
  const phases = new Map<string, Phase>();
  let done: Run['done'] | undefined;
  for (const line of stdout.trim().split('\n')) {
    const record = JSON.parse(line) as { phase?: string; sample?: Sample; cycles?: number; done?: true };
    if (record.sample) {
      const phase = phases.get(record.phase!) ?? ({ phase: record.phase!, samples: [] } as unknown as Phase);
      phase.samples.push(record.sample);
      phases.set(record.phase!, phase);
    } else if (record.cycles !== undefined) {
      Object.assign(phases.get(record.phase!)!, record);
    } else if (record.done) {
      done = record as Run['done'];
    }
  }
  if (!done) throw new Error(`${what} exited 0 without its last line; ${stderrTail(stderr)}`);
  return { phases, done };
}

describe('leaks: 10,000 create/dispose, 1,000 write/dispose and 1,000 handoff/claim/consume cycles', () => {
  const dirs: string[] = [];
  let clean: Promise<Run>;
  let planted: Promise<Run>;

  beforeAll(async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-leak-bundle-'));
    dirs.push(out);
    const bundle = path.join(out, 'lib.mjs');
    await build({
      entryPoints: [ENTRY],
      outfile: bundle,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'error',
      external: ['supports-color'],
      // The CommonJS dependencies (proper-lockfile, ...) call require() on built-ins.
      banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    });
    const rootA = leakRoot();
    const rootB = leakRoot();
    dirs.push(rootA, rootB);
    // One child after the other: other test files run beside this one.
    clean = runChild(bundle, path.join(rootA, 'root'), []);
    planted = clean.then(
      () => runChild(bundle, path.join(rootB, 'root'), ['--plant-leak', '--only', 'create']),
      () => runChild(bundle, path.join(rootB, 'root'), ['--plant-leak', '--only', 'create']),
    );
    clean.catch(() => {});
    planted.catch(() => {});
  });

  afterAll(async () => {
    await Promise.allSettled([clean, planted]);
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('leaves heap, RSS, open descriptors and every registry flat, and nothing on disk', { timeout: TEST_TIMEOUT_MS }, async () => {
    const run = await clean;
    expect([...run.phases.keys()]).toEqual(['create', 'write', 'handoff']);
    if (process.env.LEAK_REPORT) console.log([...run.phases.values()].map(summary).join('\n'));
    const problems = [...run.phases.values()].flatMap(leaks);
    expect(problems).toEqual([]);
    expect(run.phases.get('create')!.samples).toHaveLength(50);
    // After close: no session, no lock, no handoff entry, and one exit task left: the process's
    // removal of its ended threads' sessions, registered once for good.
    expect(run.done).toMatchObject({ exitClosers: 1, heldLocks: 0, left: ['.tempfile-manager', 'handoff'] });
  });

  it('catches a leak of one small object per cycle (the positive control)', { timeout: TEST_TIMEOUT_MS }, async () => {
    const run = await planted;
    expect(run.done.retained).toBeGreaterThanOrEqual(10_000);
    if (process.env.LEAK_REPORT) console.log(`with a planted leak: ${summary(run.phases.get('create')!)}`);
    const problems = leaks(run.phases.get('create')!);
    const census = problems.map((p) => /^create: (\d+) more heap objects/.exec(p)).find(Boolean);
    expect(Number(census?.[1])).toBeGreaterThanOrEqual(9_000);
    expect(problems.some((p) => p.startsWith('create: heapData grew'))).toBe(true);
  });
});
