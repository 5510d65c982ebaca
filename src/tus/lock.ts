import { monotonicMs } from '../base/clock.js';
import { isGone, systemErrorCode } from '../base/errors.js';
import { dataName, heldName } from '../base/layout.js';
import { newOwnerToken, startLease, tryTakeLease, type Lease, type LeaseContext } from '../handoff/lease.js';
import { pinUpload, uploadDir, type PinnedUpload, type TusPlaces } from './places.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

/** How long a waiter sleeps between two looks at a held upload. */
const POLL_MS = 25;

/** What the locker needs: the places, the lease rules, and how to say "timed out". @internal */
export interface UploadLockContext {
  readonly places: () => Promise<TusPlaces>;
  readonly lease: LeaseContext;
  readonly timeoutMs: number;
  /** The error the tus server answers a lock not taken in time with (its `ERR_LOCK_TIMEOUT`). */
  readonly timedOut: () => unknown;
  /**
   * A lock taken while upload `id` did not exist yet (a POST making it) is given back: `failed`
   * when its request failed before it was answered (its signal aborted).
   */
  readonly creationEnded: (id: string, failed: boolean) => Promise<void> | void;
}

type Release = () => Promise<void> | void;

// The lock of an upload is a handoff's lease (handoff/lease.ts) on its data file, under a name of
// the request's own: taking it is one rename of `data` to `held_<owner>`, which exactly one of
// several processes wins; a holder judged dead (its process gone, or its heartbeat stopped on
// another host) is taken over by one rename of its name to ours; giving it back, by the request
// or at the exit of a process that still holds it, renames it to `data`. So the lock lives on the
// shared disk with the bytes, and dies with its holder.

/** The requests of this process that hold an upload now, with the callback that asks each to stop. */
const holdersHere = new Map<string, Release>();

/** A lock on one upload, held across processes sharing the root. @internal */
export class UploadLock {
  private held: { readonly dir: PinnedUpload; readonly lease: Lease } | undefined;
  private holdsNothing = false;
  private signal: AbortSignal | undefined;

  constructor(
    private readonly context: UploadLockContext,
    private readonly id: string,
  ) {}

  /** Takes the lock, waiting for a live holder; a holder in this process is asked to let go. */
  async lock(signal: AbortSignal, requestRelease: Release): Promise<void> {
    this.signal = signal;
    const places = await this.context.places();
    const named = uploadDir(places, this.id);
    // Held open while the lock is: the heartbeat and the give-back reach the file through it.
    const dir = named && (await pinUpload(named));
    if (!dir) return this.holdNothing();
    try {
      if (await this.take(dir, signal, requestRelease)) return;
    } catch (err) {
      await dir.close();
      throw err;
    }
    await dir.close();
    this.holdNothing();
  }

  /** Takes the lock of the pinned upload, waiting for a live holder; false when there is no upload to hold. */
  private async take(dir: PinnedUpload, signal: AbortSignal, requestRelease: Release): Promise<boolean> {
    const name = heldName(newOwnerToken(this.context.lease.hostId), '');
    const deadline = monotonicMs() + this.context.timeoutMs;
    let askedHere = false;
    for (;;) {
      const outcome = this.tryTake(dir, name);
      if (outcome === 'taken') {
        this.hold(dir, name, requestRelease);
        return true;
      }
      if (outcome === 'nothing') return false;
      if (!askedHere) {
        askedHere = true;
        await holdersHere.get(this.key(dir))?.();
      }
      if (signal.aborted || monotonicMs() >= deadline) throw this.context.timedOut();
      await sleep(POLL_MS, signal);
    }
  }

  /** Gives the lock back: the data file gets its free name again. */
  async unlock(): Promise<void> {
    const held = this.held;
    this.held = undefined;
    // Nothing to hold when the lock was taken: a POST making the upload, or a request for none.
    if (this.holdsNothing) return this.context.creationEnded(this.id, this.signal?.aborted ?? false);
    if (held === undefined) return;
    holdersHere.delete(this.key(held.dir));
    try {
      held.lease.giveBack();
    } catch (err) {
      // Gone: the upload finished (its file moved to the application), was removed, or the lock
      // was taken over by a process that judged this one dead.
      if (!isGone(systemErrorCode(err))) throw err;
    } finally {
      held.lease.drop();
      await held.dir.close();
    }
  }

  private key(dir: PinnedUpload): string {
    return dir.named;
  }

  private holdNothing(): void {
    this.holdsNothing = true;
  }

  private hold(dir: PinnedUpload, name: string, requestRelease: Release): void {
    this.context.lease.holdLive?.();
    const lease = startLease({ held: `${dir.at}/${name}`, data: `${dir.at}/${dataName('')}`, shown: path.join(dir.shown, name) });
    this.held = { dir, lease };
    holdersHere.set(this.key(dir), requestRelease);
  }

  /** One attempt: take the free data file, or a dead holder's (`tryTakeLease`, as a claim does); 'nothing' when there is no upload to hold. */
  private tryTake(dir: PinnedUpload, name: string): 'taken' | 'held' | 'nothing' {
    const attempt = tryTakeLease(this.context.lease, dir.at, dir.shown, dataName(''), name, '');
    if (attempt === 'gone') return 'nothing';
    return attempt === 'taken' || attempt === 'taken-over' ? 'taken' : 'held';
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
