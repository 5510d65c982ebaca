// Fault injection, call by call: each operation is run once clean through a FaultPlanFs that
// records every fs call it makes (sync, callback, promise, FileHandle), then once per recorded
// call and per errno with exactly that call failing. After every run the invariants are checked
// with a clean view of the disk: a typed error (or a legitimate success), nothing left behind,
// nothing lost, and the manager (or the entry) still usable once the fault is gone.
import nodeFs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Volume } from 'memfs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlreadyClaimedError, parseTicket, TempFileError, TempFileManager, type ClaimedFile, type HandoffTicket, type TempFile } from '../../src/index.js';
import { FileSystemError } from '../../src/errors.js';
import { layFs, realFs, type FsLayer } from '../helpers/fs-layer.js';
import { memoryFs } from '../helpers/memfs.js';
import { dataName, entryName, formatOwnerToken, ROOT_MARKER, sessionName, stagingName } from '../../src/base/layout.js';
import { processIdentity, hostId as defaultHostId } from '../../src/owner/process-identity.js';
import { deadSessionName } from '../helpers/roots.js';
import { beatThread } from '../../src/owner/beat-thread.js';
import { HEARTBEAT_MS } from '../../src/owner/liveness.js';
import { ERRNOS, FaultPlanFs, heldLocks, lastingFds, openFds, type Errno, type FsCall } from '../helpers/fault-plan.js';
import { boundEntryName } from '../../src/handoff/binding.js';

// ---------------------------------------------------------------------------------------------
// Disks: the real file system (under os.tmpdir()) and memfs.

type RawFs = typeof nodeFs;

interface Disk {
  readonly kind: 'real' | 'memfs';
  /** The unwrapped file system, for setup and checks. */
  readonly raw: RawFs;
  newParent(): string;
  dispose(parent: string): void;
}

const realDisk: Disk = {
  kind: 'real',
  raw: nodeFs,
  newParent: () => nodeFs.mkdtempSync(path.join(os.tmpdir(), 'tfm-fault-')),
  dispose: (parent) => nodeFs.rmSync(parent, { recursive: true, force: true }),
};

function memDisk(): Disk {
  const vol = new Volume();
  const mem = memoryFs(vol) as unknown as RawFs;
  let n = 0;
  return {
    kind: 'memfs',
    raw: mem,
    newParent: () => {
      const dir = `/parent-${++n}`;
      mem.mkdirSync(dir, { recursive: true, mode: 0o700 });
      return dir;
    },
    dispose: (parent) => mem.rmSync(parent, { recursive: true, force: true }),
  };
}

const DISKS: Array<[string, () => Disk]> = [
  ['the real fs', () => realDisk],
  ['memfs', memDisk],
];

// ---------------------------------------------------------------------------------------------
// What a failure must look like.

const CODE_OF: Record<Errno, string> = {
  EIO: 'ERR_TEMPFILE_IO',
  ENOSPC: 'ERR_TEMPFILE_NO_SPACE',
  EMFILE: 'ERR_TEMPFILE_IO',
  EACCES: 'ERR_TEMPFILE_IO',
  ENOENT: 'ERR_TEMPFILE_IO',
};

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.constructor.name}(${(err as { code?: string }).code ?? ''}): ${err.message.slice(0, 140)}`;
  return String(err);
}

/** Undefined when `err` is the typed error an injected `errno` must give; else what is wrong. */
function typedProblem(err: unknown, errno: Errno, alsoAllowed: readonly string[] = []): string | undefined {
  if (!(err instanceof TempFileError)) return `untyped error ${describeError(err)}`;
  if (alsoAllowed.includes(err.code)) return undefined;
  if (err.code !== CODE_OF[errno]) return `code ${err.code}, expected ${CODE_OF[errno]} (${err.message.slice(0, 100)})`;
  if (err instanceof FileSystemError && err.syscallCode !== errno) return `syscallCode ${err.syscallCode}, expected ${errno}`;
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const HOUR = 3_600_000;

function heldLocksUnder(root: string): string[] {
  return heldLocks().filter((file) => file === root || file.startsWith(`${root}/`));
}

function list(raw: RawFs, dir: string): string[] {
  try {
    return (raw.readdirSync(dir) as string[]).sort();
  } catch {
    return [];
  }
}

function exists(raw: RawFs, p: string): boolean {
  try {
    raw.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function read(raw: RawFs, p: string): string | undefined {
  try {
    return raw.readFileSync(p, 'utf8') as string;
  } catch {
    return undefined;
  }
}

/** Sets a path's mtime an hour back: a lock nobody refreshed. */
function age(raw: RawFs, p: string, ms = HOUR): void {
  const then = new Date(Date.now() - ms);
  raw.utimesSync(p, then, then);
}

/** The layers laid over each parent of a run, lifted when the parent is disposed of. */
const layers = new Map<string, () => void>();

/**
 * A new parent directory on `disk`, the plan's layer (over the real fs or memfs) laid over it:
 * every manager of the run reaches the disk through it, recording or not.
 */
function planParent(disk: Disk, plan: FaultPlanFs): string {
  const parent = disk.newParent();
  layers.set(parent, layFs(plan.fs, [parent]));
  return parent;
}

function dispose(disk: Disk, parent: string): void {
  layers.get(parent)?.();
  layers.delete(parent);
  disk.dispose(parent);
}

afterAll(() => {
  for (const lift of layers.values()) lift();
});

/** A manager on the run's disk: the plan's layer, passing every call through while it does not record. */
function cleanManager(_disk: Disk, root: string, options: Record<string, unknown> = {}): TempFileManager {
  return new TempFileManager({ root, sweepOnStart: false, exitHook: false, ...options });
}

// ---------------------------------------------------------------------------------------------
// The runner.

interface Outcome {
  readonly error?: unknown;
  /** The call that was failed (undefined in the clean run). */
  readonly injected?: FsCall;
  readonly fdsBefore: number;
  readonly fdsAfter: number;
}

interface Scenario<S> {
  readonly name: string;
  /** Codes that are also a correct answer to an injected errno here (ENOENT read as "gone"). */
  readonly alsoAllowed?: Partial<Record<Errno, readonly string[]>>;
  setup(disk: Disk, plan: FaultPlanFs): Promise<S>;
  normalize(state: S): (p: string) => string;
  act(state: S): Promise<void>;
  /** Checks the invariants with the fault cleared; pushes what is wrong. */
  verify(state: S, outcome: Outcome, errno: Errno | undefined, problems: string[]): Promise<void>;
  teardown(state: S): Promise<void>;
  /** Descriptors the act rightly leaves open: a session it opened holds its root and its directory. */
  heldFds?(state: S): number;
}

async function runOnce<S>(
  scenario: Scenario<S>,
  disk: Disk,
  target?: { call: FsCall; errno: Errno },
): Promise<{ calls: FsCall[]; injected: FsCall | undefined; problems: string[] }> {
  const plan = new FaultPlanFs(disk.kind === 'real' ? realFs : (disk.raw as unknown as FsLayer));
  const state = await scenario.setup(disk, plan);
  // The act starts a run of JavaScript of its own, as an act after any I/O does: a check the setup
  // made in the same run holds for that run and is not made again (src/base/run-flag.ts), so its
  // calls would depend on whether the setup's last step went through the thread pool.
  await new Promise((resolve) => setImmediate(resolve));
  const problems: string[] = [];
  let outcome: Outcome;
  let ran = false;
  try {
    const fdsBefore = disk.kind === 'real' ? openFds() : 0;
    plan.record({
      normalize: scenario.normalize(state),
      target: target && { key: target.call.key, occurrence: target.call.occurrence, code: target.errno },
    });
    let error: unknown;
    try {
      await scenario.act(state);
    } catch (err) {
      error = err;
    }
    const calls = plan.stop();
    await sleep(1);
    outcome = { error, injected: calls.find((c) => c.injected), fdsBefore, fdsAfter: 0 };
    if (error !== undefined) {
      if (!target) problems.push(`the clean run failed: ${describeError(error)}`);
      else {
        const wrong = typedProblem(error, target.errno, scenario.alsoAllowed?.[target.errno]);
        if (wrong) problems.push(wrong);
      }
    }
    // Counted after verify(), which retries a failed consume or release: a claim still held after
    // a failed step rightly keeps its entry directory open until then.
    await scenario.verify(state, outcome, target?.errno, problems);
    const held = scenario.heldFds?.(state) ?? 0;
    // Counted again only when one count is over: lastingFds() waits out the beat thread's opens.
    const fdsAfter = disk.kind !== 'real' ? 0 : openFds() > fdsBefore + held ? await lastingFds() : fdsBefore;
    if (fdsAfter > fdsBefore + held) problems.push(`${fdsAfter - fdsBefore - held} file descriptor(s) leaked`);
    ran = true;
    return { calls, injected: outcome.injected, problems };
  } finally {
    try {
      await scenario.teardown(state);
    } catch (err) {
      // A problem of this run (named with the call that failed), not the end of the whole matrix.
      if (!ran) throw err;
      problems.push(`teardown: ${describeError(err)}`);
    }
  }
}

// A session lock's first beat, made at once when the session opens: a failed beat is a warning,
// never the act's failure (docs/crash-recovery.md). (The timer's later beats are never
// recorded: FaultPlanFs leaves them alone.)
const FIRST_SESSION_BEAT = /^(?:open|fstat|futimes|lutimes|close)\(<own-session>\.lock\)$/;

function withoutFirstSessionBeat(calls: FsCall[]): FsCall[] {
  return calls.filter((call) => !FIRST_SESSION_BEAT.test(call.key));
}

function matrix<S>(scenario: Scenario<S>): void {
  for (const [diskName, makeDisk] of DISKS) {
    describe(`${scenario.name}, on ${diskName}`, () => {
      let disk: Disk;
      let baseline: FsCall[] = [];
      beforeAll(async () => {
        disk = makeDisk();
        const clean = await runOnce(scenario, disk);
        expect(clean.problems, 'the clean run').toEqual([]);
        baseline = withoutFirstSessionBeat(clean.calls);
        if (process.env.FAULT_PLAN_DEBUG) console.log(`${scenario.name} on ${diskName}:\n${baseline.map((c) => `  ${c.seq} ${c.key}#${c.occurrence}`).join('\n')}`);
      });

      it('makes fs calls that the plan sees (the harness itself)', () => {
        expect(baseline.length).toBeGreaterThan(2);
      });

      it.each(ERRNOS)('fails each of its fs calls in turn with %s: typed, nothing left behind, nothing lost', async (errno) => {
        const problems: string[] = [];
        const missed: string[] = [];
        for (const call of baseline) {
          const run = await runOnce(scenario, disk, { call, errno });
          if (!run.injected) missed.push(`${call.key}#${call.occurrence}`);
          for (const p of run.problems) problems.push(`${errno} at call ${call.seq} ${call.key}#${call.occurrence}: ${p}`);
        }
        // The assertion's diff truncates long lists: the debug knob prints every problem, one a line.
        if (process.env.FAULT_PLAN_DEBUG && problems.length + missed.length > 0) console.log(`${scenario.name} on ${diskName}, ${errno}:\n${[...problems, ...missed.map((m) => `missed ${m}`)].join('\n')}`);
        // `missed`: calls of the clean run that no faulty run made (the plan would be blind there).
        expect({ problems, missed }).toEqual({ problems: [], missed: [] });
      });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Path normalisation: what differs from run to run (roots, random names) becomes a label.

function normalizer(pairs: Array<[string, string]>): (p: string) => string {
  return (p) => {
    let out = p;
    for (const [from, to] of pairs) out = out.split(from).join(to);
    return (
      out
        .replace(/held_[A-Za-z0-9.-]+_\d+(?:\.\d+)?_[0-9a-z.]+_[0-9a-z]+_[0-9a-f]{16}/g, 'held_<token>')
        // A thread's live signal, and the pending name it is made under.
        .replace(/live_[0-9a-f]{16}(\.[0-9a-f]{8})?/g, (_m, pending: string | undefined) => (pending ? 'live_<digest>.<pending>' : 'live_<digest>'))
        // An entry's expiry is in its name; planted ids (one digit 32 times) stay, drawn ones go.
        .replace(/([0-9a-f]{32})_[0-9a-z]{1,11}(?=\/|$)/g, '$1_<expiry>')
        .replace(/[0-9a-f]{32}/g, (hex) => (/^(.)\1{31}$/.test(hex) ? hex : '<hex>'))
    );
  };
}

// ---------------------------------------------------------------------------------------------
// write()

interface WriteState {
  disk: Disk;
  parent: string;
  root: string;
  mgr: TempFileManager;
  file?: TempFile;
}

const CHUNKS = ['alpha-', 'beta-', 'gamma'];
const WRITTEN = CHUNKS.join('');

async function* chunks(): AsyncGenerator<string> {
  for (const c of CHUNKS) yield c;
}

function writeScenario(sessionOpen: boolean): Scenario<WriteState> {
  return {
    name: `mgr.write(source) ${sessionOpen ? 'in an open session' : 'as the first use of a manager (opens the session)'}`,
    async setup(disk, plan) {
      const parent = planParent(disk, plan);
      const root = path.join(parent, 'root');
      // No minFreeBytes: a check of the free space in the middle of the copy would race the
      // first writev, and the number of writev calls (the plan) would change from run to run.
      const mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
      if (sessionOpen) mgr.file().removeSync();
      return { disk, parent, root, mgr };
    },
    normalize: (s) => normalizer([[s.mgr.sessionPath, '<session>'], [s.root, '<root>']]),
    async act(s) {
      s.file = await s.mgr.write(chunks(), { suffix: '.bin', hash: 'sha256' });
    },
    // The session opened by the write holds its root and its own directory open until close().
    heldFds: (s) => (sessionOpen || !nodeFs.existsSync(s.mgr.sessionPath) ? 0 : 2),
    async verify(s, outcome, _errno, problems) {
      const raw = s.disk.raw;
      const sessionName = path.basename(s.mgr.sessionPath);
      const stats = s.mgr.stats();
      if (outcome.error === undefined) {
        if (read(raw, s.file!.path) !== WRITTEN) problems.push('succeeded, but the file does not hold every byte');
        if (s.file!.size !== WRITTEN.length) problems.push(`succeeded with size ${s.file!.size}`);
        if (stats.liveFiles !== 1 || stats.liveBytes !== WRITTEN.length) problems.push(`succeeded, stats ${JSON.stringify(stats)}`);
        await s.file!.remove();
      } else {
        if (stats.liveFiles !== 0 || stats.liveBytes !== 0) problems.push(`stats after the failure: ${JSON.stringify(stats)}`);
        const leftovers = list(raw, s.mgr.sessionPath);
        if (leftovers.length > 0) problems.push(`left in the session: ${leftovers.join(', ')}`);
      }
      const sessionOnDisk = exists(raw, s.mgr.sessionPath);
      // The thread's live signal stays while its manager is open.
      const unexpected = list(raw, s.root).filter((n) => n !== ROOT_MARKER && !/^live_[0-9a-f]{16}$/.test(n) && !(sessionOnDisk && (n === sessionName || n === `${sessionName}.lock`)));
      if (unexpected.length > 0) problems.push(`unexpected under the root: ${unexpected.join(', ')}`);
      if (exists(raw, `${s.mgr.sessionPath}.lock`) !== sessionOnDisk) problems.push('the session lock and the session directory disagree');
      if (heldLocksUnder(s.root).length !== (sessionOnDisk ? 1 : 0)) problems.push(`proper-lockfile holds ${heldLocksUnder(s.root).length} lock(s)`);
      // The manager keeps working.
      try {
        const again = await s.mgr.write('again', { suffix: '.bin' });
        if (read(raw, again.path) !== 'again') problems.push('the next write lost bytes');
        await again.remove();
      } catch (err) {
        problems.push(`the next clean write failed: ${describeError(err)}`);
      }
    },
    async teardown(s) {
      try {
        await s.mgr.close();
        const left = list(s.disk.raw, s.root).filter((name) => name !== ROOT_MARKER);
        if (left.length > 0) throw new Error(`close() left ${left.join(', ')}`);
      } finally {
        dispose(s.disk, s.parent);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// handoff()

interface HandoffState {
  disk: Disk;
  parent: string;
  root: string;
  mgr: TempFileManager;
  file: TempFile;
  content: string;
  ticket?: HandoffTicket;
}

function handoffScenario(variant: 'written' | 'file'): Scenario<HandoffState> {
  return {
    name:
      variant === 'written'
        ? 'file.handoff({ ttlMs }) of a written file, the first handoff under the root'
        : 'file.handoff({ ttlMs }) of a file() made file, handoff/ made earlier by another manager',
    async setup(disk, plan) {
      const parent = planParent(disk, plan);
      const root = path.join(parent, 'root');
      const mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
      const content = `payload of ${variant}`;
      let file: TempFile;
      if (variant === 'written') {
        file = await mgr.write(content, { suffix: '.bin', hash: 'sha256' });
      } else {
        const other = cleanManager(disk, root);
        await (await other.write('earlier')).handoff({ ttlMs: HOUR });
        await other.close();
        file = mgr.file('.txt');
        disk.raw.writeFileSync(file.path, content);
      }
      return { disk, parent, root, mgr, file, content };
    },
    normalize: (s) => normalizer([[s.mgr.sessionPath, '<session>'], [s.root, '<root>']]),
    // The manager that handed off holds <root>/handoff open until close().
    heldFds: (s) => (s.disk.kind === 'real' ? heldOpen(path.join(s.root, 'handoff')) : 0),
    async act(s) {
      s.ticket = await s.file.handoff({ ttlMs: HOUR, meta: { job: 1 } });
    },
    async verify(s, outcome, _errno, problems) {
      const raw = s.disk.raw;
      const handoffDir = path.join(s.root, 'handoff');
      const before = variant === 'file' ? 1 : 0; // the earlier manager's entry
      const entries = list(raw, handoffDir);
      const staging = list(raw, s.mgr.sessionPath).filter((n) => n.startsWith(stagingName('')));
      let ticket = s.ticket;
      if (outcome.error === undefined) {
        if (!s.file.disposed) problems.push('succeeded, but the handle still owns the file');
        if (entries.length !== before + 1) problems.push(`succeeded with ${entries.length} entries`);
      } else {
        const fileThere = read(raw, s.file.path) === s.content;
        if (!fileThere) problems.push('the file is not at its path any more');
        if (s.file.disposed) problems.push('the handle was disposed by a failed handoff');
        if (s.mgr.stats().liveFiles !== 1) problems.push(`stats: ${JSON.stringify(s.mgr.stats())}`);
        if (entries.length !== before) problems.push(`a failed handoff made an entry: ${entries.join(', ')}`);
        // A staging leftover belongs to the live session (closing it removes it) and holds no data.
        for (const name of staging) {
          const inside = list(raw, path.join(s.mgr.sessionPath, name));
          if (inside.length > 0) problems.push(`staging left holding ${inside.join(', ')}`);
        }
        // Once the fault is gone, the same handle hands off.
        try {
          ticket = await s.file.handoff({ ttlMs: HOUR, meta: { job: 1 } });
        } catch (err) {
          problems.push(`a clean retry of the handoff failed: ${describeError(err)}`);
          return;
        }
      }
      try {
        parseTicket(JSON.parse(JSON.stringify(ticket)));
        const worker = cleanManager(s.disk, s.root);
        const claimed = await worker.claim(ticket!);
        if (read(raw, claimed.path) !== s.content) problems.push('the claimed bytes differ');
        await claimed.consume();
        await worker.close();
      } catch (err) {
        problems.push(`the ticket could not be claimed: ${describeError(err)}`);
      }
    },
    async teardown(s) {
      await s.mgr.close().catch(() => {});
      dispose(s.disk, s.parent);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// claim() + consume() / release()

interface ClaimState {
  disk: Disk;
  parent: string;
  root: string;
  worker: TempFileManager;
  ticket: HandoffTicket;
  entryDir: string;
  claimed?: ClaimedFile;
}

const CLAIM_CONTENT = 'work item';

/**
 * The descriptor this process holds on `dir`, if it holds one: a manager that claimed holds its
 * root open (the pin it reaches the root through) and `<root>/handoff` until close(); one at
 * most, a second would be a leak.
 */
function heldOpen(dir: string): number {
  const named = nodeFs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return nodeFs.readlinkSync(`/proc/self/fd/${fd}`) === dir;
    } catch {
      return false; // the listing's own descriptor, closed since
    }
  });
  return Math.min(named.length, 1);
}

/** Claims with a clean fs: the entry must be claimable at once, never left under a live holder. */
async function claimClean(s: ClaimState, problems: string[], expectContent: boolean): Promise<void> {
  const raw = s.disk.raw;
  const worker = cleanManager(s.disk, s.root);
  try {
    let claimed: ClaimedFile;
    try {
      claimed = await worker.claim(s.ticket);
    } catch (err) {
      if (err instanceof AlreadyClaimedError) {
        problems.push(`the entry stays under a lease this process holds, which nobody will release: [${list(raw, s.entryDir).join(', ')}]`);
        return;
      }
      throw err;
    }
    if (!expectContent) problems.push('an entry that was consumed could be claimed again');
    else if (read(raw, claimed.path) !== CLAIM_CONTENT) problems.push('the claimed bytes differ');
    await claimed.consume();
  } catch (err) {
    if (expectContent) problems.push(`the next claimer could not claim the entry: ${describeError(err)}`);
  } finally {
    await worker.close();
  }
}

/** Leftovers of a consumed entry must be gone, or be an empty directory that a sweep removes. */
async function consumedAndSwept(s: ClaimState, problems: string[]): Promise<void> {
  const raw = s.disk.raw;
  if (!exists(raw, s.entryDir)) return;
  const names = list(raw, s.entryDir);
  if (names.length > 0) {
    problems.push(`a consumed entry still holds ${names.join(', ')}`);
    return;
  }
  const sweeper = cleanManager(s.disk, s.root, { graceMs: 0 });
  await sweeper.sweep();
  await sweeper.close();
  if (exists(raw, s.entryDir)) problems.push('the leftovers of a consumed entry are not swept');
}

function claimScenario(finish: 'consume' | 'release'): Scenario<ClaimState> {
  return {
    name: `mgr.claim(ticket) + claimed.${finish}()`,
    alsoAllowed: { ENOENT: ['ERR_TEMPFILE_HANDOFF_NOT_FOUND', 'ERR_TEMPFILE_LEASE_LOST'] },
    async setup(disk, plan) {
      const parent = planParent(disk, plan);
      const root = path.join(parent, 'root');
      const producer = cleanManager(disk, root);
      const ticket = await (await producer.write(CLAIM_CONTENT, { suffix: '.bin', hash: 'sha256' })).handoff({ ttlMs: HOUR });
      await producer.close();
      const worker = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
      const entryDir = path.join(root, 'handoff', boundEntryName(ticket));
      return { disk, parent, root, worker, ticket, entryDir };
    },
    normalize: (s) => normalizer([[s.entryDir, '<entry>'], [s.root, '<root>']]),
    // A manager that claimed holds its root open (it reaches handoff/ through it) until close().
    heldFds: (s) => (s.disk.kind === 'real' ? heldOpen(s.root) + heldOpen(path.join(s.root, 'handoff')) : 0),
    async act(s) {
      // verifyDigest: the digest is read back through fs.createReadStream, one more call to fail.
      s.claimed = await s.worker.claim(s.ticket, { verifyDigest: true });
      if (finish === 'consume') await s.claimed.consume();
      else await s.claimed.release();
    },
    async verify(s, outcome, _errno, problems) {
      const raw = s.disk.raw;
      let consumed = false;
      if (outcome.error === undefined) {
        consumed = finish === 'consume';
      } else if (!s.claimed) {
        // claim() failed: the file must be back under its data name, for the next claimer.
        const names = list(raw, s.entryDir);
        if (names.join() !== dataName('.bin')) problems.push(`after a failed claim the entry holds [${names.join(', ')}]`);
      } else if (!s.claimed.disposed) {
        // consume()/release() failed and the claim is still held: retrying it must work.
        try {
          if (finish === 'consume') await s.claimed.consume();
          else await s.claimed.release();
          consumed = finish === 'consume';
        } catch (err) {
          problems.push(`a clean retry of ${finish}() failed: ${describeError(err)}`);
        }
      } else {
        // The claim gave up (LeaseLostError): that is right only if the file left its held name.
        if (exists(raw, s.claimed.path)) problems.push(`${finish}() gave up with ${describeError(outcome.error)} but the file is still held`);
      }
      if (consumed) await consumedAndSwept(s, problems);
      else await claimClean(s, problems, true);
      if (heldLocksUnder(s.root).length > 0) problems.push(`locks still held: ${heldLocksUnder(s.root).length}`);
      const left = list(raw, path.join(s.root, 'handoff'));
      if (left.length > 0) problems.push(`handoff/ is not empty at the end: ${left.join(', ')}`);
    },
    async teardown(s) {
      // Drop whatever a broken run still holds, so that later runs start clean.
      const claimed = s.claimed as unknown as { lease?: { drop(): void } } | undefined;
      claimed?.lease?.drop();
      await s.worker.close().catch(() => {});
      dispose(s.disk, s.parent);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// sweep(): an orphaned session, a stray lock, an expired entry, leftovers, and live things.

interface SweepState {
  disk: Disk;
  parent: string;
  root: string;
  mgr: TempFileManager;
  liveFile: TempFile;
  orphan: string;
  strayLock: string;
  otherHost: string;
  expired: string;
  consumed: string;
  oldStaging: string;
  youngStaging: string;
  foreign: string[];
  waiting: string;
  claimed: string;
  claimedHeld: string;
  outside: string;
}

const ID = (c: string) => c.repeat(32);

function plantSweepFixture(raw: RawFs, root: string, host: string, liveSession: string) {
  const hourAgo = Date.now() - HOUR;
  const handoff = path.join(root, 'handoff');
  raw.mkdirSync(handoff, { mode: 0o700 });
  const outside = path.join(path.dirname(root), 'outside.txt');
  raw.writeFileSync(outside, 'never touched');

  // A thread of this machine that no longer runs: judged dead by /proc, whatever its lock says.
  const orphan = path.join(root, deadSessionName(host));
  raw.mkdirSync(path.join(orphan, 'sub'), { recursive: true, mode: 0o700 });
  for (const f of ['f1', 'f2', 'sub/f3']) raw.writeFileSync(path.join(orphan, f), `orphaned ${f}`);
  raw.symlinkSync(outside, path.join(orphan, 'link-out'));
  raw.mkdirSync(`${orphan}.lock`);
  age(raw, `${orphan}.lock`);

  const strayLock = path.join(root, `${deadSessionName(host, HOUR, '1111111111111111', 4_194_302)}.lock`);
  raw.mkdirSync(strayLock);
  age(raw, strayLock);

  const otherHost = path.join(root, sessionName({ host: 'other-host', pid: 77, start: '123456', created: hourAgo, random: 'fedcba9876543210' }));
  raw.mkdirSync(otherHost, { mode: 0o700 });
  raw.writeFileSync(path.join(otherHost, 'busy'), 'another host works on this');
  raw.mkdirSync(`${otherHost}.lock`); // fresh: that host is alive

  const entry = (id: string, expiresAt: number, files: Record<string, string>) => {
    const dir = path.join(handoff, entryName(id, expiresAt));
    raw.mkdirSync(dir, { mode: 0o700 });
    for (const [name, content] of Object.entries(files)) raw.writeFileSync(path.join(dir, name), content);
    return dir;
  };
  const expired = entry(ID('1'), Date.now() - 60_000, { [dataName('.bin')]: 'expired data' });
  const consumed = entry(ID('2'), Date.now() + HOUR, {});
  const waiting = entry(ID('3'), Date.now() + HOUR, { [dataName('.bin')]: 'waiting data' });
  // Claimed by a live worker (this process), and past its expiry: a long job. Never swept.
  const token = formatOwnerToken({ ...processIdentity(host), created: Date.now(), random: 'cafebabecafebabe' });
  const claimedHeld = `held_${token}.bin`;
  const claimed = entry(ID('4'), Date.now() - 60_000, { [claimedHeld]: 'in work' });
  // Staging lives in its session: a dead session's goes with it, a live one's stays.
  const oldStaging = path.join(orphan, stagingName(ID('5')));
  raw.mkdirSync(oldStaging);
  raw.writeFileSync(path.join(oldStaging, dataName('.bin')), 'half handed off');
  const youngStaging = path.join(liveSession, stagingName(ID('6')));
  raw.mkdirSync(youngStaging);
  raw.writeFileSync(path.join(youngStaging, dataName('.bin')), 'being handed off now');
  // Names the library did not make, in the root and in handoff/: never removed.
  const foreign = [path.join(root, '.tmp-build'), path.join(root, `${ID('7')}_1`), path.join(handoff, `${ID('8')}_1`)];
  for (const dir of foreign) {
    raw.mkdirSync(dir);
    raw.writeFileSync(path.join(dir, 'precious'), 'foreign');
  }
  return { orphan, strayLock, otherHost, expired, consumed, waiting, claimed, claimedHeld, oldStaging, youngStaging, foreign, outside };
}

/**
 * Everything that belongs to someone alive, with its content. A session of another host is
 * judged by its lock alone (docs/crash-recovery.md): when the lock's lstat says ENOENT, it is an
 * orphan by definition, so that one lie is allowed to cost it.
 */
function liveThings(s: SweepState, injected: FsCall | undefined): Array<[string, string | null]> {
  const otherHostLockLied = injected?.injected === 'ENOENT' && injected.key === 'lstat(<other-host>.lock)';
  return [
    [s.liveFile.path, 'live'],
    [`${s.mgr.sessionPath}.lock`, null],
    ...(otherHostLockLied
      ? []
      : ([
          [path.join(s.otherHost, 'busy'), 'another host works on this'],
          [`${s.otherHost}.lock`, null],
        ] as Array<[string, string | null]>)),
    [path.join(s.waiting, dataName('.bin')), 'waiting data'],
    [path.join(s.claimed, s.claimedHeld), 'in work'],
    [path.join(s.youngStaging, dataName('.bin')), 'being handed off now'],
    [s.outside, 'never touched'],
    ...s.foreign.map((dir): [string, string] => [path.join(dir, 'precious'), 'foreign']),
  ];
}

function checkLive(s: SweepState, injected: FsCall | undefined, problems: string[], when: string): void {
  for (const [p, content] of liveThings(s, injected)) {
    if (!exists(s.disk.raw, p)) problems.push(`${when}: a live path was removed: ${path.relative(s.parent, p)}`);
    else if (content !== null && read(s.disk.raw, p) !== content) problems.push(`${when}: a live file changed: ${p}`);
  }
}

const sweepScenario: Scenario<SweepState> = {
  name: 'mgr.sweep() over an orphaned session, a stray lock, expired and consumed entries, staging leftovers, next to live ones',
  // An ENOENT at the root marker's open says there is no marker: the sweep refuses the root.
  alsoAllowed: { ENOENT: ['ERR_TEMPFILE_UNSAFE_ROOT'] },
  async setup(disk, plan) {
    const parent = planParent(disk, plan);
    const root = path.join(parent, 'root');
    const host = defaultHostId();
    const mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false, hostId: host });
    const liveFile = mgr.file('.live');
    disk.raw.writeFileSync(liveFile.path, 'live');
    const planted = plantSweepFixture(disk.raw, root, host, mgr.sessionPath);
    return { disk, parent, root, mgr, liveFile, ...planted };
  },
  normalize: (s) =>
    normalizer([
      [s.mgr.sessionPath, '<own-session>'],
      [s.orphan, '<orphan>'],
      [s.strayLock, '<stray-lock>'],
      [s.otherHost, '<other-host>'],
      [s.root, '<root>'],
    ]),
  async act(s) {
    const report = await s.mgr.sweep();
    for (const e of report.errors) {
      if (typeof e.code !== 'string' || typeof e.path !== 'string') throw new Error(`an untyped sweep error: ${JSON.stringify(e)}`);
    }
  },
  async verify(s, outcome, _errno, problems) {
    const raw = s.disk.raw;
    checkLive(s, outcome.injected, problems, 'after the faulty sweep');
    // A second, clean sweep removes every orphan and leftover, and still nothing live.
    const sweeper = cleanManager(s.disk, s.root);
    const report = await sweeper.sweep();
    await sweeper.close();
    if (report.errors.length > 0) problems.push(`the clean sweep had errors: ${JSON.stringify(report.errors)}`);
    for (const p of [s.orphan, `${s.orphan}.lock`, s.strayLock, s.expired, s.consumed, s.oldStaging]) {
      if (exists(raw, p)) problems.push(`a clean second sweep left ${path.relative(s.parent, p)}`);
    }
    checkLive(s, outcome.injected, problems, 'after the clean sweep');
  },
  async teardown(s) {
    await s.mgr.close().catch(() => {});
    dispose(s.disk, s.parent);
  },
};

// ---------------------------------------------------------------------------------------------

// The process's one beat thread holds descriptors of its own (its event loop's) from its start on.
// A scenario whose fault stops a live signal from being made starts it (the owner then beats on it):
// it is started before them all, so that the descriptors counted are the scenarios' alone. A
// manager held open for the whole file keeps its heartbeat on it.
let keeper: TempFileManager | undefined;
let fdsAtStart = 0;
beforeAll(async () => {
  keeper = new TempFileManager({ root: path.join(nodeFs.mkdtempSync(path.join(os.tmpdir(), 'tfm-matrix-keeper-')), 'root'), sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
  beatThread().require('the fault matrix: started before the scenarios count descriptors');
  keeper.file().removeSync(); // opens its session: its heartbeat beats on the thread too
  for (let last = -1, now = await lastingFds(), looks = 0; now !== last && looks < 50; looks++) {
    await sleep(100);
    last = now;
    now = await lastingFds();
  }
  fdsAtStart = await lastingFds();
});

describe('the plan and the heartbeat timer (the harness itself)', () => {
  it('leaves the timer\'s beats of a held file alone: never counted, never failed', async () => {
    const scenario = claimScenario('release');
    const plan = new FaultPlanFs(realFs);
    const s = await scenario.setup(realDisk, plan);
    try {
      s.claimed = await s.worker.claim(s.ticket);
      // Any touch of the held file fails: only a beat touches it, and only the timer beats here.
      plan.record({ normalize: scenario.normalize(s), where: { method: ['futimesSync', 'lutimesSync'], path: () => true, code: 'EIO' } });
      await sleep(HEARTBEAT_MS * 2.5);
      const calls = plan.stop();
      expect(calls.map((c) => c.key)).toEqual([]);
      expect(s.worker.stats().heartbeatFailures).toBe(0);
      await s.claimed.release();
    } finally {
      await scenario.teardown(s);
    }
  });
});

matrix(writeScenario(true));
matrix(writeScenario(false));
matrix(handoffScenario('written'));
matrix(handoffScenario('file'));
matrix(claimScenario('consume'));
matrix(claimScenario('release'));
matrix(sweepScenario);

afterAll(async () => {
  expect(heldLocks().filter((f) => f.includes('tfm-fault-') || f.startsWith('/parent-'))).toEqual([]);
  expect(await lastingFds()).toBeLessThanOrEqual(fdsAtStart + 2);
  await keeper?.close();
});
