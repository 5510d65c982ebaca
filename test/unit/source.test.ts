import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AbortedError, SourceError } from '../../src/base/errors.js';
import { openSource } from '../../src/write/source.js';

/** A Readable holding `chunks`, all pushed before anyone reads: its producer ran ahead. */
function ranAhead(chunks: Buffer[]): Readable {
  const stream = new Readable({ read() {} });
  for (const chunk of chunks) stream.push(chunk);
  stream.push(null);
  return stream;
}

async function readAll(stream: Readable): Promise<Buffer[]> {
  const reader = openSource(stream);
  const seen: Buffer[] = [];
  for (let chunk = await reader.next(); chunk !== undefined; chunk = await reader.next()) seen.push(chunk);
  return seen;
}

describe('reading a Readable', () => {
  it('hands out each chunk as it was pushed, never the buffered ones joined into a copy', async () => {
    const chunks = [Buffer.alloc(64 * 1024, 1), Buffer.alloc(64 * 1024, 2), Buffer.from('three')];
    const seen = await readAll(ranAhead(chunks));
    expect(seen).toHaveLength(3);
    seen.forEach((chunk, i) => expect(chunk).toBe(chunks[i]));
  });

  it('asks the producer for more only while a read waits (flow control holds)', async () => {
    let produced = 0;
    const stream = new Readable({
      highWaterMark: 16,
      read() {
        produced += 1;
        this.push(produced > 1000 ? null : Buffer.alloc(16, produced));
      },
    });
    const reader = openSource(stream);
    await reader.next();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(produced).toBeLessThan(5); // not the 1,000 chunks of a stream left flowing
    reader.stop();
    expect(stream.destroyed).toBe(true);
  });

  it('lets go of the stream once it ended: no listener of the reader is left', async () => {
    const stream = ranAhead([Buffer.from('a')]);
    const listeners = () => ['data', 'end', 'error', 'close'].map((event) => stream.listenerCount(event));
    const before = listeners();
    await readAll(stream);
    expect(listeners()).toEqual(before);
  });

  it('a stream that fails is a SourceError; one closed before its end is an AbortedError', async () => {
    const failing = new Readable({ read() {} });
    failing.push('partial');
    setTimeout(() => failing.destroy(new Error('disk gone')), 5);
    await expect(readAll(failing)).rejects.toBeInstanceOf(SourceError);
    const cut = new Readable({ read() {} });
    setTimeout(() => cut.destroy(), 5);
    await expect(readAll(cut)).rejects.toBeInstanceOf(AbortedError);
  });

  it('an object-mode chunk that is not bytes is a SourceError', async () => {
    await expect(readAll(Readable.from([{ not: 'bytes' }]))).rejects.toBeInstanceOf(SourceError);
  });
});
