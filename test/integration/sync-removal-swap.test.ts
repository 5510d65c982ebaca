import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { nextJson, startChild } from '../helpers/child.js';
import { freshRoot, scratchDir } from '../helpers/roots.js';

// The sync walk unlinks each file through the descriptor of the directory it opened, in /proc.
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
  // The swap came at the first call that removes a file: the walk's first unlink.
  expect(outcome.swapped).toBe(true);
  expect(outcome.calls.rm).toBe(0);
  expect(outcome.calls.unlink).toBeGreaterThanOrEqual(COUNT);
  // The symlink now at the path is reported, never removed through.
  expect(outcome.error?.name).toMatch(/TempFile|Error/);
  expect(fs.lstatSync(outcome.path).isSymbolicLink()).toBe(true);
});
