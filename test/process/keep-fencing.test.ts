import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { TempFileManager } from '../../src/index.js';
import { innerPid, nextJson, startChild } from '../helpers/child.js';
import { takeOver } from '../helpers/fencing.js';
import { itNeeds } from '../helpers/privileges.js';
import { freshRoot, scratchDir } from '../helpers/roots.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

const STALE_MS = 2000;

// A claimer on "another machine" (a PID namespace of its own, so judged by its heartbeat) starts
// a keep() across file systems and stalls in it, its whole thread stopped: mid-copy, or right
// after the copy took its final name. Another worker takes the lease over after staleMs and
// consumes the entry. When the first claimer goes on, its keep() must reject with
// LeaseLostError and leave no file of its own at its destination: the job was the other
// worker's by then.
describe('a claimer fenced off in the middle of a keep() across file systems', () => {
  itNeeds({ root: 'mounting a tmpfs and making a PID namespace', command: ['mount', 'umount', 'unshare'], package: 'mount util-linux' }).for(
    (['mid-copy', 'placed'] as const).flatMap((when) => [false, true].map((overwrite) => ({ when, overwrite }))),
  )('stalled %o, taken over and consumed: keep() rejects with LeaseLostError and leaves nothing at the destination', async ({ when, overwrite }) => {
    const root = freshRoot();
    const producer = new TempFileManager({ root, hostId: 'host-a', sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    const ticket = await (await producer.write(randomBytes(2 * 1024 * 1024 + 5))).handoff({ ttlMs: 600_000 });
    await producer.close();
    const destDir = mountTmpfs(32);
    expect(fs.statSync(destDir).dev).not.toBe(fs.statSync(root).dev);
    const dest = path.join(destDir, 'A-output.bin');
    const go = path.join(scratchDir(), 'go');

    // The claimer is another Linux host (its own PID namespace), stalled whole once it reached the
    // step (SIGSTOP, a frozen container): only its heartbeat speaks for it, and that stops with it.
    // (A claimer whose event loop alone stalls keeps its lease: its beat thread beats on.)
    const anotherLinuxHost = { TEMPFILE_MANAGER_NO_PROC: '' };
    const claimer = startChild('keep-fenced.mjs', [root, JSON.stringify(ticket), String(STALE_MS), dest, when, String(overwrite), go], anotherLinuxHost, { pidNamespace: true });
    try {
      expect(await nextJson(claimer)).toHaveProperty('claimed');
      expect(await nextJson(claimer)).toEqual({ paused: when });
      const inner = innerPid(claimer.child.pid!);
      process.kill(inner, 'SIGSTOP');

      const taker = new TempFileManager({ root, hostId: 'host-b', staleMs: STALE_MS, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
      const taken = await takeOver(taker, ticket);
      await taken.consume();
      await taker.close();

      process.kill(inner, 'SIGCONT');
      fs.writeFileSync(go, '');
      expect(await nextJson(claimer)).toEqual({ result: 'ERR_TEMPFILE_LEASE_LOST' });
      expect(fs.readdirSync(destDir)).toEqual([]); // no final file, no staging name
      expect(fs.readdirSync(path.join(root, 'handoff'))).toEqual([]);
    } finally {
      fs.writeFileSync(go, '');
      await claimer.ended;
    }
  });
});
