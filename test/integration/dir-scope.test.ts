import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DisposedError, TempDir, TempScope } from '../../src/index.js';
import { RemoveError } from '../../src/errors.js';
import { FaultyFs } from '../helpers/faulty-fs.js';
import { manager, scratchDir } from '../helpers/roots.js';

function plantOutsideTree(): { dir: string; file: string } {
  const dir = path.join(scratchDir(), 'outside');
  fs.mkdirSync(dir);
  const file = path.join(dir, 'precious.txt');
  fs.writeFileSync(file, 'precious');
  return { dir, file };
}

describe('mgr.dir()', () => {
  it('creates an empty 0700 directory in the session', () => {
    const mgr = manager();
    const dir = mgr.dir({ suffix: '.work' });
    expect(dir).toBeInstanceOf(TempDir);
    const stat = fs.lstatSync(dir.path);
    expect(stat.isDirectory()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o700);
    expect(fs.readdirSync(dir.path)).toEqual([]);
    expect(path.basename(dir.path)).toMatch(/^[0-9a-f]{32}\.work$/);
  });

  it('removes the whole tree with `using`, on return and on throw', () => {
    const mgr = manager();
    let seen = '';
    expect(() => {
      using dir = mgr.dir();
      seen = dir.path;
      fs.mkdirSync(path.join(dir.path, 'a/b/c'), { recursive: true });
      fs.writeFileSync(path.join(dir.path, 'a/b/c/file'), 'x');
      throw new Error('boom');
    }).toThrow('boom');
    expect(fs.existsSync(seen)).toBe(false);
  });

  it('never follows a symlink inside it out of the session', async () => {
    const outside = plantOutsideTree();
    const dir = manager().dir();
    fs.symlinkSync(outside.dir, path.join(dir.path, 'link-to-dir'));
    fs.symlinkSync(outside.file, path.join(dir.path, 'link-to-file'));
    await dir.remove();
    expect(fs.existsSync(dir.path)).toBe(false);
    expect(fs.readFileSync(outside.file, 'utf8')).toBe('precious');
  });

  it('removes only the link when the directory itself was swapped for a symlink', () => {
    const outside = plantOutsideTree();
    const dir = manager().dir();
    fs.rmdirSync(dir.path);
    fs.symlinkSync(outside.dir, dir.path);
    dir.removeSync();
    expect(fs.existsSync(dir.path)).toBe(false);
    expect(fs.readdirSync(outside.dir)).toEqual(['precious.txt']);
  });

  it('is quiet when the directory is already gone, and refuses nothing on repeat', async () => {
    const dir = manager().dir();
    fs.rmdirSync(dir.path);
    await dir.remove();
    dir.removeSync();
    expect(dir.disposed).toBe(true);
  });
});

describe('mgr.scope()', () => {
  it('removes its files, dirs and nested scopes together on `await using`', async () => {
    const mgr = manager();
    const paths: string[] = [];
    {
      await using scope = mgr.scope();
      expect(scope).toBeInstanceOf(TempScope);
      paths.push(scope.file('.a').path, scope.dir().path);
      const inner = scope.scope();
      paths.push(inner.file().path, inner.dir().path);
      expect(scope.size).toBe(3);
      for (const p of paths) expect(fs.existsSync(p)).toBe(true);
    }
    for (const p of paths) expect(fs.existsSync(p)).toBe(false);
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
  });

  it('removes everything with sync `using`, also on throw', () => {
    const mgr = manager();
    const paths: string[] = [];
    expect(() => {
      using scope = mgr.scope();
      paths.push(scope.file().path, scope.scope().dir().path);
      throw new Error('boom');
    }).toThrow('boom');
    for (const p of paths) expect(fs.existsSync(p)).toBe(false);
  });

  it('forgets members disposed before it, so a long-lived scope does not grow', async () => {
    const scope = manager().scope();
    for (let i = 0; i < 100; i++) {
      using file = scope.file();
      void file;
    }
    expect(scope.size).toBe(0);
    await scope.remove();
  });

  it('collects every failure into one RemoveError and still removes the rest', async () => {
    const faulty = new FaultyFs();
    const mgr = manager({ fs: faulty.fs });
    const scope = mgr.scope();
    const files = Array.from({ length: 6 }, () => scope.file());
    const dir = scope.dir();
    const failing = new Set([files[1]!.path, files[4]!.path]);
    // Empty files are unlinked inline (local-disk.ts), through the session's descriptor: matched by name.
    const failingNames = new Set([...failing].map((p) => path.basename(p)));
    faulty.fail('unlinkSync', 'EACCES', 2, (p) => failingNames.has(path.basename(p)));
    const error = await scope.remove().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RemoveError);
    const removeError = error as RemoveError;
    expect(removeError.code).toBe('ERR_TEMPFILE_REMOVE_FAILED');
    expect(removeError.errors.map((e) => (e as { path?: string }).path).sort()).toEqual([...failing].sort());
    expect(removeError.errors.every((e) => (e as { syscallCode?: string }).syscallCode === 'EACCES')).toBe(true);
    for (const file of files) expect(fs.existsSync(file.path)).toBe(failing.has(file.path));
    expect(fs.existsSync(dir.path)).toBe(false);
    // The failed members stay in the scope: a second removal retries them.
    expect(scope.size).toBe(2);
    await scope.remove();
    for (const file of files) expect(fs.existsSync(file.path)).toBe(false);
  });

  it('collects failures of nested scopes into the same flat list, also in sync disposal', () => {
    const faulty = new FaultyFs();
    const scope = manager({ fs: faulty.fs }).scope();
    const a = scope.scope().file();
    const b = scope.file();
    faulty.fail('unlinkSync', 'EIO', 2);
    let caught: unknown;
    try {
      scope.removeSync();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RemoveError);
    expect((caught as RemoveError).errors).toHaveLength(2);
    expect(fs.existsSync(a.path) && fs.existsSync(b.path)).toBe(true);
    scope.removeSync();
    expect(fs.existsSync(a.path) || fs.existsSync(b.path)).toBe(false);
  });

  it('throws a typed error when used after dispose', async () => {
    const scope = manager().scope();
    await scope.remove();
    expect(() => scope.file()).toThrow(DisposedError);
    expect(() => scope.dir()).toThrow(DisposedError);
    expect(() => scope.scope()).toThrow(DisposedError);
  });
});
