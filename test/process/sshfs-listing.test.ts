import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect } from 'vitest';
import { TempFileManager } from '../../src/index.js';
import { nextJson, startChild, type RunningChild } from '../helpers/child.js';
import { itNeeds } from '../helpers/privileges.js';
import { SSHFS, shareOverSshfs, type SharedOverSshfs } from '../helpers/sshfs.js';
import { scaledRounds } from '../helpers/scale.js';

// A fixed amount of work, not a time: on a busy machine a time allowed fewer rounds, and a check
// of how many was a check of the machine's speed.
const ROUNDS = scaledRounds(20, 5);
const CYCLES = 20;

let share: SharedOverSshfs | undefined;
const sweepers: RunningChild[] = [];
afterEach(async () => {
  for (const sweeper of sweepers.splice(0)) {
    sweeper.child.kill('SIGKILL');
    await sweeper.ended;
  }
  await share?.close();
  share = undefined;
});

// Two hosts' views of one root over sshfs: a listing taken through one mount while the other
// renames a file can show neither name (sftp-server reads the names, then stats each, and skips
// one renamed in between). A sweep that took "no data file" for "consumed" removed claimed files;
// one holding an entry open that the claimer then removed got ESTALE and failed whole. Here a
// claimer renames each entry's data file 41 times (claim, release, ..., claim, consume) on one
// mount while two processes sweep without pause on the other. The witness is the claimer's own
// reading of the bytes after each claim, and the sweepers staying alive: they sweep without pause
// from before the first round to after the last.
describe('sweeps over one sshfs mount while a claimer renames through another', () => {
  itNeeds(SSHFS)(
    `no claim loses its file or its lease in ${ROUNDS} rounds of ${CYCLES * 2 + 1} renames, and no sweep fails`,
    async () => {
      share = await shareOverSshfs();
      const [claimerView, sweeperView] = share.mounts;
      const mgr = new TempFileManager({
        root: path.join(claimerView, 'root'),
        sweepOnStart: false,
        sweepIntervalMs: 0,
        exitHook: false,
      });
      await (await mgr.write('marks the root')).remove();
      for (let i = 0; i < 2; i++) {
        const sweeper = startChild('sweep-loop.mjs', [path.join(sweeperView, 'root')]);
        sweepers.push(sweeper);
        await nextJson(sweeper);
      }
      const failures: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const payload = `round ${round}`;
        const ticket = await (await mgr.write(payload, { suffix: '.bin' })).handoff({ ttlMs: 3_600_000 });
        try {
          for (let cycle = 0; cycle < CYCLES; cycle++) {
            const held = await mgr.claim(ticket);
            if (fs.readFileSync(held.path, 'utf8') !== payload) failures.push(`round ${round}: other bytes`);
            await held.release();
          }
          const held = await mgr.claim(ticket);
          await held.consume();
        } catch (err) {
          failures.push(`round ${round}: ${(err as { code?: string }).code ?? String(err)}`);
        }
      }
      await mgr.close();
      expect(failures).toEqual([]);
      for (const sweeper of sweepers) expect(sweeper.child.exitCode, (await Promise.race([sweeper.ended, Promise.resolve(undefined)]))?.stderr).toBeNull();
    },
    // 51 s on a machine loaded at fifteen times its two cores.
    300_000,
  );
});
