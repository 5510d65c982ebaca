import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { nextJson, startChild } from '../helpers/child.js';
import { freshRoot, manager, scratchDir } from '../helpers/roots.js';
import { eachNeeds, MOUNTING } from '../helpers/privileges.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

const ROUNDS = 300;
// Children killed side by side, each in a directory of its own. A round costs one Node start
// (about 0.15 CPU-seconds): some 25 s on an idle 2-core machine, minutes on a crowded one.
const SLOTS = 3;
const MiB = 1024 * 1024;
/** The documented shape of a staging name left by a crash (docs/scoped-files.md). */
const STAGING = /^\.kept\.bin\.tfm-keep-[0-9a-f]{32}\.partial$/;

/** Waits `ms`, to a fraction of a millisecond (the last one spun). */
async function sleepPrecisely(ms: number): Promise<void> {
  const until = performance.now() + ms;
  if (ms >= 2) await sleep(Math.floor(ms) - 1);
  while (performance.now() < until);
}

type Phase = 'before staging' | 'copying' | 'placed, source not yet removed' | 'finished';

// kill -9 at random instants of a cross-device keep() of a 2 MiB file (a real tmpfs, so the
// copy path runs), in a child process. Half the rounds keep with overwrite over an old file.
// After each kill: the final name holds nothing (or the old file), or the whole new file; every
// other name is a staging name of the documented shape; and a fresh keep() to the same
// destination succeeds, with the same options.
describe('keep() killed with SIGKILL at random instants', () => {
  eachNeeds(MOUNTING);
  it(`${ROUNDS} kills: the destination is absent, old or whole, and the retry succeeds`, { timeout: 300_000 }, async () => {
    const volume = mountTmpfs(64);
    const root = freshRoot();
    const mgr = manager({ root });
    const bytes = randomBytes(2 * MiB);
    const oldBytes = Buffer.from('the old file: stays until the new one is whole\n');
    const payload = path.join(scratchDir(), 'payload');
    fs.writeFileSync(payload, bytes);

    const runChild = (dir: string, overwrite: boolean) =>
      startChild('keep-child.mjs', [root, payload, path.join(dir, 'kept.bin'), String(overwrite)]);

    // How long a keep() takes here, seen from this process: kills are spread over that span.
    const calibration = path.join(volume, 'calibration');
    fs.mkdirSync(calibration);
    const spans: number[] = [];
    for (let i = 0; i < 3; i++) {
      const child = runChild(calibration, true);
      await nextJson(child);
      const started = performance.now();
      await nextJson(child);
      spans.push(performance.now() - started);
      await child.ended;
    }
    // The window of the kills then follows what they hit: a kill that came before the copy widens
    // it, one that came after the file was whole narrows it. A machine whose speed changes during
    // the run (a busy CI host) still gets kills on both sides of the copy and inside it.
    let span = spans.sort((a, b) => a - b)[1]! * 1.3;
    const spanSeen = { min: span, max: span };

    const phases: Record<Phase, number> = {
      'before staging': 0,
      copying: 0,
      'placed, source not yet removed': 0,
      finished: 0,
    };
    const problems: string[] = []; // the first few end the test: a broken keep() fails fast
    let stagingLeftovers = 0;
    let next = 0;

    async function slot(index: number): Promise<void> {
      const dir = path.join(volume, `slot-${index}`);
      fs.mkdirSync(dir);
      const target = path.join(dir, 'kept.bin');
      while (next < ROUNDS && problems.length < 5) {
        const round = next++;
        const overwrite = round % 2 === 1;
        if (overwrite) fs.writeFileSync(target, oldBytes);
        const child = runChild(dir, overwrite);
        const { source } = await nextJson<{ source: string }>(child);
        await sleepPrecisely(Math.random() * span);
        child.child.kill('SIGKILL');
        await child.ended;

        const final = fs.existsSync(target) ? fs.readFileSync(target) : undefined;
        const whole = final?.equals(bytes) === true;
        if (!(final === undefined && !overwrite) && !(overwrite && final?.equals(oldBytes)) && !whole) {
          problems.push(`round ${round}: the final name holds ${final?.length} bytes that are neither old nor whole`);
        }
        const others = fs.readdirSync(dir).filter((name) => name !== 'kept.bin');
        const strays = others.filter((name) => !STAGING.test(name));
        if (strays.length > 0) problems.push(`round ${round}: unexpected names ${strays.join(', ')}`);
        stagingLeftovers += others.length - strays.length;
        const phase: Phase = whole ? (fs.existsSync(source) ? 'placed, source not yet removed' : 'finished') : others.length > 0 ? 'copying' : 'before staging';
        phases[phase] += 1;
        if (phase === 'before staging') span = Math.min(span * 1.1, 5000);
        if (whole) span = Math.max(span * 0.9, 0.5);
        spanSeen.min = Math.min(spanSeen.min, span);
        spanSeen.max = Math.max(spanSeen.max, span);

        // The next try, as a retried job would make it: it succeeds, leftovers or not.
        const retry = mgr.file();
        fs.copyFileSync(payload, retry.path);
        try {
          await retry.keep(target, { overwrite });
          if (!fs.readFileSync(target).equals(bytes)) problems.push(`round ${round}: the retry left other bytes`);
        } catch (err) {
          problems.push(`round ${round}: the retry failed: ${String(err)}`);
          await retry.remove();
        }
        fs.rmSync(path.dirname(source), { recursive: true, force: true }); // the dead child's session
        for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name)); // as docs/scoped-files.md says
      }
    }
    await Promise.all(Array.from({ length: SLOTS }, (_, index) => slot(index)));
    console.log(`keep() under SIGKILL: ${ROUNDS} kills over ${spanSeen.min.toFixed(1)} to ${spanSeen.max.toFixed(1)} ms`, phases, { stagingLeftovers });

    expect(problems).toEqual([]);
    // The kills landed inside the copy as well as after the file took its name.
    expect(phases.copying).toBeGreaterThan(ROUNDS / 30);
    expect(phases['placed, source not yet removed'] + phases.finished).toBeGreaterThan(ROUNDS / 20);
    expect(stagingLeftovers).toBeGreaterThan(0);
  });
});
