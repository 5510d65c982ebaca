import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { TempFileError, TempFileManager } from '../../src/index.js';
import { nextJson, startChild } from '../helpers/child.js';
import { decoyWithEntries, freshRoot, listTree, scratchDir } from '../helpers/roots.js';

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
  const mgr = new TempFileManager({ root, graceMs: 0, staleMs: 2000, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
  const sweeper = new TempFileManager({ root, graceMs: 0, staleMs: 2000, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
  // Trees made before the attack starts, so that the test's own fs calls follow no attacker link.
  for (let i = 0; i < 20; i++) {
    const dir = mgr.dir();
    fs.mkdirSync(path.join(dir.path, 'nested', 'more'), { recursive: true });
    fs.writeFileSync(path.join(dir.path, 'nested', 'more', 'leaf'), 'x');
  }
  // A number of cycles, not a time: on a busy machine a time allowed few, and the check that the
  // race ran was a check of the machine's speed. The attacker swaps until told to stop.
  const swapper = startChild('swapper.mjs', [root, canary, '600000']);
  const CYCLES = 40;
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
  while (cycles < CYCLES) {
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
  swapper.child.stdin!.write('stop\n');
  const { swaps } = await nextJson<{ swaps: number }>(swapper);
  await mgr.close().catch(() => {});
  await sweeper.close();
  expect(swaps, 'the attacker swapped while the cycles ran').toBeGreaterThan(10);
  expect(foreign).toEqual([]);
  expect(hashTree(canary)).toBe(before);
});

it('every expired entry swapped for a symlink and back by another process, over 300 sweeps: the target is untouched', async () => {
  const root = path.join(scratchDir(), 'root');
  const mgr = new TempFileManager({ root, graceMs: 0, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
  // What an entry holds, outside the root: the sweep must never reach these through a swapped name.
  const decoy = scratchDir();
  fs.writeFileSync(path.join(decoy, 'data.bin'), 'victim');
  const before = listTree(decoy);
  fs.mkdirSync(path.join(root, 'handoff'), { mode: 0o700 });
  const swapper = startChild('swap-entries.mjs', [root, decoy]);
  await nextJson(swapper);
  let removed = 0;
  try {
    for (let round = 0; round < 300; round++) {
      for (let i = 0; i < 4; i++) await (await mgr.write(`round ${round}`, { suffix: '.bin' })).handoff({ ttlMs: 1 });
      await new Promise((resolve) => setTimeout(resolve, 2));
      const report = await mgr.sweep();
      removed += report.handoffEntriesRemoved;
      expect(listTree(decoy)).toEqual(before);
    }
  } finally {
    swapper.child.kill('SIGKILL'); // before the scratch directories are removed
    await swapper.ended;
  }
  expect(removed, 'the sweep removed entries while they were being swapped').toBeGreaterThan(300);
  await mgr.close();
}, 120_000);

it('the handoff directory swapped for a symlink again and again by another process, while sweeps, handoffs and claims run: nothing outside the root is touched', async () => {
  const root = path.join(scratchDir(), 'root');
  const mgr = new TempFileManager({ root, graceMs: 0, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
  const decoy = decoyWithEntries();
  const before = listTree(decoy);
  fs.mkdirSync(path.join(root, 'handoff'), { mode: 0o700 });
  const swapper = startChild('swap-handoff.mjs', [root, decoy]);
  await nextJson(swapper);
  let refused = 0;
  let done = 0;
  try {
    for (let round = 0; round < 300; round++) {
      const outcome = await (async () => {
        const file = await mgr.write(`round ${round}`, { suffix: '.bin' });
        const ticket = await file.handoff({ ttlMs: 1 });
        await mgr.sweep();
        return ticket;
      })().catch((err: unknown) => err);
      if (outcome instanceof Error) {
        expect(outcome).toMatchObject({ code: expect.stringMatching(/UNSAFE_ROOT|ERR_TEMPFILE_IO|HANDOFF_NOT_FOUND/) });
        refused += 1;
      } else done += 1;
    }
  } finally {
    swapper.child.kill('SIGKILL');
    await swapper.ended;
  }
  expect(listTree(decoy)).toEqual(before);
  expect(refused + done).toBe(300);
  await mgr.close();
}, 120_000);

// A consume removes the entry's directory once the data file is gone. With the handoff directory
// swapped for a symlink to a tree that holds an empty directory of the entry's name, a removal by
// path would remove that directory, outside the root; through the handoff directory pinned when
// the entry was claimed, it removes the claimed entry itself.
for (const how of ['consume()', 'consumeSync()'] as const) {
  it(`${how} removes its entry through the handoff directory it claimed through, not through a symlink swapped in since`, async () => {
    const root = freshRoot();
    const mgr = new TempFileManager({ root, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    const ticket = await (await mgr.write('consumed', { suffix: '.bin' })).handoff({ ttlMs: 60_000 });
    const claimed = await mgr.claim(ticket);
    const handoff = path.join(root, 'handoff');
    const entry = fs.readdirSync(handoff).find((name) => name.includes(ticket.id))!;
    const decoy = scratchDir();
    fs.mkdirSync(path.join(decoy, entry));
    fs.renameSync(handoff, path.join(root, 'moved'));
    fs.symlinkSync(decoy, handoff);
    if (how === 'consume()') await claimed.consume();
    else claimed.consumeSync();
    expect(fs.existsSync(path.join(decoy, entry))).toBe(true);
    expect(fs.readdirSync(path.join(root, 'moved'))).toEqual([]);
    fs.unlinkSync(handoff);
    fs.renameSync(path.join(root, 'moved'), handoff);
    await mgr.close();
  });
}
