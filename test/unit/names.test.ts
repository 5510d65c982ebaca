import { describe, expect, it } from 'vitest';
import { InvalidNameError } from '../../src/base/errors.js';
import { MAX_NAME_BYTES, MAX_SUFFIX_BYTES } from '../../src/base/layout.js';
import { validateNameLength, validateNamePart } from '../../src/base/names.js';
import { randomName, RANDOM_NAME_LENGTH } from '../../src/base/random-name.js';
import { HOSTILE_NAME_PARTS } from '../helpers/hostile-names.js';

describe('validateNamePart', () => {
  const contentHostile = HOSTILE_NAME_PARTS.filter(([label]) => !/bytes/.test(label));

  it.each(contentHostile)('refuses %s', (_label, value) => {
    expect(() => validateNamePart(value, 'suffix')).toThrow(InvalidNameError);
    expect(() => validateNamePart(value, 'prefix')).toThrow(InvalidNameError);
  });

  it('names the part and a fix in its message', () => {
    expect(() => validateNamePart('a..b', 'suffix')).toThrow(/suffix.*remove it/);
    expect(() => validateNamePart(['a'], 'prefix')).toThrow(/prefix must be a string, got an array/);
  });

  it.each(['', '.pdf', '.tar.gz', 'upload-', '.日本語', 'résumé', '.a.b.c', ' .pdf', '~backup', '#1', 'a b'])(
    'accepts %j',
    (value) => {
      expect(validateNamePart(value, 'suffix')).toBe(value);
    },
  );
});

describe('validateNameLength', () => {
  it('allows exactly 255 bytes and refuses 256, counting UTF-8 bytes', () => {
    const room = MAX_NAME_BYTES - RANDOM_NAME_LENGTH;
    const prefixRoom = room - MAX_SUFFIX_BYTES;
    expect(() => validateNameLength('p'.repeat(prefixRoom), 'a'.repeat(MAX_SUFFIX_BYTES))).not.toThrow();
    expect(() => validateNameLength('p'.repeat(prefixRoom + 1), 'a'.repeat(MAX_SUFFIX_BYTES))).toThrow(InvalidNameError);
    expect(() => validateNameLength('€'.repeat(Math.floor(room / 3) + 1), '')).toThrow(/bytes long/);
  });

  it('refuses a suffix longer than a held name can carry, before any disk access', () => {
    expect(MAX_SUFFIX_BYTES).toBeGreaterThanOrEqual(64);
    expect(() => validateNameLength('', 'a'.repeat(MAX_SUFFIX_BYTES))).not.toThrow();
    expect(() => validateNameLength('', 'a'.repeat(MAX_SUFFIX_BYTES + 1))).toThrow(/through a handoff/);
    expect(() => validateNameLength('', '€'.repeat(Math.floor(MAX_SUFFIX_BYTES / 3) + 1))).toThrow(/through a handoff/);
  });
});

describe('randomName', () => {
  it('gives 128 bits as 32 lowercase hex digits, never the same twice', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) seen.add(randomName());
    expect(seen.size).toBe(100_000);
    for (const name of [...seen].slice(0, 100)) expect(name).toMatch(/^[0-9a-f]{32}$/);
  });

  it('uses every hex digit in every position (no stuck pool bytes)', () => {
    const perPosition = Array.from({ length: RANDOM_NAME_LENGTH }, () => new Set<string>());
    for (let i = 0; i < 5000; i++) [...randomName()].forEach((c, j) => perPosition[j]!.add(c));
    for (const digits of perPosition) expect(digits.size).toBe(16);
  });
});
