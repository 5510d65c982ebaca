import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { hostId } from '../../src/process-identity.js';
import { freshRoot, manager } from '../helpers/roots.js';

const cli = path.join(import.meta.dirname, '../../dist/cli.js');
const execFileAsync = promisify(execFile);

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(cli, args, { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A session directory named for a dead process of this host, with files in it. */
function plantOrphan(root: string, files = 3): string {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const created = (Date.now() - 3_600_000).toString(36);
  const dir = path.join(root, `${hostId()}_4194303_00000000.1_${created}_0123456789abcdef`);
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(dir, i ? `f${i}` : 'sub/f0'), 'x'.repeat(10));
  return dir;
}

describe('the tempfile-manager CLI (built binary)', () => {
  it('prints help with exit code 0', async () => {
    const { code, stdout } = await run('--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/Usage: tempfile-manager <command> --root DIR/);
    expect(stdout).toMatch(/Exit codes/);
  });

  it('prints its version', async () => {
    const { code, stdout } = await run('--version');
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../package.json'), 'utf8')).version);
  });

  it.each([
    [[], /a command is needed/],
    [['frobnicate', '--root', '/tmp'], /unknown command `frobnicate`/],
    [['sweep'], /--root DIR is required/],
    [['sweep', '--root', '/tmp', '--bogus'], /bogus/],
    [['sweep', '--root', '/tmp', '--stale-ms', 'soon'], /--stale-ms takes a whole number/],
    [['sweep', '--root', '/tmp', '--stale-ms', '10'], /at least 2000/],
    [['ls', '--root', '/tmp', '--dry-run'], /--dry-run applies to sweep only/],
    [['sweep', 'extra', '--root', '/tmp'], /unexpected argument `extra`/],
  ])('refuses %j with exit code 2 and a hint', async (args, message) => {
    const { code, stderr, stdout } = await run(...(args as string[]));
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toMatch(/--help/);
    expect(stdout).toBe('');
  });

  it('refuses an unsafe root with exit code 3, touching nothing', async () => {
    const root = freshRoot();
    fs.mkdirSync(root, { mode: 0o777 });
    fs.chmodSync(root, 0o777);
    const orphan = plantOrphan(root);
    const { code, stderr } = await run('sweep', '--root', root, '--grace-ms', '0');
    expect(code).toBe(3);
    expect(stderr).toMatch(/writable by group or others/);
    expect(fs.existsSync(orphan)).toBe(true);
  });

  it('says there is nothing to do for a root that does not exist', async () => {
    const { code, stdout } = await run('sweep', '--root', freshRoot());
    expect(code).toBe(0);
    expect(stdout).toMatch(/does not exist: nothing to do/);
  });

  it('ls lists live and orphaned sessions with host, pid, files and bytes', async () => {
    const mgr = manager({ graceMs: 0 });
    fs.writeFileSync(mgr.file().path, 'hello');
    const orphan = plantOrphan(mgr.root);
    const human = await run('ls', '--root', mgr.root, '--grace-ms', '0');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^STATE\s+HOST\s+PID\s+AGE\s+FILES\s+BYTES\s+SESSION/);
    expect(human.stdout).toMatch(new RegExp(`live\\s+${hostId()}\\s+${process.pid}\\s`));
    expect(human.stdout).toMatch(/orphan\s+\S+\s+4194303\s+60m\s+3\s+30 B/);
    const json = await run('ls', '--root', mgr.root, '--json', '--grace-ms', '0');
    const { sessions } = JSON.parse(json.stdout) as { sessions: Array<Record<string, unknown>> };
    expect(sessions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: mgr.sessionPath, pid: process.pid, state: 'live', files: 1, bytes: 5 }),
        expect.objectContaining({ path: orphan, state: 'orphan', files: 3, bytes: 30 }),
      ]),
    );
    expect(fs.existsSync(orphan)).toBe(true);
  });

  it('ls lists handoff entries with their expiry, state and holder', async () => {
    const mgr = manager();
    const waiting = await (await mgr.write('waiting')).handoff({ ttlMs: 3_600_000 });
    const held = await (await mgr.write('held')).handoff({ ttlMs: 3_600_000 });
    const claimed = await mgr.claim(held);
    const human = await run('ls', '--root', mgr.root);
    expect(human.stdout).toMatch(/^HANDOFF\s+STATE\s+EXPIRES\s+BYTES\s+HOLDER/m);
    expect(human.stdout).toMatch(new RegExp(`${waiting.id}\\s+waiting\\s+in 60m\\s+7 B\\s+-`));
    expect(human.stdout).toMatch(new RegExp(`${held.id}\\s+claimed\\s+in 60m\\s+4 B\\s+${hostId()}:${process.pid}`));
    const { handoff } = JSON.parse((await run('ls', '--root', mgr.root, '--json')).stdout) as { handoff: unknown[] };
    expect(handoff).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: waiting.id, state: 'waiting', expiresAt: waiting.expiresAt, bytes: 7 }),
        expect.objectContaining({ id: held.id, state: 'claimed', holder: { host: hostId(), pid: process.pid } }),
      ]),
    );
    await claimed.consume();
  });

  it('sweep --dry-run reports and removes nothing; sweep --json removes the orphan only', async () => {
    const mgr = manager();
    const mine = mgr.file();
    const orphan = plantOrphan(mgr.root, 5);
    const dry = await run('sweep', '--root', mgr.root, '--dry-run', '--grace-ms', '0');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/would remove 1 orphaned session: 5 files, 50 B/);
    expect(dry.stdout).toMatch(/left 1 live session/);
    expect(fs.existsSync(orphan)).toBe(true);
    const real = await run('sweep', '--root', mgr.root, '--json', '--grace-ms', '0');
    expect(real.code).toBe(0);
    expect(JSON.parse(real.stdout)).toMatchObject({
      dryRun: false, sessionsRemoved: 1, filesRemoved: 5, dirsRemoved: 2, bytesFreed: 50, liveSessionsSkipped: 1,
      handoffEntriesRemoved: 0, claimedEntriesSkipped: 0, errors: [],
    });
    expect(fs.existsSync(orphan)).toBe(false);
    expect(fs.existsSync(mine.path)).toBe(true);
  });

  it('exits 1 and lists the paths it could not remove', async () => {
    const root = freshRoot();
    const orphan = plantOrphan(root);
    const stuck = path.join(orphan, 'f1');
    fs.writeFileSync(stuck, 'x');
    const { execFileSync } = await import('node:child_process');
    execFileSync('chattr', ['+i', stuck]); // immutable, even for root
    try {
      const { code, stdout } = await run('sweep', '--root', root, '--grace-ms', '0');
      expect(code).toBe(1);
      expect(stdout).toMatch(/EPERM .*f1/);
    } finally {
      execFileSync('chattr', ['-i', stuck]);
    }
  });

  it('draws a progress line on a TTY, and none for scripts', async () => {
    const root = freshRoot();
    plantOrphan(root, 50);
    const piped = await run('sweep', '--root', root, '--grace-ms', '0', '--dry-run');
    expect(piped.stderr).toBe('');
    // `script` (bsdutils) runs the CLI on a pseudo-terminal.
    const { stdout } = await execFileAsync('script', ['-qec', `${cli} sweep --root ${root} --grace-ms 0`, '/dev/null'], {
      encoding: 'utf8',
    });
    expect(stdout).toMatch(/\rremoved 32 files, 320 B\.\.\./);
    expect(stdout).toMatch(/removed 1 orphaned session: 50 files/);
  });
});
