import { describe, expect, it } from 'vitest';
import { holdSignals } from '../../src/owner/held-signals.js';

const WATCHED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR2', 'SIGQUIT', 'SIGBREAK'] as const;

function listenerCounts(): Record<(typeof WATCHED)[number], number> {
  return Object.fromEntries(WATCHED.map((signal) => [signal, process.listenerCount(signal)])) as Record<(typeof WATCHED)[number], number>;
}

// The second signal itself is sent to real processes in test/process/exit-hook-signals.test.ts.
describe('the signals held while the exit tasks run', () => {
  it('are caught while held, all but SIGQUIT, and released to the listeners found', () => {
    const before = listenerCounts();
    const release = holdSignals();
    const during = listenerCounts();
    release();
    expect(during).toEqual({
      ...before,
      SIGINT: before.SIGINT + 1,
      SIGTERM: before.SIGTERM + 1,
      SIGHUP: before.SIGHUP + 1,
      SIGUSR2: before.SIGUSR2 + 1,
      // Ctrl-\ still stops a hook that hangs; SIGBREAK is a signal on Windows only.
      SIGBREAK: before.SIGBREAK + (process.platform === 'win32' ? 1 : 0),
    });
    expect(listenerCounts()).toEqual(before);
  });

  it('leave an app listener of its own in place', () => {
    const appListener = (): void => {};
    process.on('SIGTERM', appListener);
    try {
      holdSignals()();
      expect(process.listeners('SIGTERM')).toContain(appListener);
    } finally {
      process.removeListener('SIGTERM', appListener);
    }
  });
});
