// A process of the same user swaps a directory of a dead session for a symlink after the sweep
// emptied it and before its rmdir. The sweep removes the link (never what it points to), finds
// the directory that was renamed away in the session, removes it too, and reports no error.
import * as nodeFs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sessionLockPath } from '../../src/base/layout.js';
import { hostId } from '../../src/owner/process-identity.js';
import { FaultyFs } from '../helpers/faulty-fs.js';
import { deadSessionNameHere, freshRoot, layeredManager, markedRoot, scratchDir } from '../helpers/roots.js';

/** A dead session of this machine holding `sub/` with two files; returns the session's path. */
function plantDeadSession(root: string): string {
  const session = path.join(root, deadSessionNameHere(hostId()));
  nodeFs.mkdirSync(path.join(session, 'sub'), { recursive: true });
  nodeFs.writeFileSync(path.join(session, 'sub', 'a'), 'x');
  nodeFs.writeFileSync(path.join(session, 'sub', 'b'), 'y');
  nodeFs.mkdirSync(sessionLockPath(session));
  return session;
}

/** A directory outside the root with one file: what the planted symlink points to. */
function plantVictim(): string {
  const victim = scratchDir();
  nodeFs.mkdirSync(path.join(victim, 'sub'));
  nodeFs.writeFileSync(path.join(victim, 'sub', 'precious'), 'keep me');
  return victim;
}

describe('a dead session whose directory is swapped for a symlink between its walk and its rmdir', () => {
  it('the sweep reports no error, leaves the target untouched and nothing of the session', async () => {
    const root = markedRoot(freshRoot());
    const session = plantDeadSession(root);
    const victim = plantVictim();
    const faulty = new FaultyFs();
    let swapped = false;
    const swap = (target: string) => {
      nodeFs.renameSync(target, `${target}.old`);
      nodeFs.symlinkSync(path.join(victim, 'sub'), target);
      swapped = true;
    };
    // A sweep of a local disk makes its calls inline; of another, through the thread pool.
    faulty.before('rmdir', (target) => target.endsWith('/sub'), swap);
    faulty.before('rmdirSync', (target) => target.endsWith('/sub'), swap);
    const sweeper = layeredManager({ root, fs: faulty.fs, staleMs: 2000, graceMs: 0, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    try {
      const report = await sweeper.sweep();
      expect(swapped).toBe(true);
      expect(report.errors).toEqual([]);
      expect(report.sessionsRemoved).toBe(1);
      expect(nodeFs.existsSync(session)).toBe(false);
      expect(nodeFs.readdirSync(root).filter((name) => name.startsWith('session_'))).toEqual([]);
      expect(nodeFs.readFileSync(path.join(victim, 'sub', 'precious'), 'utf8')).toBe('keep me');
    } finally {
      await sweeper.close();
    }
  });
});

describe("a TempDir's subdirectory swapped for a symlink between its walk and its rmdir", () => {
  it.each(['remove', 'removeSync'] as const)('%s(): no error, the target untouched, nothing of the directory left', async (how) => {
    const victim = plantVictim();
    const faulty = new FaultyFs();
    let swapped = false;
    faulty.before(how === 'remove' ? 'rmdir' : 'rmdirSync', (target) => target.endsWith('/sub'), (target) => {
      nodeFs.renameSync(target, `${target}.old`);
      nodeFs.symlinkSync(path.join(victim, 'sub'), target);
      swapped = true;
    });
    const mgr = layeredManager({ root: freshRoot(), fs: faulty.fs, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    try {
      const dir = mgr.dir();
      nodeFs.mkdirSync(path.join(dir.path, 'sub'));
      nodeFs.writeFileSync(path.join(dir.path, 'sub', 'a'), 'x');
      if (how === 'remove') await dir.remove();
      else dir.removeSync();
      expect(swapped).toBe(true);
      expect(nodeFs.existsSync(dir.path)).toBe(false);
      expect(nodeFs.readFileSync(path.join(victim, 'sub', 'precious'), 'utf8')).toBe('keep me');
    } finally {
      await mgr.close();
    }
  });
});
