import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { HandoffTicket } from '../../src/index.js';
import { TempFileManager } from '../../src/index.js';
import { fixture, innerPid, nextJson, startChild, type RunningChild } from '../helpers/child.js';
import { itNeeds, PID_NAMESPACE } from '../helpers/privileges.js';
import { actOnTaken, FENCE_CASES, snapshot, STEPS, takeOver } from '../helpers/fencing.js';
import { freshRoot, scratchDir } from '../helpers/roots.js';
import { scaledRounds } from '../helpers/scale.js';
import { boundEntryName } from '../../src/handoff/binding.js';

// "Another machine" that blocks its event loop runs with /proc, as Linux hosts do, whatever this
// process runs with: without /proc, its beat thread would go on beating its held files while its
// event loop is blocked, and it would keep its leases (test/process/liveness-no-proc.test.ts).
const ANOTHER_LINUX_HOST = { TEMPFILE_MANAGER_NO_PROC: '' };

const STALE_MS = 2000;
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function child<T>(...args: string[]): Promise<T> {
  const { stdout } = await run(process.execPath, [fixture('handoff-child.mjs'), ...args]);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

function produce(root: string, content: string, hostId = 'host-a'): Promise<HandoffTicket> {
  return child<HandoffTicket>('produce', root, content, hostId);
}

// Another host, as far as pids go: a PID namespace of its own.
function hold(root: string, ticket: HandoffTicket, hostId: string, elsewhere = false): RunningChild {
  return startChild('handoff-child.mjs', ['hold', root, JSON.stringify(ticket), hostId, String(STALE_MS)], {}, { pidNamespace: elsewhere });
}

function entryFiles(root: string): string[] {
  const dir = path.join(root, 'handoff');
  return fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String).sort() : [];
}

describe('handoff across real processes', () => {
  it('a ticket crosses processes as JSON; the entry outlives its producer; consumed entries are gone', async () => {
    const root = freshRoot();
    const ticket = await produce(root, 'hello from another process');
    expect(JSON.parse(JSON.stringify(ticket))).toEqual(ticket);
    expect(Object.keys(ticket).sort()).toEqual(['createdAt', 'digest', 'expiresAt', 'id', 'meta', 'size', 'suffix', 'v']);
    expect(JSON.stringify(ticket)).not.toContain(root); // no host paths in a ticket
    // The producer exited (its session is gone); the entry is still there.
    expect(fs.readdirSync(root).sort()).toEqual(['.tempfile-manager', 'handoff']);
    const result = await child<{ content: string }>('consume', root, JSON.stringify(ticket), 'host-b');
    expect(result.content).toBe('hello from another process');
    expect(entryFiles(root)).toEqual([]);
    const second = await run(process.execPath, [fixture('handoff-child.mjs'), 'consume', root, JSON.stringify(ticket)]).catch((e: { stderr: string }) => e);
    expect((second as { stderr: string }).stderr).toMatch(/ERR_TEMPFILE_HANDOFF_NOT_FOUND|No handoff entry/);
  });

  it('eight claimers race and exactly one wins', async () => {
    const root = freshRoot();
    const ticket = await produce(root, 'contended');
    const claimers = Array.from({ length: 8 }, (_, i) => hold(root, ticket, `host-${i % 2 ? 'a' : 'b'}`));
    const results = await Promise.all(claimers.map((c) => nextJson<{ status: string; retryAfterMs?: number }>(c)));
    const winners = results.filter((r) => r.status === 'won');
    expect(winners).toHaveLength(1);
    const losers = results.filter((r) => r.status !== 'won');
    expect(losers.every((r) => r.status === 'ERR_TEMPFILE_ALREADY_CLAIMED' && r.retryAfterMs! > 0)).toBe(true);
    const winner = claimers[results.indexOf(winners[0]!)]!;
    winner.child.stdin!.write('consume\n');
    expect(await nextJson(winner)).toEqual({ consumed: 'ok' });
    await Promise.all(claimers.map((c) => c.ended));
    expect(entryFiles(root)).toEqual([]);
  });

  it('release() lets the next claimer in', async () => {
    const root = freshRoot();
    const ticket = await produce(root, 'pass it on');
    const first = hold(root, ticket, 'host-a');
    expect((await nextJson<{ status: string }>(first)).status).toBe('won');
    first.child.stdin!.write('release\n');
    expect(await nextJson(first)).toEqual({ released: 'ok' });
    await first.ended;
    const result = await child<{ content: string }>('consume', root, JSON.stringify(ticket), 'host-b');
    expect(result.content).toBe('pass it on');
  });

  itNeeds(PID_NAMESPACE)('a SIGKILLed winner: on its own machine the entry is claimable at once; from another once the lease is seen stale', async () => {
    const root = freshRoot();
    const ticket = await produce(root, 'survives a crash');
    const winner = hold(root, ticket, 'host-a', true);
    expect((await nextJson<{ status: string }>(winner)).status).toBe('won');
    winner.child.kill('SIGKILL');
    await winner.ended;

    const otherHost = new TempFileManager({ root, hostId: 'host-b', staleMs: STALE_MS, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    await expect(otherHost.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_ALREADY_CLAIMED' });
    await sleep(STALE_MS + 500); // the lock was seen once; unchanged a staleMs later, its holder is dead
    const claimed = await otherHost.claim(ticket, { verifyDigest: true });
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('survives a crash');
    await claimed.release();

    const second = hold(root, ticket, 'host-a');
    expect((await nextJson<{ status: string }>(second)).status).toBe('won');
    second.child.kill('SIGKILL');
    await second.ended;
    const sameHost = new TempFileManager({ root, hostId: 'host-a', staleMs: STALE_MS, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    const again = await sameHost.claim(ticket, { verifyDigest: true }); // its pid is gone: no wait
    expect(fs.readFileSync(again.path, 'utf8')).toBe('survives a crash');
    await again.consume();
    expect(entryFiles(root)).toEqual([]);
  });

  // A blocked event loop no longer stops the heartbeat (the beat thread beats on): a claimer is
  // overtaken once its process is stopped whole (SIGSTOP, a frozen container), its threads with it.
  itNeeds(PID_NAMESPACE)('a claimer of another host stopped past staleMs while its event loop is blocked is overtaken, and then cannot consume, release or move', async () => {
    const root = freshRoot();
    const tickets = await Promise.all(['one', 'two', 'three'].map((c) => produce(root, c)));
    const dest = path.join(scratchDir(), 'stolen.txt');
    const args = ['block', root, JSON.stringify(tickets), 'host-a', String(STALE_MS), '-', dest];
    const blocked = startChild('handoff-child.mjs', args, ANOTHER_LINUX_HOST, { pidNamespace: true });
    await nextJson(blocked);
    const inner = innerPid(blocked.child.pid!);
    process.kill(inner, 'SIGSTOP');
    const taker = new TempFileManager({ root, hostId: 'host-b', staleMs: STALE_MS, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    const firstLook = await Promise.all(tickets.map((t) => taker.claim(t).then(() => 'claimed', (err: { code: string }) => err.code)));
    expect(firstLook).toEqual(Array(3).fill('ERR_TEMPFILE_ALREADY_CLAIMED'));
    await sleep(STALE_MS + 500);
    const taken = await Promise.all(tickets.map((t) => taker.claim(t)));
    process.kill(inner, 'SIGCONT');
    blocked.child.stdin!.write('wake\n');
    const woke = await nextJson<{ consume: string; release: string; keep: string }>(blocked);
    expect(woke).toEqual({ consume: 'ERR_TEMPFILE_LEASE_LOST', release: 'ERR_TEMPFILE_LEASE_LOST', keep: 'ERR_TEMPFILE_LEASE_LOST' });
    expect(fs.existsSync(dest)).toBe(false);
    expect(taken.map((c) => fs.readFileSync(c.path, 'utf8'))).toEqual(['one', 'two', 'three']);
    await Promise.all(taken.map((c) => c.consume()));
    await blocked.ended;
    expect(entryFiles(root)).toEqual([]);
  });

  it('a claimer of this host that blocks past staleMs keeps its lease, and then consumes, releases and moves', async () => {
    const root = freshRoot();
    const tickets = await Promise.all(['one', 'two', 'three'].map((c) => produce(root, c)));
    const dest = path.join(scratchDir(), 'kept.txt');
    const blocked = startChild('handoff-child.mjs', ['block', root, JSON.stringify(tickets), 'host-a', String(STALE_MS), '-', dest]);
    await nextJson(blocked);
    await sleep(STALE_MS + 1500);
    const sameHost = new TempFileManager({ root, hostId: 'host-a', staleMs: STALE_MS, graceMs: 0, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    for (const t of tickets) await expect(sameHost.claim(t)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_ALREADY_CLAIMED' });
    expect(await sameHost.sweep()).toMatchObject({ handoffEntriesRemoved: 0, claimedEntriesSkipped: 3 });
    blocked.child.stdin!.write('wake\n');
    expect(await nextJson(blocked)).toEqual({ consume: 'ok', release: 'ok', keep: 'ok' });
    expect(fs.readFileSync(dest, 'utf8')).toBe('three');
    const released = await sameHost.claim(tickets[1]!);
    expect(fs.readFileSync(released.path, 'utf8')).toBe('two');
    await released.consume();
    await blocked.ended;
    expect(entryFiles(root)).toEqual([]);
  });

  itNeeds(PID_NAMESPACE)('a live claimer of another host keeps its lease past staleMs: its heartbeat says it lives', async () => {
    const root = freshRoot();
    const ticket = await produce(root, 'long job');
    const holder = hold(root, ticket, 'host-a', true);
    expect((await nextJson<{ status: string }>(holder)).status).toBe('won');
    const otherHost = new TempFileManager({ root, hostId: 'host-b', staleMs: STALE_MS, graceMs: 0, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    for (const until = Date.now() + 3 * STALE_MS; Date.now() < until; ) {
      await expect(otherHost.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_ALREADY_CLAIMED' });
      await sleep(250);
    }
    expect(await otherHost.sweep()).toMatchObject({ handoffEntriesRemoved: 0, claimedEntriesSkipped: 1 });
    holder.child.stdin!.write('consume\n');
    expect(await nextJson(holder)).toEqual({ consumed: 'ok' });
    await holder.ended;
    expect(entryFiles(root)).toEqual([]);
  });

  it('a claimer that exits without finishing gives its entry back: another host claims it at once', async () => {
    const root = freshRoot();
    const ticket = await produce(root, 'given back at exit');
    const holder = hold(root, ticket, 'host-a');
    expect((await nextJson<{ status: string }>(holder)).status).toBe('won');
    holder.child.stdin!.write('exit\n');
    expect(await holder.ended).toMatchObject({ code: 0 });
    const otherHost = new TempFileManager({ root, hostId: 'host-b', staleMs: 30_000, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    const claimed = await otherHost.claim(ticket, { verifyDigest: true });
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('given back at exit');
    await claimed.consume();
  });

  // The first claimer runs on "another machine" (a PID namespace of its own), so that it is judged
  // by its heartbeat: stopped (SIGSTOP), with its event loop idle or blocked by a long synchronous
  // job (a blocked event loop alone does not stop the heartbeat: the beat thread beats on).
  itNeeds(PID_NAMESPACE).for([
    ['SIGSTOPped past staleMs', true, false],
    ['SIGSTOPped past staleMs while its event loop is blocked', true, true],
  ])('a claimer %s and taken over: every step fails with LeaseLostError and changes nothing, whatever the taker did', async ([_label, stop, block]) => {
    const root = freshRoot();
    const out = scratchDir();
    const producer = new TempFileManager({ root, hostId: 'host-a', sweepOnStart: false, exitHook: false, graceMs: 0 });
    const expiring = Date.now() + 20_000;
    const tickets = await Promise.all(
      FENCE_CASES.map(async (c, i) => {
        const ttlMs = c.since === 'let it expire, swept' ? expiring - Date.now() : 600_000;
        return (await producer.write(`case ${i}`, { suffix: '.bin' })).handoff({ ttlMs });
      }),
    );
    const args = ['stall', root, JSON.stringify(tickets), 'host-a', String(STALE_MS), ...(block ? ['block'] : [])];
    const stalled = startChild('handoff-child.mjs', args, ANOTHER_LINUX_HOST, { pidNamespace: true });
    expect(await nextJson(stalled)).toEqual({ claimed: tickets.length });
    const inner = innerPid(stalled.child.pid!);
    if (stop) process.kill(inner, 'SIGSTOP');
    const taker = new TempFileManager({ root, hostId: 'host-b', staleMs: STALE_MS, graceMs: 0, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    const taken = await Promise.all(tickets.map((t) => takeOver(taker, t)));
    for (const [i, c] of FENCE_CASES.entries()) await actOnTaken(taken[i]!, c.since, path.join(out, `kept-by-taker-${i}.bin`));
    // Each ticket's own expiry: its clock started when handoff() ran, after its write.
    const lastExpiry = Math.max(...tickets.filter((_, i) => FENCE_CASES[i]!.since === 'let it expire, swept').map((t) => t.expiresAt));
    await sleep(Math.max(0, lastExpiry + 500 - Date.now()));
    expect((await taker.sweep()).handoffEntriesRemoved).toBe(STEPS.length);
    const entryDirs = tickets.map((t) => path.join(root, 'handoff', boundEntryName(t)));
    const before = { entries: entryDirs.map(snapshot), out: snapshot(out) };

    if (stop) process.kill(inner, 'SIGCONT');
    if (block) stalled.child.stdin!.write('wake\n'); // ends the block, until then as long as the taker needed
    const steps = FENCE_CASES.map((c, i) => ({ step: c.step, dest: path.join(out, `kept-by-stalled-${i}.bin`) }));
    stalled.child.stdin!.write(`${JSON.stringify(steps)}\n`);
    const { results } = await nextJson<{ results: string[] }>(stalled);
    const wrong = results.map((code, i) => [`${FENCE_CASES[i]!.step} after the taker ${FENCE_CASES[i]!.since}`, code]).filter(([, code]) => code !== 'ERR_TEMPFILE_LEASE_LOST');
    expect(wrong).toEqual([]);
    expect({ entries: entryDirs.map(snapshot), out: snapshot(out) }).toEqual(before);
    await stalled.ended;
    for (const [i, c] of FENCE_CASES.entries()) if (c.since === 'holds it') await taken[i]!.consume();
    await producer.close();
  });

  it('two simulated hosts share a root: sessions judged by locks, entries by leases', async () => {
    const root = freshRoot();
    const a = new TempFileManager({ root, hostId: 'host-a', staleMs: STALE_MS, graceMs: 0, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    const b = new TempFileManager({ root, hostId: 'host-b', staleMs: STALE_MS, graceMs: 0, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    const scoped = a.file();
    const ticket = await (await a.write('cross-host')).handoff({ ttlMs: 60_000 });
    const claimed = await b.claim(ticket);
    await sleep(STALE_MS + 1500);
    // Both locks are refreshed by their owners: a sweep from host b leaves host a's session alone.
    const report = await b.sweep();
    expect(report).toMatchObject({ sessionsRemoved: 0, claimedEntriesSkipped: 1 });
    expect(fs.existsSync(scoped.path)).toBe(true);
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('cross-host');
    await claimed.consume();
    await a.close();
    await b.close();
  });
});

describe('takeover race: a dead holder, eight claimers released at once', () => {
  const ROUNDS = scaledRounds(200, 60);
  const CLAIMERS = 8;
  const ROUNDS_PER_BATCH = 20;
  const ENTRIES_PER_HOLDER = 5;

  interface Interval {
    pid: number;
    start: bigint;
    end?: bigint;
  }

  /** The witness: the claimers' own O_APPEND log, "start|end <round> <pid> <monotonic ns>". */
  function intervalsByRound(log: string): Map<number, Interval[]> {
    const rounds = new Map<number, Interval[]>();
    for (const line of fs.readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
      const [what, round, pid, at] = line.split(' ') as [string, string, string, string];
      const intervals = rounds.get(Number(round)) ?? [];
      rounds.set(Number(round), intervals);
      if (what === 'start') intervals.push({ pid: Number(pid), start: BigInt(at) });
      else intervals.find((i) => i.pid === Number(pid) && i.end === undefined)!.end = BigInt(at);
    }
    return rounds;
  }

  const overlap = (a: Interval, b: Interval) => a.start < (b.end ?? 2n ** 63n) && b.start < (a.end ?? 2n ** 63n);

  it(`${ROUNDS} rounds: at most one holder at any instant, exactly one winner, every loser AlreadyClaimedError`, async () => {
    const root = freshRoot();
    const log = path.join(scratchDir(), 'witness.log');
    const producer = new TempFileManager({ root, hostId: 'host-a', sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    const claimers = Array.from({ length: CLAIMERS }, () =>
      startChild('handoff-race.mjs', ['claimer', root, log, 'host-a', String(STALE_MS)]),
    );
    await Promise.all(claimers.map((c) => nextJson(c)));
    const outcomes: string[][] = [];
    const consumed: string[] = [];
    for (let first = 0; first < ROUNDS; first += ROUNDS_PER_BATCH) {
      const tickets = await Promise.all(
        Array.from({ length: Math.min(ROUNDS_PER_BATCH, ROUNDS - first) }, async (_, i) =>
          (await producer.write(`round ${first + i}`)).handoff({ ttlMs: 600_000 }),
        ),
      );
      // Every entry is held by a process SIGKILLed before its round: a dead holder on this host.
      const holders = [];
      for (let i = 0; i < tickets.length; i += ENTRIES_PER_HOLDER) {
        const held = JSON.stringify(tickets.slice(i, i + ENTRIES_PER_HOLDER));
        holders.push(startChild('handoff-race.mjs', ['holder', root, held, 'host-a', String(STALE_MS)]));
      }
      await Promise.all(holders.map((h) => nextJson(h)));
      for (const h of holders) h.child.kill('SIGKILL');
      await Promise.all(holders.map((h) => h.ended));
      for (const [i, ticket] of tickets.entries()) {
        const round = first + i;
        const at = Date.now() + 25;
        for (const c of claimers) c.child.stdin!.write(`${JSON.stringify({ round, ticket, at })}\n`);
        const answers = await Promise.all(claimers.map((c) => nextJson<{ status: string }>(c)));
        outcomes.push(answers.map((a) => a.status));
        for (const [k, answer] of answers.entries()) {
          if (answer.status !== 'won') continue;
          claimers[k]!.child.stdin!.write('finish\n');
          consumed.push((await nextJson<{ consumed: string }>(claimers[k]!)).consumed);
        }
      }
    }
    for (const c of claimers) c.child.stdin!.end();
    await Promise.all(claimers.map((c) => c.ended));
    await producer.close();

    const rounds = intervalsByRound(log);
    const overlapping = [...rounds].filter(([, intervals]) => intervals.some((a, i) => intervals.slice(i + 1).some((b) => overlap(a, b))));
    const notOneWinner = outcomes.map((o, round) => [round, o.filter((s) => s === 'won').length]).filter(([, n]) => n !== 1);
    const otherLosses = outcomes.flat().filter((s) => s !== 'won' && s !== 'ERR_TEMPFILE_ALREADY_CLAIMED');
    expect({
      roundsWithOverlap: overlapping.length,
      roundsWithoutExactlyOneWinner: notOneWinner.length,
      otherLosses,
      failedConsumes: consumed.filter((c) => c !== 'ok'),
    }).toEqual({ roundsWithOverlap: 0, roundsWithoutExactlyOneWinner: 0, otherLosses: [], failedConsumes: [] });
    expect(rounds.size).toBe(ROUNDS);
    expect(entryFiles(root)).toEqual([]);
  }, 600_000);
});
