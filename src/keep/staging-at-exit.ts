import { fs } from '../disk/fs.js';
import { otherThan, type FileIdentity } from '../disk/open-checked.js';
import { atExit } from '../owner/registry.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

/** The removal at exit of one staging file of a `keep()` under way. */
export interface StagingGuard {
  /** The staging file's open returned this descriptor: at exit, the file it holds is the one to remove. */
  opened(fd: number): void;
  /** The file created at the name, as its descriptor tells: from now on only that file is removed. */
  made(identity: FileIdentity): void;
  /** Nothing to remove at exit any more: the name was placed, removed, or never created. */
  drop(): void;
}

/**
 * Removes the staging name `name` in the destination's directory (`dir`, its pinned base) if the
 * process ends, by a signal or an exit, while `keep()` runs, and only while the name is the very
 * file that keep() opened (by its descriptor's device and inode). Before the staging file's `open`
 * returns, nothing tells that file from one another process of this user put at the name, so an
 * end in that window leaves the name (an empty file), as a crash would.
 */
export function guardStaging(dir: string, name: string): StagingGuard {
  let fd: number | undefined;
  let identity: FileIdentity | undefined;
  const drop = atExit(() => removeIfOurs(path.join(dir, name), identity ?? identityOf(fd)));
  return {
    opened: (opened) => void (fd = opened),
    made: (made) => void (identity = made),
    drop,
  };
}

function identityOf(fd: number | undefined): FileIdentity | undefined {
  if (fd === undefined) return undefined;
  try {
    const stat = fs.fstatSync(fd);
    return { dev: stat.dev, ino: stat.ino };
  } catch {
    return undefined;
  }
}

// The name is not followed, and only the file this keep() made goes: whoever can write to the
// directory may have put something else there, which is theirs.
function removeIfOurs(staged: string, identity: FileIdentity | undefined): void {
  if (identity === undefined) return;
  try {
    if (otherThan(fs.lstatSync(staged), identity) === undefined) fs.unlinkSync(staged);
  } catch {
    // gone already, or the directory with it: nothing of ours is there
  }
}
