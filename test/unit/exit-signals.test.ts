import { describe, expect, it } from 'vitest';
import { appHandles, EXIT_SIGNALS, signalExitListeners } from '../../src/owner/exit-signals.js';

// The signals themselves are sent to real processes in test/process/exit-hook-signals.test.ts.
describe('the signals the exit hook listens on', () => {
  it('are signal-exit\'s but SIGXFSZ, which Node ignores so that a write past ulimit -f fails with EFBIG', () => {
    expect(EXIT_SIGNALS).not.toContain('SIGXFSZ');
    expect(EXIT_SIGNALS).toEqual(expect.arrayContaining(['SIGINT', 'SIGTERM', 'SIGHUP']));
    if (process.platform !== 'win32') expect(EXIT_SIGNALS).toEqual(expect.arrayContaining(['SIGQUIT', 'SIGUSR2', 'SIGABRT']));
  });

  it('an app listener means the app handles the signal; the hook\'s own listener does not', () => {
    const ours = (): void => {};
    const app = (): void => {};
    // The set-up: nothing but signal-exit (if the test runner loaded it) listens on SIGUSR2.
    expect(process.listenerCount('SIGUSR2')).toBe(signalExitListeners('SIGUSR2'));
    process.on('SIGUSR2', ours);
    try {
      expect(appHandles('SIGUSR2', ours)).toBe(false);
      process.on('SIGUSR2', app);
      expect(appHandles('SIGUSR2', ours)).toBe(true);
    } finally {
      process.removeListener('SIGUSR2', ours);
      process.removeListener('SIGUSR2', app);
    }
  });
});
