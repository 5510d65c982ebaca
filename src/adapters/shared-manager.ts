import { detached } from '../base/detached.js';
import { TempFileManager } from '../manager/manager.js';

let shared: TempFileManager | undefined;

/** One manager for the routes given none, made on first use, with the default root. @internal */
export function sharedManager(): TempFileManager {
  // Made outside the request that first needs it: its timers (heartbeat, background sweep) must
  // not run in, nor keep alive, that request's async context.
  shared ??= detached(() => new TempFileManager());
  return shared;
}
