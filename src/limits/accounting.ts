import { QuotaExceededError } from '../base/errors.js';

/**
 * Counts a manager's live files and the bytes they hold. Bytes are reserved before they are
 * written, synchronously, so concurrent writes can never overshoot `maxLiveBytes` together.
 * @internal
 */
export class Accounting {
  liveFiles = 0;
  liveBytes = 0;
  readonly maxLiveBytes: number;
  /** Checks of bytes counted here that may have left the disk meanwhile (a tus store's uploads). */
  private readonly reconcilers = new Set<() => void>();

  constructor(maxLiveBytes: number) {
    this.maxLiveBytes = maxLiveBytes;
  }

  /**
   * Reserves `bytes`, or throws {@link QuotaExceededError} and reserves nothing. Before it refuses,
   * every reconciler runs, so that bytes no longer on disk never refuse a write.
   */
  reserve(bytes: number): void {
    if (this.liveBytes + bytes > this.maxLiveBytes) {
      this.reconcile();
      if (this.liveBytes + bytes > this.maxLiveBytes) throw new QuotaExceededError(this.maxLiveBytes);
    }
    this.liveBytes += bytes;
  }

  /**
   * Adds `reconcile`, run synchronously before a refusal and before `stats()` reads the count: it
   * releases what it counted that is no longer on disk. Returns its removal.
   */
  watch(reconcile: () => void): () => void {
    const entry = (): void => reconcile();
    this.reconcilers.add(entry);
    return () => void this.reconcilers.delete(entry);
  }

  /** Runs every reconciler; one that throws is left out of this round (the count stays as it was). */
  reconcile(): void {
    for (const reconcile of [...this.reconcilers]) {
      try {
        reconcile();
      } catch {
        // Counting too much for a while is the safe side of a quota.
      }
    }
  }

  release(bytes: number): void {
    this.liveBytes -= bytes;
  }
}

/**
 * The bytes one holder (a file, a spool, an upload in progress) counts against the quota. It
 * only grows while the holder takes bytes in, and gives everything back once, when the holder
 * goes: nobody can hand back bytes it did not take, so `liveBytes` never drops below what is held.
 * @internal
 */
export class Reservation {
  private held = 0;

  constructor(private readonly accounting: Accounting) {}

  /** The bytes counted now. */
  get bytes(): number {
    return this.held;
  }

  /** Counts `bytes` more (a whole, non-negative number), or throws {@link QuotaExceededError} and counts nothing. */
  take(bytes: number): void {
    if (!(bytes >= 0) || !Number.isSafeInteger(bytes)) throw new RangeError(`A reservation grows by whole bytes, not by ${bytes}`);
    this.accounting.reserve(bytes);
    this.held += bytes;
  }

  /** Hands every byte counted here to `other` in one step: the quota never sees them twice, nor free. */
  moveTo(other: Reservation): void {
    if (other.accounting !== this.accounting) throw new RangeError('A reservation moves within one manager');
    other.held += this.held;
    this.held = 0;
  }

  /** Gives `bytes` back (at most what it holds): bytes counted that never reached the disk. */
  giveBack(bytes: number): void {
    const given = Math.min(Math.max(0, bytes), this.held);
    this.accounting.release(given);
    this.held -= given;
  }

  /** Gives every byte back; the reservation may grow again from 0. */
  release(): void {
    this.accounting.release(this.held);
    this.held = 0;
  }
}
