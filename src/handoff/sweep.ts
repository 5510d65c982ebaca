import type { RootContext } from '../root/root.js';
import { CHANNELS, handoffKey, publish } from '../base/channels.js';
import { systemErrorCode } from '../base/errors.js';
import { handoffDirOf, isDataFile, TAKEN_FOR_REMOVAL } from '../base/layout.js';
import { removeListedFlatDir } from '../disk/remove.js';
import { pathError, walkTree, type WalkTally } from '../disk/walk.js';
import { scanHandoff, type EntryInfo, type FoundEntry } from './entries.js';
import { takeForRemoval } from './lease.js';
import { secondLookDueInMs, untilSecondLook } from '../owner/liveness.js';
import { fs } from '../disk/fs.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

// Handoff entries sweep their own: expired unclaimed entries, leftovers of consumed ones and
// staging leftovers, each taken from claimers (one rename) before anything is removed.

/** What sweeping the handoff directory did. @internal */
export interface HandoffSwept {
  readonly removed: number;
  readonly claimed: number;
  readonly foreign: string[];
}

/**
 * Removes expired unclaimed handoff entries and leftovers of consumed ones; never an entry under
 * a live lease, never a name that is not an entry's. @internal
 */
export async function sweepHandoff(target: RootContext, rootBase: string, dryRun: boolean, tally: WalkTally): Promise<HandoffSwept> {
  const run: EntrySweep = { target, dryRun, tally, walk: await walkDefaults(rootBase) };
  const first = await sweepEntries(run, rootBase);
  if (first.lookAgain.length === 0) return first;
  // Holders of this host (without /proc) whose heartbeat the first look found old, whose pid may
  // be another process's now: one sweep, the CLI's included, judges them at its second look.
  await untilSecondLook(first.lookAgain);
  const second = await sweepEntries(run, rootBase);
  return { removed: first.removed + second.removed, claimed: second.claimed, foreign: second.foreign };
}

async function sweepEntries(run: EntrySweep, rootBase: string): Promise<HandoffSwept & { readonly lookAgain: string[] }> {
  const { target, tally } = run;
  const result = { removed: 0, claimed: 0, foreign: [] as string[], lookAgain: [] as string[] };
  await scanHandoff(target, { root: target.root, rootBase }, Date.now(), {
    entry: async (entry, found) => {
      if (entry.state === 'claimed') {
        result.claimed += 1;
        // Only an expired entry is removed once its holder is judged dead: worth a second look.
        const heartbeat = found.data === undefined || entry.expiresAt >= Date.now() ? undefined : path.join(entry.path, found.data);
        if (heartbeat !== undefined && secondLookDueInMs(heartbeat) !== undefined) result.lookAgain.push(heartbeat);
      }
      if (entry.state !== 'expired' && entry.state !== 'consumed') return;
      try {
        if (!(await sweepEntry(run, entry, found))) return;
        result.removed += 1;
        if (entry.state === 'expired' && !run.dryRun) publish(CHANNELS.handoffExpire, () => ({ handoff: handoffKey(entry.id) }));
      } catch (err) {
        tally.errors.push(pathError(entry.path, err)); // this entry only: the sweep goes on
      }
    },
    foreign: (file) => void result.foreign.push(file),
  });
  return result;
}

/** What one sweep of the handoff directory shares across its entries. */
interface EntrySweep {
  readonly target: RootContext;
  readonly dryRun: boolean;
  readonly tally: WalkTally;
  readonly walk: WalkDefaults;
}

/** Removes one expired or consumed entry; true when it was removed (or would be, in a dry run). */
async function sweepEntry(run: EntrySweep, entry: EntryInfo, found: FoundEntry): Promise<boolean> {
  const { dryRun, tally, walk } = run;
  const taken = dryRun ? found : await takeExpiredEntry(found);
  if (taken === undefined) return false; // claimed since it was judged: the next sweep judges it again
  const { at, files } = taken;
  // An entry as the library leaves it (files only, on the handoff directory's mount): removed in
  // a few calls, and only what was judged; one that changed since is left to the next sweep.
  if (!dryRun && files) {
    const outcome = await removeListedFlatDir(taken.at, files, walk.parentDev);
    if (outcome === 'changed') return false;
    if (outcome === 'removed') {
      tally.files += files.length;
      tally.dirs += 1;
      tally.bytes += entry.bytes;
      return true;
    }
  }
  // A data file the sweep did not take (or, in a dry run, would not) is a claimer's: one that a
  // listing missed (sshfs lists, then stats, and skips a name renamed in between) or that came
  // back since. It stays, and with it the entry, for the next sweep to judge.
  let spared = false;
  const spare = (name: string) => {
    const claimers = name !== taken.data && isDataFile(name);
    spared ||= claimers;
    return claimers;
  };
  // Walked by its name (O_NOFOLLOW at each step): a claimer's data file met there is spared.
  await walkTree(entry.path, { remove: !dryRun, ...walk, access: at, spare }, tally);
  return !spared;
}

/**
 * Takes an expired entry's data file from claimers (renamed to {@link TAKEN_FOR_REMOVAL}) before
 * anything is removed: a claim that won the race keeps its file, and the entry is left. The
 * returned listing names the file as it is now. Undefined when a claimer got there first.
 */
async function takeExpiredEntry(found: FoundEntry): Promise<FoundEntry | undefined> {
  if (found.data === undefined) return found; // consumed: no file left to claim
  try {
    if (!(await takeForRemoval(found.access, found.data))) return undefined;
  } catch (err) {
    // An entry that denies the rename denies a claimer's too: no one can take the file from the
    // walk, which restores the entry's permissions and removes it. Any other failure (EMFILE,
    // EIO...) proves nothing: the file stays, with the entry, and the error is reported.
    if (isDenied(systemErrorCode(err))) return found;
    throw err;
  }
  const files = found.files?.map((name) => (name === found.data ? TAKEN_FOR_REMOVAL : name));
  return { ...found, files, data: TAKEN_FOR_REMOVAL };
}

function isDenied(code: string | undefined): boolean {
  return code === 'EACCES' || code === 'EPERM';
}

/** What every walk of one sweep shares: read once, not once per entry. */
interface WalkDefaults {
  readonly parentDev?: number;
}

async function walkDefaults(rootBase: string): Promise<WalkDefaults> {
  try {
    return { parentDev: (await fs.promises.lstat(handoffDirOf(rootBase))).dev };
  } catch {
    return {};
  }
}

