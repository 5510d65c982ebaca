import { systemErrorCode } from '../base/errors.js';
import { setAsideName } from '../base/layout.js';
import { HOST_PLATFORM, type Platform } from '../base/platform.js';
import { builtin } from '../base/builtin.js';

// Another handle on a file (an antivirus scan, the indexer, the app's own stream) makes Windows
// refuse its unlink, rename or rmdir, sometimes for seconds; a file unlinked while a handle
// shares delete access stays listed (delete pending) until that handle closes, and its
// directory's rmdir fails with ENOTEMPTY. Elsewhere these codes mean something else (EBUSY a
// mount point, EPERM a permission), so the long wait and the move aside are for Windows alone.

/**
 * Whether holds by other handles are to be waited out and moved aside: Windows semantics, on
 * `platform` (this process's, read in platform.ts, unless a test names another).
 * @internal
 */
export function holdsHappen(platform: Platform = HOST_PLATFORM): boolean {
  return platform === 'win32';
}

const RETRIED = new Set(['EBUSY', 'EPERM', 'ENOTEMPTY']);

/** Whether a removal that failed with `code` is tried again (fs.rm's maxRetries codes). @internal */
export function isRetried(code: string | undefined): boolean {
  return RETRIED.has(code ?? '');
}

/**
 * Whether `err` (a system error, or a typed error of a removal with its `syscallCode`) is how a
 * hold by another handle shows on `platform`.
 * @internal
 */
export function isHold(err: unknown, platform: Platform = HOST_PLATFORM): boolean {
  if (!holdsHappen(platform)) return false;
  const syscallCode = typeof err === 'object' && err !== null && 'syscallCode' in err ? err.syscallCode : undefined;
  return isRetried(typeof syscallCode === 'string' ? syscallCode : systemErrorCode(err));
}

/** The waits before each retry elsewhere: the short backoff of fs.rm's maxRetries (60 ms in all). */
const SHORT = [10, 20, 30] as const;
/**
 * Windows, async: doubling from 10 ms to 500 ms, then 500 ms apiece, 4.63 s in all: holds by
 * scanners are reported to last about 4 s, longer than rimraf's retry-busy (10 retries, none over
 * 200 ms) or a few of fs.rm's `maxRetries` wait; past that, the move aside frees the name anyway.
 */
const WINDOWS_ASYNC = [10, 20, 40, 80, 160, 320, 500, 500, 500, 500, 500, 500, 500, 500] as const;
/** Windows, sync (`removeSync()`, `using`, the exit hook): 250 ms in all. */
const WINDOWS_SYNC = [10, 20, 40, 80, 100] as const;

/**
 * The waits, in ms, before each retry of a removal on `platform` that failed with a retried code:
 * their count is the number of retries.
 * @internal
 */
export function retryDelays(sync: boolean, platform: Platform = HOST_PLATFORM): readonly number[] {
  if (!holdsHappen(platform)) return SHORT;
  return sync ? WINDOWS_SYNC : WINDOWS_ASYNC;
}

/** A fresh set-aside name (`.removing_<32 hex>`), for {@link setAsideName}'s places. @internal */
export function newSetAsideName(): string {
  return setAsideName(builtin('node:crypto').randomBytes(16).toString('hex'));
}

/** Sleeps `ms` without the event loop: for the sync removals. @internal */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
