import * as nodeFs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSystemError } from '../../src/errors.js';
import type { FsLayer } from '../helpers/fs-layer.js';
import { lastingFds } from '../helpers/fault-plan.js';
import { freshRoot, layeredManager, scratchDir } from '../helpers/roots.js';

const DEPTH = 200; // deeper than the walk keeps open: the shallow levels are reopened through `..`

// A tree deeper than the walk keeps pinned: on the way back up each released level is reopened
// through `..` of the level below and checked to be the same directory. Here another process
// (played by the fs wrapper) moves the level below elsewhere just before that reopen: `..` is
// then the new place, the walk stops with an error, touches nothing there, and leaks nothing.
describe('a directory moved out of a tree while its removal climbs back up', () => {
  it.each([
    ['remove()', false],
    ['removeSync()', true],
  ])('%s: the removal fails, nothing at the new place is touched, no descriptor leaks', async (_how, sync) => {
    const elsewhere = scratchDir();
    nodeFs.writeFileSync(path.join(elsewhere, 'bystander'), 'keep me');
    let moved: string | undefined;
    const moveChildFirst = (target: string) => {
      if (moved || !target.endsWith('/..')) return;
      moved = path.join(elsewhere, 'moved');
      nodeFs.renameSync(nodeFs.readlinkSync(target.slice(0, -3)), moved);
    };
    const fs = {
      ...nodeFs,
      openSync: (target: string, ...rest: [number]) => {
        moveChildFirst(target);
        return nodeFs.openSync(target, ...rest);
      },
      promises: {
        ...nodeFs.promises,
        open: (target: string, ...rest: [number]) => {
          moveChildFirst(target);
          return nodeFs.promises.open(target, ...rest);
        },
      },
    } as unknown as FsLayer;
    const mgr = layeredManager({ root: freshRoot(), fs, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    const dir = mgr.dir();
    let deepest = dir.path;
    for (let i = 0; i < DEPTH; i++) deepest = path.join(deepest, 'd');
    nodeFs.mkdirSync(deepest, { recursive: true });
    nodeFs.writeFileSync(path.join(deepest, 'f'), 'x');

    const fdsBefore = await lastingFds();
    const failure = await (sync ? Promise.resolve().then(() => dir.removeSync()) : dir.remove()).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(moved).toBeDefined();
    expect(failure).toBeInstanceOf(FileSystemError);
    expect((failure as FileSystemError).syscallCode).toBe('ESTALE');
    expect(nodeFs.readFileSync(path.join(elsewhere, 'bystander'), 'utf8')).toBe('keep me');
    expect(nodeFs.existsSync(moved!)).toBe(true);
    if (!sync) await new Promise((resolve) => setTimeout(resolve, 50)); // FileHandles close asynchronously
    expect(await lastingFds()).toBe(fdsBefore);
    await mgr.close().catch(() => {});
  });
});
