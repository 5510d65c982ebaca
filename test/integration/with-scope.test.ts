// withScope: files scoped without `using`, on real disk. The callback's files are gone when its
// promise settles; its value comes back, its error is rethrown unchanged, and a removal failure
// is reported (rejected after a success, attached after a throw).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TempFileManager, TempScope } from '../../src/index.js';
import { RemoveError } from '../../src/errors.js';
import { FaultyFs } from '../helpers/faulty-fs.js';
import { CHATTR, needs } from '../helpers/privileges.js';
import { freshRoot, manager } from '../helpers/roots.js';

describe.each([
  ['mgr.withScope', (mgr: TempFileManager) => mgr.withScope.bind(mgr)],
  ['scope.withScope', (mgr: TempFileManager) => {
    const outer = mgr.scope();
    return outer.withScope.bind(outer);
  }],
] as const)('%s', (_name, withScopeOf) => {
  it('returns the callback’s value once its files, directories and nested scopes are gone', async () => {
    const mgr = manager();
    const seen: string[] = [];
    const value = await withScopeOf(mgr)(async (scope) => {
      expect(scope).toBeInstanceOf(TempScope);
      const file = scope.file('.txt');
      fs.writeFileSync(file.path, 'x');
      const written = await scope.write('streamed', { suffix: '.bin' });
      const dir = scope.dir();
      fs.writeFileSync(path.join(dir.path, 'inside'), 'y');
      const nested = scope.scope().file();
      seen.push(file.path, written.path, dir.path, nested.path);
      for (const p of seen) expect(fs.existsSync(p)).toBe(true);
      return { pages: 3 };
    });
    expect(value).toEqual({ pages: 3 });
    for (const p of seen) expect(fs.existsSync(p)).toBe(false);
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
  });

  it('takes a synchronous callback too', async () => {
    const mgr = manager();
    let file = '';
    expect(await withScopeOf(mgr)((scope) => (file = scope.file().path).length)).toBeGreaterThan(0);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('removes the files and rethrows the very error when the callback throws or rejects', async () => {
    const mgr = manager();
    const files: string[] = [];
    const thrown = new TypeError('render failed');
    await expect(
      withScopeOf(mgr)(async (scope) => {
        files.push(scope.file().path);
        await new Promise((resolve) => setTimeout(resolve, 5));
        files.push(scope.dir().path);
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    expect(files).toHaveLength(2);
    for (const p of files) expect(fs.existsSync(p)).toBe(false);
    expect('removeError' in thrown).toBe(false);
    const sync = new Error('sync');
    await expect(withScopeOf(mgr)((scope) => {
      files.push(scope.file().path);
      throw sync;
    })).rejects.toBe(sync);
    expect(fs.existsSync(files[2]!)).toBe(false);
    // a thrown primitive is rethrown as it is
    await expect(withScopeOf(mgr)(() => Promise.reject('plain string'))).rejects.toBe('plain string');
  });

  it('after a success, a removal failure rejects with a RemoveError naming the path (injected EIO)', async () => {
    const faulty = new FaultyFs();
    const mgr = manager({ fs: faulty.fs });
    let stuck = '';
    const error = await withScopeOf(mgr)((scope) => {
      stuck = scope.file('.stuck').path;
      scope.file('.fine');
      faulty.fail('unlinkSync', 'EIO', 1000, (p) => p.endsWith('.stuck')); // an empty file: unlinked inline
      return 'done';
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoveError);
    expect((error as RemoveError).errors).toEqual([expect.objectContaining({ code: 'ERR_TEMPFILE_IO', path: stuck })]);
    expect(fs.existsSync(stuck)).toBe(true);
    expect(fs.readdirSync(mgr.sessionPath).filter((name) => name.endsWith('.fine'))).toEqual([]);
  });

  it('after a throw, a removal failure is attached to the original error as removeError (injected EIO)', async () => {
    const faulty = new FaultyFs();
    const mgr = manager({ fs: faulty.fs });
    const thrown = new Error('job failed');
    const error = await withScopeOf(mgr)((scope) => {
      scope.file('.stuck');
      faulty.fail('unlinkSync', 'EIO', 1000, (p) => p.endsWith('.stuck')); // an empty file: unlinked inline
      throw thrown;
    }).catch((e: unknown) => e);
    expect(error).toBe(thrown);
    const attached = (error as { removeError?: unknown }).removeError;
    expect(attached).toBeInstanceOf(RemoveError);
    expect(Object.keys(error as object)).not.toContain('removeError'); // not printed as the error's own data
  });
});

describe('withScope on real disk failures', () => {
  it('a file that cannot be removed (chattr +i) rejects with RemoveError after success, is attached after a throw', async (ctx) => {
    needs(ctx, CHATTR);
    const mgr = manager();
    let stuck = '';
    const immutable = (scope: TempScope) => {
      const dir = scope.dir();
      stuck = path.join(dir.path, 'stuck');
      fs.writeFileSync(stuck, 'x');
      execFileSync('chattr', ['+i', stuck]);
    };
    try {
      const afterSuccess = await mgr.withScope((scope) => immutable(scope)).catch((e: unknown) => e);
      expect(afterSuccess).toBeInstanceOf(RemoveError);
      expect((afterSuccess as RemoveError).code).toBe('ERR_TEMPFILE_REMOVE_FAILED');
      execFileSync('chattr', ['-i', stuck]);
      const original = new Error('boom');
      const afterThrow = await mgr.withScope((scope) => {
        immutable(scope);
        throw original;
      }).catch((e: unknown) => e);
      expect(afterThrow).toBe(original);
      expect((afterThrow as { removeError?: unknown }).removeError).toBeInstanceOf(RemoveError);
    } finally {
      if (fs.existsSync(stuck)) execFileSync('chattr', ['-i', stuck]);
    }
  });

  it('rejects with ManagerClosedError, running nothing, once the manager is closed', async () => {
    const mgr = new TempFileManager({ root: freshRoot(), sweepOnStart: false, exitHook: false });
    await mgr.close();
    let ran = false;
    await expect(mgr.withScope(() => (ran = true))).rejects.toMatchObject({ code: 'ERR_TEMPFILE_MANAGER_CLOSED' });
    expect(ran).toBe(false);
  });
});
