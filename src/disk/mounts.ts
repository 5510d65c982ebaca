import { procFdInfoDir, procFdPath } from './proc.js';
import { builtin } from '../base/builtin.js';
const { closeSync, constants, openSync, readSync } = builtin('node:fs');

// A bind mount of a directory of the same file system has the same st_dev as its parent: only
// the mount it belongs to tells it apart. /proc/self/fdinfo/<fd> gives the mount id of an open
// descriptor, about the very directory it holds: a walk reads it for each directory it opens and
// compares it with its parent's, so a mount made at any time, before or during the walk, is seen
// where the walk meets it. (The mount table, /proc/self/mountinfo, is a snapshot by path: a mount
// made after it was read is not in it.)

/** fdinfo starts `pos:`, `flags:`, `mnt_id:`: the field is within the first 64 bytes. */
const info = Buffer.allocUnsafe(256);
const MNT_ID = Buffer.from('\nmnt_id:', 'latin1');
const TAB = 0x09;
const SPACE = 0x20;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * The mount id of an open descriptor (an O_PATH one too), from `/proc/self/fdinfo/<fd>`: one
 * open, one read and one close, into a buffer kept for it. Undefined where fdinfo has no
 * `mnt_id` (kernels before 3.15); throws the system error when fdinfo cannot be read (EMFILE...).
 * @internal
 */
export function mountIdOf(fd: number): number | undefined {
  const infoFd = openSync(`${procFdInfoDir()}/${fd}`, 'r');
  let length: number;
  try {
    length = readSync(infoFd, info, 0, info.length, 0);
  } finally {
    closeSync(infoFd);
  }
  const at = info.subarray(0, length).indexOf(MNT_ID);
  if (at < 0) return undefined;
  let i = at + MNT_ID.length;
  while (i < length && (info[i] === TAB || info[i] === SPACE)) i++;
  let id = 0;
  const start = i;
  for (; i < length && (info[i] as number) >= ZERO && (info[i] as number) <= NINE; i++) id = id * 10 + (info[i] as number) - ZERO;
  return i > start ? id : undefined;
}

const HELD_ENTRY = new RegExp(`^/proc/(?:self|${process.pid})/fd/(\\d+)/([^/]+)$`);

/**
 * The descriptor of the directory that holds `access`, when `access` names one entry of a
 * directory this process holds (`/proc/<pid>/fd/<fd>/<name>`): the kernel resolves `<name>` in
 * that very directory, so what is opened there is on its mount unless it is a mount point.
 */
function heldParentOf(access: string): number | undefined {
  const held = HELD_ENTRY.exec(access);
  if (!held || held[2] === '.' || held[2] === '..') return undefined;
  return Number(held[1]);
}

/** Linux's O_PATH: a descriptor that names a directory without reading it (works at mode 0000). */
const O_PATH_DIRECTORY = 0o10000000 | (constants.O_DIRECTORY ?? 0);

/**
 * The mount id of the directory that holds the directory open at `fd`: the one that holds
 * `access` when {@link heldParentOf} knows it, else `..` of `fd` itself, opened O_PATH. At the
 * root of a mount, `..` is in the mount it is mounted on: the ids differ exactly when the
 * directory at `fd` is a mount point.
 * @internal
 */
export function parentMountIdOf(fd: number, access: string): number | undefined {
  const held = heldParentOf(access);
  if (held !== undefined) return mountIdOf(held);
  const up = openSync(`${procFdPath(fd)}/..`, O_PATH_DIRECTORY);
  try {
    return mountIdOf(up);
  } finally {
    closeSync(up);
  }
}

/**
 * The mount id of what is at `file`, never through a link (O_PATH | O_NOFOLLOW): a file that
 * refuses its unlink with EBUSY may be a mount point (a bind mount of a file).
 * @internal
 */
export function mountIdAt(file: string): number | undefined {
  const fd = openSync(file, 0o10000000 | (constants.O_NOFOLLOW ?? 0));
  try {
    return mountIdOf(fd);
  } finally {
    closeSync(fd);
  }
}
