import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { TempFileManager, type HandoffTicket } from '../../src/index.js';
import { nextJson, startChild, type RunningChild } from '../helpers/child.js';
import { needs } from '../helpers/privileges.js';
import { EXT4_WITHOUT_DTYPE, listsTypes, mountExt4WithoutDtype } from '../helpers/no-dtype.js';
import { scratchDir } from '../helpers/roots.js';
import { scaledRounds } from '../helpers/scale.js';

const cli = path.join(import.meta.dirname, '../../dist/cli.js');
const execFileAsync = promisify(execFile);
/** Rounds of: a process killed with its files (an orphan), a CLI sweep, a CLI `ls`. */
const CLI_ROUNDS = scaledRounds(10, 3);
const WAITING = 8;

const children: RunningChild[] = [];
afterEach(async () => {
  for (const running of children.splice(0)) {
    running.child.kill('SIGKILL');
    await running.ended;
  }
});

async function cliRun(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function start(script: string, args: string[], env: NodeJS.ProcessEnv): RunningChild {
  const running = startChild(script, args, env);
  children.push(running);
  return running;
}

/** Ends a child by closing its stdin, and reads the summary it prints last. */
async function finish<T>(running: RunningChild): Promise<T> {
  running.child.stdin!.end();
  const ended = await running.ended;
  let last: T | undefined;
  for (let line = await running.lines.next(); !line.done; line = await running.lines.next()) last = JSON.parse(line.value) as T;
  if (last === undefined) throw new Error(`the child printed no summary: ${ended.stderr}`);
  return last;
}

/** A process that makes files under `root`, then is killed: its session is an orphan for the sweeps. */
async function orphan(root: string, env: NodeJS.ProcessEnv): Promise<void> {
  const maker = start('orphan-maker.mjs', [root, '300', '2000'], env);
  await nextJson(maker);
  maker.child.kill('SIGKILL');
  await maker.ended;
}

const CASES = [
  { where: 'an ext4 made without d_type', noDtype: true, noProc: false },
  { where: 'an ext4 made without d_type, without /proc', noDtype: true, noProc: true },
  { where: 'the ordinary file system (with d_type)', noDtype: false, noProc: false },
] as const;

// On a file system that gives no entry types (DT_UNKNOWN: ext4 -O ^filetype, some network and
// FUSE file systems, older XFS), Node's readdir and opendir lstat each name after listing it,
// and one name gone in between failed the whole listing: most sweeps of a busy root failed
// ("Could not read the root"), and the handoff listing took the ENOENT for its directory gone and
// stopped. Here sessions start and end, entries come and go and killed processes leave orphans
// while two processes sweep without pause and the CLI sweeps and lists: every sweep must
// succeed, no live file may change, and every listing must show every waiting entry.
describe('sweeps and listings while names vanish under them', () => {
  it.for(CASES)('on $where: every sweep succeeds, nothing live is lost, no listing stops early', { timeout: 240_000 }, async ({ noDtype, noProc }, ctx) => {
    if (noDtype) needs(ctx, EXT4_WITHOUT_DTYPE);
    const base = noDtype ? mountExt4WithoutDtype() : scratchDir();
    const root = path.join(base, 'root');
    const env: NodeJS.ProcessEnv = noProc ? { TEMPFILE_MANAGER_NO_PROC: '1' } : {};
    const owner = new TempFileManager({ root, staleMs: 2000, graceMs: 0, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    try {
      const live = await Promise.all(Array.from({ length: 16 }, (_, i) => owner.write(`live ${i}`)));
      const tickets: HandoffTicket[] = [];
      for (let i = 0; i < WAITING; i++) tickets.push(await (await owner.write(`waiting ${i}`)).handoff({ ttlMs: 3_600_000 }));
      expect(listsTypes(root)).toBe(!noDtype);

      const churners = [0, 1].map(() => start('session-churn.mjs', [root], env));
      const sweepers = [0, 1].map(() => start('sweep-until.mjs', [root], env));
      for (const running of [...churners, ...sweepers]) await nextJson(running);
      const cliFailures: string[] = [];
      const missedEntries: string[] = [];
      for (let round = 0; round < CLI_ROUNDS; round++) {
        await orphan(root, env);
        const sweep = await cliRun(env, 'sweep', '--root', root, '--json');
        if (sweep.code !== 0) cliFailures.push(`sweep: exit ${sweep.code}: ${sweep.stderr}${sweep.stdout}`);
        const ls = await cliRun(env, 'ls', '--root', root, '--json');
        if (ls.code !== 0) cliFailures.push(`ls: exit ${ls.code}: ${ls.stderr}`);
        else {
          const listed = new Set((JSON.parse(ls.stdout) as { handoff: { id: string }[] }).handoff.map((entry) => entry.id));
          for (const ticket of tickets) if (!listed.has(ticket.id)) missedEntries.push(`ls ${round} missed ${ticket.id}`);
        }
      }
      const churned = await Promise.all(churners.map((c) => finish<{ rounds: number; losses: string[] }>(c)));
      const swept = await Promise.all(sweepers.map((s) => finish<{ sweeps: number; failures: string[]; errors: unknown[] }>(s)));

      expect(cliFailures).toEqual([]);
      expect(missedEntries).toEqual([]);
      expect(swept.flatMap((s) => s.failures)).toEqual([]);
      expect(swept.flatMap((s) => s.errors)).toEqual([]);
      expect(churned.flatMap((c) => c.losses)).toEqual([]);
      live.forEach((file, i) => expect(fs.readFileSync(file.path, 'utf8')).toBe(`live ${i}`));
      for (const [i, ticket] of tickets.entries()) {
        const held = await owner.claim(ticket);
        expect(fs.readFileSync(held.path, 'utf8')).toBe(`waiting ${i}`);
        await held.consume();
      }
    } finally {
      await owner.close();
    }
  });
});
