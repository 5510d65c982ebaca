// The one set of option checks: what each takes at its edges, what it refuses, and the message
// every refusal has (`<where>: \`<name>\` must be <accepted>, got <value>.`, an InvalidOptionError
// naming the option). And ownOptions(), the one way an option is read.
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/base/errors.js';
import {
  ownOptions,
  validateAbortSignal,
  validateBoolean,
  validateBytes,
  validateCallback,
  validateDuration,
  validateFunction,
  validateInteger,
  validateOneOf,
} from '../../src/base/validators.js';

function refusal(check: () => unknown): InvalidOptionError {
  try {
    check();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect((err as InvalidOptionError).code).toBe('ERR_TEMPFILE_INVALID_OPTION');
    return err as InvalidOptionError;
  }
  throw new Error('it was taken');
}

describe('numbers', () => {
  it('validateBytes takes its bound, and Infinity only when asked; never NaN', () => {
    expect(validateBytes(0, 'n')).toBe(0);
    expect(validateBytes(10, 'n', { min: 10 })).toBe(10);
    expect(validateBytes(2.5, 'n')).toBe(2.5);
    expect(validateBytes(Infinity, 'n', { infinity: true })).toBe(Infinity);
    for (const bad of [Number.NaN, -1, Infinity, -Infinity, '1', null, 1n]) {
      expect(refusal(() => validateBytes(bad, 'n')).option).toBe('n');
    }
    expect(refusal(() => validateBytes(9, 'n', { min: 10 })).option).toBe('n');
    expect(refusal(() => validateBytes(Infinity, 'n')).message).toBe('`n` must be a number of bytes of at least 0, got Infinity.');
    expect(refusal(() => validateBytes(-Infinity, 'n', { infinity: true })).option).toBe('n');
  });

  it('validateInteger takes safe integers only, Infinity when asked', () => {
    expect(validateInteger(Number.MAX_SAFE_INTEGER, 'n', { min: 0 })).toBe(Number.MAX_SAFE_INTEGER);
    expect(validateInteger(Infinity, 'n', { min: 0, infinity: true })).toBe(Infinity);
    for (const bad of [1.5, 2 ** 53, Number.NaN, -1, Infinity, '3']) expect(refusal(() => validateInteger(bad, 'n', { min: 0 })).option).toBe('n');
    expect(refusal(() => validateInteger(0, 'highWaterMark', { where: 'createReadStream()', min: 1, unit: 'bytes' })).message).toBe(
      'createReadStream(): `highWaterMark` must be a whole number of bytes of at least 1, got 0.',
    );
  });

  it('validateBytes: one message for every byte size', () => {
    expect(refusal(() => validateBytes(-1, 'maxBytes', { infinity: true })).message).toBe('`maxBytes` must be a number of bytes of at least 0 (or Infinity, no limit), got -1.');
    expect(refusal(() => validateBytes(Infinity, 'minFreeBytes')).message).toBe('`minFreeBytes` must be a number of bytes of at least 0, got Infinity.');
  });

  it('validateDuration: whole milliseconds within the range, or its off value', () => {
    const range = { min: 1000, max: 2 ** 31 - 1, off: { value: 0, meaning: 'never' } };
    expect(validateDuration(0, 'everyMs', range)).toBe(0);
    expect(validateDuration(2 ** 31 - 1, 'everyMs', range)).toBe(2 ** 31 - 1);
    for (const bad of [1, 999, 1000.5, 2 ** 31, Number.NaN, '1000']) expect(refusal(() => validateDuration(bad, 'everyMs', range)).option).toBe('everyMs');
    expect(refusal(() => validateDuration(-0.5, 'ttlMs', { min: 1, max: 10 }, { where: 'handoff()' })).message).toBe(
      'handoff(): `ttlMs` must be a whole number of milliseconds from 1 to 10, got -0.5.',
    );
  });
});

describe('other kinds', () => {
  it('booleans, functions, signals and one-of refuse everything else and show it', () => {
    expect(validateBoolean(false, 'b')).toBe(false);
    expect(refusal(() => validateBoolean('yes', 'dryRun', { where: 'sweep()' })).message).toBe('sweep(): `dryRun` must be true or false, got "yes".');
    const fn = () => {};
    expect(validateFunction(fn, 'f', 'taking nothing')).toBe(fn);
    expect(refusal(() => validateFunction(1, 'onProgress', 'taking the bytes written so far')).message).toBe('`onProgress` must be a function taking the bytes written so far, got 1.');
    const signal = new AbortController().signal;
    expect(validateAbortSignal(signal, 'signal')).toBe(signal);
    expect(refusal(() => validateAbortSignal({ aborted: false }, 'signal')).message).toContain('must be an AbortSignal');
    expect(validateOneOf('next', 'refusals', ['answer', 'next'], "'answer' or 'next'")).toBe('next');
    expect(refusal(() => validateOneOf('never', 'refusals', ['answer', 'next'], "'answer' or 'next'")).message).toBe("`refusals` must be 'answer' or 'next', got \"never\".");
  });

  it('validateCallback names the call and shows an argument with its type', () => {
    const err = refusal(() => validateCallback('run', 'withScope()', '`async (scope) => {}`'));
    expect(err.option).toBe('fn');
    expect(err.message).toBe('withScope() takes a function as its callback, such as `async (scope) => {}`; got a string ("run").');
  });
});

describe('ownOptions()', () => {
  it('takes own enumerable properties only, on an object that inherits nothing, each read once', () => {
    const proto = Object.prototype as Record<string, unknown>;
    let reads = 0;
    const given = Object.defineProperty({ a: 1 }, 'counted', { enumerable: true, get: () => ++reads });
    Object.defineProperty(given, 'hidden', { value: 2, enumerable: false });
    try {
      proto.maxBytes = 1;
      const own = ownOptions(given as Record<string, unknown>);
      expect(Object.getPrototypeOf(Object.getPrototypeOf(own))).toBeNull();
      expect(Object.getOwnPropertyNames(Object.getPrototypeOf(own))).toEqual([]);
      expect(own['toString']).toBeUndefined();
      expect(own['maxBytes']).toBeUndefined();
      expect(own['hidden']).toBeUndefined();
      expect([own['a'], own['counted'], own['counted']]).toEqual([1, 1, 1]);
      expect(reads).toBe(1);
      expect(ownOptions(Object.create({ maxBytes: 5 }) as Record<string, unknown>)['maxBytes']).toBeUndefined();
      expect(Object.keys(ownOptions('abc' as never))).toEqual([]);
    } finally {
      delete proto.maxBytes;
    }
  });
});
