import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { HandoffTicket } from '../../src/index.js';
import { TempFileManager } from '../../src/index.js';
import { fixture, nextJson, startChild, type RunningChild } from '../helpers/child.js';
import { freshRoot, scratchDir } from '../helpers/roots.js';

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

function hold(root: string, ticket: HandoffTicket, hostId: string): RunningChild {
  return startChild('handoff-child.mjs', ['hold', root, JSON.stringify(ticket), hostId, String(STALE_MS)]);
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
    expect(fs.readdirSync(root)).toEqual(['handoff']);
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

  it('a SIGKILLed winner: on its own host the entry is claimable at once; from another host once the lease is stale', async () => {
    const root = freshRoot();
    const ticket = await produce(root, 'survives a crash');
    const winner = hold(root, ticket, 'host-a');
    expect((await nextJson<{ status: string }>(winner)).status).toBe('won');
    winner.child.kill('SIGKILL');
    await winner.ended;

    const otherHost = new TempFileManager({ root, hostId: 'host-b', staleMs: STALE_MS, sweepOnStart: false, exitHook: false });
    await expect(otherHost.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_ALREADY_CLAIMED' });
    await sleep(STALE_MS + 1500);
    const claimed = await otherHost.claim(ticket, { verifyDigest: true });
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('survives a crash');
    await claimed.release();

    const second = hold(root, ticket, 'host-a');
    expect((await nextJson<{ status: string }>(second)).status).toBe('won');
    second.child.kill('SIGKILL');
    await second.ended;
    const sameHost = new TempFileManager({ root, hostId: 'host-a', staleMs: STALE_MS, sweepOnStart: false, exitHook: false });
    const again = await sameHost.claim(ticket, { verifyDigest: true }); // its pid is gone: no wait
    expect(fs.readFileSync(again.path, 'utf8')).toBe('survives a crash');
    await again.consume();
    expect(entryFiles(root)).toEqual([]);
  });

  it('a claimer of another host that blocks past staleMs is overtaken, and then cannot consume, release or move', async () => {
    const root = freshRoot();
    const tickets = await Promise.all(['one', 'two', 'three'].map((c) => produce(root, c)));
    const dest = path.join(scratchDir(), 'stolen.txt');
    const blocked = startChild('handoff-child.mjs', ['block', root, JSON.stringify(tickets), 'host-a', String(STALE_MS), String(3 * STALE_MS + 2000), dest]);
    await nextJson(blocked);
    await sleep(STALE_MS + 1500);
    const taker = new TempFileManager({ root, hostId: 'host-b', staleMs: STALE_MS, sweepOnStart: false, exitHook: false });
    const taken = await Promise.all(tickets.map((t) => taker.claim(t)));
    const woke = await nextJson<{ consume: string; release: string; keep: string }>(blocked);
    expect(woke).toEqual({ consume: 'ERR_TEMPFILE_LEASE_LOST', release: 'ERR_TEMPFILE_LEASE_LOST', keep: 'ERR_TEMPFILE_LEASE_LOST' });
    expect(fs.existsSync(dest)).toBe(false);
    expect(taken.map((c) => fs.readFileSync(c.path, 'utf8'))).toEqual(['one', 'two', 'three']);
    await Promise.all(taken.map((c) => c.consume()));
    await blocked.ended;
    expect(entryFiles(root)).toEqual([]);
  });

  it('two simulated hosts share a root: sessions judged by locks, entries by leases', async () => {
    const root = freshRoot();
    const a = new TempFileManager({ root, hostId: 'host-a', staleMs: STALE_MS, graceMs: 0, sweepOnStart: false, exitHook: false });
    const b = new TempFileManager({ root, hostId: 'host-b', staleMs: STALE_MS, graceMs: 0, sweepOnStart: false, exitHook: false });
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
