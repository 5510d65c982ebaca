// The random part of every name is lowercase hex: a name the library makes is the same name on a
// case-insensitive file system (APFS, NTFS) and to every tool there, and loses none of its 128 bits
// to case folding (a mixed-case alphabet such as base64url would: 22 characters of 38 folded
// symbols carry about 115 bits, not 132).
import { expect, it } from 'vitest';
import { randomName, RANDOM_NAME_LENGTH } from '../../src/base/random-name.js';

it('random names are 32 lowercase hex digits, so case folding changes none of them', () => {
  const drawn = Array.from({ length: 10_000 }, () => randomName());
  for (const name of drawn) {
    expect(name).toMatch(/^[0-9a-f]{32}$/);
    expect(name.toUpperCase().toLowerCase()).toBe(name);
  }
  expect(RANDOM_NAME_LENGTH).toBe(32);
  expect(new Set(drawn.map((name) => name.toLowerCase())).size).toBe(drawn.length);
});
