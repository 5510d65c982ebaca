// How tempfile-manager/tus appends a PATCH's chunks (src/tus/append-queue.ts), on a real file
// through a layer that plays a hostile kernel: writes that take only part of what they are given,
// and that answer late. The bytes must land whole and in order, one write in flight at a time (a
// process killed mid-PATCH then leaves no byte past a gap), and a failure must stop what follows it.
import { randomBytes } from 'node:crypto';
import nodeFs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppendQueue } from '../../src/tus/append-queue.js';
import { scratchDir } from '../helpers/roots.js';

interface Recorded {
  /** Lays the hostile `write` over node:fs (the library's own calls go through it); returns the undo. */
  readonly lay: () => () => void;
  /** The position and length of each write, in the order they were issued. */
  readonly writes: { position: number; length: number }[];
  /** The most writes in flight at once. */
  maxInFlight: number;
}

/** A file system whose `write` takes at most `most` bytes and answers on a later turn; `failAt` fails the write issued at that position. */
function shortWrites(most: number, failAt?: number): Recorded {
  let inFlight = 0;
  const realWrite = nodeFs.write;
  const write = ((fd: number, buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null, written: number) => void) => {
    recorded.writes.push({ position, length });
    inFlight += 1;
    recorded.maxInFlight = Math.max(recorded.maxInFlight, inFlight);
    setTimeout(() => {
      inFlight -= 1;
      if (position === failAt) return callback(Object.assign(new Error('EIO: injected'), { code: 'EIO' }), 0);
      realWrite(fd, buffer, offset, Math.min(length, most), position, callback);
    }, 1);
  }) as unknown as typeof nodeFs.write;
  const lay = () => {
    nodeFs.write = write;
    return () => {
      nodeFs.write = realWrite;
    };
  };
  const recorded: Recorded = { lay, writes: [], maxInFlight: 0 };
  return recorded;
}

function chunksOf(data: Buffer, sizes: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length]!;
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

describe('AppendQueue', () => {
  it('writes every byte in order from the offset, through short and late writes, one write in flight at a time', async () => {
    const file = path.join(scratchDir(), 'data');
    nodeFs.writeFileSync(file, 'head');
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const recorded = shortWrites(100_000);
    const fd = nodeFs.openSync(file, 'r+');
    const lifted = recorded.lay();
    try {
      const queue = new AppendQueue(fd, 4);
      for (const chunk of chunksOf(data, [65_536, 1, 300_000, 7_000])) await queue.push(chunk);
      expect(await queue.flush()).toBe(data.length);
    } finally {
      lifted();
      nodeFs.closeSync(fd);
    }
    expect(nodeFs.readFileSync(file).equals(Buffer.concat([Buffer.from('head'), data]))).toBe(true);
    expect(recorded.maxInFlight).toBe(1);
    // Each write starts where the one before it ended: never a byte past a gap.
    let next = 4;
    for (const write of recorded.writes) {
      expect(write.position).toBe(next);
      next += Math.min(write.length, 100_000);
    }
  });

  it('a failed write is thrown, and nothing after it is written', async () => {
    const file = path.join(scratchDir(), 'data');
    nodeFs.writeFileSync(file, '');
    const data = randomBytes(2 * 1024 * 1024);
    const recorded = shortWrites(Infinity, 0);
    const fd = nodeFs.openSync(file, 'r+');
    let thrown: unknown;
    const lifted = recorded.lay();
    try {
      const queue = new AppendQueue(fd, 0);
      try {
        for (const chunk of chunksOf(data, [65_536])) await queue.push(chunk);
        await queue.flush();
      } catch (err) {
        thrown = err;
      }
      await expect(queue.flush()).rejects.toMatchObject({ code: 'EIO' });
    } finally {
      lifted();
      nodeFs.closeSync(fd);
    }
    expect(thrown).toMatchObject({ code: 'EIO' });
    expect(recorded.writes).toHaveLength(1);
    expect(nodeFs.statSync(file).size).toBe(0);
  });
});
