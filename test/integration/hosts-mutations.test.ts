import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs module of the hosts bed, without types
import { filesToMutate, MUTATIONS } from '../hosts/mutations.mjs';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist');

// The hosts bed (root, CI) proves that it catches each of these mutations; a change to the code
// they break would otherwise surface only there, at the end of a CI run.
describe('the hosts bed mutations', () => {
  it.each(Object.keys(MUTATIONS as Record<string, unknown>))('%s finds the code each of its patches breaks in the build', (name) => {
    const perPatch = (filesToMutate as (name: string, dist: string) => string[][])(name, dist);
    expect(perPatch.length).toBeGreaterThan(0);
    for (const files of perPatch) expect(files.length).toBeGreaterThan(0);
  });
});
