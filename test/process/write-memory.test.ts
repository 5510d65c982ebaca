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
// (or buffered ahead of the disk) would grow by hundreds of MiB. The source forces a full
// collection every MiB, so the growth is what stays alive, whatever the runtime's collector
// chooses to leave unswept (Node 24 let 50 MiB of dead chunks pile up before sweeping them).
it.each(['plain', 'signal', 'scope'])('writes 512 MiB (%s) in 64 KiB chunks in a child process with less than 64 MiB of RSS growth', (how) => {
  const { size, growth } = measure('512', '64', how);
  expect(size).toBe(512 * MiB);
  expect(growth).toBeLessThan(64 * MiB);
});

// A slow client: every chunk one byte, from an async generator, a fresh Buffer each (16.7 million
// of them). A writer that gathered chunks by reference grew by over 300 MiB here; the copy into a
// pooled batch keeps it flat. 16 MiB, not 64: each chunk costs about half a microsecond of CPU
// and 64 MiB would take a minute on a loaded machine; memory depends neither on the size nor on the
// chunk count (two 256 KiB batch buffers), so the bound holds at 64 MiB just the same.
it('writes 16 MiB in 1-byte chunks with less than 64 MiB of RSS growth', () => {
  const { size, growth } = measure('16', '1B', 'plain');
  expect(size).toBe(16 * MiB);
  expect(growth).toBeLessThan(64 * MiB);
}, 300_000);
