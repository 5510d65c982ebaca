import { isTempFileError, toFileSystemError } from '../base/errors.js';
import type { StoreSweepResult } from '../base/stores.js';
import type { StoreBackend } from '../handoff/store.js';

/**
 * Sweeps each store through its own client, at once: what each removed, or why it could not.
 * One store that fails (unreachable, denied) never stops the others, and never throws.
 */
export async function sweepStores(stores: readonly StoreBackend[], staleMs: number): Promise<StoreSweepResult[]> {
  return Promise.all(
    stores.map(async (store): Promise<StoreSweepResult> => {
      try {
        return { location: store.location, report: await store.sweep({ staleMs }) };
      } catch (error) {
        return { location: store.location, error: isTempFileError(error) ? error : toFileSystemError('sweep the store', store.location.bucket, error) };
      }
    }),
  );
}
