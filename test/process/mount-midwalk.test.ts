import { execFileSync, spawnSync } from 'node:child_process';
import * as nodeFs from 'node:fs';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect } from 'vitest';
import { TempFileManager } from '../../src/index.js';
import { MountPointError } from '../../src/errors.js';
import type { FsLayer } from '../helpers/fs-layer.js';
import { removeListedFlatDir } from '../../src/disk/remove.js';
import { procFdPath } from '../../src/disk/proc.js';
import { itNeeds, MOUNTING } from '../helpers/privileges.js';
import { freshRoot, layeredManager, scratchDir } from '../helpers/roots.js';

// A mount made while a removal walks the tree, after whatever the walk read when it started: a
// bind mount of a directory of the same file system (same st_dev) on a subdirectory it has not
// entered yet. The walk is paused at its first unlink (the files of a directory are removed
// before its subdirectories are entered), the mount is made, and the walk goes on.

const mounted: string[] = [];

afterEach(() => {
  for (const target of mounted.splice(0).reverse()) spawnSync('umount', ['-l', target]);
});

const VICTIMS = Array.from({ length: 10 }, (_, i) => `precious-${i}`);

/** A directory of the same file system as the roots, holding the files {@link VICTIMS}. */
function victim(names: readonly string[] = VICTIMS): string {
  const dir = path.join(scratchDir(), 'victim');
  fs.mkdirSync(dir);
  for (const name of names) fs.writeFileSync(path.join(dir, name), 'precious');
  return dir;
}

function bind(source: string, target: string): void {
  execFileSync('mount', ['--bind', source, target]);
  mounted.push(target);
}

function expectUntouched(dir: string, names: readonly string[] = VICTIMS): void {
  expect(fs.readdirSync(dir).sort()).toEqual([...names].sort());
  for (const name of names) expect(fs.readFileSync(path.join(dir, name), 'utf8')).toBe('precious');
}

/** A temp dir holding `zz-mnt` (empty) and 20 files, on a manager with `fsImpl`. */
function tempDirOn(fsImpl: FsLayer): { mgr: TempFileManager; dir: string; target: string; remove(): Promise<void>; removeSync(): void } {
  const mgr = layeredManager({ root: freshRoot(), fs: fsImpl, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
  const made = mgr.dir();
  fs.mkdirSync(path.join(made.path, 'zz-mnt'));
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(made.path, `f${i}`), '');
  return { mgr, dir: made.path, target: path.join(made.path, 'zz-mnt'), remove: () => made.remove(), removeSync: () => made.removeSync() };
}

itNeeds(MOUNTING)('remove(): a bind mount made on a subdirectory while the walk is under way is left in place, whole, and reported', async () => {
  const source = victim();
  let armed = false;
  let paused!: () => void;
  const atFirstUnlink = new Promise<void>((resolve) => (paused = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const unlink: typeof nodeFs.promises.unlink = async (file) => {
    if (armed) {
      armed = false;
      paused();
      await released;
    }
    return nodeFs.promises.unlink(file);
  };
  const paused$: FsLayer = { ...nodeFs, promises: { ...nodeFs.promises, unlink } };
  const { mgr, dir, target, remove } = tempDirOn(paused$);
  armed = true;
  const removal = remove().then(
    () => undefined,
    (err: unknown) => err,
  );
  await atFirstUnlink;
  bind(source, target);
  release();
  const error = await removal;
  expectUntouched(source);
  expect(error).toBeInstanceOf(MountPointError);
  expect((error as MountPointError).paths).toEqual([target]);
  expect(fs.readdirSync(dir)).toEqual(['zz-mnt']);
  spawnSync('umount', [target]);
  await mgr.close();
});

itNeeds(MOUNTING)('closeSync(): a bind mount made inside a temp dir while the sync walk is under way is left in place, whole, and reported', async () => {
  const source = victim();
  let target = '';
  let armed = false;
  // The sync walk cannot be paused from this thread: the mount is made from inside its first unlink.
  const unlinkSync: typeof nodeFs.unlinkSync = (file) => {
    if (armed) {
      armed = false;
      bind(source, target);
    }
    nodeFs.unlinkSync(file);
  };
  const made = tempDirOn({ ...nodeFs, unlinkSync });
  target = made.target;
  armed = true;
  let error: unknown;
  try {
    made.mgr.closeSync();
  } catch (err) {
    error = err;
  }
  expect(armed).toBe(false); // the mount was made mid-walk
  expectUntouched(source);
  expect(error).toBeInstanceOf(MountPointError);
  expect((error as MountPointError).paths).toEqual([target]);
  expect(fs.readdirSync(made.dir)).toEqual(['zz-mnt']);
});

itNeeds(MOUNTING)('the sweep\'s quick removal of a flat handoff entry: an entry directory that is now a bind mount is not emptied', async () => {
  // The entry as the sweep listed it held `removing` and `meta.json`; a victim with the same
  // names is bound at its name before the quick removal opens it.
  const names = ['removing', 'meta.json'];
  const source = victim(names);
  const handoff = path.join(scratchDir(), 'handoff');
  const entry = path.join(handoff, 'entry');
  fs.mkdirSync(entry, { recursive: true });
  for (const name of names) fs.writeFileSync(path.join(entry, name), 'ours');
  bind(source, entry);
  const dev = fs.lstatSync(handoff).dev;
  expect(fs.lstatSync(entry).dev).toBe(dev); // st_dev cannot tell
  // By its path, and through the handoff directory's descriptor as the sweep reaches it.
  const held = fs.openSync(handoff, 'r');
  try {
    for (const at of [entry, `${procFdPath(held)}/entry`]) {
      expect(await removeListedFlatDir(at, names, dev)).toBe('walk');
      expectUntouched(source, names);
    }
  } finally {
    fs.closeSync(held);
  }
});
