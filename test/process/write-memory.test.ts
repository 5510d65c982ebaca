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
// (or buffered ahead of the disk) would grow by hundreds of MiB. They are 64 KiB, as sockets and
// file streams deliver them. Node 24's collector lets them pile up: a loop that only hashes the
// same chunks, with no library, grows by 75-77 MiB there (about 35 on Node 20), so the bound is
// 64 MiB or that loop's growth, whichever is larger.
let bareGrowth: number | undefined;
it.each(['plain', 'signal', 'scope'])('writes 512 MiB (%s) in a child process with less than 64 MiB of RSS growth (or a bare loop\'s)', (how) => {
  bareGrowth ??= measure('512', '64', 'bare').growth;
  const { size, growth } = measure('512', '64', how);
  expect(size).toBe(512 * MiB);
  expect(growth).toBeLessThan(Math.max(64 * MiB, bareGrowth));
});

// A slow client: every chunk one byte, from an async generator, a fresh Buffer each (16.7 million
// of them). A writer that gathered chunks by reference grew by over 300 MiB here; the copy into a
// pooled batch keeps it flat. 16 MiB, not 64: each chunk costs about half a microsecond of CPU
// and 64 MiB would take a minute on a loaded machine; memory depends neither on the size nor on the
// chunk count (two 256 KiB batch buffers), so the bound holds at 64 MiB just the same. Node 24's
// collector lets the garbage of so many chunks (promises, Buffer objects) reach 80-90 MiB even
// in a loop that only hashes them, with no library at all, and that figure moves by 15 MiB from
// one run to the next when the machine is busy: there the bound is that loop's growth plus 32 MiB
// (a writer that held the chunks would pass it by hundreds of MiB).
it('writes 16 MiB in 1-byte chunks with less than 64 MiB of RSS growth (or a bare loop\'s + 32 MiB)', () => {
  const bare = measure('16', '1B', 'bare');
  const { size, growth } = measure('16', '1B', 'plain');
  expect(size).toBe(16 * MiB);
  expect(bare.size).toBe(16 * MiB);
  expect(growth).toBeLessThan(Math.max(64 * MiB, bare.growth + 32 * MiB));
}, 300_000);
