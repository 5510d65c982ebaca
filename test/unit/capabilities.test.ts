import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ensureCapabilities } from '../../src/disk/capabilities.js';
import { TempFileManager } from '../../src/index.js';
import { UnsupportedFileSystemError } from '../../src/errors.js';
import { realFs, type FsLayer } from '../helpers/fs-layer.js';
import { FaultyFs, lacking, systemError, type Primitive } from '../helpers/faulty-fs.js';
import { freshRoot, layeredManager, layOver, scratchDir } from '../helpers/roots.js';

const PRIMITIVES: Primitive[] = ['exclusive-create', 'exclusive-mkdir', 'rename', 'rename-replace', 'hard-link', 'utimes', 'no-follow'];

function probeError(layer: FsLayer, root = scratchDir()): unknown {
  const lift = layOver(layer, [root]);
  try {
    ensureCapabilities(root, root);
  } catch (err) {
    return err;
  } finally {
    lift();
  }
  return undefined;
}

describe('the capability probe', () => {
  it('passes on the local disk and leaves nothing behind', () => {
    const root = scratchDir();
    expect(probeError(realFs, root)).toBeUndefined();
    expect(fs.readdirSync(root)).toEqual([]);
  });

  it.each(PRIMITIVES)('names a missing %s with a typed error, and leaves nothing behind', (primitive) => {
    const root = scratchDir();
    const err = probeError(lacking(primitive), root);
    expect(err).toBeInstanceOf(UnsupportedFileSystemError);
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_UNSUPPORTED_FS', primitive, path: root });
    expect((err as Error).message).toContain(`lacks \`${primitive}\``);
    expect(fs.readdirSync(root)).toEqual([]);
  });

  it('accepts a file system that refuses link() altogether (keep() falls back) or has no symlinks', () => {
    for (const code of ['EPERM', 'ENOTSUP', 'ENOSYS']) {
      const noLinks: FsLayer = { ...realFs, linkSync: () => { throw systemError(code, 'link'); } };
      const noSymlinks: FsLayer = { ...realFs, symlinkSync: () => { throw systemError(code, 'symlink'); } };
      expect(probeError(noLinks)).toBeUndefined();
      expect(probeError(noSymlinks)).toBeUndefined();
    }
  });

  it('runs once per root, and again after a failure of the disk', () => {
    const faulty = new FaultyFs();
    const root = scratchDir();
    faulty.fail('mkdirSync', 'EIO');
    expect(probeError(faulty.fs, root)).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EIO' });
    expect(probeError(faulty.fs, root)).toBeUndefined();
    const calls = faulty.calls.get('mkdirSync');
    expect(probeError(faulty.fs, root)).toBeUndefined();
    expect(faulty.calls.get('mkdirSync')).toBe(calls);
  });
});

describe('the manager runs the probe when the root is first used', () => {
  it.each(PRIMITIVES)('file() refuses a root lacking %s, and removes its session', (primitive) => {
    const root = freshRoot();
    const mgr = layeredManager({ root, fs: lacking(primitive), sweepOnStart: false, exitHook: false });
    expect(() => mgr.file('.txt')).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_UNSUPPORTED_FS', primitive }));
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
    mgr.closeSync();
  });

  it('claim() on a root lacking rename-replace refuses before touching the entry', async () => {
    const root = freshRoot();
    const maker = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
    await using file = maker.file('.bin');
    fs.writeFileSync(file.path, 'x');
    const ticket = await file.handoff({ ttlMs: 60_000 });
    await maker.close();
    // The probe runs once per root and process: the worker is a fresh copy of the library, as in
    // a process that has not used this root yet.
    vi.resetModules();
    const fresh = await import('../../src/index.js');
    const lift = layOver(lacking('rename-replace'), [root]);
    const worker = new fresh.TempFileManager({ root, sweepOnStart: false, exitHook: false });
    await expect(worker.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_UNSUPPORTED_FS', primitive: 'rename-replace' });
    const entries = fs.readdirSync(path.join(root, 'handoff'));
    expect(entries).toHaveLength(1);
    expect(fs.readdirSync(path.join(root, 'handoff', entries[0]!))).toEqual(['data.bin']);
    lift();
    const claimed = await new TempFileManager({ root, sweepOnStart: false, exitHook: false }).claim(ticket);
    await claimed.consume();
  });
});

describe('a file system that refuses rename, as an SFTP server denying posix-rename does', () => {
  it.each(['EPERM', 'ENOSYS'])('is refused as lacking rename on %s', (code) => {
    const refusing: FsLayer = { ...realFs, renameSync: (from: fs.PathLike) => { throw systemError(code, 'rename', String(from)); } };
    expect(probeError(refusing)).toMatchObject({ code: 'ERR_TEMPFILE_UNSUPPORTED_FS', primitive: 'rename' });
  });
});
