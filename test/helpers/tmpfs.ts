import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';

const mounted: string[] = [];

afterEach(() => {
  for (const dir of mounted.splice(0)) {
    execFileSync('umount', ['--lazy', dir], { stdio: 'pipe' });
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});

/** A fresh tmpfs of `sizeMiB`, a file system of its own: unmounted after the test. Needs root: `needs(ctx, MOUNTING)` first. */
export function mountTmpfs(sizeMiB: number): string {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-mount-')), 'tmpfs');
  fs.mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  mounted.push(dir);
  return dir;
}
