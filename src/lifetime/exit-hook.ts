import { onExit } from 'signal-exit';
import { logger } from '../log.js';
import { removeOtherThreadsSessionsSync } from './threads.js';

const log = logger('exit-hook');

/** Something the exit hook closes: a manager's session. */
export interface ExitCloser {
  /** Removes the session synchronously; must not throw. */
  closeOnExit(): void;
}

interface Registry {
  readonly closers: Set<ExitCloser>;
  installed: boolean;
}

// One registry per process, shared by every copy of the library (the ESM and the CJS build, or
// two versions in node_modules): each copy finds it under the same global symbol.
const REGISTRY_KEY = Symbol.for('tempfile-manager.exit-registry');

function registry(): Registry {
  const holder = globalThis as { [REGISTRY_KEY]?: Registry };
  if (!holder[REGISTRY_KEY]) {
    Object.defineProperty(holder, REGISTRY_KEY, {
      value: { closers: new Set<ExitCloser>(), installed: false },
      enumerable: false,
      writable: false,
      configurable: false,
    });
  }
  return holder[REGISTRY_KEY] as Registry;
}

/**
 * Registers a closer with the process-wide exit hook (on normal exit, `process.exit()`, SIGINT,
 * SIGTERM, SIGHUP, an uncaught exception or an unhandled rejection). The hook removes sessions
 * and then lets the process end exactly as it would have: it never calls `process.exit` and
 * never swallows a signal that the app handles itself (signal-exit's rule).
 */
export function registerForExit(closer: ExitCloser): void {
  installExitHook();
  registry().closers.add(closer);
}

/**
 * Installs the process-wide hook without a closer: in the main thread, it also removes the
 * sessions of worker threads that the end of the process cuts short.
 */
export function installExitHook(): void {
  const shared = registry();
  if (!shared.installed) {
    shared.installed = true;
    onExit(runExitHook);
  }
}

/** Removes a closer, e.g. after `close()`. */
export function unregisterForExit(closer: ExitCloser): void {
  registry().closers.delete(closer);
}

/** How many closers are registered (tests, leak checks). @internal */
export function registeredForExit(): number {
  return registry().closers.size;
}

function runExitHook(code: number | null | undefined, signal: NodeJS.Signals | null): void {
  const { closers } = registry();
  log('exit (code %s, signal %s): closing %d sessions', code, signal, closers.size);
  for (const closer of [...closers]) {
    try {
      closer.closeOnExit();
    } catch (err) {
      log('closing a session at exit failed: %O', err);
    }
  }
  closers.clear();
  removeOtherThreadsSessionsSync();
  if (signal) dieAtOnce(code, signal);
}

interface LegacySignalExit {
  emit(event: 'exit', code: number | null | undefined, signal: NodeJS.Signals): boolean;
}

/**
 * signal-exit calls us only when nobody but signal-exit handlers listens for the signal, and
 * then raises it again. But proper-lockfile loads signal-exit 3, whose listener would catch the
 * raised signal once more and raise it a third time, a tick later: in between, the app's code
 * runs on after its sessions are gone. So we run signal-exit 3's exit handlers now (proper-
 * lockfile drops its locks) and remove the remaining listeners, all of them signal-exit's: the
 * raised signal then ends the process at once, as it would have without us.
 */
function dieAtOnce(code: number | null | undefined, signal: NodeJS.Signals): void {
  const legacy = (process as { __signal_exit_emitter__?: LegacySignalExit }).__signal_exit_emitter__;
  try {
    legacy?.emit('exit', code, signal);
  } catch (err) {
    log('signal-exit 3 handlers failed: %O', err);
  }
  process.removeAllListeners(signal);
}
