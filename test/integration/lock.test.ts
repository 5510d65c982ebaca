import fs from 'node:fs';
import { expect, it } from 'vitest';
import { manager } from '../helpers/roots.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('keeps the session lock fresh, and takes it again when it was removed under it', async () => {
  const mgr = manager({ staleMs: 2000 });
  const file = mgr.file();
  const lock = `${mgr.sessionPath}.lock`;
  const first = fs.statSync(lock).mtimeMs;
  await sleep(1300);
  expect(fs.statSync(lock).mtimeMs).toBeGreaterThan(first); // refreshed every staleMs / 2
  fs.rmSync(lock, { recursive: true });
  await sleep(1300);
  // proper-lockfile reported it compromised; the manager logged it and took the lock again.
  expect(fs.existsSync(lock)).toBe(true);
  expect(Date.now() - fs.statSync(lock).mtimeMs).toBeLessThan(2000);
  expect(fs.existsSync(file.path)).toBe(true);
  await mgr.close();
  expect(fs.existsSync(lock)).toBe(false);
});
