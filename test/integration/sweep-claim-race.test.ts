import nodeFs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { TempFileManager, type ClaimedFile } from '../../src/index.js';
import { canonical, type FsLayer } from '../helpers/fs-layer.js';
import { FaultyFs, staleHandle } from '../helpers/faulty-fs.js';
import { freshRoot, layeredManager } from '../helpers/roots.js';

const options = { sweepOnStart: false, sweepIntervalMs: 0, exitHook: false, graceMs: 0 } as const;

/** A root with one handoff entry already expired (by this machine's clock), and its producer. */
async function expiredEntry(content: string) {
  const root = freshRoot();
  const producer = new TempFileManager({ root, ...options });
  const ticket = await (await producer.write(content, { suffix: '.bin' })).handoff({ ttlMs: 1 });
  await new Promise((resolve) => setTimeout(resolve, 20));
  return { root, producer, ticket };
}

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
    let claiming = false; // the claimer's own calls reach the layer too (one disk): they pass
    const fs = {
      ...nodeFs,
      promises: {
        ...nodeFs.promises,
        // The sweep's last look at the entry (reached through its pinned directory): its data file,
        // unheld; the claim comes right after.
        lstat: async (target: string) => {
          const stat = await nodeFs.promises.lstat(target);
          if (!claiming && canonical(target).includes(ticket.id)) {
            claiming = true;
            claimed = await withClockAt(ticket.createdAt, () => claimer.claim(ticket));
          }
          return stat;
        },
      },
    } as unknown as FsLayer;
    const sweeper = layeredManager({ root, fs, ...options });
    const report = await sweeper.sweep();
    expect(claimed).toBeDefined();
    expect(report).toMatchObject({ handoffEntriesRemoved: 0, errors: [] });
    expect(nodeFs.readFileSync(claimed!.path, 'utf8')).toBe('claimed just in time');
    await claimed!.consume(); // a LeaseLostError here: the sweep removed a claimed file
    await Promise.all([producer.close(), claimer.close(), sweeper.close()]);
  });
});

// A listing is not a snapshot on every file system: sshfs's server lists names, then stats each,
// and skips a name renamed in between, so a listing taken while a claim renames the data file
// shows neither its old name nor its new one (measured: 1% of listings between two sshfs mounts
// racing a rename). The sweep then sees an entry with no data file, one it would remove as
// consumed. The claimed file must survive: the sweep never removes a data file it did not take.
describe('a claim that lands while the sweep lists the entry, the listing missing the data file', () => {
  it('keeps its file and its lease; the sweep leaves the entry', async () => {
    const root = freshRoot();
    const producer = new TempFileManager({ root, ...options });
    const claimer = new TempFileManager({ root, ...options });
    const ticket = await (await producer.write('claimed mid-listing', { suffix: '.bin' })).handoff({ ttlMs: 60_000 });
    let claimed: ClaimedFile | undefined;
    let claiming = false; // the claimer's own calls reach the layer too (one disk): they pass
    const fs = {
      ...nodeFs,
      promises: {
        ...nodeFs.promises,
        readdir: async (target: string, listOptions?: { withFileTypes?: boolean }) => {
          const listed = (await nodeFs.promises.readdir(target, listOptions as { withFileTypes: true })) as nodeFs.Dirent[];
          if (claiming || !canonical(target).includes(`${ticket.id}_`)) return listed;
          if (!listed.some((dirent) => dirent.name.startsWith('data'))) return listed;
          claiming = true;
          claimed = await claimer.claim(ticket);
          return listed.filter((dirent) => !dirent.name.startsWith('data'));
        },
      },
    } as unknown as FsLayer;
    const sweeper = layeredManager({ root, fs, ...options });
    const report = await sweeper.sweep();
    expect(claimed).toBeDefined();
    expect(report).toMatchObject({ handoffEntriesRemoved: 0, errors: [] });
    expect(nodeFs.readFileSync(claimed!.path, 'utf8')).toBe('claimed mid-listing');
    await claimed!.consume(); // a LeaseLostError here: the sweep removed a claimed file
    await Promise.all([producer.close(), claimer.close(), sweeper.close()]);
  });
});

// The same listing seen by a claimer: its rename found the data file gone, and its look at the
// entry missed the name the file was renamed to. "Not found" would tell a worker the upload was
// done with, and it would drop the job; the claimer must look again and find the holder.
describe('a claimer whose look at the entry misses the data file being renamed', () => {
  it('looks again: AlreadyClaimedError while another holds it, never HandoffNotFoundError', async () => {
    const root = freshRoot();
    const producer = new TempFileManager({ root, ...options });
    const holder = new TempFileManager({ root, ...options });
    const ticket = await (await producer.write('held elsewhere', { suffix: '.bin' })).handoff({ ttlMs: 60_000 });
    const held = await holder.claim(ticket);
    let missed = 0;
    const fs = {
      ...nodeFs,
      readdirSync: (target: string, listOptions?: unknown) => {
        const listed = nodeFs.readdirSync(target, listOptions as undefined) as string[];
        // The entry's listing: through its held descriptor with /proc, by its path without.
        const listedDir = target.startsWith('/proc/') ? nodeFs.readlinkSync(target) : target;
        if (missed > 0 || !path.basename(listedDir).startsWith('entry_')) return listed;
        missed += 1;
        return listed.filter((name) => !name.startsWith('data') && !name.startsWith('held_'));
      },
    } as unknown as FsLayer;
    const claimer = layeredManager({ root, fs, ...options });
    await expect(claimer.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_ALREADY_CLAIMED' });
    expect(missed).toBe(1);
    await held.consume();
    await expect(claimer.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    await Promise.all([producer.close(), holder.close(), claimer.close()]);
  });
});

// On sshfs (and NFS) a directory removed on the server while this host holds it open answers
// ESTALE, which libuv does not name ("Unknown system error -116"). A claimer consuming an entry
// removes it while the sweep holds it open: the sweep must take that as "gone", not fail whole.
describe('an entry removed while the sweep holds it open (ESTALE)', () => {
  it('is taken as gone: the sweep itself does not fail, and the entry goes by the next sweep', async () => {
    const { root, producer, ticket } = await expiredEntry('gone under the sweep');
    const stale = WITHOUT_PROC ? staleUnlinkAfterTake(root, ticket.id) : staleFstatAfterTake(root, ticket.id);
    let first;
    try {
      first = await stale.sweeper.sweep();
      expect(stale.count()).toBe(1);
      expect(first.errors).toEqual([]);
    } finally {
      stale.restore();
    }
    // With /proc the entry is left as changed and judged again; without, the walk that follows
    // the unlink takes the name as gone and removes the rest: removed once either way.
    const second = await stale.sweeper.sweep();
    expect(second.errors).toEqual([]);
    expect(first.handoffEntriesRemoved + second.handoffEntriesRemoved).toBe(1);
    expect(nodeFs.readdirSync(path.join(root, 'handoff'))).toEqual([]);
    await Promise.all([producer.close(), stale.sweeper.close()]);
  });
});

const WITHOUT_PROC = /^(1|true|yes)$/i.test(process.env['TEMPFILE_MANAGER_NO_PROC'] ?? '');

/**
 * With /proc the sweep removes an entry through its held descriptor: the `fstat` of that
 * descriptor, once the sweep took the data file, answers ESTALE (a claimer's consume got there first).
 */
function staleFstatAfterTake(root: string, id: string) {
  const realFstat = nodeFs.fstatSync;
  let staled = 0;
  const spy = vi.spyOn(nodeFs, 'fstatSync').mockImplementation(((fd: number, ...rest: unknown[]) => {
    const entry = nodeFs.readlinkSync(`/proc/self/fd/${fd}`).includes(`${id}_`);
    if (staled === 0 && entry && nodeFs.readdirSync(`/proc/self/fd/${fd}`).includes('removing')) {
      staled += 1;
      throw staleHandle('fstat');
    }
    return (realFstat as (...args: unknown[]) => nodeFs.Stats)(fd, ...rest);
  }) as typeof nodeFs.fstatSync);
  syncBuiltinESMExports(); // the library's namespace import of node:fs sees the spy
  const restore = () => {
    spy.mockRestore();
    syncBuiltinESMExports();
  };
  return { sweeper: new TempFileManager({ root, ...options }), count: () => staled, restore };
}

/** Without /proc it removes the entry by its path: the unlink of the data file it took answers ESTALE. */
function staleUnlinkAfterTake(root: string, id: string) {
  const faulty = new FaultyFs();
  let staled = 0;
  faulty.before('unlink', (target) => target.includes(`${id}_`) && target.endsWith('/removing'), () => {
    staled += 1;
    throw staleHandle('unlink');
  });
  return { sweeper: layeredManager({ root, fs: faulty.fs, ...options }), count: () => staled, restore: () => {} };
}

// The sweep removes only a data file it took itself. A take that fails for a reason that says
// nothing about the entry (EMFILE, EIO) must not be read as "taken": the file stays, the error
// is reported, and a later sweep judges the entry again.
describe('a sweep whose take of an expired entry fails with EMFILE', () => {
  it('leaves the data file and the entry, reports the error; the next sweep removes the entry', async () => {
    const { root, producer, ticket } = await expiredEntry('not taken');
    let failed = 0;
    const fs = {
      ...nodeFs,
      promises: {
        ...nodeFs.promises,
        rename: async (from: string, to: string) => {
          if (to.endsWith('/removing') && failed === 0) {
            failed += 1;
            throw Object.assign(new Error('EMFILE: too many open files, rename'), { code: 'EMFILE' });
          }
          return nodeFs.promises.rename(from, to);
        },
      },
    } as unknown as FsLayer;
    const sweeper = layeredManager({ root, fs, ...options });
    const entryDir = () => nodeFs.readdirSync(`${root}/handoff`).find((name) => name.includes(ticket.id));
    const first = await sweeper.sweep();
    expect(failed).toBe(1);
    expect(first.handoffEntriesRemoved).toBe(0);
    expect(first.errors).toEqual([expect.objectContaining({ code: 'EMFILE' })]);
    expect(nodeFs.readdirSync(`${root}/handoff/${entryDir()}`)).toEqual(['data.bin']);
    const second = await sweeper.sweep();
    expect(second.handoffEntriesRemoved).toBe(1);
    expect(entryDir()).toBeUndefined();
    await Promise.all([producer.close(), sweeper.close()]);
  });
});

// On sshfs and NFS, a name under a directory another host removed answers ESTALE: for the
// sweep's take and a claim's lease, that is the entry gone, as ENOENT is, not a failure.
describe('a sweep whose take of an expired entry meets a stale handle (ESTALE)', () => {
  it('reports no error and removes nothing; the next sweep removes the entry', async () => {
    const { root, producer, ticket } = await expiredEntry('stale take');
    let staled = 0;
    const fs = {
      ...nodeFs,
      promises: {
        ...nodeFs.promises,
        rename: async (from: string, to: string) => {
          if (to.endsWith('/removing') && staled === 0) {
            staled += 1;
            throw staleHandle('rename');
          }
          return nodeFs.promises.rename(from, to);
        },
      },
    } as unknown as FsLayer;
    const sweeper = layeredManager({ root, fs, ...options });
    const entryDir = () => nodeFs.readdirSync(`${root}/handoff`).find((name) => name.includes(ticket.id));
    const first = await sweeper.sweep();
    expect(staled).toBe(1);
    expect(first.errors).toEqual([]);
    expect(first.handoffEntriesRemoved).toBe(0);
    const second = await sweeper.sweep();
    expect(second.errors).toEqual([]);
    expect(second.handoffEntriesRemoved).toBe(1);
    expect(entryDir()).toBeUndefined();
    await Promise.all([producer.close(), sweeper.close()]);
  });
});

describe('a claim whose entry another host removed while it took the lease (ESTALE)', () => {
  it('fails with HandoffNotFoundError, as for an entry gone, not with an I/O error', async () => {
    const root = freshRoot();
    const producer = new TempFileManager({ root, ...options });
    const ticket = await (await producer.write('removed on the server', { suffix: '.bin' })).handoff({ ttlMs: 60_000 });
    let staled = 0;
    const inEntry = (target: string) => canonical(target).includes(`${ticket.id}_`);
    const fs = {
      ...nodeFs,
      renameSync: (from: string, to: string) => {
        if (inEntry(from)) {
          staled += 1;
          throw staleHandle('rename');
        }
        return nodeFs.renameSync(from, to);
      },
      readdirSync: ((dir: string, ...rest: unknown[]) => {
        if (inEntry(dir)) {
          staled += 1;
          throw staleHandle('scandir');
        }
        return (nodeFs.readdirSync as (...a: unknown[]) => unknown)(dir, ...rest);
      }) as typeof nodeFs.readdirSync,
    } as unknown as FsLayer;
    const claimer = layeredManager({ root, fs, ...options });
    await expect(claimer.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    expect(staled).toBeGreaterThanOrEqual(2);
    await Promise.all([producer.close(), claimer.close()]);
  });
});
