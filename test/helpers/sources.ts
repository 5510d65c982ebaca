import { createHash } from 'node:crypto';

export const MiB = 1024 * 1024;

/** A generator of `count` chunks of `size` bytes that records how far it got and whether it was stopped. */
export function countingSource(count: number, size = MiB) {
  const state = { produced: 0, finished: false, stopped: false };
  const chunk = Buffer.alloc(size, 7);
  async function* generate() {
    try {
      for (let i = 0; i < count; i++) {
        state.produced += 1;
        yield chunk;
      }
      state.finished = true;
    } finally {
      if (!state.finished) state.stopped = true;
    }
  }
  return { source: generate(), state };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}
