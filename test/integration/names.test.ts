import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidNameError, TempFileManager } from '../../src/index.js';
import { InvalidOptionError } from '../../src/errors.js';
import { HOSTILE_NAME_PARTS } from '../helpers/hostile-names.js';
import { MAX_SUFFIX_BYTES } from '../../src/base/layout.js';
import { freshRoot, listTree, manager, scratchDir } from '../helpers/roots.js';

vi.mock('../../src/base/random-name.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/base/random-name.js')>();
  return { ...real, randomName: vi.fn(real.randomName) };
});
const names = await import('../../src/base/random-name.js');
const real = await vi.importActual<typeof import('../../src/base/random-name.js')>('../../src/base/random-name.js');
const randomName = vi.mocked(names.randomName);

afterEach(() => {
  randomName.mockReset();
  randomName.mockImplementation(real.randomName);
});

describe('hostile names', () => {
  it(`has a list of at least 20 hostile inputs (${HOSTILE_NAME_PARTS.length})`, () => {
    expect(HOSTILE_NAME_PARTS.length).toBeGreaterThanOrEqual(20);
  });

  it.each(HOSTILE_NAME_PARTS)('refuses %s everywhere a name part is taken, before touching the disk', (_label, value) => {
    const mgr = manager();
    const attempts = [
      () => mgr.file(value as string),
      () => mgr.file({ suffix: value as string }),
      () => mgr.file({ prefix: value as string }),
      () => mgr.dir(value as string),
      () => mgr.dir({ prefix: value as string }),
      () => mgr.scope().file({ suffix: value as string }),
    ];
    for (const attempt of attempts) {
      let caught: unknown;
      try {
        attempt();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(InvalidNameError);
      expect((caught as InvalidNameError).code).toBe('ERR_TEMPFILE_INVALID_NAME');
    }
    expect(() => new TempFileManager({ root: freshRoot(), prefix: value as string, sweepOnStart: false })).toThrow(
      InvalidNameError,
    );
    // Nothing touched the disk: not even the session was created.
    expect(fs.readdirSync(mgr.root)).toEqual(['.tempfile-manager']);
  });

  it('refuses an object with keys other than prefix and suffix', () => {
    expect(() => manager().file({ suffix: '.x', path: '/etc' } as never)).toThrow(InvalidNameError);
  });

  it('accepts ordinary names, unicode included, up to the 255-byte limit', () => {
    const mgr = manager();
    const suffix = `.${'a'.repeat(MAX_SUFFIX_BYTES - 1)}`;
    const prefix = 'p'.repeat(255 - 32 - MAX_SUFFIX_BYTES);
    for (const ok of ['.pdf', '.tar.gz', '-résumé.docx', '.日本語', ' spaced name', suffix]) {
      const file = mgr.file(ok);
      expect(path.basename(file.path).endsWith(ok)).toBe(true);
      expect(path.dirname(file.path)).toBe(mgr.sessionPath);
    }
    expect(Buffer.byteLength(path.basename(mgr.file({ prefix, suffix }).path))).toBe(255);
    expect(() => mgr.file({ prefix: `${prefix}p`, suffix })).toThrow(InvalidNameError);
    expect(() => mgr.file(`${suffix}a`)).toThrow(InvalidNameError);
  });
});

describe('O_EXCL: a name that exists is never reused', () => {
  it('draws a new name when a file was planted at the drawn one, and leaves the planted file alone', () => {
    const mgr = manager();
    mgr.file();
    const planted = path.join(mgr.sessionPath, 'a'.repeat(32));
    fs.writeFileSync(planted, 'planted');
    randomName.mockReturnValueOnce('a'.repeat(32)).mockReturnValueOnce('b'.repeat(32));
    const file = mgr.file();
    expect(path.basename(file.path)).toBe('b'.repeat(32));
    expect(fs.readFileSync(planted, 'utf8')).toBe('planted');
  });

  it('never follows a symlink planted at the drawn name', () => {
    const mgr = manager();
    mgr.file();
    const victim = path.join(scratchDir(), 'victim');
    fs.writeFileSync(victim, 'precious');
    const dangling = path.join(scratchDir(), 'would-be-created');
    fs.symlinkSync(victim, path.join(mgr.sessionPath, 'c'.repeat(32)));
    fs.symlinkSync(dangling, path.join(mgr.sessionPath, 'd'.repeat(32)));
    randomName.mockReturnValueOnce('c'.repeat(32)).mockReturnValueOnce('d'.repeat(32)).mockReturnValueOnce('e'.repeat(32));
    const file = mgr.file();
    expect(path.basename(file.path)).toBe('e'.repeat(32));
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
    expect(fs.existsSync(dangling)).toBe(false);
  });

  it('gives up with a typed error after repeated clashes instead of looping', () => {
    const mgr = manager();
    mgr.file().removeSync();
    fs.writeFileSync(path.join(mgr.sessionPath, 'f'.repeat(32)), 'planted');
    randomName.mockReturnValue('f'.repeat(32));
    expect(() => mgr.file()).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EEXIST' }));
    expect(() => mgr.dir()).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EEXIST' }));
    randomName.mockImplementation(real.randomName);
    expect(listTree(mgr.sessionPath)).toEqual(['f'.repeat(32)]);
  });
});

describe('manager options', () => {
  it.each([
    [{ staleMs: 100 }, 'staleMs'],
    [{ staleMs: Number.NaN }, 'staleMs'],
    [{ graceMs: -1 }, 'graceMs'],
    [{ maxLiveBytes: '1GB' }, 'maxLiveBytes'],
    [{ minFreeBytes: Infinity }, 'minFreeBytes'],
    [{ sweepOnStart: 'yes' }, 'sweepOnStart'],
    [{ exitHook: 1 }, 'exitHook'],
    [{ root: '' }, 'root'],
    [{ root: 42 }, 'root'],
    [{ rooot: '/tmp/x' }, 'rooot'],
  ])('refuses %o with a typed error naming the option', (options, option) => {
    let caught: unknown;
    try {
      new TempFileManager(options as never);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidOptionError);
    expect(caught).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option });
    expect((caught as Error).message).toContain(option);
  });
});
