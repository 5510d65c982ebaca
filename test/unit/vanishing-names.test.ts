import nodeFs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { walkTree, walkTreeSync } from '../../src/disk/walk.js';
import { listEntries } from '../../src/handoff/entries.js';
import { newOwnerToken } from '../../src/handoff/lease.js';
import { hostId } from '../../src/owner/process-identity.js';
import { dataName, heldName, sessionLockPath } from '../../src/base/layout.js';
import { withoutEntryTypes, type Between } from '../helpers/untyped-listing.js';
import { deadSessionName, freshRoot, layeredManager, layOver, manager, markedRoot, scratchDir } from '../helpers/roots.js';
import { realFs, type FsLayer } from '../helpers/fs-layer.js';

/** A listing's context, its calls made on `layer` (laid over the test's disk). */
const context = (layer: FsLayer) => (layOver(layer), { staleMs: 2000, graceMs: 0, hostId: hostId() });

/** Removes (or renames, with `to`) each name of `victims` the first time it is listed. */
function vanishing(victims: (name: string) => boolean, to?: (name: string) => string): Between & { count: number } {
  const between = (dir: string, name: string) => {
    if (!victims(name)) return;
    between.count += 1;
    if (to) realFs.renameSync(`${dir}/${name}`, `${dir}/${to(name)}`);
    else realFs.rmSync(`${dir}/${name}`, { recursive: true });
  };
  between.count = 0;
  return between;
}

/** A tree of 100 files and a directory of 50 more. */
function plantTree(): string {
  const dir = path.join(scratchDir(), 'tree');
  realFs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  for (let i = 0; i < 100; i++) nodeFs.writeFileSync(path.join(dir, `f${i}`), 'x');
  for (let i = 0; i < 50; i++) nodeFs.writeFileSync(path.join(dir, 'sub', `g${i}`), 'x');
  return dir;
}

// On a file system without d_type, Node lstats each name it lists, and a name gone in between
// rejected the whole read with ENOENT. The fault layer here makes every listing untyped and
// removes chosen names exactly there: deterministic, and on any file system.
describe('a name vanishing between its listing and its lstat, on a file system without d_type', () => {
  it.for(['async', 'sync'] as const)('the %s walk counts every other entry, at the top and below', async (mode) => {
    const tree = plantTree();
    const gone = vanishing((name) => name === 'f7' || name === 'g3');
    layOver(withoutEntryTypes(gone));
    const options = { remove: false };
    const tally = mode === 'async' ? await walkTree(tree, options) : walkTreeSync(tree, options);
    expect(gone.count).toBe(2);
    expect(tally).toMatchObject({ files: 148, dirs: 2, bytes: 148, errors: [] });
  });

  it.for(['async', 'sync'] as const)('the %s walk removes every other entry and the tree', async (mode) => {
    const tree = plantTree();
    const gone = vanishing((name) => name === 'f7' || name === 'g3');
    layOver(withoutEntryTypes(gone));
    const options = { remove: true };
    const tally = mode === 'async' ? await walkTree(tree, options) : walkTreeSync(tree, options);
    expect(gone.count).toBe(2);
    expect(tally).toMatchObject({ files: 148, dirs: 2, errors: [] });
    expect(nodeFs.existsSync(tree)).toBe(false);
  });

  it('the handoff listing lists every entry but the one that vanished: it does not stop there', async () => {
    const mgr = manager();
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push((await (await mgr.write(`entry ${i}`)).handoff({ ttlMs: 60_000 })).id);
    const victim = ids[20] as string;
    const gone = vanishing((name) => name.includes(`_${victim}_`) || name.startsWith(`entry_${victim}`));
    const { entries } = await listEntries(context(withoutEntryTypes(gone)), mgr.root);
    expect(gone.count).toBe(1);
    expect(entries.map((e) => e.id).sort()).toEqual(ids.filter((id) => id !== victim).sort());
    expect(entries.every((e) => e.state === 'waiting')).toBe(true);
  });

  it("an entry whose data file a claim renames as it is listed is listed, as claimed, never as consumed", async () => {
    const mgr = manager();
    const ticket = await (await mgr.write('claimed mid-listing', { suffix: '.bin' })).handoff({ ttlMs: 60_000 });
    const gone = vanishing((name) => name === dataName('.bin'), () => heldName(newOwnerToken(hostId()), '.bin'));
    const { entries } = await listEntries(context(withoutEntryTypes(gone)), mgr.root);
    expect(gone.count).toBe(1);
    expect(entries).toMatchObject([{ id: ticket.id, state: 'claimed' }]);
  });

  it('an entry whose data file is claimed and released again while it is read is listed as waiting, never as consumed', async () => {
    const mgr = manager();
    const ticket = await (await mgr.write('released mid-listing', { suffix: '.bin' })).handoff({ ttlMs: 60_000 });
    const held = heldName(newOwnerToken(hostId()), '.bin');
    const claimed: ReturnType<typeof vanishing> = vanishing((name) => name === dataName('.bin') && claimed.count === 0, () => held);
    const untyped = withoutEntryTypes(claimed);
    let released = false;
    const fs: FsLayer = {
      ...untyped,
      promises: {
        ...untyped.promises,
        lstat: (async (file: string, options?: nodeFs.StatOptions) => {
          if (!released && path.basename(file) === held) {
            released = true; // the claimer gives the file back as the listing types its held name
            realFs.renameSync(file, path.join(path.dirname(file), dataName('.bin')));
          }
          return realFs.promises.lstat(file, options);
        }) as FsLayer['promises']['lstat'],
      },
    };
    const { entries } = await listEntries(context(fs), mgr.root);
    expect([claimed.count, released]).toEqual([1, true]);
    expect(entries).toMatchObject([{ id: ticket.id, state: 'waiting', bytes: 'released mid-listing'.length }]);
  });

  it('a sweep of a root where another sweeper removes a lock meanwhile succeeds and removes the orphan', async () => {
    const root = markedRoot(freshRoot());
    const orphan = path.join(root, deadSessionName(hostId()));
    realFs.mkdirSync(path.join(orphan, 'sub'), { recursive: true });
    nodeFs.writeFileSync(path.join(orphan, 'sub', 'f'), 'x');
    realFs.mkdirSync(sessionLockPath(orphan));
    const other = path.join(root, deadSessionName(hostId(), 3_600_000, 'fedcba9876543210'));
    realFs.mkdirSync(sessionLockPath(other));
    const gone = vanishing((name) => name === path.basename(sessionLockPath(other)));
    const sweeper = layeredManager({ root, fs: withoutEntryTypes(gone), staleMs: 2000, graceMs: 0, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    try {
      const report = await sweeper.sweep();
      expect(report.errors).toEqual([]);
      // Without /proc (TEMPFILE_MANAGER_NO_PROC=1) a dead process of this machine is judged by its
      // heartbeat, which a first sweep has not watched yet: both sessions are left, unjudged.
      const judged = report.unjudgedSessionsSkipped === 0;
      expect(report).toMatchObject(judged ? { sessionsRemoved: 1, filesRemoved: 1 } : { sessionsRemoved: 0, unjudgedSessionsSkipped: 2 });
      expect(nodeFs.existsSync(orphan)).toBe(!judged);
    } finally {
      await sweeper.close();
    }
  });
});
