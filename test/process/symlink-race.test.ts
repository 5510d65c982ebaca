import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { TempFileError, TempFileManager } from '../../src/index.js';
import { nextJson, startChild } from '../helpers/child.js';
import { freshRoot, scratchDir } from '../helpers/roots.js';

function hashTree(dir: string): string {
  const hash = createHash('sha256');
  for (const rel of fs.readdirSync(dir, { recursive: true }).map(String).sort()) {
    const stat = fs.lstatSync(path.join(dir, rel));
    hash.update(`${rel}:${stat.mode}:${stat.isFile() ? fs.readFileSync(path.join(dir, rel), 'hex') : ''}\n`);
  }
  return hash.digest('hex');
}

it('a process swapping session files and directories for symlinks to an outside tree never gets it touched', async () => {
  const canary = scratchDir();
  fs.mkdirSync(path.join(canary, 'canary-dir', 'deeper'), { recursive: true });
  fs.writeFileSync(path.join(canary, 'canary-file'), 'outside');
  fs.writeFileSync(path.join(canary, 'canary-dir', 'inside'), 'outside too');
  fs.writeFileSync(path.join(canary, 'canary-dir', 'deeper', 'deepest'), 'and this');
  const before = hashTree(canary);

  const root = freshRoot();
  const mgr = new TempFileManager({ root, graceMs: 0, staleMs: 2000, sweepOnStart: false, exitHook: false });
  const sweeper = new TempFileManager({ root, graceMs: 0, staleMs: 2000, sweepOnStart: false, exitHook: false });
  // Trees made before the attack starts, so that the test's own fs calls follow no attacker link.
  for (let i = 0; i < 20; i++) {
    const dir = mgr.dir();
    fs.mkdirSync(path.join(dir.path, 'nested', 'more'), { recursive: true });
    fs.writeFileSync(path.join(dir.path, 'nested', 'more', 'leaf'), 'x');
  }
  const swapper = startChild('swapper.mjs', [root, canary, '4000']);
  const end = Date.now() + 4000;
  let cycles = 0;
  const foreign: unknown[] = [];
  // Under attack an operation may fail (the attacker moved its file away), but only with our
  // typed errors.
  const attempt = async (step: () => unknown) => {
    try {
      await step();
    } catch (err) {
      if (!(err instanceof TempFileError)) foreign.push(err);
    }
  };
  while (Date.now() < end) {
    const scope = mgr.scope();
    // Only library calls here: the test's own fs calls would follow the attacker's links.
    await attempt(() => scope.scope().dir());
    await attempt(() => scope.write('payload'));
    await attempt(() => scope.file());
    await attempt(async () => {
      const ticket = await (await mgr.write('handed off')).handoff({ ttlMs: 60_000 });
      await (await mgr.claim(ticket)).consume();
    });
    await attempt(() => scope.remove());
    await attempt(() => sweeper.sweep());
    cycles += 1;
  }
  const { swaps } = await nextJson<{ swaps: number }>(swapper);
  await mgr.close().catch(() => {});
  await sweeper.close();
  expect(cycles).toBeGreaterThan(10);
  expect(swaps).toBeGreaterThan(10);
  expect(foreign).toEqual([]);
  expect(hashTree(canary)).toBe(before);
});
