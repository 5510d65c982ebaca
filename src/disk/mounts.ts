import { readFileSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';

// A bind mount of a directory of the same file system has the same st_dev as its parent: only
// the mount table tells it apart. /proc/self/mountinfo lists every mount point; a walk reads it
// once, and only when a mount point lies under its root does it compare each directory's mount
// id (from /proc/self/fdinfo/<fd>, about the very descriptor it holds) with its parent's.

/** The mount points at or under `dir` (resolved), from /proc/self/mountinfo; empty when it cannot be read. @internal */
export function mountPointsUnder(dir: string): string[] {
  let table: string;
  let real: string;
  try {
    table = readFileSync('/proc/self/mountinfo', 'utf8');
    real = resolved(dir);
  } catch {
    return [];
  }
  const under: string[] = [];
  for (const line of table.split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    const point = field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    if (point === real || point.startsWith(`${real}/`)) under.push(point);
  }
  return under;
}

/**
 * `dir` resolved. A path through a held descriptor (`/proc/<pid>/fd/<fd>/<rest>`) is resolved by
 * the kernel's own name for that descriptor, with no walk of the path it was opened by: a path
 * swapped since cannot lead the answer elsewhere.
 */
function resolved(dir: string): string {
  const held = /^(\/proc\/(?:self|\d+)\/fd\/\d+)(\/.*)?$/.exec(dir);
  if (!held) return realpathSync(dir);
  return path.join(readlinkSync(held[1]!), held[2] ?? '');
}

/** Whether `dir` (resolved) is itself a mount point. @internal */
export function isMountPoint(dir: string): boolean {
  try {
    return mountPointsUnder(dir).includes(resolved(dir));
  } catch {
    return false;
  }
}

/** The mount id of an open descriptor, from /proc/self/fdinfo; undefined when it cannot be read. @internal */
export function mountIdOf(fd: number): number | undefined {
  try {
    const match = /^mnt_id:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}
