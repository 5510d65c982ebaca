// Trees of a chaos run, listed without following links: the attacker's symlinks point outside.
import fs from 'node:fs';
import path from 'node:path';

/** Every path under `dir`, relative and sorted; never through a symlink. Empty when `dir` is gone. */
export function listTree(dir, rel = '') {
  if (!fs.existsSync(dir)) return [];
  const out = [];
  for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const child = path.join(rel, entry.name);
    out.push(child);
    if (entry.isDirectory()) out.push(...listTree(dir, child));
  }
  return out.sort();
}
