import os from 'node:os';
import { signals as exitSignals } from 'signal-exit';

// signal-exit removes its listeners, and so gives each of its signals back its default action,
// before it runs the exit tasks: a second Ctrl-C, or a SIGTERM after a SIGINT, would then kill
// the process in the middle of a removal. A listener of our own on each of those signals keeps
// Node's handler in place while the tasks run; being synchronous, they are never interrupted, and
// a signal caught meanwhile is never dispatched: once the listener goes, Node drops it, and the
// process dies of the first signal when signal-exit raises it again. SIGBREAK (Ctrl-Break) is a
// signal only on Windows, where signal-exit does not handle it. SIGQUIT (Ctrl-\) is left alone:
// it stays the way to stop a hook that hangs (on a dead network mount, say) short of SIGKILL.
const UNHELD: ReadonlySet<string> = new Set(['SIGQUIT']);
const HELD: readonly NodeJS.Signals[] = [
  ...exitSignals.filter((signal) => !UNHELD.has(signal)),
  ...(process.platform === 'win32' ? (['SIGBREAK'] as const) : []),
];

/**
 * Keeps every signal that ends a process, but SIGQUIT and SIGKILL, from ending this one until the
 * returned function is called; a signal received meanwhile is dropped. Only for the synchronous
 * exit tasks.
 */
export function holdSignals(): () => void {
  const ignore = (): void => {};
  const held = HELD.filter((signal) => signal in os.constants.signals && listen(signal, ignore));
  return () => {
    for (const signal of held) process.removeListener(signal, ignore);
  };
}

function listen(signal: NodeJS.Signals, listener: () => void): boolean {
  try {
    process.on(signal, listener);
    return true;
  } catch {
    return false; // a signal this platform cannot catch
  }
}
