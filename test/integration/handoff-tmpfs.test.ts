import { createHook } from 'node:async_hooks';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { procFd } from '../../src/disk/proc.js';
import { TempFileManager, type ClaimedFile } from '../../src/index.js';
import { itNeeds, MOUNTING } from '../helpers/privileges.js';
import { listTree, scratchDir } from '../helpers/roots.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { boundEntryName } from '../../src/handoff/binding.js';

// On a file system held in memory (tmpfs), a consume removes the entry's directory inline: no
// device to wait for, so no trip to the thread pool. Inline or not, the removal goes through the
// handoff directory the claim holds, never through the path.

const THREAD_POOL_REQUESTS = new Set(['FSREQCALLBACK', 'FSREQPROMISE', 'FILEHANDLECLOSEREQ']);

/** The thread-pool requests (async fs calls) `step` starts. */
async function threadPoolRequests(step: () => Promise<void>): Promise<number> {
  let count = 0;
  const hook = createHook({
    init(_id, type) {
      if (THREAD_POOL_REQUESTS.has(type)) count++;
    },
  });
  hook.enable();
  try {
    await step();
  } finally {
    hook.disable();
  }
  return count;
}

async function onTmpfs(run: (mgr: TempFileManager, tmpfs: string) => Promise<void>): Promise<void> {
  const tmpfs = mountTmpfs(16);
  const mgr = new TempFileManager({ root: path.join(tmpfs, 'root'), sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
  try {
    await run(mgr, tmpfs);
  } finally {
    await mgr.close();
  }
}

async function claimOne(mgr: TempFileManager, content: string): Promise<{ claimed: ClaimedFile; entry: string }> {
  const ticket = await (await mgr.write(content, { suffix: '.bin' })).handoff({ ttlMs: 60_000 });
  return { claimed: await mgr.claim(ticket), entry: boundEntryName(ticket) };
}

describe('a handoff on tmpfs', () => {
  itNeeds(MOUNTING)('consume() removes the file and the entry inline: no thread-pool request, nothing left', async () => {
    await onTmpfs(async (mgr) => {
      for (let round = 0; round < 3; round++) {
        const { claimed } = await claimOne(mgr, `job ${round}`);
        // Without /proc the handoff directory is not held, and what it is on is not known: the
        // unlink and the rmdir both go to the thread pool.
        expect(await threadPoolRequests(() => claimed.consume())).toBe(procFd() ? 0 : 2);
        expect(claimed.disposed).toBe(true);
        expect(fs.readdirSync(path.join(mgr.root, 'handoff'))).toEqual([]);
      }
    });
  });

  itNeeds(MOUNTING)('the handoff directory swapped for a symlink before consume(): the decoy is untouched, the entry goes from the directory held', async () => {
    await onTmpfs(async (mgr, tmpfs) => {
      const { claimed, entry } = await claimOne(mgr, 'job');
      // The decoy holds an empty directory of the entry's name: an rmdir by path would remove it.
      const decoy = scratchDir();
      fs.mkdirSync(path.join(decoy, entry));
      fs.writeFileSync(path.join(decoy, 'victim.bin'), 'victim');
      const before = listTree(decoy);
      const handoff = path.join(mgr.root, 'handoff');
      const aside = path.join(tmpfs, 'aside');
      fs.renameSync(handoff, aside);
      fs.symlinkSync(decoy, handoff);
      if (procFd()) {
        // Reached through the descriptors the claim holds: the entry goes from the directory moved aside.
        await claimed.consume();
        expect(fs.readdirSync(aside)).toEqual([]);
      } else {
        // Without /proc the path is all there is: the held file is not found there, and nothing is changed.
        await expect(claimed.consume()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_LEASE_LOST' });
      }
      expect(listTree(decoy)).toEqual(before);
    });
  });
});
