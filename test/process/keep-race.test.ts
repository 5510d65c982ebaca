import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TempFileError } from '../../src/index.js';
import { DestinationExistsError, FileSystemError, TempFileReplacedError } from '../../src/errors.js';
import { nextJson, startChild } from '../helpers/child.js';
import { manager, scratchDir } from '../helpers/roots.js';
import { MOUNTING, needs } from '../helpers/privileges.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { scaledRounds } from '../helpers/scale.js';

const ROUNDS = scaledRounds(300, 100);

// The attacker deleted the staging file under keep(), or swapped it for a symlink: the move
// fails (ENOENT, or the staging name is found not to be the file written), typed, and the file
// stays with its handle. Sabotage by the same uid, never a write through a symlink.
function stagingStolen(err: unknown): boolean {
  if (err instanceof TempFileReplacedError) return err.path !== undefined && path.basename(err.path).includes('.tfm-keep-');
  return err instanceof FileSystemError && err.syscallCode === 'ENOENT';
}

// The attacker removed or replaced the final name right after the file took it, before the source
// was removed: keep() finds the name is not the file it placed, says so, and the file stays with
// its handle (it used to report the file kept, and remove it).
function finalNameChanged(err: unknown, target: string): boolean {
  return err instanceof TempFileReplacedError && err.path === target;
}

// A second process races every keep(): it plants a symlink to a victim file at the destination,
// renames another over it, removes it, and swaps staging names for symlinks, in a tight loop.
// Whatever the interleaving, the victim's bytes never change. The witness of the race window
// is the attacker's own counter of changes to the destination name, read before and after each
// keep(): a round "hit the window" when the name changed while keep() ran.
describe.each([
  { where: 'across file systems (a real tmpfs)', cross: true },
  { where: 'on one file system', cross: false },
])('keep() against a symlink planted at the destination, $where', ({ cross }) => {
  it.for([false, true])(
    `${ROUNDS} rounds, overwrite: %s: the victim is never written`,
    async (overwrite, ctx) => {
      if (cross) needs(ctx, MOUNTING);
      const mgr = manager();
      const destDir = cross ? mountTmpfs(16) : scratchDir();
      expect(fs.statSync(destDir).dev !== fs.statSync(mgr.root).dev).toBe(cross);
      const outside = scratchDir();
      const victim = path.join(outside, 'victim');
      const victimBytes = Buffer.from('the victim: these bytes never change\n');
      fs.writeFileSync(victim, victimBytes);
      const counterPath = path.join(outside, 'counter');
      fs.writeFileSync(counterPath, Buffer.alloc(8));
      const counterFd = fs.openSync(counterPath, 'r');
      const counter = Buffer.alloc(8);
      const readCounter = () => (fs.readSync(counterFd, counter, 0, 8, 0), counter.readBigUInt64LE());

      const target = path.join(destDir, 'kept.bin');
      const payload = randomBytes(128 * 1024);
      const attacker = startChild('keep-attacker.mjs', [destDir, 'kept.bin', victim, counterPath]);
      while (readCounter() === 0n) await new Promise((resolve) => setTimeout(resolve, 5));

      const tally = { kept: 0, refused: 0, stagingStolen: 0, finalNameChanged: 0, hitWindow: 0 };
      const otherTyped: string[] = [];
      const foreign: unknown[] = [];
      let victimChangedAt: number | undefined;
      // Without overwrite the planted symlink refuses most rounds (0 to 34 of 300 kept, seen in CI),
      // and how many rounds race the attacker is the scheduler's to decide (5 of 150 beside Bun
      // and Deno in CI, where a quiet machine sees most): rounds go on past ROUNDS, up to six times
      // as many, until one keep() got through and a tenth of ROUNDS raced the attack.
      const raced = () => tally.hitWindow > ROUNDS / 10;
      const more = (round: number) => round < ROUNDS || ((tally.kept === 0 || !raced()) && round < 6 * ROUNDS);
      for (let round = 0; more(round) && victimChangedAt === undefined; round++) {
        const file = await mgr.write(payload);
        const before = readCounter();
        try {
          await file.keep(target, { overwrite });
          tally.kept += 1;
        } catch (err) {
          if (err instanceof DestinationExistsError) tally.refused += 1;
          else if (stagingStolen(err)) tally.stagingStolen += 1;
          else if (finalNameChanged(err, target)) tally.finalNameChanged += 1;
          else if (err instanceof TempFileError) otherTyped.push(`${err.code} ${err.message}`);
          else foreign.push(err);
          // A refused or failed keep() leaves the file as it was: still ours, whole.
          if (!fs.readFileSync(file.path).equals(payload)) foreign.push(new Error(`round ${round}: source changed`));
          await file.remove();
        }
        if (readCounter() !== before) tally.hitWindow += 1;
        if (!fs.readFileSync(victim).equals(victimBytes)) victimChangedAt = round;
      }
      attacker.child.stdin!.write('stop\n');
      const attack = await nextJson<{ iterations: number; changes: number; stagingSwaps: number; replaced: number }>(attacker);
      fs.closeSync(counterFd);
      console.log(`keep() race, ${cross ? 'cross-device' : 'same device'}, overwrite ${overwrite}:`, { ...tally, ...attack }, otherTyped);

      expect(victimChangedAt).toBeUndefined();
      expect(fs.readFileSync(victim).equals(victimBytes)).toBe(true);
      expect(foreign).toEqual([]);
      expect(otherTyped).toEqual([]);
      if (overwrite) expect(tally.refused).toBe(0);
      else expect(attack.replaced).toBe(0); // without overwrite, what holds the name is never replaced
      if (!cross) expect(tally.stagingStolen).toBe(0);
      // The attack was live: many rounds raced it, and keep() still got through in many.
      expect(tally.hitWindow).toBeGreaterThan(ROUNDS / 10);
      expect(tally.kept).toBeGreaterThan(0); // some rounds do keep: the race is real, not refused every time
    },
  );
});
