import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SizeLimitError, TempFile } from '../../src/index.js';
import { AbortedError, CallbackError, InvalidOptionError, SourceError } from '../../src/errors.js';
import { sessionFiles } from '../helpers/wait.js';
import { manager, scratchDir } from '../helpers/roots.js';
import { countingSource, MiB, sha256 } from '../helpers/sources.js';

/**
 * The sink's batch: the bytes it gathers from small chunks before one write (64 KiB, docs/design.md),
 * read off the writes a file of many small chunks makes, so that the tests below aim at its edges
 * whatever it is.
 */
async function sinkBatchBytes(): Promise<number> {
  const { FaultyFs } = await import('../helpers/faulty-fs.js');
  const disk = new FaultyFs();
  const mgr = manager({ fs: disk.fs });
  await mgr.write(Array.from({ length: 400 }, () => Buffer.alloc(1000)));
  await mgr.close();
  const batch = Math.max(...disk.writeSizes);
  if (!(batch >= 4096 && batch < 400_000)) throw new Error(`no batch seen in the writes: ${disk.writeSizes.join(', ')}`);
  return batch;
}
const SINK_HIGH_WATER_MARK = await sinkBatchBytes();

const text = 'héllo, wörld: ✓ ';
const expected = Buffer.from(text.repeat(1000));

async function readAll(file: TempFile): Promise<Buffer> {
  return fs.promises.readFile(file.path);
}

describe('write(): every source kind', () => {
  const sources: Array<[string, () => unknown]> = [
    ['a string', () => expected.toString()],
    ['a Buffer', () => Buffer.from(expected)],
    ['a Uint8Array view with an offset', () => {
      const big = new Uint8Array(expected.length + 20);
      big.set(expected, 10);
      return big.subarray(10, 10 + expected.length);
    }],
    ['a sync iterable of strings and bytes', () => [text.repeat(500), Buffer.from(text.repeat(500))]],
    ['an async generator', () => (async function* () {
      for (let i = 0; i < 1000; i++) yield i % 2 ? text : new TextEncoder().encode(text);
    })()],
    ['a Node Readable (Readable.from)', () => Readable.from([expected.subarray(0, 7), expected.subarray(7)])],
    ['a Node Readable (fs.createReadStream)', () => {
      const file = path.join(scratchDir(), 'src.bin');
      fs.writeFileSync(file, expected);
      return fs.createReadStream(file, { highWaterMark: 1024 });
    }],
    ['a Node Readable with an encoding set (string chunks)', () => {
      const stream = new PassThrough();
      stream.setEncoding('utf8');
      stream.end(expected);
      return stream;
    }],
    ['a web ReadableStream', () => new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < expected.length; i += 4096) controller.enqueue(expected.subarray(i, i + 4096));
        controller.close();
      },
    })],
  ];

  it.each(sources)('writes %s to a new file with its size and digest', async (_label, make) => {
    const mgr = manager();
    const file = await mgr.write(make() as string, { suffix: '.txt', hash: 'sha256' });
    expect(file).toBeInstanceOf(TempFile);
    expect(path.dirname(file.path)).toBe(mgr.sessionPath);
    expect(file.path.endsWith('.txt')).toBe(true);
    expect(fs.statSync(file.path).mode & 0o777).toBe(0o600);
    expect(await readAll(file)).toEqual(expected);
    expect(file.size).toBe(expected.length);
    expect(file.digest).toBe(`sha256:${sha256(expected)}`);
  });

  it('writes an empty source as an empty file', async () => {
    const file = await manager().write([]);
    expect(file.size).toBe(0);
    expect(fs.statSync(file.path).size).toBe(0);
  });

  it('belongs to its scope: scope.write() files go with the scope', async () => {
    const mgr = manager();
    const scope = mgr.scope();
    const file = await scope.write('data', { prefix: 'up-' });
    expect(path.basename(file.path)).toMatch(/^up-[0-9a-f]{32}$/);
    await scope.remove();
    expect(fs.existsSync(file.path)).toBe(false);
    await expect(scope.write('more')).rejects.toMatchObject({ code: 'ERR_TEMPFILE_DISPOSED' });
  });

  it('reports progress with the bytes on disk, ending with the size', async () => {
    const seen: number[] = [];
    const { source } = countingSource(8, 256 * 1024);
    const file = await manager().write(source, { onProgress: (n) => seen.push(n) });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.at(-1)).toBe(file.size);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
  });

  it('computes any crypto digest while streaming', async () => {
    const file = await manager().write('abc', { hash: 'md5' });
    expect(file.digest).toBe('md5:900150983cd24fb0d6963f7d28e17f72');
  });
});

describe('write(): failures leave nothing and stop the source', () => {
  it('stops at maxBytes without reading the rest', async () => {
    const mgr = manager();
    const { source, state } = countingSource(100);
    const error = await mgr.write(source, { maxBytes: 5 * MiB }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SizeLimitError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_SIZE_LIMIT', limit: 5 * MiB });
    expect(state.produced).toBe(6);
    expect(state.stopped).toBe(true);
    expect(sessionFiles(mgr)).toEqual([]);
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
    expect((await mgr.write('after', { maxBytes: 5 })).size).toBe(5);
  });

  it('accepts exactly maxBytes', async () => {
    expect((await manager().write(Buffer.alloc(1000), { maxBytes: 1000 })).size).toBe(1000);
  });

  it('destroys a Node stream source that passes maxBytes', async () => {
    const mgr = manager();
    const stream = Readable.from((function* () { for (;;) yield Buffer.alloc(64 * 1024); })());
    await expect(mgr.write(stream, { maxBytes: MiB })).rejects.toBeInstanceOf(SizeLimitError);
    expect(stream.destroyed).toBe(true);
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it('aborts on its signal while the source is stalled, and removes the partial file', async () => {
    const mgr = manager();
    const stream = new PassThrough();
    stream.write(Buffer.alloc(3 * MiB));
    const controller = new AbortController();
    const writing = mgr.write(stream, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('user cancelled')), 100);
    const error = await writing.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortedError);
    expect((error as AbortedError).cause).toMatchObject({ message: 'user cancelled' });
    expect(stream.destroyed).toBe(true);
    expect(sessionFiles(mgr)).toEqual([]);
    expect(mgr.stats().liveBytes).toBe(0);
  });

  it('refuses an already-aborted signal before creating anything', async () => {
    const mgr = manager();
    const { source, state } = countingSource(3);
    await expect(mgr.write(source, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortedError);
    expect(state.produced).toBe(0);
    expect(fs.readdirSync(mgr.root)).toEqual(['.tempfile-manager']);
  });

  it('wraps a source error in SourceError with the cause, and removes the partial file', async () => {
    const mgr = manager();
    const boom = new Error('upstream exploded');
    const source = (async function* () {
      yield Buffer.alloc(MiB);
      throw boom;
    })();
    const error = await mgr.write(source).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceError);
    expect((error as SourceError).cause).toBe(boom);
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it('refuses chunks that are not bytes or text', async () => {
    const mgr = manager();
    await expect(mgr.write([Buffer.from('ok'), 42 as never])).rejects.toBeInstanceOf(SourceError);
    await expect(mgr.write(Readable.from([{ a: 1 }]))).rejects.toBeInstanceOf(SourceError);
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it.each([
    ['a number', 42],
    ['null', null],
    ['an object', { not: 'a stream' }],
  ])('refuses %s as a source with a typed error', async (_label, source) => {
    await expect(manager().write(source as never)).rejects.toBeInstanceOf(InvalidOptionError);
  });

  it.each([
    [{ maxBytes: -1 }, 'maxBytes'],
    [{ maxBytes: '10' }, 'maxBytes'],
    [{ signal: {} }, 'signal'],
    [{ onProgress: 'yes' }, 'onProgress'],
    [{ hash: 'nope256' }, 'hash'],
    [{ suffix: '../x' }, undefined],
    [{ sufix: '.x' }, 'sufix'],
  ])('refuses the options %o before touching the disk', async (options, option) => {
    const mgr = manager();
    const error = await mgr.write('x', options as never).catch((e: unknown) => e);
    expect((error as { code: string }).code).toMatch(/^ERR_TEMPFILE_INVALID_(OPTION|NAME)$/);
    if (option) expect(error).toMatchObject({ option });
    expect(fs.readdirSync(mgr.root)).toEqual(['.tempfile-manager']);
  });
});

describe('write(): backpressure', () => {
  it('never reads more than two batches ahead of a slow disk', async () => {
    const { FaultyFs } = await import('../helpers/faulty-fs.js');
    const slow = new FaultyFs();
    slow.delayWrites(20);
    const mgr = manager({ fs: slow.fs });
    let produced = 0;
    let onDisk = 0;
    let maxAhead = 0;
    const source = (async function* () {
      for (let i = 0; i < 256; i++) {
        maxAhead = Math.max(maxAhead, produced - onDisk);
        produced += 64 * 1024;
        yield Buffer.alloc(64 * 1024);
      }
    })();
    const file = await mgr.write(source, { onProgress: (n) => (onDisk = n) });
    expect(file.size).toBe(16 * MiB);
    // The batch being written and the one gathering, each at most the high-water mark.
    expect(maxAhead).toBeLessThanOrEqual(2 * SINK_HIGH_WATER_MARK);
  });

  it('property: any mix of small and large chunks, on a fast or a slow disk, lands whole and in order', async () => {
    const { FaultyFs } = await import('../helpers/faulty-fs.js');
    const hwm = SINK_HIGH_WATER_MARK;
    // Sizes around the high-water mark: gathered into batches, written straight, or both in turn.
    const size = fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: hwm - 2, max: hwm + 2 }), fc.integer({ min: 0, max: 3 * hwm }));
    await fc.assert(
      fc.asyncProperty(fc.array(size, { maxLength: 24 }), fc.constantFrom(0, 2), async (sizes, delayMs) => {
        const disk = new FaultyFs();
        disk.delayWrites(delayMs);
        const mgr = manager({ fs: disk.fs });
        // Every chunk a distinct pattern: a chunk written twice, dropped or out of place shows.
        const chunks = sizes.map((n, i) => Buffer.alloc(n, i % 251));
        const progress: number[] = [];
        const file = await mgr.write(chunks, { hash: 'sha256', onProgress: (n) => progress.push(n) });
        const whole = Buffer.concat(chunks);
        expect((await readAll(file)).equals(whole)).toBe(true);
        expect(file.size).toBe(whole.length);
        expect(file.digest).toBe(`sha256:${sha256(whole)}`);
        expect(progress).toEqual([...progress].sort((a, b) => a - b));
        expect(progress.at(-1) ?? 0).toBe(whole.length);
        await mgr.close();
      }),
      { numRuns: 40, seed: 20_261_122 },
    );
  });
});

describe('write(): the bytes as the source yielded them', () => {
  /**
   * An async source that yields views of ONE buffer, refilled (and scribbled over) after every
   * yield, as a reader that reuses its buffer does. The witness copies and hashes each chunk at the
   * moment it is yielded, outside the library.
   */
  function reusingSource(sizes: readonly number[], seed: number, capacity = Math.max(1, ...sizes)) {
    const shared = Buffer.alloc(capacity);
    const seen: Buffer[] = [];
    const witness = createHash('sha256');
    let fill = seed & 0xff;
    async function* generate() {
      for (const size of sizes) {
        for (let i = 0; i < size; i++) shared[i] = (fill + i * 7) & 0xff;
        fill = (fill + 101) & 0xff;
        const chunk = shared.subarray(0, size);
        seen.push(Buffer.from(chunk));
        witness.update(chunk);
        yield chunk;
        shared.fill(0xee); // overwritten once the consumer asks for the next chunk
      }
    }
    return { source: generate(), expected: () => Buffer.concat(seen), digest: () => witness.digest('hex') };
  }

  it('a source that reuses its buffer: the file and the digest hold what it yielded (slow disk, every path)', async () => {
    const { FaultyFs } = await import('../helpers/faulty-fs.js');
    const slow = new FaultyFs();
    slow.delayWrites(5);
    const mgr = manager({ fs: slow.fs });
    const hwm = SINK_HIGH_WATER_MARK;
    // Tiny chunks gathered, one that fills a batch across its end, large ones written straight
    // while a batch is in flight, and a tail shorter than a batch.
    const sizes = [1, 2, 3, ...Array(300).fill(1000), hwm - 5, 64 * 1024, hwm, hwm + 3, 17, 3 * hwm, 5, 1];
    const { source, expected, digest } = reusingSource(sizes, 3);
    const file = await mgr.write(source, { hash: 'sha256' });
    const want = expected();
    expect(file.size).toBe(want.length);
    expect((await readAll(file)).equals(want)).toBe(true);
    expect(file.digest).toBe(`sha256:${digest()}`);
  });

  it('property: reused and mutated buffers of random sizes, fast or slow disk, with or without accept', async () => {
    const { FaultyFs } = await import('../helpers/faulty-fs.js');
    const hwm = SINK_HIGH_WATER_MARK;
    const size = fc.oneof(
      fc.integer({ min: 0, max: 64 }),
      fc.integer({ min: 1, max: 8192 }),
      fc.integer({ min: hwm - 3, max: hwm + 3 }),
      fc.integer({ min: 1, max: 3 * hwm }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(size, { maxLength: 40 }),
        fc.integer({ min: 0, max: 255 }),
        fc.constantFrom(0, 2),
        fc.boolean(),
        async (sizes, seed, delayMs, sniff) => {
          const disk = new FaultyFs();
          disk.delayWrites(delayMs);
          const mgr = manager({ fs: disk.fs });
          const { source, expected, digest } = reusingSource(sizes, seed);
          const file = await mgr.write(source, { hash: 'sha256', ...(sniff && { accept: ['*/*'] }) });
          const want = expected();
          expect(file.size).toBe(want.length);
          expect((await readAll(file)).equals(want)).toBe(true);
          expect(file.digest).toBe(`sha256:${digest()}`);
          await mgr.close();
        },
      ),
      { numRuns: 60, seed: 20_261_123 },
    );
  });

  it('a sync iterable of views of one reused buffer, 1 byte at a time, lands whole', async () => {
    const shared = Buffer.alloc(1);
    const witness = createHash('sha256');
    const total = 600_000;
    const source = (function* () {
      for (let i = 0; i < total; i++) {
        shared[0] = (i * 31) & 0xff;
        witness.update(shared);
        yield shared;
      }
    })();
    const file = await manager().write(source, { hash: 'sha256' });
    const bytes = await readAll(file);
    expect(bytes.length).toBe(total);
    expect(bytes.every((b, i) => b === ((i * 31) & 0xff))).toBe(true);
    expect(file.digest).toBe(`sha256:${witness.digest('hex')}`);
  });
});

describe('write(): an onProgress that throws', () => {
  it('rejects with CallbackError naming onProgress, with the cause; the source is stopped and nothing kept', async () => {
    const mgr = manager();
    const boom = new TypeError('metrics exploded');
    const { source, state } = countingSource(64, 64 * 1024);
    const error = await mgr.write(source, { onProgress: () => { throw boom; } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CallbackError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_CALLBACK', callback: 'onProgress' });
    expect((error as CallbackError).cause).toBe(boom);
    expect((error as Error).message).toMatch(/`onProgress`/);
    expect((error as Error).message).toMatch(/metrics exploded/);
    expect(state.stopped).toBe(true);
    expect(state.produced).toBeLessThan(64);
    expect(sessionFiles(mgr)).toEqual([]);
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
    expect((await mgr.write('next')).size).toBe(4);
  });

  it('a throw at the last report, once every byte is on disk, still removes the file', async () => {
    const mgr = manager();
    const total = 3 * SINK_HIGH_WATER_MARK + 5;
    const error = await mgr
      .write([Buffer.alloc(total, 1)].flatMap((b) => [b.subarray(0, 100), b.subarray(100)]), {
        onProgress: (n) => {
          if (n === total) throw 'not an Error';
        },
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CallbackError);
    expect((error as CallbackError).cause).toBe('not an Error');
    expect(sessionFiles(mgr)).toEqual([]);
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
  });
});
