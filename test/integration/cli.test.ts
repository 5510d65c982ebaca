import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { TempFileManager, type HandoffTicket } from '../../src/index.js';
import { hostId } from '../../src/owner/process-identity.js';
import { sessionName } from '../../src/base/layout.js';
import { CHATTR, needs } from '../helpers/privileges.js';
import { deadSessionName, freshRoot, manager, markedRoot, scratchDir } from '../helpers/roots.js';

const cli = path.join(import.meta.dirname, '../../dist/cli.js');
const execFileAsync = promisify(execFile);

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runWith({}, ...args);
}

async function runWith(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(cli, args, { encoding: 'utf8', env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A session directory named for a dead process of this host, with files in it. */
function plantOrphan(root: string, files = 3, n = 0): string {
  if (!fs.existsSync(root)) markedRoot(root);
  const dir = path.join(root, deadSessionName(hostId(), 3_600_000, '0123456789abcdef', 4_194_303 - n));
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(dir, i ? `f${i}` : 'sub/f0'), 'x'.repeat(10));
  return dir;
}

describe('the tempfile-manager CLI (built binary)', () => {
  it('prints help with exit code 0', async () => {
    const { code, stdout } = await run('--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/Usage: tempfile-manager <command> \[--root DIR\]/);
    expect(stdout).toContain(`default root, ${path.join(os.tmpdir(), `tempfile-manager-${process.getuid!()}`)}`);
    for (const exit of ['0', '1', '2', '3', '70']) expect(stdout).toMatch(new RegExp(`^  ${exit} +\\w`, 'm'));
  });

  it('prints its version', async () => {
    const { code, stdout } = await run('--version');
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../package.json'), 'utf8')).version);
  });

  it.each([
    [[], /a command is needed/],
    [['frobnicate', '--root', '/tmp'], /unknown command `frobnicate`/],
    [['sweep', '--root', ''], /--root takes a directory/],
    [['sweep', '--root', '/tmp', '--bogus'], /bogus/],
    [['sweep', '--root', '/tmp', '--stale-ms', 'soon'], /--stale-ms must be a whole number of milliseconds/],
    [['sweep', '--root', '/tmp', '--stale-ms', '10'], /from 2000 to 2147483647, got `10`/],
    [['ls', '--root', '/tmp', '--dry-run'], /--dry-run applies to sweep only/],
    [['sweep', 'extra', '--root', '/tmp'], /unexpected argument `extra`/],
  ])('refuses %j with exit code 2 and a hint', async (args, message) => {
    const { code, stderr, stdout } = await run(...(args as string[]));
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toMatch(/--help/);
    expect(stdout).toBe('');
  });

  // Every duration flag feeds a timer (--watch waits max(--stale-ms, --grace-ms)): one past 2^31 - 1
  // overflowed setTimeout, which then fired at once. Each is a whole number in a stated range.
  it.each([
    ['--stale-ms', '2147483648', 'from 2000 to 2147483647'],
    ['--stale-ms', '9'.repeat(400), 'from 2000 to 2147483647'],
    ['--stale-ms', '1999', 'from 2000 to 2147483647'],
    ['--grace-ms', '2147483648', 'from 0 to 2147483647'],
    ['--grace-ms', '9'.repeat(400), 'from 0 to 2147483647'],
    ['--grace-ms', '-1', 'from 0 to 2147483647'],
    ['--grace-ms', '1.5', 'from 0 to 2147483647'],
    ['--grace-ms', '1e3', 'from 0 to 2147483647'],
    ['--grace-ms', '', 'from 0 to 2147483647'],
  ])('refuses %s %s with exit code 2, naming the flag, the value and the range', async (flag, value, range) => {
    const root = markedRoot(freshRoot());
    const orphan = plantOrphan(root);
    const { code, stderr, stdout } = await run('sweep', '--root', root, '--watch', `${flag}=${value}`);
    expect(code).toBe(2);
    expect(stderr).toContain(`${flag} must be a whole number of milliseconds ${range}, got \`${value.length > 40 ? `${value.slice(0, 40)}…` : value}\``);
    expect(stderr).toMatch(/--help/);
    expect(stdout).toBe('');
    expect(fs.existsSync(orphan)).toBe(true);
  });

  it('takes --stale-ms and --grace-ms at 2^31 - 1, the most a timer takes', async () => {
    const root = markedRoot(freshRoot());
    const orphan = plantOrphan(root);
    const { code, stdout } = await run('sweep', '--root', root, '--json', '--stale-ms', '2147483647', '--grace-ms', '2147483647');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ sessionsRemoved: 1 }); // a dead process of this machine: at once
    expect(fs.existsSync(orphan)).toBe(false);
  });

  it('--watch with --grace-ms 2^31 - 1 waits for its second look: it does not sweep again at once', async () => {
    const root = markedRoot(freshRoot());
    // A session of another machine (another boot id): watched for --grace-ms before it can be judged.
    const other = path.join(root, sessionName({ host: 'elsewhere', pid: 4242, thread: 4242, start: '00000000.1.1', created: Date.now() - 3_600_000, random: '0123456789abcdef' }));
    fs.mkdirSync(other);
    const child = execFile(cli, ['sweep', '--root', root, '--json', '--watch', '--grace-ms', '2147483647']);
    let exited = false;
    child.once('exit', () => (exited = true));
    try {
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(exited).toBe(false); // the timer overflowed to 1 ms: the second sweep ran and the CLI exited
    } finally {
      child.kill('SIGKILL');
    }
    expect(fs.existsSync(other)).toBe(true);
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

  it('ls and sweep without --root use the library’s default root (a manager’s, under TMPDIR)', async () => {
    const tmp = path.dirname(freshRoot());
    const previous = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    let mgr;
    try {
      mgr = new TempFileManager({ sweepOnStart: false, exitHook: false });
    } finally {
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
    }
    try {
      expect(mgr.root).toBe(path.join(tmp, `tempfile-manager-${process.getuid!()}`));
      fs.writeFileSync(mgr.file().path, 'abc');
      const orphan = plantOrphan(mgr.root);
      const ls = await runWith({ TMPDIR: tmp }, 'ls', '--json', '--grace-ms', '0');
      expect(ls.code).toBe(0);
      expect(JSON.parse(ls.stdout)).toMatchObject({
        root: mgr.root,
        sessions: expect.arrayContaining([expect.objectContaining({ pid: process.pid, state: 'live', bytes: 3 })]),
      });
      const sweep = await runWith({ TMPDIR: tmp }, 'sweep', '--grace-ms', '0');
      expect(sweep.code).toBe(0);
      expect(sweep.stdout).toContain(`swept ${mgr.root}`);
      expect(fs.existsSync(orphan)).toBe(false);
      expect(fs.existsSync(mgr.sessionPath)).toBe(true);
    } finally {
      await mgr.close();
    }
  });

  it('says there is nothing to do for a root that does not exist', async () => {
    const { code, stdout } = await run('sweep', '--root', freshRoot());
    expect(code).toBe(0);
    expect(stdout).toMatch(/does not exist: nothing to do/);
  });

  it('prints a path with backslashes as it is, as a Windows path reads, while a name that looks like an escape stays apart', async () => {
    const windowsLike = path.join(scratchDir(), 'C:\\Users\\ana\\Temp');
    const { code, stdout } = await run('sweep', '--root', windowsLike);
    expect(code).toBe(0);
    expect(stdout).toContain(`${windowsLike} does not exist`);
    const escapeLike = path.join(scratchDir(), 'a\\x0a');
    const shown = await run('sweep', '--root', escapeLike);
    expect(shown.stdout).toContain(`${path.dirname(escapeLike)}/a\\x5cx0a does not exist`);
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
    expect(human.stdout).toMatch(/^HANDOFF\s+KEY\s+STATE\s+EXPIRES\s+BYTES\s+HOLDER/m);
    // KEY is the short form an error names the handoff by: a user matches one with the other.
    const keyIn = async (ticket: HandoffTicket) => /handoff ([0-9a-f]{16})/.exec(String(await mgr.claim({ ...ticket, meta: { edited: true } }).catch((err: Error) => err.message)))?.[1];
    expect(human.stdout).toMatch(new RegExp(`${waiting.id}\\s+${await keyIn(waiting)}\\s+waiting\\s+in 60m\\s+7 B\\s+-`));
    expect(human.stdout).toMatch(new RegExp(`${held.id}\\s+${await keyIn(held)}\\s+claimed\\s+in 60m\\s+4 B\\s+${hostId()}:${process.pid}`));
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

  it('exits 1 and lists the paths it could not remove', async (ctx) => {
    needs(ctx, CHATTR);
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
    expect(stdout).toMatch(/\r\u001b\[Kremoved [1-9]\d* files, [1-9]\d* B; 0 of 1 orphaned session done\.\.\./);
    expect(stdout).toMatch(/removed 1 orphaned session: 50 files/);
  });

  it('counts the sessions it will remove before it starts, and shows that total as it goes', async () => {
    const root = freshRoot();
    for (let n = 0; n < 3; n += 1) plantOrphan(root, 40, n);
    const { stdout } = await execFileAsync('script', ['-qec', `${cli} sweep --root ${root} --grace-ms 0`, '/dev/null'], {
      encoding: 'utf8',
    });
    const totals = [...stdout.matchAll(/; (\d) of 3 orphaned sessions done/g)].map((m) => Number(m[1]));
    expect(totals.length).toBeGreaterThan(0);
    expect(Math.max(...totals)).toBeLessThanOrEqual(3);
    expect(stdout).toMatch(/removed 3 orphaned sessions: 120 files/);
  });

  it('mgr.sweep() reports the orphaned sessions found at the start as the total, and each one done', async () => {
    const mgr = manager({ graceMs: 0 });
    mgr.file();
    for (let n = 0; n < 3; n += 1) plantOrphan(mgr.root, 5, n);
    const seen: { sessionsDone: number; sessionsTotal: number; filesRemoved: number }[] = [];
    const report = await mgr.sweep({ onProgress: (p) => seen.push(p) });
    expect(report.sessionsRemoved).toBe(3);
    expect(seen.every((p) => p.sessionsTotal === 3 && p.sessionsDone <= 3)).toBe(true);
    expect([...new Set(seen.map((p) => p.sessionsDone).filter((n) => n > 0))]).toEqual([1, 2, 3]);
    expect(seen.at(-1)).toMatchObject({ sessionsDone: 3, sessionsTotal: 3, filesRemoved: 15 });
  });

  it('says "entries", never "entrys"', async () => {
    const mgr = manager();
    const ticket = await (await mgr.write('gone soon')).handoff({ ttlMs: 1 });
    const other = await (await mgr.write('held')).handoff({ ttlMs: 3_600_000 });
    const claimed = await mgr.claim(other);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const dry = await run('sweep', '--root', mgr.root, '--dry-run');
    expect(dry.stdout).toMatch(/would remove 1 expired or consumed handoff entry; left 1 claimed entry/);
    const third = await mgr.claim(await (await mgr.write('held too')).handoff({ ttlMs: 3_600_000 }));
    await (await mgr.write('gone too')).handoff({ ttlMs: 1 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const two = await run('sweep', '--root', mgr.root);
    expect(two.stdout).toMatch(/removed 2 expired or consumed handoff entries; left 2 claimed entries/);
    expect(`${dry.stdout}${two.stdout}`).not.toMatch(/entrys/);
    expect(ticket.id).not.toBe(other.id);
    await claimed.consume();
    await third.consume();
  });
});
