// The mutations CI runs against the contract suite and the multi-host bed each change code that
// must be there: a refactor that moves or rewrites it would make the run stop (or judge nothing).
// Each mutation's text is looked for in this checkout's source here, in a second.
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
// @ts-expect-error: a plain script module, without types
import { MUTATIONS } from '../../scripts/contract-mutations.mjs';

const repo = path.join(import.meta.dirname, '../..');

interface Mutation {
  readonly file: string;
  readonly from: string | RegExp;
  readonly extra?: { readonly file: string; readonly from: string | RegExp };
}

function found(file: string, text: string | RegExp): boolean {
  const source = fs.readFileSync(path.join(repo, file), 'utf8');
  return typeof text === 'string' ? source.includes(text) : text.test(source);
}

it("finds each contract mutation's code in the file it changes", () => {
  const missing = Object.entries(MUTATIONS as Record<string, Mutation>).flatMap(([name, m]) =>
    [m, ...(m.extra ? [m.extra] : [])].filter((part) => !found(part.file, part.from)).map((part) => `${name}: ${part.file}`),
  );
  expect(missing).toEqual([]);
});
