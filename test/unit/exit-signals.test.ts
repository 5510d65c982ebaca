import os from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { appHandles, listenToExitSignals, raiseAgain, signalExitListeners } from '../../src/owner/exit-signals.js';

// The signals themselves are sent to real processes in test/process/exit-hook-signals.test.ts.
describe('the signals the exit hook listens on', () => {
  it('are signal-exit\'s but SIGXFSZ, which Node ignores so that a write past ulimit -f fails with EFBIG', () => {
    const hook = (): void => {};
    listenToExitSignals(hook);
    try {
      const heard = (signal: NodeJS.Signals) => process.listeners(signal).includes(hook);
      expect(heard('SIGXFSZ')).toBe(false);
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) expect(heard(signal), signal).toBe(true);
      if (process.platform !== 'win32') for (const signal of ['SIGQUIT', 'SIGUSR2', 'SIGABRT'] as const) expect(heard(signal), signal).toBe(true);
    } finally {
      for (const signal of Object.keys(os.constants.signals) as NodeJS.Signals[]) process.removeListener(signal, hook);
    }
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

// Windows' process.kill of oneself is TerminateProcess: whatever it was meant to reach never runs.
// The real thing runs under Wine in test/portable/exit-hook.test.mjs (scripts/portable.mjs --wine).
describe('raising the signal again on win32', () => {
  const emitterKey = Symbol.for('signal-exit emitter');
  const holder = globalThis as { [key: symbol]: unknown };
  afterEach(() => {
    vi.restoreAllMocks();
  });

  function killSpy(): ReturnType<typeof vi.fn> {
    const kill = vi.fn((_pid: number, _signal?: string | number): true => true);
    vi.spyOn(process, 'kill').mockImplementation(kill);
    return kill;
  }

  it("hands the signal to signal-exit's listeners at once, which end the process themselves", () => {
    const loaded = holder[emitterKey] !== undefined;
    if (!loaded) Object.defineProperty(holder, emitterKey, { value: { count: 1 }, configurable: true });
    const signalExit = vi.fn();
    process.on('SIGHUP', signalExit);
    try {
      const kill = killSpy();
      raiseAgain('SIGHUP', 'win32');
      expect(signalExit).toHaveBeenCalledWith('SIGHUP');
      expect(kill).not.toHaveBeenCalled();
    } finally {
      process.removeListener('SIGHUP', signalExit);
      if (!loaded) delete holder[emitterKey];
    }
  });

  it('ends the process by SIGINT where signal-exit does not listen (SIGBREAK is not in its list)', () => {
    const kill = killSpy();
    raiseAgain('SIGBREAK', 'win32');
    expect(kill).toHaveBeenCalledWith(process.pid, 'SIGINT');
  });
});
