// The declarations as published, of this checkout (scripts/build-declarations.mjs), in a package
// of their own: `npm test` builds only the JavaScript the tests run, and the tests that read the
// declarations build them here, once per test file.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll } from 'vitest';

const repo = path.join(import.meta.dirname, '../..');
let built: string | undefined;

afterAll(() => {
  if (built !== undefined) fs.rmSync(built, { recursive: true, force: true });
  built = undefined;
});

/** A directory holding this checkout's package.json and, in its dist/, the declarations `npm run build` publishes (no JavaScript). */
export function declarationsPackage(): string {
  if (built === undefined) {
    // Inside node_modules/: the declarations resolve the peers they import (express, fastify) from the repo's.
    const cache = path.join(repo, 'node_modules/.cache');
    fs.mkdirSync(cache, { recursive: true });
    const dir = fs.mkdtempSync(path.join(cache, 'tfm-declarations-'));
    fs.copyFileSync(path.join(repo, 'package.json'), path.join(dir, 'package.json'));
    execFileSync(process.execPath, [path.join(repo, 'scripts/build-declarations.mjs'), path.join(dir, 'dist')], { cwd: repo, stdio: 'pipe' });
    built = dir;
  }
  return built;
}
