// mgr.spool(): small data kept in memory, a file made only past maxMemory or when one is needed.
// "Nothing on disk" is read from the root itself: every regular file under it but its marker.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import type { TempFile, TempFileManager } from '../../src/index.js';
import { manager, scratchDir } from '../helpers/roots.js';
import { png, pdf } from '../helpers/magic.js';
import { sha256 } from '../helpers/sources.js';

const KiB = 1024;

/** The regular files under the root, its marker left out. */
function filesUnder(mgr: TempFileManager): string[] {
  return (fs.readdirSync(mgr.root, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((entry) => entry.isFile() && entry.name !== '.tempfile-manager')
    .map((entry) => path.join(entry.parentPath, entry.name));
}

const bytesOf = (file: TempFile) => buffer(file.createReadStream());

/** A source that yields `count` chunks of `size` bytes, writing each into the same buffer. */
async function* reusingSource(count: number, size: number): AsyncGenerator<Uint8Array> {
  const buffer = Buffer.alloc(size);
  for (let i = 0; i < count; i++) {
    buffer.fill(65 + i);
    yield buffer;
  }
}

describe('spool() below maxMemory', () => {
  it('holds the bytes in memory: no file under the root, its size, digest, type and reads as write() gives them', async () => {
    const mgr = manager();
    const data = png();
    const file = await mgr.spool(data, { maxMemory: 64 * KiB, hash: 'sha256', accept: ['image/png'] });
    expect(filesUnder(mgr)).toEqual([]);
    expect(file).toMatchObject({ size: data.length, digest: `sha256:${sha256(data)}`, detectedType: { mime: 'image/png' } });
    expect(await bytesOf(file)).toEqual(data);
    expect(await buffer(file.createReadStream({ start: 1, end: 3 }))).toEqual(data.subarray(1, 4));
    expect(mgr.stats()).toMatchObject({ liveFiles: 1, liveBytes: data.length });
    await file.remove();
    expect(file.disposed).toBe(true);
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
    expect(filesUnder(mgr)).toEqual([]);
  });

  it('keeps the bytes a source yielded, though it reuses its buffer', async () => {
    const mgr = manager();
    const file = await mgr.spool(reusingSource(3, 4), { maxMemory: KiB });
    expect((await bytesOf(file)).toString()).toBe('AAAABBBBCCCC');
    await file.remove();
    const past = await mgr.spool(reusingSource(4, 4), { maxMemory: 10 });
    expect(fs.readFileSync(past.path, 'utf8')).toBe('AAAABBBBCCCCDDDD');
    await past.remove();
  });

  it('holds chunks of any sizes, a reused buffer each, as one run of bytes: reads of any range, digest, the file on disk', async () => {
    const mgr = manager();
    const data = randomBytes(300 * KiB);
    const sizes = [1, 1, 255, 1, 100, 3000, 70_000, 1, 65_536, 4097, 7];
    /** `data` in chunks of the sizes above in turn, each written into one buffer the source reuses. */
    async function* mixed(): AsyncGenerator<Uint8Array> {
      const reused = Buffer.alloc(70_000);
      for (let at = 0, i = 0; at < data.length; i++) {
        const size = Math.min(sizes[i % sizes.length]!, data.length - at);
        data.copy(reused, 0, at, at + size);
        yield reused.subarray(0, size);
        reused.fill(0);
        at += size;
      }
    }
    const file = await mgr.spool(mixed(), { maxMemory: data.length, hash: 'sha256' });
    expect(filesUnder(mgr)).toEqual([]);
    expect(file).toMatchObject({ size: data.length, digest: `sha256:${sha256(data)}` });
    expect(await bytesOf(file)).toEqual(data);
    for (const [start, end] of [[0, 0], [255, 257], [65_535, 65_537], [1000, 200_000], [data.length - 1, data.length + 5]] as const) {
      expect(await buffer(file.createReadStream({ start, end, highWaterMark: 1000 }))).toEqual(data.subarray(start, end + 1));
    }
    expect(fs.readFileSync(file.path)).toEqual(data);
    await file.remove();
    const past = await mgr.spool(mixed(), { maxMemory: 100 * KiB, hash: 'sha256' });
    expect(fs.readFileSync(past.path)).toEqual(data);
    expect(past.digest).toBe(`sha256:${sha256(data)}`);
    await past.remove();
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
  });

  it('writes the file the first time its path is asked, once, with the same bytes; removal then removes it', async () => {
    const mgr = manager();
    await using file = await mgr.spool('spooled bytes', { suffix: '.txt' });
    expect(filesUnder(mgr)).toEqual([]);
    const where = file.path;
    expect(where).toMatch(/\.txt$/);
    expect(path.dirname(where)).toBe(mgr.sessionPath);
    expect(fs.statSync(where).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(where, 'utf8')).toBe('spooled bytes');
    expect(file.path).toBe(where);
    expect(filesUnder(mgr)).toEqual([where]);
    expect(await bytesOf(file)).toEqual(Buffer.from('spooled bytes'));
    await file.remove();
    expect(fs.existsSync(where)).toBe(false);
  });

  it('is kept and handed off from memory, whole', async () => {
    const mgr = manager();
    const kept = await (await mgr.spool(pdf())).keep(path.join(scratchDir(), 'kept.pdf'));
    expect(fs.readFileSync(kept)).toEqual(pdf());
    const ticket = await (await mgr.spool('for a worker', { hash: 'sha256' })).handoff({ ttlMs: 60_000 });
    await mgr.withClaim(ticket, (claimed) => expect(fs.readFileSync(claimed.path, 'utf8')).toBe('for a worker'));
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
  });
});

describe('spool() past maxMemory', () => {
  it('writes a file as write() does, with every byte, and the same digest', async () => {
    const mgr = manager();
    const data = Buffer.alloc(200 * KiB, 7);
    const file = await mgr.spool([data.subarray(0, 50 * KiB), data.subarray(50 * KiB)], { maxMemory: 64 * KiB, hash: 'sha256' });
    expect(filesUnder(mgr)).toEqual([file.path]);
    expect(fs.readFileSync(file.path)).toEqual(data);
    expect(file).toMatchObject({ size: data.length, digest: `sha256:${sha256(data)}` });
    expect(mgr.stats().liveBytes).toBe(data.length);
    await file.remove();
    expect(mgr.stats().liveBytes).toBe(0);
  });

  it('keeps the type found in memory', async () => {
    const mgr = manager();
    const file = await mgr.spool(Buffer.concat([png(), Buffer.alloc(4 * KiB)]), { maxMemory: 0, accept: ['image/*'] });
    expect(file.detectedType).toMatchObject({ mime: 'image/png' });
    expect(filesUnder(mgr)).toEqual([file.path]);
    await file.remove();
  });
});

describe('spool() limits and errors', () => {
  it('refuses more than maxBytes, in memory and past it, and leaves nothing', async () => {
    const mgr = manager();
    await expect(mgr.spool('x'.repeat(100), { maxBytes: 99 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_SIZE_LIMIT', statusCode: 413 });
    await expect(mgr.spool(['x'.repeat(60), 'y'.repeat(60)], { maxBytes: 100, maxMemory: 50 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_SIZE_LIMIT' });
    expect(filesUnder(mgr)).toEqual([]);
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
  });

  it('counts the bytes held in memory against maxLiveBytes: concurrent spools never hold more', async () => {
    const mgr = manager({ maxLiveBytes: 100 * KiB });
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => mgr.spool([Buffer.alloc(10 * KiB), Buffer.alloc(10 * KiB)], { maxMemory: 64 * KiB })));
    const held = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    // 160 KiB asked for, 100 allowed: which spools win is the scheduler's choice, the bound is not.
    expect(held.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((e) => (e as { code?: string }).code === 'ERR_TEMPFILE_QUOTA_EXCEEDED')).toBe(true);
    expect(mgr.stats().liveBytes).toBe(held.length * 20 * KiB);
    expect(mgr.stats().liveBytes).toBeLessThanOrEqual(100 * KiB);
    expect(filesUnder(mgr)).toEqual([]);
    await Promise.all(held.map((file) => file.remove()));
    expect(mgr.stats().liveBytes).toBe(0);
  });

  it('checks minFreeBytes when it goes to disk: a path asked past the floor is a NoSpaceError, and no file is made', async () => {
    const mgr = manager({ minFreeBytes: 2 ** 50 }); // more than any disk has: every file write is past the floor
    const file = await mgr.spool(Buffer.alloc(KiB, 1));
    expect(() => file.path).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_NO_SPACE', message: expect.stringContaining('minFreeBytes') }));
    expect(filesUnder(mgr)).toEqual([]);
    expect((await bytesOf(file)).length).toBe(KiB); // still whole, in memory
    await file.remove();
    expect(mgr.stats().liveBytes).toBe(0);
  });

  it('refuses a type accept does not list, and bad options, typed, naming the option and the value', async () => {
    const mgr = manager();
    await expect(mgr.spool(pdf(), { accept: ['image/*'] })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_TYPE_NOT_ACCEPTED', statusCode: 415 });
    await expect(mgr.spool('x', { maxMemory: -1 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'maxMemory', message: expect.stringMatching(/spool\(\).*maxMemory.*-1/) });
    await expect(mgr.spool('x', { maxMemory: 2 ** 31 })).rejects.toMatchObject({ option: 'maxMemory' });
    await expect(mgr.spool('x', { maxMemroy: 1 } as never)).rejects.toMatchObject({ option: 'maxMemroy', message: expect.stringMatching(/spool\(\): unknown option `maxMemroy` \(did you mean `maxMemory`\?\)/) });
    await expect(mgr.spool(42 as never)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'source' });
    expect(filesUnder(mgr)).toEqual([]);
  });

  it('is aborted by its scope\'s disposal while the source is still open', async () => {
    const mgr = manager();
    const scope = mgr.scope();
    const never = (async function* () {
      yield Buffer.from('first');
      await new Promise(() => {});
    })();
    const spooled = scope.spool(never);
    await new Promise((resolve) => setImmediate(resolve));
    await scope.remove();
    await expect(spooled).rejects.toMatchObject({ code: 'ERR_TEMPFILE_ABORTED' });
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
  });
});

describe('spool() verify', () => {
  it('checks the file in memory before spool() resolves: the hook sees its size, digest and type; only true accepts, and nothing touches the disk', async () => {
    const mgr = manager();
    const data = png();
    const seen: unknown[] = [];
    const file = await mgr.spool(data, {
      hash: 'sha256',
      accept: ['image/*'],
      verify: async (checked, signal) => {
        seen.push({ size: checked.size, digest: checked.digest, type: checked.detectedType?.mime, bytes: await bytesOf(checked), aborted: signal.aborted });
        return true;
      },
    });
    expect(seen).toEqual([{ size: data.length, digest: `sha256:${sha256(data)}`, type: 'image/png', bytes: data, aborted: false }]);
    expect(filesUnder(mgr)).toEqual([]);
    expect(await bytesOf(file)).toEqual(data);
    await file.remove();
  });

  it('removes a file the hook refused or could not check, in memory and past maxMemory, with write()\'s errors', async () => {
    const mgr = manager();
    await expect(mgr.spool('refused', { verify: () => false })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_VERIFY_REFUSED', statusCode: 422 });
    await expect(mgr.spool('refused', { verify: () => ({ reason: 'not today', statusCode: 451 }) })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_VERIFY_REFUSED', statusCode: 451, reason: 'not today' });
    const down = new Error('scanner down');
    await expect(mgr.spool('x', { verify: () => Promise.reject(down) })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_VERIFY_FAILED', statusCode: 503, cause: down });
    await expect(mgr.spool('x', { verify: () => new Promise(() => {}), verifyTimeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_VERIFY_FAILED', reason: 'timeout' });
    await expect(mgr.spool('x', { verify: (() => undefined) as never })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'verify' });
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
    let onDisk = '';
    const big = Buffer.concat([png(), Buffer.alloc(8 * KiB)]);
    const refusal = mgr.spool([big.subarray(0, KiB), big.subarray(KiB)], {
      maxMemory: 2 * KiB,
      accept: ['image/*'],
      verify: (checked) => {
        onDisk = checked.path;
        return checked.detectedType?.mime === 'image/png' && fs.readFileSync(checked.path).equals(big) && { reason: 'seen whole, refused' };
      },
    });
    await expect(refusal).rejects.toMatchObject({ code: 'ERR_TEMPFILE_VERIFY_REFUSED', reason: 'seen whole, refused' });
    expect(onDisk).not.toBe('');
    expect(fs.existsSync(onDisk)).toBe(false);
    expect(filesUnder(mgr)).toEqual([]);
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
  });

  it('ends the check when the scope is disposed, and refuses verifyTimeoutMs without verify', async () => {
    const mgr = manager();
    const scope = mgr.scope();
    let hookSignal: AbortSignal | undefined;
    const checking = scope.spool('x', { verify: (_file, signal) => ((hookSignal = signal), new Promise(() => {})) });
    await new Promise((resolve) => setImmediate(resolve));
    await scope.remove();
    await expect(checking).rejects.toMatchObject({ code: 'ERR_TEMPFILE_ABORTED' });
    expect(hookSignal?.aborted).toBe(true);
    await expect(mgr.spool('x', { verifyTimeoutMs: 10 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'verifyTimeoutMs' });
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
  });
});
