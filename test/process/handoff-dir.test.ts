import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { procIsOurs } from '../../src/disk/proc.js';
import { TempFileManager, type HandoffTicket } from '../../src/index.js';
import { nextJson, startChild, type RunningChild } from '../helpers/child.js';
import { decoyWithEntries, listTree, manager, scratchDir } from '../helpers/roots.js';

const running: RunningChild[] = [];
afterEach(async () => {
  for (const child of running.splice(0)) {
    child.child.kill('SIGKILL');
    await child.ended;
  }
});

async function start(script: string, args: string[]): Promise<RunningChild> {
  const child = startChild(script, args);
  running.push(child);
  await nextJson(child);
  return child;
}

describe('the handoff directory', () => {
  it('a handoff directory that is a symlink is an UnsafeRootError for handoff, claim, sweep and ls; the target is untouched', async () => {
    const mgr = manager({ graceMs: 0 });
    const file = await mgr.write('x', { suffix: '.bin' });
    const decoy = decoyWithEntries();
    const before = listTree(decoy);
    fs.symlinkSync(decoy, path.join(mgr.root, 'handoff'));
    await expect(file.handoff({ ttlMs: 60_000 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_UNSAFE_ROOT' });
    expect(fs.existsSync(file.path)).toBe(true);
    const ticket = { v: 1, id: '0'.repeat(32), suffix: '.bin', size: 6, createdAt: 0, expiresAt: Date.now() + 60_000 } as HandoffTicket;
    await expect(mgr.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_UNSAFE_ROOT' });
    await expect(mgr.sweep()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_UNSAFE_ROOT' });
    expect(listTree(decoy)).toEqual(before);
  });

  it('a handoff directory of another mode is refused', async () => {
    const mgr = manager();
    fs.mkdirSync(path.join(mgr.root, 'handoff'), { mode: 0o777 });
    fs.chmodSync(path.join(mgr.root, 'handoff'), 0o777);
    const file = await mgr.write('x');
    await expect(file.handoff({ ttlMs: 60_000 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_UNSAFE_ROOT', reason: 'writable-by-others' });
  });
});

// A manager holds <root>/handoff open across handoffs and claims, and looks at the name again at
// every call: what another process of this uid does to the name between two calls decides where
// the next call lands, never the descriptor held from before.
describe('the handoff directory held across calls', () => {
  const handoffFds = (handoff: string): string[] =>
    fs.readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`) === handoff;
      } catch {
        return false; // the descriptor of the listing itself, closed since
      }
    });

  it('is opened once for many cycles (where there is /proc; without it, never held), and let go by close()', async () => {
    const mgr = manager();
    const handoff = path.join(mgr.root, 'handoff');
    for (let round = 0; round < 5; round++) {
      const claimed = await mgr.claim(await (await mgr.write(`job ${round}`)).handoff({ ttlMs: 60_000 }));
      await claimed.consume();
      expect(handoffFds(handoff)).toHaveLength(procIsOurs() ? 1 : 0);
    }
    await mgr.close();
    expect(handoffFds(handoff)).toEqual([]);
  });

  it('renamed away and replaced by a new directory: the next handoff lands in the new one, nothing in the old', async () => {
    const mgr = manager();
    const first = await mgr.claim(await (await mgr.write('first')).handoff({ ttlMs: 60_000 }));
    await first.consume();
    const handoff = path.join(mgr.root, 'handoff');
    const moved = path.join(scratchDir(), 'moved-handoff');
    fs.renameSync(handoff, moved);
    fs.mkdirSync(handoff, { mode: 0o700 });
    // The name is looked at once per run of JavaScript: a swap is seen by the first call of a later
    // run. In tmpfs, where write() makes no trip to the thread pool, the consume above and the
    // handoff below would otherwise share this run.
    await new Promise((resolve) => setImmediate(resolve));
    const ticket = await (await mgr.write('second')).handoff({ ttlMs: 60_000 });
    expect(fs.readdirSync(moved)).toEqual([]);
    expect(fs.readdirSync(handoff)).toHaveLength(1);
    const other = manager({ root: mgr.root });
    const claimed = await other.claim(ticket);
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('second');
    await claimed.consume();
  });

  it('swapped for a symlink after a cycle: handoff and claim are UnsafeRootErrors, the target untouched', async () => {
    const mgr = manager();
    const ticket = await (await mgr.write('waiting', { suffix: '.bin' })).handoff({ ttlMs: 60_000 });
    const handoff = path.join(mgr.root, 'handoff');
    const decoy = decoyWithEntries();
    const before = listTree(decoy);
    fs.renameSync(handoff, path.join(scratchDir(), 'aside'));
    fs.symlinkSync(decoy, handoff);
    const file = await mgr.write('x', { suffix: '.bin' });
    await expect(file.handoff({ ttlMs: 60_000 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_UNSAFE_ROOT', reason: 'not-a-directory' });
    expect(fs.readFileSync(file.path, 'utf8')).toBe('x');
    await expect(mgr.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_UNSAFE_ROOT', reason: 'not-a-directory' });
    expect(listTree(decoy)).toEqual(before);
  });

  it('opened to others after a cycle: the next handoff and claim are refused as writable by others', async () => {
    const mgr = manager();
    const ticket = await (await mgr.write('waiting')).handoff({ ttlMs: 60_000 });
    fs.chmodSync(path.join(mgr.root, 'handoff'), 0o777);
    const file = await mgr.write('x');
    await expect(file.handoff({ ttlMs: 60_000 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_UNSAFE_ROOT', reason: 'writable-by-others' });
    expect(fs.readFileSync(file.path, 'utf8')).toBe('x');
    await expect(mgr.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_UNSAFE_ROOT', reason: 'writable-by-others' });
  });

  it('a claim outlives its manager\'s close(): it still consumes through the directory it holds, and nothing else', async () => {
    const producer = manager();
    const ticket = await (await producer.write('job')).handoff({ ttlMs: 60_000 });
    const worker = manager({ root: producer.root });
    const claimed = await worker.claim(ticket);
    await worker.close();
    // Descriptors freed by the close are taken again: a number reused must not be reached.
    const decoy = decoyWithEntries();
    const before = listTree(decoy);
    const reused = Array.from({ length: 8 }, () => fs.openSync(decoy, 'r'));
    try {
      await claimed.consume();
    } finally {
      for (const fd of reused) fs.closeSync(fd);
    }
    expect(listTree(decoy)).toEqual(before);
    expect(fs.readdirSync(path.join(producer.root, 'handoff'))).toEqual([]);
  });
});

describe('staging and the sweep', () => {
  it('300 handoffs while two other processes sweep with no grace period: every ticket names a complete, claimable entry', async () => {
    const root = path.join(scratchDir(), 'root');
    const mgr = new TempFileManager({ root, graceMs: 0, sweepOnStart: false, exitHook: false });
    mgr.file().removeSync(); // the root and the session exist before the sweepers start
    await start('sweep-loop.mjs', [root]);
    await start('sweep-loop.mjs', [root]);
    const tickets: { ticket: HandoffTicket; body: string }[] = [];
    for (let round = 0; round < 300; round++) {
      const body = `upload ${round} `.repeat(1 + (round % 50));
      const file = await mgr.write(body, { suffix: '.bin', hash: 'sha256' });
      tickets.push({ ticket: await file.handoff({ ttlMs: 600_000 }), body });
    }
    for (const { ticket, body } of tickets) {
      const claimed = await mgr.claim(ticket, { verifyDigest: true });
      expect(fs.readFileSync(claimed.path, 'utf8')).toBe(body);
      await claimed.consume();
    }
    await mgr.close();
  }, 120_000);
});

describe('the lease heartbeat', () => {
  it('a symlink planted at a held name never has its target touched by the heartbeat', async () => {
    const canary = path.join(scratchDir(), 'canary');
    fs.writeFileSync(canary, 'outside');
    fs.chmodSync(canary, 0o644);
    const mgr = manager({ staleMs: 2000 }); // a beat every second
    const ticket = await (await mgr.write('held bytes')).handoff({ ttlMs: 60_000 });
    const claimed = await mgr.claim(ticket);
    fs.renameSync(claimed.path, `${claimed.path}.aside`);
    fs.symlinkSync(canary, claimed.path);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(fs.statSync(canary).mode & 0o7777).toBe(0o644);
    expect(fs.readFileSync(canary, 'utf8')).toBe('outside');
    fs.unlinkSync(claimed.path);
    fs.renameSync(`${claimed.path}.aside`, claimed.path);
    await claimed.consume();
  });
});
