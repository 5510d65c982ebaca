import path from 'node:path';
import type { Stats } from 'node:fs';
import type { FileSystem } from '../disk/fs.js';
import { otherThan, type FileIdentity } from '../disk/open-checked.js';
import { atExit } from '../owner/registry.js';

/** The removal at exit of one staging file of a `keep()` under way. */
export interface StagingGuard {
  /** The file created at the name, as its descriptor tells: from now on only that file is removed. */
  made(identity: FileIdentity): void;
  /** Nothing to remove at exit any more: the name was placed, removed, or never created. */
  drop(): void;
}

/**
 * Removes the staging name `name` in the destination's directory (`dir`, its pinned base) if the
 * process ends, by a signal or an exit, while `keep()` runs: only a crash (SIGKILL, power loss)
 * leaves a staging file. Guarded before the file is created, so that an exit while its `open`
 * is under way leaves nothing either.
 */
export function guardStaging(fs: FileSystem, dir: string, name: string): StagingGuard {
  let identity: FileIdentity | undefined;
  const drop = atExit(() => removeIfOurs(fs, path.join(dir, name), identity));
  return {
    made: (made) => void (identity = made),
    drop,
  };
}

// The name is not followed, and only the file this keep() made goes: whoever can write to the
// directory may have put something else there, which is theirs.
function removeIfOurs(fs: FileSystem, staged: string, identity: FileIdentity | undefined): void {
  try {
    if (isOurs(fs.lstatSync(staged), identity)) fs.unlinkSync(staged);
  } catch {
    // gone already, or the directory with it: nothing of ours is there
  }
}

// Before its open returned, the file this keep() creates is known by its name alone: a regular,
// empty file of this user with no other name (the name has 128 random bits).
function isOurs(stat: Stats, identity: FileIdentity | undefined): boolean {
  if (identity !== undefined) return otherThan(stat, identity) === undefined;
  return stat.isFile() && stat.nlink === 1 && stat.size === 0 && (process.geteuid === undefined || stat.uid === process.geteuid());
}
