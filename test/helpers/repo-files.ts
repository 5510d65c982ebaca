import fs from 'node:fs';
import path from 'node:path';

/** The repository's top directory. */
export const repo = path.join(import.meta.dirname, '../..');

/**
 * Every file under `dir` (relative to the repository), as paths from the repository's top: the
 * project's own files, so never under node_modules (an example's, once its check ran, links the
 * package back to the repository) and never through a symbolic link, which fs.readdirSync's
 * `recursive` follows (a loop there walks until the heap runs out).
 */
export function repoFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (relative: string): void => {
    for (const entry of fs.readdirSync(path.join(repo, relative), { withFileTypes: true })) {
      const child = path.join(relative, entry.name);
      if (entry.isDirectory() && entry.name !== 'node_modules') walk(child);
      else if (entry.isFile()) found.push(child);
    }
  };
  walk(dir);
  return found;
}
