// The JavaScript SHA-256 the live signal's name is made with (src/base/sha256.ts) gives what
// node:crypto gives, for the strings it is given and at every length around a block's edges.
import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { sha256Hex } from '../../src/base/sha256.js';

const reference = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

it('gives the SHA-256 node:crypto gives: empty, an owner as the live signal names it, non-ASCII, and every length from 0 to 200', () => {
  expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  for (const text of ['abc', '6f1e8a.../4242//1718000000000', 'héllo wörld ✓', 'x'.repeat(1000)]) expect(sha256Hex(text)).toBe(reference(text));
  for (let length = 0; length <= 200; length++) {
    const text = 'a1-'.repeat(70).slice(0, length);
    expect(sha256Hex(text), `${length} characters`).toBe(reference(text));
  }
});
