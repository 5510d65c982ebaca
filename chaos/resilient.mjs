// What a chaos process does when the attacker swaps the root for a moment (attacker.mjs): the
// manager sees it (RootChangedError, for good) or refuses to start on a symlink (UnsafeRootError);
// the process closes the old manager and makes a new one once the root is a directory again.
import { TempFileManager } from 'tempfile-manager';

const SWAP_CODES = new Set(['ERR_TEMPFILE_ROOT_CHANGED', 'ERR_TEMPFILE_UNSAFE_ROOT']);

/** True for the errors a swapped root gives. */
export function rootSwapped(err) {
  return SWAP_CODES.has(err?.code) || SWAP_CODES.has(err?.releaseError?.code);
}

/** A new manager; while the root is swapped, it waits and tries again (for at most 10 s). */
export async function openManager(options) {
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      return new TempFileManager(options);
    } catch (err) {
      if (!rootSwapped(err) || Date.now() > until) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Closes a manager that saw the swap (its own files go, through its descriptors); never throws. */
export function retire(mgr) {
  try {
    mgr.closeSync();
  } catch {
    // RootChangedError once its own files are gone: expected after a swap
  }
}
