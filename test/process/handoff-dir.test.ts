import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
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
