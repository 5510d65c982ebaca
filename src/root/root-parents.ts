import { UnsafeRootError } from '../base/errors.js';
import { fs } from '../disk/fs.js';
import { HOST_PLATFORM, type Platform } from '../base/platform.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

/** The links a path may pass through before it is taken as a loop, as Linux counts them. */
const MAX_LINKS = 40;

/** What the check needs to know of a link or a directory: its owner and mode. */
interface Owned {
  readonly uid: number;
  readonly mode: number;
}

/**
 * Refuses a root whose path passes through a symbolic link another user could change, before
 * anything is made through it. macOS's `/var -> /private/var` (and `/tmp -> /private/tmp`) is a
 * link of root's in a directory only root may write: it is followed. A link is changeable by
 * another user when its directory is theirs, or when others may write in its directory and it is
 * not sticky, or it is sticky and the link is theirs. Each link is followed as the kernel would,
 * so a safe link whose target passes through an unsafe one is refused too. A path that cannot be
 * read this far is left to the root's own checks, which say what is wrong with it.
 * @throws {@link UnsafeRootError} (reason `'symlinked-parent'`) naming the link and what is wrong.
 */
export function checkRootParents(root: string, platform: Platform = HOST_PLATFORM): void {
  const uid = process.getuid?.();
  if (platform === 'win32' || uid === undefined) return;
  let pending = path.dirname(root).split('/');
  let current = '/';
  for (let links = 0; pending.length > 0; ) {
    const name = pending.shift()!;
    if (name === '' || name === '.') continue;
    if (name === '..') {
      current = path.dirname(current);
      continue;
    }
    const next = path.join(current, name);
    const stat = lstatOrUndefined(next);
    if (stat === undefined) return;
    if (!stat.isSymbolicLink()) {
      current = next;
      continue;
    }
    if (++links > MAX_LINKS) return;
    refuseChangeableLink(root, next, stat, current, uid);
    const target = readlinkOrUndefined(next);
    if (target === undefined) return;
    pending = [...target.split('/'), ...pending];
    if (target.startsWith('/')) current = '/';
  }
}

function refuseChangeableLink(root: string, link: string, stat: Owned, dir: string, uid: number): void {
  const dirStat = lstatOrUndefined(dir);
  if (dirStat === undefined) return;
  const problem = changeableBy(stat, dirStat, uid);
  if (problem === undefined) return;
  let real = '';
  try {
    real = ` (its real path is ${fs.realpathSync(path.dirname(root))})`;
  } catch {
    // the link leads nowhere yet: the message says so without a real path
  }
  throw new UnsafeRootError(
    'symlinked-parent',
    root,
    `The root ${root} lies below the symbolic link ${link}, which another user could point elsewhere: ${problem}. ` +
      `Pass a root whose path has no such link, such as the link's real path${real}, or have that link made by root ` +
      'in a directory only root may write, as /var is on macOS.',
  );
}

/** Why another user could replace the link `link` in its directory `dir`, or undefined. */
function changeableBy(link: Owned, dir: Owned, uid: number): string | undefined {
  const trusted = (owner: number) => owner === 0 || owner === uid;
  const mode = (dir.mode & 0o7777).toString(8);
  if (!trusted(dir.uid)) return `its directory is owned by uid ${dir.uid}`;
  if ((dir.mode & 0o022) === 0) return undefined;
  if ((dir.mode & 0o1000) === 0) return `its directory may be written by others (mode ${mode}, not sticky)`;
  if (!trusted(link.uid)) return `the link is owned by uid ${link.uid}, who may replace it in its sticky directory (mode ${mode})`;
  return undefined;
}

function lstatOrUndefined(file: string): (Owned & { isSymbolicLink(): boolean }) | undefined {
  try {
    return fs.lstatSync(file, { bigint: false });
  } catch {
    return undefined;
  }
}

function readlinkOrUndefined(link: string): string | undefined {
  try {
    return fs.readlinkSync(link, 'utf8');
  } catch {
    return undefined;
  }
}
