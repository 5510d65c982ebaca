// The layers of src/ (scripts/check-layers.mjs, drawn in docs/design.md): no import runs back up
// beyond the known ones, and every known one still exists (the list only shrinks).
import { expect, it } from 'vitest';
// @ts-expect-error: a plain script of the project, without types
import { check, KNOWN_UPWARD, LAYERS } from '../../scripts/check-layers.mjs';

interface Result {
  edges: { from: string; to: string }[];
  upward: string[];
  unknown: string[];
  stale: string[];
}

it('no import of src/ runs back up a layer, but the known ones', () => {
  const result = (check as () => Result)();
  // A reader that found no imports would pass anything.
  expect(result.edges.length).toBeGreaterThan(300);
  expect(result.unknown, 'import from a lower layer, or pass it in (scripts/check-layers.mjs)').toEqual([]);
  expect(result.stale, 'remove these from KNOWN_UPWARD').toEqual([]);
  expect(result.upward).toEqual([...(KNOWN_UPWARD as string[])].sort());
});

it('every module of src/ is in a layer, bottom first', () => {
  expect((LAYERS as [string, string[]][]).map(([name]) => name)).toEqual(['base', 'disk', 'owner', 'root', 'limits', 'lifetime', 'handoff', 'context', 'write', 'handles', 'manager', 'adapters', 'entry']);
});
