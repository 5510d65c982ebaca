// No object literal made inside a function has a getter or a setter. V8 gives each such literal a
// map of its own, and makes maps in the old generation: the map keeps the literal's accessor
// closures, and all they reach, through every collection of the young generation until the next
// full one. A claim's lease and heartbeat were such literals: 3.5 KB of every claim outlived its
// consume, and the shared-disk handoff cost 12% more time (bench/analyses/handoff.md). A class
// keeps its accessors on its prototype, one map for all.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { expect, it } from 'vitest';

const SRC = path.join(import.meta.dirname, '..', '..', 'src');

/** `file:line name` of each getter or setter of an object literal inside a function of `source`. */
function literalAccessors(file: string, source: string): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node, inFunction: boolean): void => {
    if (inFunction && ts.isObjectLiteralExpression(node)) {
      for (const property of node.properties) {
        if (!ts.isGetAccessorDeclaration(property) && !ts.isSetAccessorDeclaration(property)) continue;
        found.push(`${file}:${sf.getLineAndCharacterOfPosition(property.getStart()).line + 1} ${property.name.getText()}`);
      }
    }
    ts.forEachChild(node, (child) => visit(child, inFunction || ts.isFunctionLike(node)));
  };
  visit(sf, false);
  return found;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const at = path.join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(at) : entry.name.endsWith('.ts') ? [at] : [];
  });
}

it('no object literal made inside a function of src/ has a getter or a setter', () => {
  const files = sourceFiles(SRC);
  expect(files.length).toBeGreaterThan(100);
  const found = files.flatMap((file) => literalAccessors(path.relative(SRC, file), fs.readFileSync(file, 'utf8')));
  expect(found, 'make it a class (its accessors on the prototype), or a method').toEqual([]);
});

it('finds a planted getter and setter, and not those of a class or of a module-scope literal', () => {
  const planted = [
    'const once = { get a() { return 1; } };',
    'class Lease { get lost() { return false; } }',
    'export function start() {',
    '  let gone = false;',
    '  return { get gone() { return gone; }, set gone(value) { gone = value; }, stop() {} };',
    '}',
  ].join('\n');
  expect(literalAccessors('planted.ts', planted)).toEqual(['planted.ts:5 gone', 'planted.ts:5 gone']);
});
