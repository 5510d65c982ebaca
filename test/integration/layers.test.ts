// The layers of src/ (scripts/check-layers.mjs, drawn in docs/design.md): no import runs back up
// a layer, none runs sideways between the rooms of one floor (the stores), and no modules import
// each other in a circle.
import { expect, it } from 'vitest';
// @ts-expect-error: a plain script of the project, without types
import { check, circles, LAYERS } from '../../scripts/check-layers.mjs';

interface Edge {
  from: string;
  to: string;
}

interface Result {
  edges: Edge[];
  upward: string[];
  sideways: string[];
  circles: string[][];
}

it('no import of src/ runs back up a layer', () => {
  const result = (check as () => Result)();
  // A reader that found no imports would pass anything.
  expect(result.edges.length).toBeGreaterThan(300);
  expect(result.upward, 'import from a lower layer, or pass it in (scripts/check-layers.mjs)').toEqual([]);
});

it('no store imports another: s3/ and azure/ each stand on the object-store engine alone', () => {
  expect((check as () => Result)().sideways, 'move what both need down to object-store/').toEqual([]);
});

it('no modules of src/ import each other in a circle', () => {
  expect((check as () => Result)().circles).toEqual([]);
});

it('the circle finder finds a planted circle, and only its members', () => {
  const planted: Edge[] = [
    { from: 'a.ts', to: 'b.ts' },
    { from: 'b.ts', to: 'c.ts' },
    { from: 'c.ts', to: 'a.ts' },
    { from: 'c.ts', to: 'd.ts' },
    { from: 'd.ts', to: 'e.ts' },
  ];
  expect((circles as (edges: Edge[]) => string[][])(planted)).toEqual([['a.ts', 'b.ts', 'c.ts']]);
});

it('every module of src/ is in a layer, bottom first', () => {
  expect((LAYERS as [string, string[]][]).map(([name]) => name)).toEqual([
    'base', 'disk', 'owner', 'root', 'limits', 'keep', 'handoff', 'lifetime', 'sweep', 'context', 'write', 'handles', 'object-store', 'stores', 'manager', 'tus', 'testing', 'uploads', 'adapters', 'cli', 'entry',
  ]);
});
