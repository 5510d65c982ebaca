import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { TempFileManager, type TempFileManagerOptions } from '../../src/index.js';

const parents: string[] = [];
const managers: TempFileManager[] = [];

afterEach(async () => {
  for (const mgr of managers.splice(0)) await mgr.close().catch(() => {});
  for (const dir of parents.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory of this test's own, removed after the test. */
export function scratchDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-test-'));
  parents.push(dir);
  return dir;
}

/** A root path that does not exist yet, inside a scratch directory. */
export function freshRoot(): string {
  return path.join(scratchDir(), 'root');
}

/** A manager on a fresh root, closed after the test. */
export function manager(options: TempFileManagerOptions = {}): TempFileManager {
  const mgr = new TempFileManager({ root: freshRoot(), sweepOnStart: false, exitHook: false, ...options });
  managers.push(mgr);
  return mgr;
}

/** Every path under `dir`, relative, sorted. */
export function listTree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}
