import * as nodeFs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TempFileManager, type ClaimedFile, type FileSystem } from '../../src/index.js';
import { freshRoot } from '../helpers/roots.js';

const options = { sweepOnStart: false, sweepIntervalMs: 0, exitHook: false, graceMs: 0 } as const;

/** Runs `fn` with this process's clock set back to `at` (a claimer whose clock is behind the sweeper's). */
async function withClockAt<T>(at: number, fn: () => Promise<T>): Promise<T> {
  const realNow = Date.now;
  Date.now = () => at;
  try {
    return await fn();
  } finally {
    Date.now = realNow;
  }
}

// The sweep judges an entry expired by its own clock; a claimer whose clock is behind still sees
// a valid ticket and claims it, between the sweep's look and its removal. The claim must keep its
// file: the sweep takes the data file (one rename, as a claim does) before it removes anything,
// and a claim that renamed it first wins. The sweeper's fs is wrapped so that the claim lands
// right after the sweep's last look at the entry; it is a wrapped real disk, so the sweep takes its
// general path (the walk), the one that removes whatever an entry holds.
describe('a claim that lands between the sweep judging an entry expired and removing it', () => {
  it('keeps its file and its lease; the sweep leaves the entry', async () => {
    const root = freshRoot();
    const producer = new TempFileManager({ root, ...options });
    const claimer = new TempFileManager({ root, ...options });
    const ticket = await (await producer.write('claimed just in time', { suffix: '.bin' })).handoff({ ttlMs: 1 });
    await new Promise((resolve) => setTimeout(resolve, 20)); // expired, by this machine's clock
    let claimed: ClaimedFile | undefined;
    const fs = {
      ...nodeFs,
      promises: {
        ...nodeFs.promises,
        // The sweep's last look at the entry: its data file, unheld; the claim comes right after.
        lstat: async (target: string) => {
          const stat = await nodeFs.promises.lstat(target);
          if (!claimed && target.includes(ticket.id)) claimed = await withClockAt(ticket.createdAt, () => claimer.claim(ticket));
          return stat;
        },
      },
    } as unknown as FileSystem;
    const sweeper = new TempFileManager({ root, fs, ...options });
    const report = await sweeper.sweep();
    expect(claimed).toBeDefined();
    expect(report).toMatchObject({ handoffEntriesRemoved: 0, errors: [] });
    expect(nodeFs.readFileSync(claimed!.path, 'utf8')).toBe('claimed just in time');
    await claimed!.consume(); // a LeaseLostError here: the sweep removed a claimed file
    await Promise.all([producer.close(), claimer.close(), sweeper.close()]);
  });
});
