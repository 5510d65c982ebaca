import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startHeartbeat } from '../../src/owner/heartbeat.js';
import { heldAt, lockAt } from '../helpers/beat-names.js';
import { beating } from '../../src/owner/registry.js';
import { manager, scratchDir } from '../helpers/roots.js';
import { until } from '../helpers/wait.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('keeps the session lock fresh, and takes it again when it was removed under it', async () => {
  const mgr = manager({ staleMs: 2000 });
  const file = mgr.file();
  const lock = `${mgr.sessionPath}.lock`;
  const first = fs.statSync(lock).mtimeMs;
  // Refreshed every staleMs / 2; waited for, not slept on: a busy machine fires timers late.
  await until(() => fs.statSync(lock).mtimeMs > first, 30_000, 'a refresh of the session lock');
  const removedAt = Date.now();
  fs.rmSync(lock, { recursive: true });
  // The heartbeat found it gone; the manager logged it and made the lock again.
  await until(() => fs.existsSync(lock), 30_000, 'the session lock made again');
  expect(fs.statSync(lock).mtimeMs).toBeGreaterThanOrEqual(removedAt - 1000); // a new one (mtime's granularity aside)
  expect(fs.existsSync(file.path)).toBe(true);
  await mgr.close();
  expect(fs.existsSync(lock)).toBe(false);
});

// The heartbeat of sessions and leases (owner/heartbeat.ts), from an attacker's side: whatever is
// planted at the name it refreshes, nothing but the owner's own inode is touched, and no beat blocks.
describe('the heartbeat', () => {
  const old = new Date('2001-01-01T00:00:00Z');

  function victim(dir: string): string {
    const file = path.join(dir, 'victim');
    fs.writeFileSync(file, 'keep me');
    fs.utimesSync(file, old, old);
    return file;
  }

  it('refreshes its own directory or file, stops when asked, and is listed while it beats', async () => {
    const dir = scratchDir();
    const lock = lockAt(dir);
    fs.mkdirSync(lock);
    fs.utimesSync(lock, old, old);
    const heartbeat = startHeartbeat({ at: lock, shown: lock, kind: 'session', onGone: () => {}, beatAtStart: true });
    expect(fs.statSync(lock).mtimeMs).toBeGreaterThan(old.getTime());
    expect(beating()).toContainEqual({ shown: lock, kind: 'session' });
    const first = fs.statSync(lock).ctimeMs;
    await until(() => fs.statSync(lock).ctimeMs > first, 30_000, 'a beat');
    heartbeat.stop();
    expect(beating()).not.toContainEqual({ shown: lock, kind: 'session' });
  });

  it.each(['symlink', 'hard link', 'fifo'] as const)('a %s planted at the name is never touched through, and the beat goes on', async (planted) => {
    const dir = scratchDir();
    const target = victim(dir);
    const at = heldAt(dir);
    if (planted === 'symlink') fs.symlinkSync(target, at);
    if (planted === 'hard link') fs.linkSync(target, at);
    if (planted === 'fifo') execFileSync('mkfifo', [at]);
    const fifoBefore = fs.lstatSync(at).mtimeMs;
    let gone = 0;
    const heartbeat = startHeartbeat({ at, shown: at, kind: 'lease', onGone: () => (gone += 1), beatAtStart: true });
    await sleep(1300); // the start beat and one on the timer: neither blocked (the test would time out)
    heartbeat.stop();
    expect(fs.statSync(target).mtimeMs).toBe(old.getTime());
    expect(fs.readFileSync(target, 'utf8')).toBe('keep me');
    if (planted === 'fifo') expect(fs.lstatSync(at).mtimeMs).toBe(fifoBefore);
    expect(gone).toBe(0);
    expect(heartbeat.gone).toBe(false);
  });

  it('a name taken away stops the beat and says so once', async () => {
    const dir = scratchDir();
    const at = heldAt(dir);
    fs.writeFileSync(at, 'x');
    let gone = 0;
    const heartbeat = startHeartbeat({ at, shown: at, kind: 'lease', onGone: () => (gone += 1) });
    fs.renameSync(at, path.join(dir, 'taken'));
    await until(() => gone > 0, 30_000, 'the beat that finds the name gone');
    await sleep(2300); // two more beats' time: a beat still running would say it again
    expect(gone).toBe(1);
    expect(heartbeat.gone).toBe(true);
    expect(beating()).not.toContainEqual({ shown: at, kind: 'lease' });
  });
});
