import { isLiveSignalName, liveSignalName } from '../base/layout.js';
import { logger } from '../base/log.js';
import { mayTouchDescriptors } from '../base/permission-model.js';
import { builtin } from '../base/builtin.js';
import { randomName } from '../base/random-name.js';
import { sha256Hex } from '../base/sha256.js';
import { systemErrorCode } from '../base/errors.js';
import { fs } from '../disk/fs.js';
import { isLocalDisk } from '../disk/local-disk.js';
import { O_NOFOLLOW } from '../disk/fs.js';
import { procReads } from '../disk/proc.js';
import { processSlot } from './registry.js';
const { constants, readFileSync } = builtin('node:fs');
const path = builtin('node:path');

const log = logger('live-signal');

// A thread's live signal: a FIFO at the top of the root, `live_<digest>`, that the thread holds open
// for reading while it lives. The kernel keeps it open while the thread runs, blocked or stopped,
// and closes it when the thread ends, however it ends (kill -9 included). An observer on the same
// kernel opens it for writing without blocking: the open succeeds while the reader is there, and
// fails with ENXIO once it is gone. So an observer that cannot ask /proc about the owner (another
// PID namespace, or no /proc of its own) tells a live owner from a dead one at once, without the
// owner's heartbeat: the owner needs no thread to beat while its event loop is blocked.
//
// The signal is made only where every observer can reach it: on Linux, on a local file system
// (another host sharing the root over NFS, SMB or sshfs sees a FIFO of its own kernel, with no
// reader), unless TEMPFILE_MANAGER_SHARED_ROOT says that other hosts share a local root (one this
// host exports). Elsewhere the owner keeps its heartbeat beating on a thread (beat-thread.ts).

/** What an owner of a live signal is: the fields of an owner token that name one thread. */
export interface LiveOwner {
  readonly host: string;
  readonly pid: number;
  readonly thread?: number;
  readonly start: string;
}

/** Where a live signal is made: a root, by its path and as system calls reach it. */
export interface LivePlace {
  /** The root's absolute path (the key, and the name removed at exit). */
  readonly root: string;
  /** The root as system calls reach it (its pinned descriptor's `/proc` path, or its path). */
  readonly base: string;
  readonly owner: LiveOwner;
}

/** A manager's hold of its thread's live signal on its root. */
export interface LiveHold {
  /** Whether the signal is held: if not, `why` says why not. */
  readonly held: boolean;
  readonly why?: string;
  /**
   * Gives the hold up: the last hold of a root closes the signal and removes its name, reached
   * through `base` (the root as system calls reach it now) when given. Idempotent.
   */
  release(base?: string): void;
}

interface HeldSignal {
  readonly dev: number;
  readonly ino: number;
  readonly shown: string;
  holders: number;
  /** Closes the FIFO's read end. */
  readonly close: () => void;
}

/** The 16 hex digits that name `owner`'s live signal. @internal */
export function liveDigest(owner: LiveOwner): string {
  return sha256Hex(`${owner.host}/${owner.pid}/${owner.thread ?? ''}/${owner.start}`).slice(0, 16);
}

/** Why no live signal can be made on `place`, or undefined when one can. */
function cannotSignal(place: LivePlace): string | undefined {
  if (/^(1|true|yes)$/i.test(process.env['TEMPFILE_MANAGER_SHARED_ROOT'] ?? '')) return 'TEMPFILE_MANAGER_SHARED_ROOT says that other hosts share the root';
  // A worker thread's pipe, torn down with the worker, raced the removal of its session under
  // vitest's threads pool (a session left, 2 runs in 12): a worker keeps the beat thread.
  if (!builtin('node:worker_threads').isMainThread) return 'a worker thread keeps the beat thread';
  if (otherRuntime()) return `${otherRuntime()} keeps the beat thread (its pipes are not Node's: a signal's read end is held by Node's libuv alone)`;
  if (!procReads()) return 'this system has no /proc (or TEMPFILE_MANAGER_NO_PROC is set), where the library cannot tell a local file system from a shared one';
  // Observers find the signal of an owner named by its kernel boot and thread (onThisKernel).
  if (place.owner.thread === undefined) return 'this process sees a /proc of another PID namespace: observers cannot name it by its thread';
  if (!isLocalDisk(place.base)) return 'the root is not on a local file system of Linux: other hosts may share it';
  return undefined;
}

function otherRuntime(): string | undefined {
  const versions = process.versions as { bun?: string; deno?: string };
  return versions.bun !== undefined ? 'Bun' : versions.deno !== undefined ? 'Deno' : undefined;
}

/**
 * Holds this thread's live signal on `place.root`, made on the first hold of the root and kept
 * until its last hold is released (or the thread ends). Never throws: a signal that cannot be
 * made is reported as not held, and the caller beats its heartbeat on a thread instead.
 */
export function holdLiveSignal(place: LivePlace): LiveHold {
  const why = cannotSignal(place);
  if (why !== undefined) return notHeld(why);
  const signals = processSlot('live-signals', () => new Map<string, HeldSignal>());
  const key = `${place.root}\0${liveDigest(place.owner)}`;
  let signal = signals.get(key);
  if (signal === undefined) {
    const made = makeSignal(place);
    if (typeof made === 'string') return notHeld(made);
    signal = made;
    signals.set(key, signal);
  }
  signal.holders += 1;
  const held = signal;
  let released = false;
  return {
    held: true,
    release(base) {
      if (released) return;
      released = true;
      if (--held.holders > 0) return;
      signals.delete(key);
      const at = base ?? path.dirname(held.shown);
      removeName({ ...held, shown: `${at}/${path.basename(held.shown)}` });
      held.close();
      // The signals of this process's worker threads that ended meanwhile (a terminated worker
      // runs no code of ours; its pipe closed with it): gone with the last manager here.
      removeDeadSignals(at);
    },
  };
}

function notHeld(why: string): LiveHold {
  return { held: false, why, release() {} };
}

let mkfifoMissing = false;

// Made under a pending name, opened for reading, then renamed into place: its name is never seen
// without its reader, so no observer takes a signal being made for a dead owner's.
function makeSignal(place: LivePlace): HeldSignal | string {
  const digest = liveDigest(place.owner);
  const pending = `${place.base}/${liveSignalName(digest, randomName().slice(0, 8))}`;
  const name = liveSignalName(digest);
  if (mkfifoMissing) return 'this system has no mkfifo command';
  try {
    // No `-m`: mkfifo would set it by a path open of its own; the mode is set below through our
    // descriptor (the root is 0700: nobody else reaches the FIFO meanwhile).
    builtin('node:child_process').execFileSync('mkfifo', ['--', pending], { stdio: 'ignore', timeout: 10_000, windowsHide: true });
  } catch (err) {
    // No such command (a minimal image): not tried again, each manager would pay a failed spawn.
    if (systemErrorCode(err) === 'ENOENT') mkfifoMissing = true;
    log('mkfifo in %s: %s', place.root, err);
    return `mkfifo failed (${systemErrorCode(err) ?? describe(err)})`;
  }
  let fd: number | undefined;
  try {
    fd = fs.openSync(pending, constants.O_RDONLY | constants.O_NONBLOCK | O_NOFOLLOW);
    const stat = fs.fstatSync(fd);
    if (!stat.isFIFO()) throw new Error('not the FIFO made');
    if (mayTouchDescriptors()) fs.fchmodSync(fd, 0o600);
    fs.renameSync(pending, `${place.base}/${name}`);
    const held = fd; // a bare descriptor of the main thread: the kernel closes it with the process
    return { dev: stat.dev, ino: stat.ino, shown: `${place.root}/${name}`, holders: 0, close: () => closeQuietly(held) };
  } catch (err) {
    if (fd !== undefined) closeQuietly(fd);
    unlinkQuietly(pending);
    log('live signal in %s: %s', place.root, err);
    return `the FIFO made for it could not be held (${systemErrorCode(err) ?? describe(err)})`;
  }
}

/** Removes the signal's name while it still names the FIFO this thread holds (never another's). */
function removeName(signal: { readonly dev: number; readonly ino: number; readonly shown: string }): void {
  try {
    const stat = fs.lstatSync(signal.shown);
    if (stat.dev === signal.dev && stat.ino === signal.ino) fs.unlinkSync(signal.shown);
  } catch {
    // gone already, or the root with it
  }
}

/**
 * What `owner`'s live signal in the root reached by `base` says: `alive` while its thread holds it,
 * `dead` once nobody does, undefined when there is none (an owner of another host or version, or
 * one that beats on a thread) or it cannot be read. The caller has checked that the owner runs on
 * this kernel ({@link onThisKernel}) and that the root is local ({@link probesReach}).
 */
export function probeLiveSignal(base: string, owner: LiveOwner): 'alive' | 'dead' | undefined {
  return probeName(`${base}/${liveSignalName(liveDigest(owner))}`);
}

function probeName(at: string): 'alive' | 'dead' | undefined {
  try {
    if (!fs.lstatSync(at).isFIFO()) return undefined;
  } catch {
    return undefined;
  }
  let fd: number;
  try {
    fd = fs.openSync(at, constants.O_WRONLY | constants.O_NONBLOCK | O_NOFOLLOW);
  } catch (err) {
    return systemErrorCode(err) === 'ENXIO' ? 'dead' : undefined;
  }
  closeQuietly(fd);
  return 'alive';
}

/**
 * Removes a live signal found at the top of the root that nobody holds (its owner died): called by
 * the sweep of sessions with each `live_` name it lists. Returns whether it was removed.
 */
export function removeDeadSignal(base: string, name: string): boolean {
  // Never probed through a network or FUSE mount (a signal another host's owner made on a root it
  // exports): an open for writing there may wait on the server for a reader that never comes.
  if (!isLiveSignalName(name) || !probesReach(base)) return false;
  const at = `${base}/${name}`;
  let before: { dev: number; ino: number };
  try {
    before = fs.lstatSync(at);
  } catch {
    return false;
  }
  if (probeName(at) !== 'dead') return false;
  removeName({ dev: before.dev, ino: before.ino, shown: at });
  return true;
}

/** Removes the live signal `name` whoever holds it: a thread of this process that ends with it. */
export function removeSignalOf(base: string, name: string): void {
  const at = `${base}/${name}`;
  try {
    const stat = fs.lstatSync(at);
    if (stat.isFIFO()) removeName({ dev: stat.dev, ino: stat.ino, shown: at });
  } catch {
    // none
  }
}

/** Removes every live signal nobody holds at the top of the root reached by `base`. */
function removeDeadSignals(base: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) if (isLiveSignalName(name)) removeDeadSignal(base, name);
}

/**
 * Whether an observer may probe live signals in the root reached by `base`: a local file system of
 * Linux (over NFS or sshfs a FIFO is the client kernel's own, and an open of one for writing there
 * may wait on the server). Asked at each probe, never cached: a descriptor's `/proc` path may name
 * another directory later.
 */
export function probesReach(base: string): boolean {
  return isLocalDisk(base);
}

let cachedBoot: string | null | undefined;

/** The first 8 hex digits of this kernel's boot id, whatever PID namespace this process runs in. */
function kernelBoot(): string | undefined {
  if (cachedBoot === undefined) {
    try {
      cachedBoot = procReads() ? readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim().replace(/-/g, '').slice(0, 8) : null;
    } catch {
      cachedBoot = null;
    }
  }
  return cachedBoot ?? undefined;
}

/**
 * Whether `owner` runs on this kernel, so that its live signal (a FIFO, whose reader only this
 * kernel knows) can speak for it: its start token names this kernel's boot, in any PID namespace.
 */
export function onThisKernel(owner: LiveOwner): boolean {
  const boot = kernelBoot();
  return owner.thread !== undefined && boot !== undefined && owner.start.startsWith(`${boot}.`);
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // closed either way
  }
}

function unlinkQuietly(at: string): void {
  try {
    fs.unlinkSync(at);
  } catch {
    // nothing left to remove
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
