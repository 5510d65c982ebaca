import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TempFileManager, UnsafeRootError } from '../../src/index.js';
import { needs } from '../helpers/privileges.js';
import { freshRoot, layeredManager, scratchDir } from '../helpers/roots.js';

const quiet = { sweepOnStart: false, exitHook: false } as const;

function refusal(root: string): UnsafeRootError {
  try {
    new TempFileManager({ root, ...quiet });
  } catch (err) {
    expect(err).toBeInstanceOf(UnsafeRootError);
    return err as UnsafeRootError;
  }
  throw new Error(`the root ${root} was accepted`);
}

function nobodyUid(): number {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'));
  return Number(line?.split(':')[2] ?? 65534);
}

describe('the root directory', () => {
  it('is created with mode 0700 when missing', () => {
    const root = freshRoot();
    const mgr = new TempFileManager({ root, ...quiet });
    expect(mgr.root).toBe(root);
    const stat = fs.lstatSync(root);
    expect(stat.isDirectory()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o700);
  });

  it('defaults to a per-user directory under os.tmpdir()', () => {
    const mgr = new TempFileManager(quiet);
    expect(path.dirname(mgr.root)).toBe(os.tmpdir());
    expect(path.basename(mgr.root)).toBe(`tempfile-manager-${process.getuid!()}`);
    expect(fs.lstatSync(mgr.root).mode & 0o022).toBe(0);
  });

  it('accepts an existing safe directory and leaves what is in it', () => {
    const root = freshRoot();
    fs.mkdirSync(root, { mode: 0o700 });
    fs.writeFileSync(path.join(root, 'unrelated'), 'x');
    new TempFileManager({ root, ...quiet }).file();
    expect(fs.readFileSync(path.join(root, 'unrelated'), 'utf8')).toBe('x');
  });

  it('refuses a symlink, even to a good directory, and does not touch the target', () => {
    const target = path.join(scratchDir(), 'real');
    fs.mkdirSync(target, { mode: 0o700 });
    const root = path.join(scratchDir(), 'link');
    fs.symlinkSync(target, root);
    const error = refusal(root);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_UNSAFE_ROOT', reason: 'symlink', path: root });
    expect(error.message).toMatch(/symbolic link/);
    expect(fs.readdirSync(target)).toEqual([]);
  });

  it('refuses a regular file', () => {
    const root = freshRoot();
    fs.writeFileSync(root, 'not a dir');
    expect(refusal(root).reason).toBe('not-a-directory');
    expect(fs.readFileSync(root, 'utf8')).toBe('not a dir');
  });

  it.each([0o777, 0o770, 0o702, 0o1770])('refuses a directory with mode %o, saying to chmod it', (mode) => {
    const root = freshRoot();
    fs.mkdirSync(root);
    fs.chmodSync(root, mode);
    const error = refusal(root);
    expect(error.reason).toBe('writable-by-others');
    expect(error.message).toContain(`chmod 700 ${root}`);
    expect(fs.readdirSync(root)).toEqual([]);
  });

  it.each([0o1777, 0o1733, 0o1703])('refuses a shared sticky directory (mode %o, like /tmp), advising another root, never chmod or chown', (mode) => {
    const root = freshRoot();
    fs.mkdirSync(root);
    fs.chmodSync(root, mode);
    const error = refusal(root);
    expect(error.reason).toBe('writable-by-others');
    expect(error.message).toMatch(/shared directory.*choose another `root`/s);
    expect(error.message).not.toMatch(/chmod|chown/);
    expect(fs.lstatSync(root).mode & 0o7777).toBe(mode);
  });

  it('refuses /tmp itself, and the OS temp directory when it is writable by all, advising another root', () => {
    const tmp = fs.lstatSync('/tmp');
    if ((tmp.mode & 0o1002) === 0o1002) expect(refusal('/tmp').message).not.toMatch(/chmod|chown/);
    const shared = scratchDir();
    fs.chmodSync(shared, 0o777); // not sticky, but it is os.tmpdir(): others use it
    const before = process.env.TMPDIR;
    process.env.TMPDIR = shared;
    try {
      expect(os.tmpdir()).toBe(shared);
      const error = refusal(shared);
      expect(error.message).toContain(`choose another \`root\``);
      expect(error.message).toContain(path.join(shared, `tempfile-manager-${process.getuid!()}`));
      expect(error.message).not.toMatch(/chmod|chown/);
    } finally {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
  });

  it('refuses a directory owned by another uid (nobody), saying to chown it', (ctx) => {
    needs(ctx, { root: 'chown to nobody' });
    const root = freshRoot();
    fs.mkdirSync(root, { mode: 0o700 });
    fs.chownSync(root, nobodyUid(), nobodyUid());
    const error = refusal(root);
    expect(error.reason).toBe('wrong-owner');
    expect(error.message).toContain('chown');
    expect(fs.readdirSync(root)).toEqual([]);
  });

  it('a relative root is resolved once, at construction, against the working directory of that moment', async () => {
    const here = scratchDir();
    const elsewhere = scratchDir();
    const before = process.cwd();
    let mgr: TempFileManager;
    try {
      process.chdir(here);
      mgr = new TempFileManager({ root: 'relative/../root', ...quiet });
      expect(mgr.root).toBe(path.join(here, 'root'));
      expect(path.isAbsolute(mgr.root)).toBe(true);
      process.chdir(elsewhere); // e.g. a worker started in another directory, or a later chdir()
      const file = mgr.file('.txt');
      expect(path.dirname(path.dirname(file.path))).toBe(path.join(here, 'root'));
      const ticket = await (await mgr.write('from here')).handoff({ ttlMs: 60_000 });
      // A worker started elsewhere, with the absolute root it was given, finds the entry.
      const worker = new TempFileManager({ root: mgr.root, ...quiet });
      await worker.withClaim(ticket, (claimed) => expect(fs.readFileSync(claimed.path, 'utf8')).toBe('from here'));
      await worker.close();
      expect(fs.existsSync(path.join(elsewhere, 'root'))).toBe(false);
    } finally {
      process.chdir(before);
    }
    await mgr.close();
  });

  it('never creates the parent of a missing root', () => {
    const root = path.join(scratchDir(), 'missing-parent', 'root');
    expect(refusal(root).reason).toBe('missing-parent');
    expect(fs.existsSync(path.dirname(root))).toBe(false);
  });
});

it('a root removed between the mkdir that found it and the look at it is a typed FileSystemError, not a raw ENOENT', () => {
  const root = freshRoot();
  fs.mkdirSync(root, { mode: 0o700 });
  const vanishing = new Proxy(fs, {
    get(target, key, receiver) {
      if (key !== 'lstatSync') return Reflect.get(target, key, receiver) as unknown;
      return (at: fs.PathLike, ...rest: unknown[]) => {
        if (String(at) === root) throw Object.assign(new Error(`ENOENT: no such file or directory, lstat '${root}'`), { code: 'ENOENT', syscall: 'lstat', path: root });
        return (target.lstatSync as (...args: unknown[]) => unknown)(at, ...rest);
      };
    },
  });
  let thrown: unknown;
  try {
    layeredManager({ root, fs: vanishing as never, sweepOnStart: false, exitHook: false });
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'ENOENT' });
  expect((thrown as Error).message).toContain(root);
});
