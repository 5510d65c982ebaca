import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import type { Needs } from './privileges.js';

/** Root, `mkfs.ext4` (e2fsprogs) and loop devices, to mount an ext4 made without d_type. */
export const EXT4_WITHOUT_DTYPE: Needs = {
  root: 'mounting a loop device',
  command: ['mkfs.ext4', 'mount', 'umount'],
  file: '/dev/loop-control',
  package: 'e2fsprogs mount',
};

const mounted: string[] = [];

afterEach(() => {
  for (const dir of mounted.splice(0)) {
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['--lazy', dir], { stdio: 'pipe' });
    }
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});

/**
 * A fresh ext4 of `sizeMiB` made with `-O ^filetype`, loop-mounted: its directories give no entry
 * types (DT_UNKNOWN), as some network and FUSE file systems and older XFS do. Unmounted after the
 * test. Needs {@link EXT4_WITHOUT_DTYPE}.
 */
export function mountExt4WithoutDtype(sizeMiB = 64): string {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-nodtype-'));
  const image = path.join(parent, 'ext4.img');
  const dir = path.join(parent, 'mnt');
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.writeFileSync(image, '');
  fs.truncateSync(image, sizeMiB * 2 ** 20);
  execFileSync('mkfs.ext4', ['-q', '-F', '-O', '^filetype', image], { stdio: 'pipe' });
  execFileSync('mount', ['-o', 'loop', image, dir], { stdio: 'pipe' });
  mounted.push(dir);
  fs.chmodSync(dir, 0o700);
  return dir;
}

/** Whether listing `dir` gives entry types of its own (d_type), `dir` holding at least one entry. */
export function listsTypes(dir: string): boolean {
  return fs.readdirSync(dir, { withFileTypes: true }).every((entry) => Object.getPrototypeOf(entry) === fs.Dirent.prototype);
}
