// On a local disk, a small file's last write, its close and its unlink are made inline (a few
// microseconds each), not in the thread pool, and in tmpfs its create too; on any other file
// system, and for larger files, every call goes to the thread pool. Seen from the calls the file system receives, on the real disk.
import { createHash } from 'node:crypto';
import nodeFs from 'node:fs';
import os from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { INLINE_IO_MAX_BYTES, isLocalDisk, runInline } from '../../src/disk/local-disk.js';
import { realFs, type FsLayer } from '../helpers/fs-layer.js';
import { layOver, manager } from '../helpers/roots.js';

const NFS_MAGIC = 0x6969;
const TMPFS_MAGIC = 0x01021994;
const EXT4_MAGIC = 0xef53;
type Call = 'open' | 'openSync' | 'write' | 'writeSync' | 'close' | 'closeSync' | 'unlink' | 'unlinkSync';

/** The real fs, recording which calls touch one file (by name) or its descriptors; `statfsType` replaces what statfs says. */
function recordingFs(statfsType?: number | 'fails'): { fs: FsLayer; callsOn(path: string): Call[] } {
  const fdPaths = new Map<number, string>();
  const calls: Array<[Call, string | undefined]> = [];
  const onFd = (call: Call, fd: number) => calls.push([call, fdPaths.get(fd)]);
  const fs: FsLayer = {
    ...realFs,
    open: ((file: string, flags: number, mode: number, callback: (err: Error | null, fd: number) => void) =>
      realFs.open(file, flags, mode, (err, fd) => {
        calls.push(['open', file]);
        if (!err) fdPaths.set(fd, file);
        callback(err, fd);
      })) as typeof nodeFs.open,
    openSync: ((file: string, flags: nodeFs.OpenMode, mode?: nodeFs.Mode) => {
      const fd = realFs.openSync(file, flags, mode);
      calls.push(['openSync', file]);
      fdPaths.set(fd, file);
      return fd;
    }) as typeof nodeFs.openSync,
    write: ((fd: number, ...rest: unknown[]) => {
      onFd('write', fd);
      return (realFs.write as (...a: unknown[]) => void)(fd, ...rest);
    }) as typeof nodeFs.write,
    writeSync: ((fd: number, ...rest: unknown[]) => {
      onFd('writeSync', fd);
      return (realFs.writeSync as (...a: unknown[]) => number)(fd, ...rest);
    }) as typeof nodeFs.writeSync,
    close: ((fd: number, callback: (err: Error | null) => void) => {
      onFd('close', fd);
      realFs.close(fd, callback);
    }) as typeof nodeFs.close,
    closeSync: (fd: number) => {
      onFd('closeSync', fd);
      realFs.closeSync(fd);
    },
    unlinkSync: (file: nodeFs.PathLike) => {
      calls.push(['unlinkSync', String(file)]);
      realFs.unlinkSync(file);
    },
    promises: {
      ...realFs.promises,
      unlink: (file: nodeFs.PathLike) => {
        calls.push(['unlink', String(file)]);
        return realFs.promises.unlink(file);
      },
    },
  };
  if (statfsType === 'fails') {
    fs.statfsSync = (() => {
      throw Object.assign(new Error('ENOSYS: function not implemented, statfs'), { code: 'ENOSYS', syscall: 'statfs' });
    }) as typeof nodeFs.statfsSync;
  } else if (statfsType !== undefined) fs.statfsSync = ((p: string) => ({ ...realFs.statfsSync(p), type: statfsType })) as typeof nodeFs.statfsSync;
  // By name: the library reaches a file through its session's descriptor (/proc/<pid>/fd/<fd>/<name>),
  // and a name holds 128 random bits.
  return { fs, callsOn: (file) => calls.filter(([, p]) => p !== undefined && p.split('/').pop() === file.split('/').pop()).map(([call]) => call) };
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

describe('inline calls on a local disk', () => {
  // Slow inline calls send every inline call of the process to the thread pool for a while
  // (src/disk/local-disk.ts): on a busy machine calls descheduled mid-way did, and the next
  // test's small file went to the pool. The clock that decides it is held still here, moved by
  // the tests of the pause, and moved past any pause after each test.
  beforeAll(() => {
    vi.useFakeTimers({ toFake: ['hrtime'] });
  });
  afterEach(() => {
    vi.advanceTimersByTime(5_001);
  });
  afterAll(() => {
    vi.useRealTimers();
  });

  it('knows the disk under os.tmpdir() for a local one; an NFS one, one statfs cannot tell, or a missing directory, for not', () => {
    expect(isLocalDisk(os.tmpdir())).toBe(true);
    for (const type of [NFS_MAGIC, 'fails'] as const) {
      const lift = layOver(recordingFs(type).fs, [os.tmpdir()]);
      expect(isLocalDisk(os.tmpdir())).toBe(false);
      lift();
    }
    expect(isLocalDisk('/no/such/dir')).toBe(false);
  });

  it('a small file in tmpfs: created, written, closed and unlinked inline, whole', async () => {
    const disk = recordingFs(TMPFS_MAGIC);
    const mgr = manager({ fs: disk.fs });
    const bytes = Buffer.alloc(10 * 1024, 7);
    const file = await mgr.write([bytes.subarray(0, 100), bytes.subarray(100)], { hash: 'sha256' });
    expect(nodeFs.readFileSync(file.path).equals(bytes)).toBe(true);
    expect(file.digest).toBe(sha256(bytes));
    await file.remove();
    expect(nodeFs.existsSync(file.path)).toBe(false);
    expect(disk.callsOn(file.path)).toEqual(['openSync', 'writeSync', 'closeSync', 'unlinkSync']);
  });

  it('on a disk with a device behind it (ext4), a small file is created in the thread pool, then written, closed and unlinked inline', async () => {
    const disk = recordingFs(EXT4_MAGIC);
    const mgr = manager({ fs: disk.fs });
    const file = await mgr.write('small');
    await file.remove();
    expect(disk.callsOn(file.path)).toEqual(['open', 'writeSync', 'closeSync', 'unlinkSync']);
  });

  it(`a file of ${INLINE_IO_MAX_BYTES + 1} bytes: created and closed inline, written and unlinked in the thread pool`, async () => {
    const disk = recordingFs(TMPFS_MAGIC);
    const mgr = manager({ fs: disk.fs });
    const bytes = Buffer.alloc(INLINE_IO_MAX_BYTES + 1, 9);
    const file = await mgr.write(bytes);
    expect(nodeFs.readFileSync(file.path).equals(bytes)).toBe(true);
    await file.remove();
    expect(nodeFs.existsSync(file.path)).toBe(false);
    expect(disk.callsOn(file.path)).toEqual(['openSync', 'write', 'closeSync', 'unlink']);
  });

  /** Inline calls, each taking `ms` on the clock, after enough quick ones that no earlier slow call counts. */
  function inlineCalls(...ms: number[]): void {
    vi.advanceTimersByTime(5_001);
    for (let i = 0; i < 65; i++) runInline(() => {});
    for (const took of ms) runInline(() => vi.advanceTimersByTime(took));
  }

  it('after two inline calls slower than 2 ms, a new file is created and written in the thread pool for a while (closed inline)', async () => {
    const disk = recordingFs(TMPFS_MAGIC);
    const mgr = manager({ fs: disk.fs });
    inlineCalls(3, 3); // a create the journal held, then a write the device did
    const paused = await mgr.write('small');
    vi.advanceTimersByTime(5_001);
    const after = await mgr.write('small');
    expect([disk.callsOn(paused.path), disk.callsOn(after.path)]).toEqual([
      ['open', 'write', 'closeSync'],
      ['openSync', 'writeSync', 'closeSync'],
    ]);
  });

  it('one inline call slower than 2 ms among quick ones (the thread lost the CPU for a time slice) pauses nothing', async () => {
    const disk = recordingFs(TMPFS_MAGIC);
    const mgr = manager({ fs: disk.fs });
    inlineCalls(7);
    const file = await mgr.write('small');
    expect(disk.callsOn(file.path)).toEqual(['openSync', 'writeSync', 'closeSync']);
  });

  it('a slow call pauses when it is one of the 64 calls after another slow one; a call later, it does not', async () => {
    const disk = recordingFs(TMPFS_MAGIC);
    const mgr = manager({ fs: disk.fs });
    inlineCalls(3, ...Array<number>(63).fill(0), 3);
    expect(disk.callsOn((await mgr.write('small')).path)).toEqual(['open', 'write', 'closeSync']);
    inlineCalls(3, ...Array<number>(64).fill(0), 3);
    expect(disk.callsOn((await mgr.write('small')).path)).toEqual(['openSync', 'writeSync', 'closeSync']);
  });

  it('one inline call slower than 20 ms pauses at once', async () => {
    const disk = recordingFs(TMPFS_MAGIC);
    const mgr = manager({ fs: disk.fs });
    inlineCalls(21);
    const file = await mgr.write('small');
    expect(disk.callsOn(file.path)).toEqual(['open', 'write', 'closeSync']);
  });

  it.each([
    ['an NFS mount', NFS_MAGIC],
    ['a file system statfs cannot tell', 'fails'],
  ] as const)('on %s, even a small file goes through the thread pool', async (_, type) => {
    const disk = recordingFs(type);
    const mgr = manager({ fs: disk.fs });
    const file = await mgr.write('small');
    expect(nodeFs.readFileSync(file.path, 'utf8')).toBe('small');
    await file.remove();
    expect(nodeFs.existsSync(file.path)).toBe(false);
    expect(disk.callsOn(file.path)).toEqual(['open', 'write', 'close', 'unlink']);
  });

  it('a small file grown past the limit after write() is unlinked in the thread pool', async () => {
    const disk = recordingFs(TMPFS_MAGIC);
    const mgr = manager({ fs: disk.fs });
    const file = await mgr.write('small');
    nodeFs.appendFileSync(file.path, Buffer.alloc(INLINE_IO_MAX_BYTES));
    await file.remove();
    expect(disk.callsOn(file.path)).toEqual(['openSync', 'writeSync', 'closeSync', 'unlink']);
  });
});
