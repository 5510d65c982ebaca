import type { FileIdentity } from '../disk/open-checked.js';
import type { RootContext } from '../root/root.js';
import { isGone, systemErrorCode } from '../base/errors.js';
import { fs } from '../disk/fs.js';
import { judgeHeartbeat, judgeHeartbeatHere, ownerState, type Heartbeat, type OwnerState } from '../owner/liveness.js';
import { readHeartbeat, startHeartbeat, type Heartbeat as RunningHeartbeat } from '../owner/heartbeat.js';
import { atExit } from '../owner/registry.js';
import { logger } from '../base/log.js';
import { randomName } from '../base/random-name.js';
import { processIdentity, type ProcessIdentity } from '../owner/process-identity.js';
import { formatOwnerToken, holderOf, isHeldName, TAKEN_FOR_REMOVAL, type OwnerToken } from '../base/layout.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

const log = logger('lease');

// A lease is the data file under a name of its holder's own (`heldName` in layout.ts). Taking
// it is one rename of the data file from the name it has now to ours: of several claimers renaming
// the same name, exactly one succeeds. The holder's heartbeat is that file's ctime, which the
// rename sets and which the heartbeat (owner/heartbeat.ts) refreshes: it moves with the file, so
// a claimer that takes the file over takes the heartbeat with it, and a stalled holder's next beat
// finds its name gone (see docs/handoff.md).

/** Where and how leases are taken. @internal */
export type LeaseContext = Pick<RootContext, 'staleMs' | 'graceMs' | 'hostId' | 'holdLive'> & Partial<Pick<RootContext, 'root' | 'rootBase'>>;

/** This thread's identity on the last host a token was made for: the same for every claim. */
let owner: ProcessIdentity | undefined;

/** A fresh owner token for one claim: this host, pid and start, now, and 64 random bits. */
export function newOwnerToken(hostId: string): string {
  if (owner?.host !== hostId) owner = processIdentity(hostId);
  const { host, pid, thread, start } = owner;
  const created = Date.now();
  const random = randomName().slice(0, 16);
  return formatOwnerToken(thread === undefined ? { host, pid, start, created, random } : { host, pid, thread, start, created, random });
}

/** Where a lease's holders' live signals are probed: the root as system calls reach it. */
function liveBaseOf(lease: LeaseContext): string | undefined {
  try {
    return lease.rootBase?.() ?? lease.root;
  } catch {
    return lease.root; // the root's descriptor is gone (a closed manager): its path, checked by the probe
  }
}

/**
 * Whether the holder of a lease is alive: the one place a lease decides it, by the rule of
 * `judgeOwner` (liveness.ts). A holder on this machine is judged by its thread in /proc: a dead
 * holder loses the lease at once, a live one whose event loop is blocked keeps it. Without /proc, a
 * holder of this host whose pid exists is judged by its heartbeat against this host's clock
 * (`judgeHeartbeatHere`): the pid may be another process's now. Any other
 * holder is judged by its heartbeat, the held file's ctime, watched over this process's own
 * monotonic clock: dead once seen unchanged for `staleMs`, never by comparing the ctime with our
 * clock. A heartbeat that cannot be read, or was not watched long enough yet, counts as alive.
 */
export function holderAlive(lease: LeaseContext, holder: OwnerToken, heartbeat: Heartbeat, seen?: HolderStates): boolean {
  const key = `${holder.host}/${holder.pid}/${holder.thread ?? ''}/${holder.start}`;
  let state = seen?.get(key);
  if (state === undefined) {
    state = ownerState(holder, lease.hostId, liveBaseOf(lease));
    seen?.set(key, state);
  }
  const rules = { staleMs: lease.staleMs, graceMs: 0, hostId: lease.hostId };
  if (state === 'pid-in-use') return judgeHeartbeatHere(heartbeat, rules) !== 'dead';
  if (state !== 'unknown') return state === 'alive';
  return judgeHeartbeat(heartbeat, rules) !== 'dead';
}

/**
 * What the kernel said of the holders met in one scan, by process: many entries may name the same
 * crashed worker. A process judged dead stays dead; one judged alive is kept for the scan.
 */
export type HolderStates = Map<string, OwnerState>;

/**
 * Takes an entry's data file away from claimers before the entry is removed, as a claim takes
 * it: one rename, from the name it was seen under to {@link TAKEN_FOR_REMOVAL}. Of a sweeper and
 * claimers renaming the same name, exactly one succeeds. `entry` is the entry as the scan that
 * judged it holds it (its descriptor's `/proc` path): the rename lands in the directory judged.
 * True when taken; false when the name was gone (someone took the file meanwhile): then nothing
 * was changed.
 */
export async function takeForRemoval(entry: string, current: string): Promise<boolean> {
  try {
    await fs.promises.rename(`${entry}/${current}`, `${entry}/${TAKEN_FOR_REMOVAL}`);
    return true;
  } catch (err) {
    if (isGone(systemErrorCode(err))) return false;
    throw err;
  }
}

/**
 * What one attempt to take a lease found: the data file taken from its free name, or taken over
 * from a dead holder; a live holder has it; it moved under the look (given back, renamed by
 * another claimer: look again); or there is none.
 */
export type LeaseAttempt = 'taken' | 'taken-over' | 'live' | 'moved' | 'gone';

/**
 * One attempt to take the lease on the data file in the directory reached at `at` (`shown` names
 * it, for the heartbeat's key): renamed from its free name `free` to `mine`, else, from a holder's
 * name (`held_<owner><suffix>`) whose holder is dead, taken over by one more rename. Of several
 * takers renaming one name, exactly one wins; a live holder's name is never touched. The one step
 * of the shared disk's claims and of the tus store's locks. A failure other than a name being gone
 * is thrown as it came, for the caller to type.
 * @internal
 */
export function tryTakeLease(lease: LeaseContext, at: string, shown: string, free: string, mine: string, suffix: string): LeaseAttempt {
  if (renamedSync(`${at}/${free}`, `${at}/${mine}`)) return 'taken';
  let names: string[];
  try {
    names = fs.readdirSync(at);
  } catch (err) {
    if (isGone(systemErrorCode(err))) return 'gone';
    throw err;
  }
  // Not seen may also be a listing taken while the file was renamed (sshfs lists, then stats each name).
  const current = names.includes(free) ? free : names.find((name) => isHeldName(name, suffix));
  if (current === undefined) return 'gone';
  if (current === free) return 'moved'; // given back since the rename above
  const stamp = readHeartbeat(`${at}/${current}`);
  if (stamp === 'missing') return 'moved';
  if (holderAlive(lease, holderOf(current)!, { key: path.join(shown, current), stamp })) return 'live';
  log('taking over %s from a dead holder', shown);
  return renamedSync(`${at}/${current}`, `${at}/${mine}`) ? 'taken-over' : 'moved';
}

function renamedSync(from: string, to: string): boolean {
  try {
    fs.renameSync(from, to);
    return true;
  } catch (err) {
    if (isGone(systemErrorCode(err))) return false;
    throw err;
  }
}

/** When a claimer turned away by a live holder may try again: a heartbeat needs `staleMs` of watching. */
export function retryAfterMs(lease: LeaseContext): number {
  return Math.max(1000, lease.staleMs);
}

/** A held lease: its heartbeat, and the give-back of its file if the process exits holding it. */
export interface Lease {
  /** True once a heartbeat found the held name gone: another claimer took the entry over. */
  readonly lost: boolean;
  /**
   * Gives the file back under its data name, for the next taker, then drops the lease. A failed
   * rename is thrown as it came (ENOENT: the held name is gone), and the lease is still held.
   */
  giveBack(): void;
  /** Stops the heartbeat and the give-back at exit. Idempotent. */
  drop(): void;
  /** Tells the heartbeat which inode the holder took (checked by the claim): it beats that one, whatever its links. */
  identify(identity: FileIdentity): void;
  /** While `on`, the holder itself removes or moves the held file: its heartbeat reports no loss. */
  settling(on: boolean): void;
}

/** The held file and the name to give it back under, both through the pinned entry directory. */
export interface HeldFile {
  readonly held: string;
  readonly data: string;
  /** The held file's logical path, for logs. */
  readonly shown: string;
}

/**
 * Starts the lease on a file just renamed to its held name: the heartbeat of owner/heartbeat.ts
 * on the held file (the rename itself was the first beat), and, if the process exits still
 * holding it (normally, or by a signal the exit hook catches), the file goes back to its data name
 * for the next taker at once. A process killed outright leaves the held name; its holder is then
 * judged dead. Once the file was taken over, the held name is gone and the next beat says so. The
 * one hold and give-back of the shared disk's claims and of the tus store's locks.
 * @internal
 */
export function startLease(file: HeldFile): Lease {
  return new HeldLease(file);
}

/** A class, not an object literal with a `lost` getter: see owner/heartbeat.ts's RunningHeartbeat. */
class HeldLease implements Lease {
  readonly #file: HeldFile;
  readonly #giveBackAtExit: () => void;
  readonly #heartbeat: RunningHeartbeat;

  constructor(file: HeldFile) {
    this.#file = file;
    this.#giveBackAtExit = atExit(() => {
      try {
        this.#rename();
      } catch {
        // taken over, or the disk is gone: the next claimer judges the holder dead either way
      }
    });
    this.#heartbeat = startHeartbeat({
      at: file.held,
      shown: file.shown,
      kind: 'lease',
      onGone: () => {
        log('lease of %s lost: taken over', file.shown);
        this.#giveBackAtExit();
      },
    });
  }

  get lost(): boolean {
    return this.#heartbeat.gone;
  }

  giveBack(): void {
    this.#rename();
    this.drop();
  }

  drop(): void {
    this.#heartbeat.stop();
    this.#giveBackAtExit();
  }

  identify(identity: FileIdentity): void {
    this.#heartbeat.identify(identity);
  }

  settling(on: boolean): void {
    this.#heartbeat.settling(on);
  }

  #rename(): void {
    fs.renameSync(this.#file.held, this.#file.data);
  }
}
