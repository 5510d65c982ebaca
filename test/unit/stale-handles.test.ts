import nodeFs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openPinned, openPinnedSync } from '../../src/disk/pinned-dir.js';
import { unlinkQuietly, unlinkQuietlySync } from '../../src/disk/remove.js';
import { takeForRemoval } from '../../src/handoff/lease.js';
import { readInfo, receivedBytes } from '../../src/tus/uploads.js';
import { layOver, scratchDir } from '../helpers/roots.js';
import { realFs, type FsLayer } from '../helpers/fs-layer.js';
import { staleHandle } from '../helpers/faulty-fs.js';

/** A layer whose calls on names under `dir` answer ESTALE, as if another host removed `dir`. */
function staleUnder(dir: string): FsLayer {
  const stale = (target: unknown) => String(target).startsWith(dir);
  return {
    ...realFs,
    openSync: ((target: string, ...rest: unknown[]) => {
      if (stale(target)) throw staleHandle('open');
      return (realFs.openSync as (...a: unknown[]) => number)(target, ...rest);
    }) as FsLayer['openSync'],
    unlinkSync: ((target: string) => {
      if (stale(target)) throw staleHandle('unlink');
      return realFs.unlinkSync(target);
    }) as FsLayer['unlinkSync'],
    promises: {
      ...realFs.promises,
      open: (async (target: string, ...rest: unknown[]) => {
        if (stale(target)) throw staleHandle('open');
        return (realFs.promises.open as (...a: unknown[]) => unknown)(target, ...rest);
      }) as FsLayer['promises']['open'],
      unlink: async (target: nodeFs.PathLike) => {
        if (stale(target)) throw staleHandle('unlink');
        return realFs.promises.unlink(target);
      },
      rename: async (from: nodeFs.PathLike, to: nodeFs.PathLike) => {
        if (stale(from)) throw staleHandle('rename');
        return realFs.promises.rename(from, to);
      },
    },
  };
}

// ESTALE is a name gone, as ENOENT is, in the steps that remove, pin or take: a removal that
// meets it has nothing left to remove, and says so instead of failing.
describe('a directory removed from another host (ESTALE under it)', () => {
  const plant = () => {
    const dir = path.join(scratchDir(), 'entry');
    nodeFs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    nodeFs.writeFileSync(path.join(dir, 'data.bin'), 'x');
    layOver(staleUnder(dir));
    return dir;
  };

  it('an unlink of a name in it is quiet, async and sync', async () => {
    const dir = plant();
    await expect(unlinkQuietly(path.join(dir, 'data.bin'))).resolves.toBeUndefined();
    expect(() => unlinkQuietlySync(path.join(dir, 'data.bin'))).not.toThrow();
  });

  it('pinning a directory in it finds it gone, async and sync', async () => {
    const dir = plant();
    await expect(openPinned(path.join(dir, 'sub'))).resolves.toBe('gone');
    expect(openPinnedSync(path.join(dir, 'sub'))).toBe('gone');
  });

  it("a tus upload's info and bytes in it read as none (a 404)", async () => {
    const dir = plant();
    const upload = { id: 'stale', at: dir, named: dir, shown: dir };
    await expect(readInfo(upload)).resolves.toBeUndefined();
    await expect(receivedBytes(upload, 'data.bin')).resolves.toBeUndefined();
  });

  it("a sweep's take of an entry's data finds it taken already", async () => {
    const dir = plant();
    await expect(takeForRemoval(dir, 'data.bin')).resolves.toBe(false);
  });
});
