import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture, runToEnd } from '../helpers/child.js';
import { scratchDir } from '../helpers/roots.js';

// Node's permission model (--permission; Node 20's --experimental-permission) withholds futimes,
// writes through /proc/<pid>/fd/<n>/..., symlink() and worker threads. Under a policy that reads
// everywhere and writes to the root and the keep() destinations alone, with worker threads, every
// call works and the heartbeat goes on while the event loop is blocked; a policy that withholds
// what the library needs is refused at construction, by a typed error naming the flag.

const nodeMajor = Number(process.versions.node.split('.')[0]);
const PERMISSION = nodeMajor >= 22 ? '--permission' : '--experimental-permission';

interface Step {
  step: string;
  ok: boolean;
  code?: string;
  message?: string;
  typed?: boolean;
  option?: string;
}
interface Report {
  steps: Step[];
  left: string[];
  lockBeaten: boolean;
  rootExists: boolean;
}

async function underPolicy(flags: (places: { root: string; keepDir: string }) => string[], noProc: boolean): Promise<Report & { root: string }> {
  const dir = scratchDir();
  const root = path.join(dir, 'root');
  const keepDir = path.join(dir, 'keep');
  fs.mkdirSync(keepDir, { mode: 0o700 });
  const done = await runToEnd(process.execPath, [PERMISSION, ...flags({ root, keepDir }), fixture('permission-child.mjs')], {
    env: { PERMISSION_CHILD: JSON.stringify({ root, keepDir }), TEMPFILE_MANAGER_NO_PROC: noProc ? '1' : '' },
    timeoutMs: 120_000,
    what: 'the child under the permission model',
  });
  return { ...(JSON.parse(done.stdout.trim().split('\n').at(-1)!) as Report), root };
}

describe('under Node\'s permission model', () => {
  it.for([false, true])('reads everywhere, writes to the root and the keep() destination, --allow-worker (without /proc: %s): every call works, the heartbeat moves while the event loop is blocked, close() leaves nothing', async (noProc) => {
    const report = await underPolicy(({ root, keepDir }) => ['--allow-fs-read=*', `--allow-fs-write=${root}/*`, `--allow-fs-write=${keepDir}/*`, '--allow-worker'], noProc);
    const failed = report.steps.filter((step) => !step.ok);
    // The one refusal asked for: a keep() outside the writes allowed, typed, naming the flag.
    expect(failed.map((step) => step.step)).toEqual(['keep() outside the allowed writes']);
    expect(failed[0]).toMatchObject({ code: 'ERR_TEMPFILE_IO', typed: true });
    expect(failed[0]!.message).toContain(`--allow-fs-write=${path.dirname(report.root)}/*`);
    expect(report.lockBeaten).toBe(true);
    expect(report.left).toEqual([]); // the session and its lock
  });

  it.for([false, true])('without --allow-worker (without /proc: %s): refused at construction, naming the flag, before anything is made', async (noProc) => {
    const report = await underPolicy(({ root }) => ['--allow-fs-read=*', `--allow-fs-write=${root}/*`], noProc);
    expect(report.steps).toEqual([expect.objectContaining({ step: 'constructor', ok: false, code: 'ERR_TEMPFILE_INVALID_OPTION', typed: true, option: '--allow-worker' })]);
    expect(report.steps[0]!.message).toContain('Start node with --allow-worker');
    expect(report.rootExists).toBe(false);
  });

  it('writes allowed elsewhere than the root: refused at construction, naming --allow-fs-write=<root>/*, before anything is made', async () => {
    const report = await underPolicy(({ keepDir }) => ['--allow-fs-read=*', `--allow-fs-write=${keepDir}`, '--allow-worker'], false);
    expect(report.steps).toEqual([expect.objectContaining({ step: 'constructor', ok: false, code: 'ERR_TEMPFILE_IO', typed: true })]);
    expect(report.steps[0]!.message).toContain(`--allow-fs-write=${report.root}/*`);
    expect(report.rootExists).toBe(false);
  });
});
