import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it as base, vi } from 'vitest';
import { TempFileManager } from '../../src/index.js';
import { FileSystemError, RemoveError } from '../../src/errors.js';
import { retryDelays } from '../../src/disk/holds.js';
import { parseRootEntry, ROOT_MARKER } from '../../src/base/layout.js';
import { WindowsFs } from '../helpers/windows-fs.js';
import { hostId } from '../../src/owner/process-identity.js';
import { deadSessionNameHere, listTree, markedRoot, TestDisk } from '../helpers/roots.js';

/** A name the library set aside for removal, as the sweep reads the root. */
const isSetAside = (name: string): boolean => parseRootEntry(name).kind === 'set-aside';

// Removal under Windows semantics, played on Linux by a file-system layer: another handle (an
// antivirus, the app's own stream) holds a file, so that its unlink, rename or rmdir fails, or its
// unlink leaves the name listed until the hold ends (delete pending). Every removal path must
// free the names it was asked to, never hang, report what it could not do with a typed error, and
// leave nothing once the hold has ended and a sweep has run.

// The library takes Windows' removal rules (waits, moves aside) where the platform is win32: the
// rules of src/disk/holds.ts are functions of a platform, given win32 here, every other rule of
// the library staying Linux's.
vi.mock(import('../../src/disk/holds.js'), async (importOriginal) => {
  const holds = await importOriginal();
  return {
    ...holds,
    holdsHappen: () => holds.holdsHappen('win32'),
    isHold: (err: unknown) => holds.isHold(err, 'win32'),
    retryDelays: (sync: boolean) => holds.retryDelays(sync, 'win32'),
  };
});

// The tests wait out holds (seconds each) and run at the same time: each has its own Windows layer
// and its own scratch directories and managers. The holds end before the managers close.
interface HeldDisk {
  readonly win: WindowsFs;
  readonly disk: TestDisk;
}

const it = base.extend<HeldDisk>({
  disk: async ({}, use) => {
    const disk = new TestDisk();
    await use(disk);
    await disk.cleanup();
  },
  win: async ({ disk }, use) => {
    void disk;
    const win = new WindowsFs();
    await use(win);
    win.releaseAll();
  },
});

/** A manager on the Windows layer of the test (one layer per test: managers on one root share its holds). */
function windowsManager({ win, disk }: HeldDisk, options: { root?: string } = {}): TempFileManager {
  return disk.manager({ fs: win.fs, ...options });
}

/** What is under the root but its marker: nothing once every removal and sweep is done. */
function leftUnder(root: string): string[] {
  return listTree(root).filter((name) => name !== ROOT_MARKER && name !== 'handoff');
}

/** A file outside the root that no removal may touch. */
function bystander(disk: TestDisk): string {
  const file = path.join(disk.scratchDir(), 'bystander.txt');
  fs.writeFileSync(file, 'mine');
  return file;
}

function errorOf(run: () => unknown): Promise<unknown> {
  return Promise.resolve().then(run).then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe.concurrent('a held file, removed through its handle', () => {
  it('remove() of a file whose unlink would leave its name listed (delete pending) frees the name at once', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    const file = mgr.file('.txt');
    fs.writeFileSync(file.path, 'held');
    win.hold(file.path, 'delete-sharing');
    await file.remove();
    expect(fs.existsSync(file.path)).toBe(false);
    expect(file.disposed).toBe(true);
    // it waits, set aside in the session, for the hold's end
    expect(fs.readdirSync(path.dirname(file.path)).some(isSetAside)).toBe(true);
    win.releaseAll();
    await mgr.close();
    expect(leftUnder(mgr.root)).toEqual([]);
  });

  it('remove() outlasts a hold of a second that refuses the unlink and the rename', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    const file = mgr.file();
    fs.writeFileSync(file.path, 'scanned');
    win.hold(file.path, 'no-delete-sharing', 1_000);
    await file.remove();
    expect(fs.existsSync(file.path)).toBe(false);
    expect(win.refused.get('rename')).toBeGreaterThan(0);
    await mgr.close();
    expect(leftUnder(mgr.root)).toEqual([]);
  });

  it('remove() of a file held past the retries rejects with a typed error, the handle live to try again', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    const file = mgr.file();
    const hold = win.hold(file.path, 'no-delete-sharing');
    const err = await errorOf(() => file.remove());
    expect(err).toBeInstanceOf(FileSystemError);
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EBUSY', path: file.path });
    expect(file.disposed).toBe(false);
    expect(fs.existsSync(file.path)).toBe(true);
    hold.release();
    await file.remove();
    expect(fs.existsSync(file.path)).toBe(false);
    await mgr.close();
    expect(leftUnder(mgr.root)).toEqual([]);
  });

  it('removeSync() waits a short bounded time for a hold, then throws a typed error', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    const file = mgr.file();
    win.hold(file.path, 'no-delete-sharing');
    const err = await errorOf(() => file.removeSync());
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EBUSY' });
    // every retry of the sync removal was made, and no more: its waits add up to a quarter second at most
    expect(win.refused.get('renameSync')).toBe(6);
    expect(retryDelays(true, 'win32').reduce((total, ms) => total + ms, 0)).toBeLessThanOrEqual(250);
    win.releaseAll();
    file.removeSync();
    expect(fs.existsSync(file.path)).toBe(false);
  });

  it('removeSync() (using) of a file with delete sharing frees its name', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    let where = '';
    {
      using file = mgr.file();
      where = file.path;
      win.hold(file.path, 'delete-sharing');
    }
    expect(fs.existsSync(where)).toBe(false);
    win.releaseAll();
    await mgr.close();
    expect(leftUnder(mgr.root)).toEqual([]);
  });
});

describe.concurrent('a directory with a held file in it', () => {
  it('dir.remove() with a file left delete pending inside sets the tree aside: the name is free, nothing thrown', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    const outside = bystander(disk);
    const dir = mgr.dir();
    fs.mkdirSync(path.join(dir.path, 'sub'));
    fs.writeFileSync(path.join(dir.path, 'sub', 'held.log'), 'held');
    fs.writeFileSync(path.join(dir.path, 'free.txt'), 'free');
    win.hold(path.join(dir.path, 'sub', 'held.log'), 'delete-sharing');
    await dir.remove();
    expect(fs.existsSync(dir.path)).toBe(false);
    expect(dir.disposed).toBe(true);
    win.releaseAll();
    await mgr.close();
    expect(leftUnder(mgr.root)).toEqual([]);
    expect(fs.readFileSync(outside, 'utf8')).toBe('mine');
  });

  it('dir.remove() with a file held to the end rejects with a typed error, the rest removed, then goes once the hold ends', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    const dir = mgr.dir();
    fs.writeFileSync(path.join(dir.path, 'held.log'), 'held');
    fs.writeFileSync(path.join(dir.path, 'free.txt'), 'free');
    const hold = win.hold(path.join(dir.path, 'held.log'), 'no-delete-sharing');
    const err = await errorOf(() => dir.remove());
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EBUSY' });
    expect(fs.readdirSync(dir.path)).toEqual(['held.log']);
    hold.release();
    await dir.remove();
    expect(fs.existsSync(dir.path)).toBe(false);
  });

  it('dir.remove() of a tree with held files in three directories waits out one bound for the whole tree, not one per file', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    const dir = mgr.dir();
    for (const sub of ['a', 'b', 'c']) {
      fs.mkdirSync(path.join(dir.path, sub));
      fs.writeFileSync(path.join(dir.path, sub, 'held.log'), sub);
      win.hold(path.join(dir.path, sub, 'held.log'), 'no-delete-sharing');
    }
    const err = await errorOf(() => dir.remove());
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EBUSY' });
    // one file gets every retry (14 after its first try); the others, met once the bound is spent, one try each
    expect(win.refused.get('unlink')).toBe(15 + 2);
  });

  it('dir.remove() outlasts a hold of a second', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    const dir = mgr.dir();
    fs.writeFileSync(path.join(dir.path, 'scanned.bin'), 'x');
    win.hold(path.join(dir.path, 'scanned.bin'), 'no-delete-sharing', 1_000);
    await dir.remove();
    expect(fs.existsSync(dir.path)).toBe(false);
    await mgr.close();
    expect(leftUnder(mgr.root)).toEqual([]);
  });
});

describe.concurrent('scopes and sessions with a held file', () => {
  it('an await using scope removes every other file, and a delete-pending one is set aside: nothing thrown', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    const paths: string[] = [];
    {
      await using scope = mgr.scope();
      for (let i = 0; i < 4; i++) {
        const file = scope.file();
        fs.writeFileSync(file.path, `${i}`);
        paths.push(file.path);
      }
      const work = scope.dir();
      fs.writeFileSync(path.join(work.path, 'open.log'), 'open');
      paths.push(work.path);
      win.hold(paths[1]!, 'delete-sharing');
      win.hold(path.join(work.path, 'open.log'), 'delete-sharing');
    }
    for (const p of paths) expect(fs.existsSync(p)).toBe(false);
    win.releaseAll();
    await mgr.close();
    expect(leftUnder(mgr.root)).toEqual([]);
  });

  it('withScope() with a file held to the end: the others go, one RemoveError says which, no hang', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    const paths: string[] = [];
    const err = await errorOf(() =>
      mgr.withScope(async (scope) => {
        for (let i = 0; i < 3; i++) paths.push(scope.file().path);
        win.hold(paths[0]!, 'no-delete-sharing');
      }),
    );
    expect(err).toBeInstanceOf(RemoveError);
    expect((err as RemoveError).errors).toEqual([expect.objectContaining({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EBUSY', path: paths[0] })]);
    expect(paths.map((p) => fs.existsSync(p))).toEqual([true, false, false]);
    win.releaseAll();
    await mgr.close();
    expect(leftUnder(mgr.root)).toEqual([]);
  });

  for (const sync of [false, true]) {
    const how = sync ? 'closeSync() (the exit hook)' : 'close()';
    it(`${how} with a file left delete pending sets the session aside for the sweep, and the next sweep removes it`, async ({ win, disk }) => {
      const mgr = windowsManager({ win, disk });
      const outside = bystander(disk);
      const kept = mgr.file();
      const dir = mgr.dir();
      fs.writeFileSync(path.join(dir.path, 'held.log'), 'held');
      win.hold(path.join(dir.path, 'held.log'), 'delete-sharing');
      const session = path.dirname(kept.path);
      if (sync) mgr.closeSync();
      else await mgr.close();
      expect(fs.existsSync(session)).toBe(false);
      expect(fs.readdirSync(mgr.root).filter(isSetAside)).toHaveLength(1);

      const sweeper = windowsManager({ win, disk }, { root: mgr.root });
      const held = await sweeper.sweep();
      expect(held.setAsideRemoved).toBe(0);
      expect(held.errors.length).toBeGreaterThan(0);
      win.releaseAll();
      const after = await sweeper.sweep();
      expect(after).toMatchObject({ setAsideRemoved: 1, errors: [] });
      await sweeper.close();
      expect(leftUnder(mgr.root)).toEqual([]);
      expect(fs.readFileSync(outside, 'utf8')).toBe('mine');
    });
  }

  it('close() with a file held to the end rejects with a typed error and removes the rest', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    const free = mgr.file();
    const held = mgr.file();
    win.hold(held.path, 'no-delete-sharing');
    const err = await errorOf(() => mgr.close());
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EBUSY' });
    expect(fs.existsSync(free.path)).toBe(false);
    expect(fs.existsSync(held.path)).toBe(true);
  });
});

describe.concurrent('a rename over a held file', () => {
  it('keep({ overwrite: true }) onto a file another handle holds fails typed; both files stay whole', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    const file = mgr.file('.txt');
    fs.writeFileSync(file.path, 'new');
    const dest = path.join(disk.scratchDir(), 'report.txt');
    fs.writeFileSync(dest, 'old, open in a viewer');
    win.hold(dest, 'delete-sharing');
    const err = await errorOf(() => file.keep(dest, { overwrite: true }));
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EPERM' });
    expect(win.refused.get('rename')).toBeGreaterThan(0);
    expect(fs.readFileSync(dest, 'utf8')).toBe('old, open in a viewer');
    expect(fs.readFileSync(file.path, 'utf8')).toBe('new');
    expect(file.disposed).toBe(false);
  });
});

describe.concurrent('the sweep of a dead session with a held file', () => {
  it('reports what stays held, never hangs, and removes it all at the sweep after the hold ends', async ({ win, disk }) => {
    const root = markedRoot(disk.freshRoot());
    const dead = path.join(root, deadSessionNameHere(hostId()));
    fs.mkdirSync(path.join(dead, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(dead, 'sub', 'held.log'), 'held');
    fs.writeFileSync(path.join(dead, 'free.txt'), 'free');
    const outside = bystander(disk);
    const sweeper = windowsManager({ win, disk }, { root });
    win.hold(path.join(dead, 'sub', 'held.log'), 'no-delete-sharing');
    const held = await sweeper.sweep();
    expect(held.sessionsRemoved).toBe(0);
    expect(held.errors).toEqual([expect.objectContaining({ path: path.join(dead, 'sub', 'held.log'), code: 'EBUSY' })]);
    expect(fs.readdirSync(dead)).toEqual(['sub']);
    win.releaseAll();
    expect(await sweeper.sweep()).toMatchObject({ sessionsRemoved: 1, errors: [] });
    expect(leftUnder(root)).toEqual([]);
    expect(fs.readFileSync(outside, 'utf8')).toBe('mine');
  });
});

describe.concurrent('a handoff consumed while its file is held', () => {
  it('consume() frees the lease name at once; the sweep removes the entry once the hold ends', async ({ win, disk }) => {
    const mgr = windowsManager({ win, disk });
    const file = mgr.file('.bin');
    fs.writeFileSync(file.path, 'job');
    const ticket = await file.handoff({ ttlMs: 60_000 });
    const claimed = await mgr.claim(ticket);
    win.hold(claimed.path, 'delete-sharing');
    await claimed.consume();
    const entry = path.dirname(claimed.path);
    expect(fs.readdirSync(entry)).not.toContain(path.basename(claimed.path));
    expect(fs.readdirSync(entry)).toEqual(['removing']);
    await expect(mgr.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    win.releaseAll();
    await mgr.sweep();
    expect(fs.readdirSync(path.join(mgr.root, 'handoff'))).toEqual([]);
  });
});
