// FileSink with a recording handle: where each byte goes (inline or through the thread pool) and
// in which order. The real disk's side is test/integration/write.test.ts and the write benches.
// Whether a write goes inline depends on how long the last inline write took: the clock here is a
// fake one that moves only when the handle says its write took time, never with the machine's load
// (a real clock made a write descheduled for 2 ms on a busy machine "slow", and sent the rest of
// the file, of every test after it, to the thread pool).
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FileSink } from '../../src/write/sink.js';
import type { WritableFile } from '../../src/write/open-file.js';
import { BodyChunks } from '../../src/write/owned-chunks.js';

interface Recorded {
  readonly handle: WritableFile;
  readonly calls: Array<{ how: 'sync' | 'async'; bytes: number }>;
  content(): Buffer;
}

/** A handle that keeps what is written; each inline write takes `syncDelayMs` of the fake clock. */
function recordingHandle(syncDelayMs = 0): Recorded {
  const parts: Buffer[] = [];
  const calls: Recorded['calls'] = [];
  const handle: WritableFile = {
    identity: { dev: 0, ino: 0 },
    writeSync(buffer) {
      vi.advanceTimersByTime(syncDelayMs); // a disk that makes the write wait
      parts.push(Buffer.from(buffer));
      calls.push({ how: 'sync', bytes: buffer.length });
      return buffer.length;
    },
    write(buffer, done) {
      const copy = Buffer.from(buffer);
      setImmediate(() => {
        parts.push(copy);
        calls.push({ how: 'async', bytes: copy.length });
        done(null, copy.length);
      });
    },
    close: async () => {},
  };
  return { handle, calls, content: () => Buffer.concat(parts) };
}

async function feed(sink: FileSink, chunks: readonly Buffer[]): Promise<void> {
  for (const chunk of chunks) {
    const waiting = sink.write(chunk);
    if (waiting) await waiting;
  }
  await sink.end();
}

const chunksOf = (sizes: readonly number[]) => sizes.map((size, i) => Buffer.alloc(size, i % 251));

describe('FileSink', () => {
  beforeAll(() => {
    vi.useFakeTimers({ toFake: ['hrtime'] });
  });
  afterEach(() => {
    vi.advanceTimersByTime(60_000); // past any pause of inline writes a test set off
  });
  afterAll(() => {
    vi.useRealTimers();
  });

  it('on a local disk writes a socket-sized chunk inline as it is, gathers small ones, and keeps every byte in order', async () => {
    const chunks = chunksOf([65536, 100, 200, 30000, 65536, 5, 70000]);
    const { handle, calls, content } = recordingHandle();
    const hash = createHash('sha256');
    const sink = new FileSink(handle, '/x', hash, true);
    await feed(sink, chunks);
    expect(content().equals(Buffer.concat(chunks))).toBe(true);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(Buffer.concat(chunks)).digest('hex'));
    expect(sink.bytesOnDisk).toBe(content().length);
    // 65536 inline; 100 + 200 gathered, written before the 30000 that follows; 65536; 5 gathered,
    // written before the 70000, which is too large to write inline.
    expect(calls).toEqual([
      { how: 'sync', bytes: 65536 },
      { how: 'sync', bytes: 300 },
      { how: 'sync', bytes: 30000 },
      { how: 'sync', bytes: 65536 },
      { how: 'async', bytes: 5 },
      { how: 'async', bytes: 70000 },
    ]);
  });

  // A write gathers into a 16 KiB buffer first, so that a client stalled mid-upload pins that much
  // (test/process/upload-memory.test.ts); the next batch ends where a full one would have, so a
  // source of small chunks writes at the offsets of full batches.
  it.each([
    ['inline', true],
    ['through the thread pool', false],
  ])('%s, small chunks make a 16 KiB batch, then one of 48 KiB, then full ones of 64 KiB', async (_how, inline) => {
    const chunks = chunksOf(Array.from({ length: 40 }, () => 4096));
    const { handle, calls, content } = recordingHandle();
    await feed(new FileSink(handle, '/x', undefined, inline), chunks);
    expect(content().equals(Buffer.concat(chunks))).toBe(true);
    expect(calls.map((call) => call.bytes)).toEqual([16384, 49152, 65536, 32768]);
  });

  it('through the thread pool, a chunk whose rest is longer than the realigning batch loses no byte', async () => {
    // 16383 bytes gathered, then 65535: 1 byte fills the first batch, and the rest (65534) is more
    // than the 48 KiB the second batch would hold.
    const chunks = chunksOf([16383, 65535, 7, 65535, 3]);
    const { handle, content } = recordingHandle();
    const sink = new FileSink(handle, '/x', undefined, false);
    await feed(sink, chunks);
    expect(content().equals(Buffer.concat(chunks))).toBe(true);
    expect(sink.bytesOnDisk).toBe(content().length);
  });

  it('off a local disk writes through the thread pool only', async () => {
    const { handle, calls } = recordingHandle();
    await feed(new FileSink(handle, '/x', undefined, false), chunksOf([65536, 100, 30000]));
    expect(calls.every((call) => call.how === 'async')).toBe(true);
  });

  it('inline writes slower than the page cache, twice running, send the next writes, of every sink, to the thread pool', async () => {
    const slow = recordingHandle(5);
    await feed(new FileSink(slow.handle, '/x', undefined, true), chunksOf([65536, 65536, 65536]));
    expect(slow.calls.map((call) => call.how)).toEqual(['sync', 'sync', 'async']);
    const next = recordingHandle();
    await feed(new FileSink(next.handle, '/y', undefined, true), chunksOf([65536]));
    expect(next.calls.map((call) => call.how)).toEqual(['async']);
  });

  it('after the pause, writes go inline again', async () => {
    await feed(new FileSink(recordingHandle(5).handle, '/x', undefined, true), chunksOf([65536, 65536]));
    vi.advanceTimersByTime(4_000);
    const during = recordingHandle();
    await feed(new FileSink(during.handle, '/y', undefined, true), chunksOf([65536]));
    vi.advanceTimersByTime(1_001);
    const after = recordingHandle();
    await feed(new FileSink(after.handle, '/z', undefined, true), chunksOf([65536, 65536]));
    expect([during.calls.map((call) => call.how), after.calls.map((call) => call.how)]).toEqual([['async'], ['sync', 'sync']]);
  });
});

describe('FileSink with chunks only the library holds', () => {
  /** `sizes` as chunks the library's one reader of a stream marked as its own. */
  function ownedChunks(sizes: readonly number[], body = new BodyChunks()): Buffer[] {
    const source = new PassThrough();
    const seen: Buffer[] = [];
    source.on('data', (chunk: Buffer) => {
      body.own(source, chunk, 1);
      seen.push(chunk);
    });
    for (const [i, size] of sizes.entries()) source.write(Buffer.alloc(size, i + 1));
    return seen;
  }

  /** A handle whose write reads the bytes later, as the kernel does in the thread pool. */
  function lateReadingHandle(): { handle: WritableFile; content(): Buffer } {
    const parts: Buffer[] = [];
    const handle: WritableFile = {
      identity: { dev: 0, ino: 0 },
      writeSync: (buffer) => (parts.push(Buffer.from(buffer)), buffer.length),
      write: (buffer, done) =>
        setImmediate(() => {
          parts.push(Buffer.from(buffer));
          done(null, buffer.length);
        }),
      close: async () => {},
    };
    return { handle, content: () => Buffer.concat(parts) };
  }

  it.each([
    ['inline', true],
    ['through the thread pool', false],
  ])('frees each once written %s, never before: the file holds every byte', async (_how, inline) => {
    const chunks = ownedChunks([65536, 20000, 65536, 30000, 65536]);
    const expected = Buffer.concat(chunks.map((chunk) => Buffer.from(chunk)));
    const { handle, content } = lateReadingHandle();
    await feed(new FileSink(handle, '/x', undefined, inline), chunks);
    expect(content().equals(expected)).toBe(true);
    expect(chunks.map((chunk) => chunk.buffer.byteLength)).toEqual([0, 0, 0, 0, 0]);
  });

  it('frees a chunk written in part only when its body frees the rest, and only those it kept', async () => {
    const body = new BodyChunks();
    const [first, last] = ownedChunks([65536, 65536], body);
    const views = [first!.subarray(100), last!.subarray(0, 30000)];
    const { handle, content } = lateReadingHandle();
    await feed(new FileSink(handle, '/x', undefined, false), views);
    expect(content().length).toBe(65436 + 30000);
    expect([first!.byteLength, last!.byteLength]).toEqual([65536, 65536]);
    const [another] = ownedChunks([65536], new BodyChunks());
    new FileSink(handle, '/y', undefined, true).write(another!.subarray(1));
    body.freeRest();
    expect([first!.byteLength, last!.byteLength, another!.byteLength]).toEqual([0, 0, 65536]);
  });

  it('keeps at most 16 chunks written in part for the end of their body: a body of such chunks holds no more', async () => {
    const body = new BodyChunks();
    const chunks = ownedChunks(Array.from({ length: 20 }, () => 65536), body);
    const { handle } = lateReadingHandle();
    await feed(new FileSink(handle, '/x', undefined, true), chunks.map((chunk) => chunk.subarray(1)));
    body.freeRest();
    expect(chunks.filter((chunk) => chunk.byteLength === 0).length).toBe(16);
  });

  it('marks no chunk that is a part of a larger buffer: the buffer keeps what the chunk does not show', async () => {
    // A runtime that hands out slices of one buffer it reads into.
    const slab = Buffer.alloc(2 * 65536, 7);
    const source = new PassThrough();
    const body = new BodyChunks();
    const seen: Buffer[] = [];
    source.on('data', (chunk: Buffer) => {
      body.own(source, chunk, 1);
      seen.push(chunk);
    });
    source.write(slab.subarray(0, 65536));
    source.write(slab.subarray(65536));
    const { handle } = lateReadingHandle();
    await feed(new FileSink(handle, '/x', undefined, true), seen.map((chunk) => chunk.subarray(1)));
    body.freeRest();
    expect(slab.byteLength).toBe(2 * 65536);
    expect(slab.every((byte) => byte === 7)).toBe(true);
  });

  it('frees none that another listener got, nor a view of part of one', async () => {
    const source = new PassThrough();
    const seen: Buffer[] = [];
    source.on('data', (chunk: Buffer) => {
      new BodyChunks().own(source, chunk, 1);
      seen.push(chunk);
    });
    source.on('data', () => {}); // someone else reads the stream too
    source.write(Buffer.alloc(65536, 1));
    const parts = ownedChunks([65536]).map((chunk) => chunk.subarray(0, 40000));
    const { handle } = lateReadingHandle();
    await feed(new FileSink(handle, '/x', undefined, true), [...seen, ...parts]);
    expect([...seen, ...parts].map((chunk) => chunk.byteLength)).toEqual([65536, 40000]);
  });
});
