// Every duration of the API is a whole number of milliseconds in a stated range: at most 2^31 - 1
// where it feeds a timer (setTimeout fires at once past that), and the error names the option,
// shows the bad value and the range.
import { describe, expect, it } from 'vitest';
import { TempFileManager, type TempFileManagerOptions } from '../../src/index.js';
import { InvalidOptionError } from '../../src/errors.js';
import { freshRoot, manager } from '../helpers/roots.js';

const MAX = 2 ** 31 - 1;
const base = { sweepOnStart: false, exitHook: false } as const;

function refusal(make: () => unknown): unknown {
  try {
    make();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('durations of the manager options', () => {
  it.each([
    ['staleMs', 2 ** 31, `from 2000 to ${MAX}`],
    ['staleMs', 1e300, `from 2000 to ${MAX}`],
    ['staleMs', 2000.5, `from 2000 to ${MAX}`],
    ['staleMs', 1999, `from 2000 to ${MAX}`],
    ['staleMs', Infinity, `from 2000 to ${MAX}`],
    ['graceMs', 2 ** 31, `from 0 to ${MAX}`],
    ['graceMs', 1e300, `from 0 to ${MAX}`],
    ['graceMs', 0.5, `from 0 to ${MAX}`],
    ['graceMs', -1, `from 0 to ${MAX}`],
    ['graceMs', Number.NaN, `from 0 to ${MAX}`],
    ['sweepIntervalMs', 2 ** 31, `0 (never) or from 1000 to ${MAX}`],
    ['sweepIntervalMs', 1000.5, `0 (never) or from 1000 to ${MAX}`],
    ['sweepIntervalMs', 999, `0 (never) or from 1000 to ${MAX}`],
    ['sweepIntervalMs', -0.5, `0 (never) or from 1000 to ${MAX}`],
  ])('refuses %s: %d with InvalidOptionError naming it, its value and the range', (option, value, range) => {
    const err = refusal(() => new TempFileManager({ ...base, root: freshRoot(), [option]: value }));
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option });
    expect((err as Error).message).toContain(`\`${option}\` must be a whole number of milliseconds ${range}, got ${value}.`);
  });

  it('refuses a duration that is not a number, saying what it got', () => {
    const err = refusal(() => new TempFileManager({ ...base, root: freshRoot(), graceMs: '60s' as never }));
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'graceMs' });
    expect((err as Error).message).toContain(`\`graceMs\` must be a whole number of milliseconds from 0 to ${MAX}, got "60s".`);
  });

  it.each([
    [{ staleMs: 2000 }],
    [{ staleMs: MAX }],
    [{ graceMs: 0 }],
    [{ graceMs: MAX }],
    [{ sweepIntervalMs: 0 }],
    [{ sweepIntervalMs: 1000 }],
    [{ sweepIntervalMs: MAX }],
    [{ staleMs: MAX, graceMs: MAX }],
  ])('takes %o', (options: TempFileManagerOptions) => {
    const mgr = manager({ sweepIntervalMs: 0, ...options });
    expect(mgr.closed).toBe(false);
  });
});

describe('durations of handoff()', () => {
  it.each([
    [2 ** 53, 'from 1 to 31622400000'],
    [366 * 24 * 3600 * 1000 + 1, 'from 1 to 31622400000'],
    [0.5, 'from 1 to 31622400000'],
    [0, 'from 1 to 31622400000'],
  ])('refuses ttlMs: %d with InvalidOptionError naming it, its value and the range', async (ttlMs, range) => {
    const file = manager().file();
    const err = await file.handoff({ ttlMs }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'ttlMs' });
    expect((err as Error).message).toContain(`\`ttlMs\` must be a whole number of milliseconds ${range}, got ${ttlMs}.`);
  });
});
