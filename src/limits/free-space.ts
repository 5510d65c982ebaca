import { monotonicMs } from '../base/clock.js';
import { NoSpaceError, toFileSystemError } from '../base/errors.js';
import { fs } from '../disk/fs.js';

const MiB = 1024 * 1024;
/** During a write, the gap between two checks: half the headroom seen last, within these bounds. */
const MAX_CHECK_INTERVAL = 64 * MiB;
const MIN_CHECK_INTERVAL = 1 * MiB;
/** Without a floor to guard, the figure is only reported (`stats()`): refreshed at most this often. */
const UNGUARDED_REFRESH_MS = 1000;

/**
 * Free space on the root's file system, from `statfs`: with `minFreeBytes`, checked before each
 * write starts and again as it grows, spaced by the headroom seen last time (not per chunk);
 * without, read at most once a second, for `stats()`.
 * @internal
 */
export class FreeSpace {
  /** Bytes available to this user at the last check; undefined before the first. */
  lastFreeBytes: number | undefined;
  lastCheckedAt: Date | undefined;
  private lastCheckedAtMs = -Infinity;
  private readonly root: string;
  private readonly minFreeBytes: number;
  private readonly place: () => string;

  /** `place` names the root's file system for `statfs`: the manager's descriptor of its root or session. */
  constructor(root: string, minFreeBytes: number, place: () => string = () => root) {
    this.root = root;
    this.minFreeBytes = minFreeBytes;
    this.place = place;
  }

  /** True when writes must watch the floor as they grow. */
  get guarded(): boolean {
    return this.minFreeBytes > 0;
  }

  /**
   * Refreshes the figure and throws {@link NoSpaceError} when writing `incoming` more bytes would
   * leave less than `minFreeBytes`. Returns how many bytes may be written before the next check.
   */
  async check(incoming: number): Promise<number> {
    // One statfs per write is a system call per small upload; with no floor it only feeds stats().
    if (!this.guarded && monotonicMs() - this.lastCheckedAtMs < UNGUARDED_REFRESH_MS) return Infinity;
    let free: number;
    try {
      const stats = await fs.promises.statfs(this.place());
      free = stats.bavail * stats.bsize;
    } catch (err) {
      throw toFileSystemError('check the free space of', this.root, err);
    }
    return this.judge(free, incoming);
  }

  /** {@link check}, synchronously: for bytes written in one synchronous call (a spooled file going to disk). */
  checkSync(incoming: number): number {
    if (!this.guarded && monotonicMs() - this.lastCheckedAtMs < UNGUARDED_REFRESH_MS) return Infinity;
    let free: number;
    try {
      const stats = fs.statfsSync(this.place());
      free = stats.bavail * stats.bsize;
    } catch (err) {
      throw toFileSystemError('check the free space of', this.root, err);
    }
    return this.judge(free, incoming);
  }

  private judge(free: number, incoming: number): number {
    this.lastFreeBytes = free;
    this.lastCheckedAt = new Date();
    this.lastCheckedAtMs = monotonicMs();
    const headroom = free - this.minFreeBytes - incoming;
    if (this.guarded && headroom < 0) {
      throw new NoSpaceError(
        this.root,
        undefined,
        `Writing here would leave less than minFreeBytes (${this.minFreeBytes} bytes) free on the file system ` +
          `of ${this.root} (${free} bytes free): free some space, or lower \`minFreeBytes\`.`,
      );
    }
    return Math.min(MAX_CHECK_INTERVAL, Math.max(MIN_CHECK_INTERVAL, Math.floor(headroom / 2)));
  }
}
