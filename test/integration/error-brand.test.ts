// No `instanceof` on the library's own errors anywhere in src/: with two copies of the library in
// one process (its ES module and CommonJS builds), an error made by one copy is no instance of the
// other copy's classes, and a check by `instanceof` turns it into another error with another code.
// The library tells its errors by the brand and the `code` (isTempFileError, isErrorCode).
// Parses every module of src/ with the TypeScript compiler and fails on `x instanceof C` where C is
// an error class: one exported by src/base/ (errors.ts, error-class.ts, common-errors.ts), or any
// class of src/ that extends an Error.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { expect, it } from 'vitest';

const SRC = path.join(import.meta.dirname, '../../src');

function modules(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return modules(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
}

function visit(node: ts.Node, each: (node: ts.Node) => void): void {
  each(node);
  ts.forEachChild(node, (child) => visit(child, each));
}

/** The error classes: every class src/ declares whose `extends` names an error class (to a fixpoint). */
function errorClasses(files: readonly ts.SourceFile[]): Set<string> {
  const extendsOf = new Map<string, string>();
  for (const file of files) {
    visit(file, (node) => {
      if (!ts.isClassDeclaration(node) || !node.name) return;
      const base = node.heritageClauses?.find((c) => c.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression;
      if (base) extendsOf.set(node.name.text, base.getText(file));
    });
  }
  const errors = new Set<string>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const [name, base] of extendsOf) {
      if (!errors.has(name) && (base === 'Error' || base.endsWith('Error') || errors.has(base))) {
        errors.add(name);
        grew = true;
      }
    }
  }
  return errors;
}

/** Names a file gives an error class under another name: `import { LeaseLostError as Lost }`. */
function aliases(file: ts.SourceFile, errors: ReadonlySet<string>): Map<string, string> {
  const local = new Map<string, string>();
  visit(file, (node) => {
    if (ts.isImportSpecifier(node) && errors.has((node.propertyName ?? node.name).text)) local.set(node.name.text, (node.propertyName ?? node.name).text);
  });
  return local;
}

/** Every `x instanceof C` of the file where C (or `ns.C`) is one of `errors`, as `file:line: text`. */
function instanceofErrors(file: ts.SourceFile, errors: ReadonlySet<string>): string[] {
  const local = aliases(file, errors);
  const found: string[] = [];
  visit(file, (node) => {
    if (!ts.isBinaryExpression(node) || node.operatorToken.kind !== ts.SyntaxKind.InstanceOfKeyword) return;
    let right: ts.Expression = node.right;
    while (ts.isParenthesizedExpression(right)) right = right.expression;
    const name = ts.isIdentifier(right) ? right.text : ts.isPropertyAccessExpression(right) ? right.name.text : undefined;
    if (name === undefined || !(errors.has(name) || local.has(name))) return;
    const line = file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
    found.push(`${path.relative(SRC, file.fileName)}:${line}: ${node.getText(file)}`);
  });
  return found;
}

const files = modules(SRC).map(parse);
const errors = errorClasses(files);

it('knows every error class the library declares', () => {
  const sources = ['errors.ts', 'error-class.ts', 'common-errors.ts'].map((file) => fs.readFileSync(path.join(SRC, 'base', file), 'utf8'));
  const exported = sources.flatMap((source) => [...source.matchAll(/^export class (\w+)/gm)].map((m) => m[1]));
  expect(exported.length).toBeGreaterThan(25);
  for (const name of exported) expect(errors, name).toContain(name);
  expect(errors).toContain('TempFileError');
});

it('finds an instanceof of an error class, however it is written', () => {
  const probe = ts.createSourceFile(
    path.join(SRC, 'probe.ts'),
    "import { LeaseLostError as Lost } from './errors.js';\nclass Own extends Error {}\n" +
      'a instanceof Lost; b instanceof (errors.TempFileError); c instanceof Own; d instanceof Uint8Array; e instanceof Error;',
    ts.ScriptTarget.ES2022,
    true,
  );
  const known = new Set([...errors, ...errorClasses([probe])]);
  expect(instanceofErrors(probe, known)).toEqual(['probe.ts:3: a instanceof Lost', 'probe.ts:3: b instanceof (errors.TempFileError)', 'probe.ts:3: c instanceof Own']);
});

it('tells no library error by instanceof anywhere in src/', () => {
  expect(files.flatMap((file) => instanceofErrors(file, errors))).toEqual([]);
});
