import createDebug from 'debug';

/** A debug logger under `tempfile-manager:<area>`; enable with `DEBUG=tempfile-manager:*`. */
export function logger(area: string): createDebug.Debugger {
  return createDebug(`tempfile-manager:${area}`);
}
