import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';
import { freshRoot } from '../helpers/roots.js';

const fixture = path.join(import.meta.dirname, '../fixtures/write-rss.mjs');
const MiB = 1024 * 1024;

function measure(...args: string[]): { size: number; growth: number } {
  const out = execFileSync(process.execPath, ['--expose-gc', fixture, freshRoot(), ...args], { encoding: 'utf8' });
  return JSON.parse(out) as { size: number; growth: number };
}

// A memory bound, not a timing: the chunks are fresh buffers, so a writer that held on to them
// (or buffered ahead of the disk) would grow by the whole 256 MiB, four times the bound. The source forces a full
// collection every MiB, so the growth is what stays alive, whatever the runtime's collector
// chooses to leave unswept (Node 24 let 50 MiB of dead chunks pile up before sweeping them).
it.each(['plain', 'signal', 'scope'])('writes 256 MiB (%s) in 64 KiB chunks in a child process with less than 64 MiB of RSS growth', (how) => {
  const { size, growth } = measure('256', '64', how);
  expect(size).toBe(256 * MiB);
  expect(growth).toBeLessThan(64 * MiB);
});

// A slow client: every chunk one byte, from an async generator, a fresh Buffer each (4.2 million
// of them). A source whose chunks were kept by reference grows by 1 GiB at 8 MiB of them (about
// 125 bytes a chunk), so 4 MiB is far past the bound; the copy into a pooled batch keeps the
// writer flat. Memory depends neither on the size nor on the chunk count (two 256 KiB batch
// buffers), and each chunk costs a few microseconds of CPU: more bytes would only cost time.
it('writes 4 MiB in 1-byte chunks with less than 64 MiB of RSS growth', () => {
  const { size, growth } = measure('4', '1B', 'plain');
  expect(size).toBe(4 * MiB);
  expect(growth).toBeLessThan(64 * MiB);
}, 300_000);
