import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';
import { freshRoot } from '../helpers/roots.js';

const fixture = path.join(import.meta.dirname, '../fixtures/kept-errors.mjs');
const MiB = 1024 * 1024;

// A memory bound. V8 formats a stack when it is first read and until then keeps each frame's
// receiver and function: a QuotaExceededError kept unprinted held what the refused call held, a
// spool's 64 KiB block (HeldBytes, the receiver of the frame that reserved), and 1,000 of them
// 64 MiB. The library's errors format their stacks as they are made, so each holds its strings:
// about 1 KiB, 1 MiB for the thousand.
it.each(['write', 'spool'])('1,000 QuotaExceededErrors of %s() calls refused at their second 64 KiB chunk, kept unprinted, hold less than 16 MiB', (call) => {
  const out = execFileSync(process.execPath, ['--expose-gc', fixture, freshRoot(), '1000', call], { encoding: 'utf8' });
  const { kept, growth, stack } = JSON.parse(out) as { kept: number; growth: number; stack: string };
  expect(kept).toBe(1000);
  expect(stack).toMatch(/^QuotaExceededError: This manager's live files would hold more than maxLiveBytes \(102400 bytes\)/);
  expect(stack.split('\n').length).toBeGreaterThan(1);
  expect(growth).toBeLessThan(16 * MiB);
}, 120_000);
