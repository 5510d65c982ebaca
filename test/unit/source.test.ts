import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
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

// A read the consumer gives up on must settle: a store that failed while the reader waited for the
// client's next bytes stops the source, and the call must not wait for bytes nobody will take.
describe('stop() during a pending next()', () => {
  /** How the pending read settled, or `pending` if it had not within a bound far beyond any settle. */
  async function outcomeOf(read: Promise<Buffer | undefined>): Promise<{ error: unknown } | { value: Buffer | undefined } | 'pending'> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), 5000)));
    try {
      return await Promise.race([read.then((value) => ({ value }), (error: unknown) => ({ error })), bound]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A request whose headers came and whose body stalls after `sent`: a slow client. */
  async function stalledRequest(sent: string): Promise<{ request: http.IncomingMessage; close(): Promise<void> }> {
    const server = http.createServer();
    const arrived = new Promise<http.IncomingMessage>((resolve) => server.once('request', resolve));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const client = http.request({ host: '127.0.0.1', port, method: 'POST', headers: { 'content-length': 1024 } });
    client.on('error', () => {});
    client.write(sent);
    const request = await arrived;
    return {
      request,
      close: async () => {
        client.destroy();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  }

  const kinds: { kind: string; open(): Promise<{ source: unknown; close?(): Promise<void> }> }[] = [
    { kind: 'a Readable', open: async () => ({ source: new Readable({ read() {} }) }) },
    {
      kind: 'an http IncomingMessage',
      open: async () => {
        const { request, close } = await stalledRequest('');
        return { source: request, close };
      },
    },
    {
      kind: 'an async generator',
      open: async () => {
        async function* never(): AsyncGenerator<Buffer> {
          await new Promise(() => {});
          yield Buffer.from('never');
        }
        return { source: never() };
      },
    },
    { kind: 'a web ReadableStream', open: async () => ({ source: new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) }) }) },
    {
      kind: 'a node-stream-like object (not a Readable, no destroy())',
      open: async () => {
        const emitter = new EventEmitter();
        const like = Object.assign(emitter, {
          readable: true,
          read: () => null,
          pipe: <T>(destination: T) => destination,
          async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
            await new Promise(() => {});
            yield Buffer.from('never');
          },
        });
        return { source: like };
      },
    },
  ];

  it.each(kinds)('$kind: the pending read rejects with the reason given to stop(), and so does every later read', async ({ open }) => {
    const { source, close } = await open();
    try {
      const reader = openSource(source);
      const read = reader.next();
      await new Promise((resolve) => setImmediate(resolve)); // the read is under way, waiting for bytes
      const cause = new Error('the store failed');
      reader.stop(cause);
      expect(await outcomeOf(read)).toEqual({ error: cause });
      expect(await outcomeOf(reader.next())).toEqual({ error: cause });
    } finally {
      await close?.();
    }
  });

  it.each(kinds)('$kind: stop() without a reason rejects the pending read with an AbortedError, never an end', async ({ open }) => {
    const { source, close } = await open();
    try {
      const reader = openSource(source);
      const read = reader.next();
      await new Promise((resolve) => setImmediate(resolve));
      reader.stop();
      const outcome = await outcomeOf(read);
      expect(outcome).not.toBe('pending');
      expect(outcome).toHaveProperty('error');
      expect((outcome as { error: unknown }).error).toBeInstanceOf(AbortedError);
    } finally {
      await close?.();
    }
  });

  it('an http request is paused, not destroyed, by stop(): the app can still answer it', async () => {
    const { request, close } = await stalledRequest('abc');
    try {
      const reader = openSource(request);
      expect(await reader.next()).toEqual(Buffer.from('abc'));
      const read = reader.next();
      reader.stop(new Error('the store failed'));
      expect(await outcomeOf(read)).toHaveProperty('error');
      expect(request.destroyed).toBe(false);
      expect(request.isPaused()).toBe(true);
    } finally {
      await close();
    }
  });
});
