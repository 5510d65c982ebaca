import { HOST_PLATFORM } from '../base/platform.js';
import { builtin } from '../base/builtin.js';
const os = builtin('node:os');

// The signals that end a process and that the exit hook listens on: signal-exit's list, so that
// the two agree on what an ending is, less SIGXFSZ, which Node ignores so that a write past
// `ulimit -f` fails with EFBIG rather than killing the process (a listener would take that
// disposition away for good), and with SIGBREAK (Ctrl-Break) on Windows, where it is a signal.
const POSIX_ONLY = ['SIGALRM', 'SIGABRT', 'SIGVTALRM', 'SIGXCPU', 'SIGUSR2', 'SIGTRAP', 'SIGSYS', 'SIGQUIT', 'SIGIOT'] as const;
const LINUX_ONLY = ['SIGIO', 'SIGPOLL', 'SIGPWR', 'SIGSTKFLT'] as const;

/** The signals the exit hook listens on, on this platform. */
const EXIT_SIGNALS: readonly NodeJS.Signals[] = [
  'SIGHUP',
  'SIGINT',
  'SIGTERM',
  ...(HOST_PLATFORM === 'win32' ? (['SIGBREAK'] as const) : POSIX_ONLY),
  ...(HOST_PLATFORM === 'linux' ? LINUX_ONLY : []),
];

/** Ctrl-\ stays the way to stop a hook that hangs (on a dead network mount, say): never held. */
export const UNHELD_SIGNAL: NodeJS.Signals = 'SIGQUIT';

// signal-exit v4 keeps one emitter per process whose `count` is how many of its copies are loaded,
// each with one listener on every signal of its list; v3 keeps its own under a property of process.
const SIGNAL_EXIT_V4 = Symbol.for('signal-exit emitter');
const NOT_SIGNAL_EXIT_SIGNALS: ReadonlySet<string> = new Set(['SIGBREAK']);

function loadedCount(emitter: unknown): number {
  const count = (emitter as { count?: unknown } | undefined)?.count;
  return typeof count === 'number' ? count : 0;
}

/** How many listeners signal-exit (v3 and v4, every copy) has on `signal` now. */
export function signalExitListeners(signal: NodeJS.Signals): number {
  if (NOT_SIGNAL_EXIT_SIGNALS.has(signal)) return 0;
  const v4 = (globalThis as { [SIGNAL_EXIT_V4]?: unknown })[SIGNAL_EXIT_V4];
  const v3 = (process as { __signal_exit_emitter__?: unknown }).__signal_exit_emitter__;
  return loadedCount(v4) + loadedCount(v3);
}

/**
 * Whether the app handles `signal` itself: a listener that is neither `ours` nor signal-exit's.
 * Then the signal is the app's to act on, and the hook never swallows it (signal-exit's rule).
 */
export function appHandles(signal: NodeJS.Signals, ours: (signal: NodeJS.Signals) => void): boolean {
  const listeners = process.listeners(signal);
  const oursCount = listeners.filter((listener) => listener === ours).length;
  return listeners.length - oursCount - signalExitListeners(signal) > 0;
}

/** Adds `listener` to every exit signal this platform lets a process catch. */
export function listenToExitSignals(listener: (signal: NodeJS.Signals) => void): void {
  for (const signal of EXIT_SIGNALS) {
    if (!(signal in os.constants.signals)) continue;
    try {
      process.on(signal, listener);
    } catch {
      // a signal this platform cannot catch
    }
  }
}

/**
 * Removes `listener` from every exit signal with the same number as `signal` (SIGIOT is SIGABRT,
 * SIGPOLL is SIGIO): once no other listener is left, the signal has its default action again.
 */
export function stopListening(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): void {
  const number = os.constants.signals[signal as keyof typeof os.constants.signals];
  for (const alias of EXIT_SIGNALS) {
    if (alias === signal || os.constants.signals[alias as keyof typeof os.constants.signals] === number) process.removeListener(alias, listener);
  }
}

/**
 * Sends `signal` to this process again, to die of it. On Windows, sending a signal to oneself is
 * TerminateProcess (libuv's `uv_kill`: SIGINT, SIGTERM and SIGKILL end the process at once, with
 * code 1; SIGHUP and SIGBREAK cannot be sent): nothing runs after it. So where signal-exit listens
 * on `signal`, its listeners get the signal here, at once, and end the process themselves (with
 * SIGINT for SIGHUP) unless one of its handlers keeps it, as on POSIX; otherwise the process ends
 * as signal-exit ends it, by SIGINT. `platform` is this process's but in tests.
 */
export function raiseAgain(signal: NodeJS.Signals, platform = HOST_PLATFORM): void {
  if (platform !== 'win32') {
    process.kill(process.pid, signal);
    return;
  }
  if (signalExitListeners(signal) > 0) {
    process.emit(signal, signal);
    return;
  }
  process.kill(process.pid, 'SIGINT');
}
