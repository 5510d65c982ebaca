import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { DiskQuotaError, NoSpaceError, QuotaExceededError, TempFileManager, type TempFile } from '../../src/index.js';
import { AbortedError, FileSystemError } from '../../src/errors.js';
import { FaultyFs } from '../helpers/faulty-fs.js';
import { sessionFiles } from '../helpers/wait.js';
import { MOUNTING, needs } from '../helpers/privileges.js';
import { manager, scratchDir, TestDisk } from '../helpers/roots.js';
import { realFs } from '../helpers/fs-layer.js';
import { countingSource, MiB } from '../helpers/sources.js';

describe('maxLiveBytes', () => {
  it('refuses a write that would pass the quota, and releases bytes when files go', async () => {
    const mgr = manager({ maxLiveBytes: 10 * MiB });
    const first = await mgr.write(countingSource(6).source);
    expect(mgr.stats()).toMatchObject({ liveFiles: 1, liveBytes: 6 * MiB, quotaLeft: 4 * MiB });
    const second = countingSource(6);
    const error = await mgr.write(second.source).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_QUOTA_EXCEEDED', limit: 10 * MiB });
    expect(second.state.stopped).toBe(true);
    expect(sessionFiles(mgr)).toHaveLength(1);
    expect(mgr.stats().liveBytes).toBe(6 * MiB);
    await first.remove();
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
    const third = await mgr.write(countingSource(10).source);
    expect(mgr.stats().liveBytes).toBe(10 * MiB);
    await third.keep(path.join(scratchDir(), 'kept'));
    expect(mgr.stats().liveBytes).toBe(0);
  });

  it('is never overshot by 16 concurrent writes', async () => {
    const quota = 40 * MiB;
    const mgr = manager({ maxLiveBytes: quota });
    let peakOnDisk = 0;
    const watchDisk = () => {
      const onDisk = sessionFiles(mgr).reduce((sum, name) => {
        try {
          return sum + fs.statSync(path.join(mgr.sessionPath, name)).size;
        } catch {
          return sum;
        }
      }, 0);
      peakOnDisk = Math.max(peakOnDisk, onDisk);
      expect(mgr.stats().liveBytes).toBeLessThanOrEqual(quota);
    };
    const sizes = Array.from({ length: 16 }, (_, i) => 2 + (i % 5)); // 2..6 MiB each, 64 MiB in all
    const results = await Promise.allSettled(
      sizes.map((n) => mgr.write(countingSource(n * 4, MiB / 4).source, { onProgress: watchDisk })),
    );
    const written = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((e) => e instanceof QuotaExceededError)).toBe(true);
    expect(peakOnDisk).toBeLessThanOrEqual(quota);
    const total = written.reduce((sum, f) => sum + (f.size ?? 0), 0);
    expect(total).toBeLessThanOrEqual(quota);
    expect(mgr.stats()).toMatchObject({ liveFiles: written.length, liveBytes: total });
    expect(sessionFiles(mgr)).toHaveLength(written.length);
    await Promise.all(written.map((f) => f.remove()));
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
  });
});

describe('disk errors mid-write (injected)', () => {
  it.each([
    ['EIO', FileSystemError, 'ERR_TEMPFILE_IO'],
    ['EDQUOT', DiskQuotaError, 'ERR_TEMPFILE_DISK_QUOTA'],
    ['ENOSPC', NoSpaceError, 'ERR_TEMPFILE_NO_SPACE'],
  ] as const)('%s after 3 MiB: typed error, no partial file, source stopped, next write works', async (errno, type, code) => {
    const faulty = new FaultyFs();
    const mgr = manager({ fs: faulty.fs });
    faulty.failWritesAfter(3 * MiB, errno);
    const { source, state } = countingSource(20);
    const error = await mgr.write(source).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(type);
    expect(error).toMatchObject({ code });
    expect(state.stopped).toBe(true);
    expect(state.produced).toBeLessThan(8);
    expect(sessionFiles(mgr)).toEqual([]);
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
    faulty.failWritesAfter(Infinity, errno);
    expect((await mgr.write(countingSource(4).source)).size).toBe(4 * MiB);
  });

  it.each([
    ['inline, in tmpfs', 'openSync', 0x01021994],
    ['in the thread pool, on NFS', 'open', 0x6969],
  ] as const)('a create that fails (EMFILE) %s is typed and leaves nothing', async (_, call, statfsType) => {
    // Whether a create goes inline depends on how long the last inline call took (a slow one pauses
    // them: src/disk/local-disk.ts). The clock is held still here, past any pause an earlier test
    // set off on a loaded machine, so that the machine's load cannot send this create elsewhere.
    const [realSeconds] = process.hrtime(); // the fake clock starts at 0: moved past the real one
    vi.useFakeTimers({ toFake: ['hrtime'] });
    onTestFinished(() => void vi.useRealTimers());
    vi.advanceTimersByTime(realSeconds * 1000 + 60_000);
    const faulty = new FaultyFs();
    faulty.fs.statfsSync = ((p: string) => ({ ...fs.statfsSync(p), type: statfsType })) as typeof fs.statfsSync;
    const mgr = manager({ fs: faulty.fs });
    mgr.file().removeSync();
    faulty.fail(call, 'EMFILE');
    await expect(mgr.write('x')).rejects.toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EMFILE' });
    expect(sessionFiles(mgr)).toEqual([]);
  });
});

describe('a client that goes away', () => {
  it('aborts the write of an HTTP upload cut off half-way, and leaves no file', async () => {
    const mgr = manager();
    const outcome = new Promise<unknown>((resolve) => {
      const server = http.createServer((req, res) => {
        mgr.write(req).then(
          (file: TempFile) => resolve(file),
          (err: unknown) => resolve(err),
        ).finally(() => { res.destroy(); server.close(); });
      });
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        const req = http.request({ port, host: '127.0.0.1', method: 'POST', headers: { 'content-length': 8 * MiB } });
        req.on('error', () => {});
        req.write(Buffer.alloc(4 * MiB), () => setTimeout(() => req.destroy(), 50));
      });
    });
    const error = await outcome;
    expect(error).toBeInstanceOf(AbortedError);
    expect((error as AbortedError).message).toMatch(/client went away/);
    expect(sessionFiles(mgr)).toEqual([]);
    expect(mgr.stats().liveBytes).toBe(0);
  });
});

describe('minFreeBytes', () => {
  it('refuses a write before it starts when the floor is above the free space', async () => {
    const mgr = manager({ minFreeBytes: Number.MAX_SAFE_INTEGER });
    const { source, state } = countingSource(1);
    const error = await mgr.write(source).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoSpaceError);
    expect((error as Error).message).toMatch(/minFreeBytes/);
    expect(state.produced).toBe(0);
    expect(sessionFiles(mgr)).toEqual([]);
    expect(mgr.stats().freeBytes).toBeGreaterThan(0);
  });

  it('reads the free space before every write with minFreeBytes, and at most once a second without', async () => {
    // Each manager on a disk of its own, so that each counts its own calls.
    const disks: TestDisk[] = [];
    onTestFinished(async () => {
      for (const disk of disks) await disk.cleanup();
    });
    const statfsCalls = (minFreeBytes: number) => {
      let calls = 0;
      const counting = { ...realFs, promises: { ...realFs.promises, statfs: ((...args: Parameters<typeof fs.promises.statfs>) => (calls++, fs.promises.statfs(...args))) as typeof fs.promises.statfs } };
      const disk = new TestDisk();
      disks.push(disk);
      return { mgr: disk.manager({ fs: counting, minFreeBytes }), calls: () => calls };
    };
    const guarded = statfsCalls(1);
    const unguarded = statfsCalls(0);
    const started = performance.now();
    for (let i = 0; i < 20; i++) {
      await (await guarded.mgr.write('x')).remove();
      await (await unguarded.mgr.write('x')).remove();
    }
    const seconds = (performance.now() - started) / 1000;
    expect(guarded.calls()).toBeGreaterThanOrEqual(20);
    // At most once a second, however long the writes took on this machine: the first, then one per second since.
    expect(unguarded.calls()).toBeLessThanOrEqual(1 + Math.ceil(seconds));
    expect(unguarded.calls()).toBeLessThan(20);
    expect(unguarded.mgr.stats().freeBytes).toBeGreaterThan(0);
  });

  it('records the free space seen, for health checks', async () => {
    const mgr = manager();
    expect(mgr.stats().freeBytes).toBeUndefined();
    await mgr.write('x');
    expect(mgr.stats().freeBytes).toBeGreaterThan(0);
    expect(mgr.stats().freeCheckedAt).toBeInstanceOf(Date);
  });
});

// A real full disk: a small tmpfs mounted for the test. Needs root (CI runs as root).
describe('a real full disk (tmpfs)', () => {
  let mounted: string | undefined;
  afterEach(() => {
    if (mounted) execFileSync('umount', ['--lazy', mounted]);
    mounted = undefined;
  });

  function mountTmpfs(sizeMiB: number): string {
    const dir = path.join(scratchDir(), 'tmpfs');
    fs.mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
    mounted = dir;
    return dir;
  }

  it('ENOSPC: no partial file, and the manager works afterwards', async (ctx) => {
    needs(ctx, MOUNTING);
    const dir = mountTmpfs(8);
    const mgr = new TempFileManager({ root: path.join(dir, 'root'), sweepOnStart: false, exitHook: false });
    const { source, state } = countingSource(64);
    const error = await mgr.write(source).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoSpaceError);
    expect(state.stopped).toBe(true);
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
    expect(mgr.stats().liveBytes).toBe(0);
    const after = await mgr.write(countingSource(2).source);
    expect(after.size).toBe(2 * MiB);
    await mgr.close();
  });

  it('minFreeBytes refuses as the write grows, before the disk is full', async (ctx) => {
    needs(ctx, MOUNTING);
    const dir = mountTmpfs(32);
    const mgr = new TempFileManager({
      root: path.join(dir, 'root'),
      minFreeBytes: 16 * MiB,
      sweepOnStart: false,
      exitHook: false,
    });
    const { source, state } = countingSource(64);
    const error = await mgr.write(source).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoSpaceError);
    expect((error as Error).message).toMatch(/minFreeBytes/);
    expect(state.produced).toBeGreaterThan(2);
    expect(state.produced).toBeLessThan(20);
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
    const { bavail, bsize } = fs.statfsSync(dir);
    expect(bavail * bsize).toBeGreaterThan(16 * MiB);
    expect((await mgr.write(countingSource(4).source)).size).toBe(4 * MiB);
    await mgr.close();
  });
});
