import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';
import { freshRoot } from '../helpers/roots.js';

const fixture = path.join(import.meta.dirname, '../fixtures/spool-heap.mjs');
const KiB = 1024;
const MiB = 1024 * KiB;

/** What the spool's process grew by (heap and ArrayBuffers, after a full collection) in flight and once resolved. */
function measure(bytes: number, chunk: number, maxMemory: number): { size: number; inFlight: number; resolved: number } {
  const out = execFileSync(process.execPath, ['--expose-gc', fixture, freshRoot(), String(bytes), String(chunk), String(maxMemory)], { encoding: 'utf8' });
  return JSON.parse(out) as { size: number; inFlight: number; resolved: number };
}

// A memory bound, not a timing. docs/streaming-writes.md promises at most `maxMemory` per spool
// in flight: the bytes are packed into blocks as they come, whatever the chunking. Kept as a
// Buffer copy each, 1 MiB of 1-byte chunks held 122 MiB of heap, and 3000-byte chunks (copies
// cut from Node's shared 8 KiB pool, one slab pinned per two chunks) 2.9 MiB. The 256 KiB over
// maxMemory is room for what is not the bytes: an empty spool measured the same way grows by
// about 20 KiB, and a source of 1-byte chunks adds about 80 KiB of compiled code and feedback
// whatever its length. A source of 256 KiB chunks would show the intake keeping the last chunk it
// copied alive while it waits for the next (its async frame held it: 1 MiB + 299 KiB).
it.each([1, 100, 3000, 256 * KiB])('a spool of 1 MiB in %i-byte chunks holds at most maxMemory (1 MiB) plus 256 KiB, in flight and once resolved', (chunk) => {
  const { size, inFlight, resolved } = measure(MiB, chunk, MiB);
  expect(size).toBe(MiB);
  expect(inFlight).toBeLessThan(MiB + 256 * KiB);
  expect(resolved).toBeLessThan(MiB + 256 * KiB);
}, 120_000);
