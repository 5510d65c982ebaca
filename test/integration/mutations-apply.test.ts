// The mutations CI runs against the contract suite and the multi-host bed each change code that
// must be there: a refactor that moves or rewrites it would make the run stop (or judge nothing).
// Each mutation's text is looked for in this checkout's source here, in a second, and its test's
// pattern among the contract suite's titles (a pattern that matches none runs nothing).
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
// @ts-expect-error: a plain script module, without types
import { MUTATIONS } from '../../scripts/contract-mutations.mjs';

const repo = path.join(import.meta.dirname, '../..');

interface Mutation {
  readonly test: string;
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

it("names, for each contract mutation, a test of the contract suite that runs (its pattern matches a test's title)", () => {
  const titles = [...fs.readFileSync(path.join(repo, 'test/contract/contract.test.ts'), 'utf8').matchAll(/^\s*it\('((?:[^'\\]|\\.)*)'/gm)].map((match) => match[1]!);
  expect(titles.length).toBeGreaterThan(5);
  const unmatched = Object.entries(MUTATIONS as Record<string, Mutation>).filter(([, m]) => !titles.some((title) => new RegExp(m.test).test(title))).map(([name]) => name);
  expect(unmatched).toEqual([]);
});
