import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';
import { freshRoot } from '../helpers/roots.js';

const fixture = path.join(import.meta.dirname, '../fixtures/write-rss.mjs');
const MiB = 1024 * 1024;

// A memory bound, not a timing: the chunks are fresh buffers, so a writer that held on to them
// (or buffered ahead of the disk) would grow by hundreds of MiB. They are 64 KiB, as sockets and
// file streams deliver them: with fresh 1 MiB buffers Node 24 lets about 75 MiB of them pile up
// before it collects, under a raw stream.pipeline just the same.
it.each(['plain', 'signal', 'scope'])('writes 512 MiB (%s) in a child process with less than 64 MiB of RSS growth', (how) => {
  const out = execFileSync(process.execPath, ['--expose-gc', fixture, freshRoot(), '512', '64', how], { encoding: 'utf8' });
  const { size, growth } = JSON.parse(out) as { size: number; growth: number };
  expect(size).toBe(512 * MiB);
  expect(growth).toBeLessThan(64 * MiB);
});
