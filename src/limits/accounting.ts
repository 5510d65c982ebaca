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

  constructor(maxLiveBytes: number) {
    this.maxLiveBytes = maxLiveBytes;
  }

  /** Reserves `bytes`, or throws {@link QuotaExceededError} and reserves nothing. */
  reserve(bytes: number): void {
    if (this.liveBytes + bytes > this.maxLiveBytes) throw new QuotaExceededError(this.maxLiveBytes);
    this.liveBytes += bytes;
  }

  release(bytes: number): void {
    this.liveBytes -= bytes;
  }
}
