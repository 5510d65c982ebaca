import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TempFileManager } from '../../src/index.js';
import { FileSystemError } from '../../src/errors.js';
import { retryDelays } from '../../src/disk/holds.js';

/** Retries of a removal where nothing holds files (fs.rm's maxRetries). */
const RETRIES = retryDelays(false, 'linux').length;
import { FaultyFs } from '../helpers/faulty-fs.js';
import { freshRoot, layeredManager } from '../helpers/roots.js';

// Windows-style retries (fs.rm's maxRetries): a removal retries EBUSY, EPERM and ENOTEMPTY a
// bounded number of times with a short backoff, then reports the failure.

function managerOn(faulty: FaultyFs): TempFileManager {
  return layeredManager({ root: freshRoot(), fs: faulty.fs, sweepOnStart: false, exitHook: false });
}

function fill(dir: string): void {
  fs.writeFileSync(path.join(dir, 'a'), 'a');
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'b'), 'b');
}

const isSub = (p: string) => p.endsWith('/sub');
const isFileA = (p: string) => p.endsWith('/a');

describe('removal retries what a retry may cure, a bounded number of times', () => {
  for (const code of ['EBUSY', 'EPERM', 'ENOTEMPTY'] as const) {
    for (const sync of [false, true]) {
      const how = sync ? 'removeSync()' : 'remove()';
      it(`${how}: ${code} on rmdir ${RETRIES} times is cured by the last retry`, async () => {
        const faulty = new FaultyFs();
        const mgr = managerOn(faulty);
        const dir = mgr.dir();
        fill(dir.path);
        faulty.fail(sync ? 'rmdirSync' : 'rmdir', code, RETRIES, isSub);
        if (sync) dir.removeSync();
        else await dir.remove();
        expect(fs.existsSync(dir.path)).toBe(false);
        await mgr.close();
      });

      it(`${how}: ${code} on rmdir one time more than that fails with a typed error`, async () => {
        const faulty = new FaultyFs();
        const mgr = managerOn(faulty);
        const dir = mgr.dir();
        fill(dir.path);
        faulty.fail(sync ? 'rmdirSync' : 'rmdir', code, RETRIES + 1, isSub);
        const err = await (sync ? Promise.resolve().then(() => dir.removeSync()) : dir.remove()).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(FileSystemError);
        expect((err as FileSystemError).syscallCode).toBe(code);
        expect(fs.existsSync(path.join(dir.path, 'a'))).toBe(false);
        await mgr.close().catch(() => {});
      });
    }
  }

  for (const code of ['EBUSY', 'EPERM'] as const) {
    it(`remove(): ${code} on unlink is retried up to ${RETRIES} times, then reported`, async () => {
      const cured = new FaultyFs();
      const mgr = managerOn(cured);
      const dir = mgr.dir();
      fill(dir.path);
      cured.fail('unlink', code, RETRIES, isFileA);
      await dir.remove();
      expect(fs.existsSync(dir.path)).toBe(false);
      await mgr.close();

      const stuck = new FaultyFs();
      const mgr2 = managerOn(stuck);
      const dir2 = mgr2.dir();
      fill(dir2.path);
      stuck.fail('unlink', code, RETRIES + 1, isFileA);
      await expect(dir2.remove()).rejects.toMatchObject({ syscallCode: code });
      expect(fs.existsSync(path.join(dir2.path, 'a'))).toBe(true);
      expect(stuck.calls.get('unlink')).toBe(RETRIES + 1 + 1); // a: 1 + RETRIES tries; sub/b: 1
      await mgr2.close().catch(() => {});
    });
  }

  it('EIO is not retried', async () => {
    const faulty = new FaultyFs();
    const mgr = managerOn(faulty);
    const dir = mgr.dir();
    fill(dir.path);
    faulty.fail('rmdir', 'EIO', 1, isSub);
    await expect(dir.remove()).rejects.toMatchObject({ syscallCode: 'EIO' });
    expect(faulty.calls.get('rmdir')).toBe(1);
    await mgr.close().catch(() => {});
  });
});
