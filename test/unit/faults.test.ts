import { Volume } from 'memfs';
import { describe, expect, it } from 'vitest';
import { DiskQuotaError, NoSpaceError, TempFileError, TempFileManager } from '../../src/index.js';
import { FileSystemError, RemoveError } from '../../src/errors.js';
import type { FsLayer } from '../helpers/fs-layer.js';
import { layOver } from '../helpers/roots.js';
import { memoryFs } from '../helpers/memfs.js';
import { INLINE_IO_MAX_BYTES } from '../../src/disk/local-disk.js';
import { FaultyFs } from '../helpers/faulty-fs.js';

// The memory file system is laid over /tmp (where /tmp/root is in memory only) for the test.
function memoryManager(): { mgr: TempFileManager; faulty: FaultyFs; mem: FsLayer; vol: Volume } {
  const vol = new Volume();
  const mem = memoryFs(vol);
  vol.mkdirSync('/tmp', { recursive: true });
  const faulty = new FaultyFs(mem);
  layOver(faulty.fs, ['/tmp/root']);
  const mgr = new TempFileManager({ root: '/tmp/root', sweepOnStart: false, exitHook: false });
  return { mgr, faulty, mem, vol };
}

function files(vol: Volume, sessionPath: string): string[] {
  return (vol.readdirSync(sessionPath) as string[]).sort();
}

const expectedClass = { ENOSPC: NoSpaceError, EDQUOT: DiskQuotaError, EIO: FileSystemError, EACCES: FileSystemError, EMFILE: FileSystemError };
const expectedCode = {
  ENOSPC: 'ERR_TEMPFILE_NO_SPACE',
  EDQUOT: 'ERR_TEMPFILE_DISK_QUOTA',
  EIO: 'ERR_TEMPFILE_IO',
  EACCES: 'ERR_TEMPFILE_IO',
  EMFILE: 'ERR_TEMPFILE_IO',
} as const;
type Errno = keyof typeof expectedCode;
const ERRNOS = Object.keys(expectedCode) as Errno[];

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('fault injection on memfs: create', () => {
  it('works on memfs without faults (the harness itself)', () => {
    const { mgr, vol } = memoryManager();
    const file = mgr.file('.x');
    expect(vol.statSync(file.path).mode & 0o777).toBe(0o600);
    file.removeSync();
    expect(files(vol, mgr.sessionPath)).toEqual([]);
  });

  it.each(ERRNOS)('open failing with %s gives a typed error and leaves nothing; the next create works', (errno) => {
    const { mgr, faulty, vol } = memoryManager();
    mgr.file().removeSync();
    faulty.fail('openSync', errno);
    const error = caught(() => mgr.file('.bin'));
    expect(error).toBeInstanceOf(expectedClass[errno]);
    expect(error).toMatchObject({ code: expectedCode[errno] });
    expect((error as Error).message).toMatch(/:/);
    expect((error as TempFileError).cause).toMatchObject({ code: errno });
    expect(files(vol, mgr.sessionPath)).toEqual([]);
    expect(mgr.file('.bin').disposed).toBe(false);
  });

  it.each(ERRNOS)('close failing with %s after create removes the new file', (errno) => {
    const { mgr, faulty, vol } = memoryManager();
    mgr.file().removeSync();
    faulty.fail('closeSync', errno);
    expect(caught(() => mgr.file())).toMatchObject({ code: expectedCode[errno] });
    expect(files(vol, mgr.sessionPath)).toEqual([]);
  });

  it.each(ERRNOS)('mkdir failing with %s gives a typed error for dir()', (errno) => {
    const { mgr, faulty, vol } = memoryManager();
    mgr.file().removeSync();
    faulty.fail('mkdirSync', errno);
    expect(caught(() => mgr.dir())).toBeInstanceOf(expectedClass[errno]);
    expect(files(vol, mgr.sessionPath)).toEqual([]);
  });

  it.each(ERRNOS)('a session that cannot be created (%s) is a typed error, and the lock is not left', (errno) => {
    const { mgr, faulty, vol } = memoryManager();
    faulty.fail('mkdirSync', errno, 1, (p) => p === mgr.sessionPath);
    expect(caught(() => mgr.file())).toMatchObject({ code: expectedCode[errno] });
    expect(vol.readdirSync('/tmp/root')).toEqual(['.tempfile-manager']);
  });
});

describe('fault injection on memfs: remove', () => {
  // A small file is unlinked inline, a larger one in the thread pool (local-disk.ts): both fail alike.
  const unlinkCases = ERRNOS.flatMap((errno) => [
    [errno, 'unlinkSync', 0],
    [errno, 'unlink', INLINE_IO_MAX_BYTES + 1],
  ] as const);
  it.each(unlinkCases)('unlink failing with %s (%s, a file of %i bytes): remove() rejects typed, the file is not lost, a retry removes it', async (errno, method, bytes) => {
    const { mgr, faulty, vol } = memoryManager();
    const file = mgr.file();
    vol.writeFileSync(file.path, Buffer.alloc(bytes));
    faulty.fail(method, errno);
    const error = await file.remove().catch((err: unknown) => err);
    expect(error).toMatchObject({ code: expectedCode[errno], path: file.path });
    expect(files(vol, mgr.sessionPath)).toHaveLength(1);
    await file.remove();
    expect(files(vol, mgr.sessionPath)).toEqual([]);
  });

  it.each(ERRNOS)('unlinkSync failing with %s: `using` disposal throws typed, then a retry works', (errno) => {
    const { mgr, faulty, vol } = memoryManager();
    const file = mgr.file();
    faulty.fail('unlinkSync', errno);
    expect(caught(() => file[Symbol.dispose]())).toMatchObject({ code: expectedCode[errno] });
    file.removeSync();
    expect(files(vol, mgr.sessionPath)).toEqual([]);
  });

  it.each(ERRNOS)('rmdir failing with %s in a scope: one RemoveError, the other members removed', async (errno) => {
    const { mgr, faulty, vol } = memoryManager();
    const scope = mgr.scope();
    scope.file();
    const dir = scope.dir();
    scope.file();
    faulty.fail('rmdir', errno);
    const error = await scope.remove().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RemoveError);
    expect((error as RemoveError).errors).toHaveLength(1);
    expect((error as RemoveError).errors[0]).toMatchObject({ code: expectedCode[errno], path: dir.path });
    expect(files(vol, mgr.sessionPath)).toHaveLength(1);
    await scope.remove();
    expect(files(vol, mgr.sessionPath)).toEqual([]);
  });

  it('a session removal that fails at close is reported, and close can be observed as done', async () => {
    const { mgr, faulty } = memoryManager();
    mgr.file();
    faulty.fail('rmdir', 'EIO');
    await expect(mgr.close()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_IO' });
    expect(mgr.closed).toBe(true);
  });
});
