import { systemErrorCode } from '../base/errors.js';
import { fs } from '../disk/fs.js';
import { otherThan, replacedBy, type FileIdentity } from '../disk/open-checked.js';
import { reportFailure } from './heartbeat-failures.js';
import { logger } from '../base/log.js';
import { mayTouchDescriptors } from '../base/permission-model.js';
import { HEARTBEAT_MS } from './liveness.js';
import { addBeat, type Beat } from './registry.js';
import { BEAT_OPEN, beatOffThread, beatThread } from './beat-thread.js';

const log = logger('heartbeat');

// The one heartbeat of the library, for sessions and leases alike: an owner refreshes the change
// time (ctime) of one inode of its own every HEARTBEAT_MS: a session its lock directory, a claim
// its held data file. The inode is opened without following a link and without blocking, checked
// to be what the owner made (a directory; a regular file with one link), and touched through that
// descriptor (futimes, which sets mtime and ctime): a symlink, a hard link or a FIFO planted at the
// name is never touched. An observer reads the ctime and watches it change on its own monotonic
// clock (liveness.ts); no clock is compared with another. Without /proc, the process's beat
// thread (beat-thread.ts) beats every target as well, so that a blocked event loop does not stop
// the heartbeat: an observer on this host then judges this process by it.

/** What an owner keeps alive, and what it does when it finds it gone. */
export interface HeartbeatTarget {
  /** The inode's path as system calls reach it (through a pinned directory where there is /proc). */
  readonly at: string;
  /** The same, for logs and leak checks. */
  readonly shown: string;
  /** A session's lock directory, or a lease's held file. */
  readonly kind: Beat['kind'];
  /** Called once when a beat finds the name gone (another process removed or took it): the beat has stopped. */
  readonly onGone: () => void;
  /**
   * Beat once at once: the stamp then comes from this process's clock, as every later one does
   * (a session's lock, made by mkdir). Without it, the creation or rename that made the name was
   * the first beat (a lease).
   */
  readonly beatAtStart?: boolean;
}

/** A running heartbeat. */
export interface Heartbeat {
  /** True once a beat found the name gone. */
  readonly gone: boolean;
  /** Stops the heartbeat. Idempotent. */
  stop(): void;
  /** The inode the owner made, when it knows it: beaten whatever its links (before, a file with one link). */
  identify(identity: FileIdentity): void;
  /**
   * While `on`, the owner itself is removing or moving the inode (a consume, a keep): a beat that
   * finds it gone then stops the heartbeat, as always, but reports no failure.
   */
  settling(on: boolean): void;
}

/** Starts refreshing `target` on the process's one heartbeat timer. */
export function startHeartbeat(target: HeartbeatTarget): Heartbeat {
  return new RunningHeartbeat(target);
}

/**
 * A class, not an object literal with a `gone` getter: V8 gives each such literal a map of its
 * own, made in the old generation, which keeps the literal's closures, and all they reach (a
 * claim's lease, names and entry), through every collection of the young generation until the next
 * full one. With the getter, 3.5 KB of each claim outlived its consume (bench/analyses/handoff.md).
 */
class RunningHeartbeat implements Heartbeat {
  #gone = false;
  #settling = false;
  // The inode of the first beat, checked at every later one (no system call more at the start).
  readonly #identity: { known?: FileIdentity } = {};
  readonly #target: HeartbeatTarget;
  readonly #stopOnTimer: () => void;
  readonly #stopOffThread: () => void;

  constructor(target: HeartbeatTarget) {
    this.#target = target;
    if (target.beatAtStart) refresh(target, this.#identity);
    this.#stopOnTimer = addBeat({ shown: target.shown, kind: target.kind, beat: () => this.#beat() }, HEARTBEAT_MS);
    this.#stopOffThread = beatOffThread(target.at, target.kind, () => this.#identity.known);
  }

  get gone(): boolean {
    return this.#gone;
  }

  stop(): void {
    this.#stopOnTimer();
    this.#stopOffThread();
  }

  identify(known: FileIdentity): void {
    if (this.#identity.known !== undefined) return;
    this.#identity.known = { dev: known.dev, ino: known.ino };
    beatThread().identify(this.#target.at);
  }

  settling(on: boolean): void {
    this.#settling = on;
  }

  #beat(): void {
    const target = this.#target;
    let outcome = refresh(target, this.#identity);
    // A replacement is reported once a second look confirms it: under Wine, loaded, an fstat of
    // the held file read another file's inode about once a run (its name's inode the same before
    // and after, the lease intact). A real swap stays for the second look; the first touched nothing.
    if (outcome.startsWith('replaced:')) outcome = refresh(target, this.#identity);
    if (outcome === 'beat') return;
    // A consume's unlink waits on the thread pool, and a timer may beat in between.
    if (!(this.#settling && outcome === 'gone')) reportFailure(target, outcome);
    if (outcome !== 'gone') return;
    this.#gone = true;
    this.stop();
    log('%s is gone: the heartbeat stops', target.shown);
    target.onGone();
  }
}

/** The heartbeat as an observer reads it from a stat: the change time. */
export function heartbeatOf(stat: { readonly ctimeMs: number }): number {
  return stat.ctimeMs;
}

/** Reads the heartbeat at `at` (lstat: never followed): its stamp, or that it is missing or unreadable. */
export function readHeartbeat(at: string): number | 'missing' | 'unreadable' {
  try {
    return heartbeatOf(fs.lstatSync(at));
  } catch (err) {
    return systemErrorCode(err) === 'ENOENT' ? 'missing' : 'unreadable';
  }
}

/**
 * Refreshes the owner's inode through a descriptor opened without following a link and without
 * blocking, when it is still the inode the heartbeat started on (and of the owner's kind). Other
 * names for it (a hard link the application made: a backup, a dedupe tool) change nothing: the
 * inode is the owner's, and beats on. Anything else is a failure, which the caller reports.
 */
function refresh(target: HeartbeatTarget, identity: { known?: FileIdentity }): 'beat' | 'gone' | string {
  const { at } = target;
  let fd: number | undefined;
  try {
    fd = fs.openSync(at, BEAT_OPEN);
    const stat = fs.fstatSync(fd);
    // Until the owner's inode is known, only a file with one link is taken for it: a hard link
    // planted at the name before the first beat is never touched through.
    const replaced = target.kind === 'session' ? (stat.isDirectory() ? undefined : 'not a directory') : identity.known ? otherThan(stat, identity.known) : replacedBy(stat, undefined);
    if (replaced !== undefined) return `replaced: ${replaced}`;
    const known = identity.known;
    if (known !== undefined && target.kind === 'session' && (stat.dev !== known.dev || stat.ino !== known.ino)) return 'replaced: another directory';
    if (identity.known === undefined) {
      identity.known = { dev: stat.dev, ino: stat.ino };
      beatThread().identify(at);
    }
    const now = new Date();
    // Node's permission model refuses futimes whatever it allows: the checked name is touched
    // instead, never following a link (permission-model.ts).
    if (mayTouchDescriptors()) fs.futimesSync(fd, now, now);
    else fs.lutimesSync(at, now, now);
    return 'beat';
  } catch (err) {
    const code = systemErrorCode(err);
    if (code === 'ENOENT') return 'gone';
    // A link planted at the name (O_NOFOLLOW), or a file where a lock's path goes on below it.
    if (code === 'ELOOP' || code === 'ENOTDIR') return 'replaced: a symbolic link or a file';
    return code ?? String(err);
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // nothing to do: the beat is over either way
  }
}
