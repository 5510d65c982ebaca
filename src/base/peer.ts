import { MissingPeerError, systemErrorCode } from './errors.js';

/**
 * Loads an optional peer package when it is first needed, so that a missing one is a
 * {@link MissingPeerError} naming it and its install command, not a raw ERR_MODULE_NOT_FOUND at
 * import time. `load` is the adapter's own `import('<peer>')`, kept literal so that each build
 * (ES module and CommonJS) resolves the peer the way its format does.
 *
 * @throws {@link MissingPeerError} when `peer` itself cannot be found (a package it needs that is
 * missing is rethrown as it is).
 */
export async function loadPeer<T>(peer: string, neededBy: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const code = systemErrorCode(error);
    const message = error instanceof Error ? error.message : '';
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && message.includes(`'${peer}'`)) {
      throw new MissingPeerError(peer, neededBy, error);
    }
    throw error;
  }
}
