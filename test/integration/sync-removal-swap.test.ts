import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { nextJson, startChild } from '../helpers/child.js';
import { freshRoot, scratchDir } from '../helpers/roots.js';

// Node 24's fs.rmSync is native: a sync removal empties a directory of files with one call
// through its descriptor in /proc. Before, the walk unlinks each file through that descriptor.
const NATIVE_RM = Number(process.versions.node.split('.')[0]) >= 24;
const COUNT = 50;

interface Outcome {
  calls: { rm: number; unlink: number };
  swapped: boolean;
  error?: { name: string; code: string };
  moved: string;
  path: string;
}

it('a temp dir swapped for a symlink to a directory of the same file names, between its check and its sync removal: only its own files go', async () => {
  const victim = scratchDir();
  const child = startChild('sync-swap-child.mjs', [freshRoot(), victim, String(COUNT)]);
  const outcome = await nextJson<Outcome>(child);
  await child.ended;
  // The victim keeps every file; the moved directory, which was ours, lost all of its files.
  const names = Array.from({ length: COUNT }, (_, i) => `f${i}`).sort();
  expect(fs.readdirSync(victim).sort()).toEqual(names);
  for (const name of names) expect(fs.readFileSync(path.join(victim, name), 'utf8')).toBe('theirs');
  expect(fs.readdirSync(outcome.moved)).toEqual([]);
  // The swap came at the call that removes files: the native removal on Node 24, the per-file walk before.
  expect(outcome.swapped).toBe(true);
  if (NATIVE_RM) expect(outcome.calls).toEqual({ rm: 1, unlink: 0 });
  else expect(outcome.calls.unlink).toBeGreaterThanOrEqual(COUNT);
  // The symlink now at the path is reported, never removed through.
  expect(outcome.error?.name).toMatch(/TempFile|Error/);
  expect(fs.lstatSync(outcome.path).isSymbolicLink()).toBe(true);
});
