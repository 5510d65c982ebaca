// Removes the class and interface members tagged @internal (the setters write() uses, the `fs`
// test hook, descriptors' paths) from the bundled declaration files in dist/: the published types
// show what a user calls. Top-level declarations stay: the bundle keeps only those reachable from
// an entry point, and the checks of the packed package (scripts/check-package.mjs) compile
// against the result.
//
//   node scripts/strip-internal.mjs [dist]   (the build runs it after tsup)
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const MEMBER_KINDS = new Set([
  ts.SyntaxKind.PropertyDeclaration,
  ts.SyntaxKind.MethodDeclaration,
  ts.SyntaxKind.GetAccessor,
  ts.SyntaxKind.SetAccessor,
  ts.SyntaxKind.Constructor,
  ts.SyntaxKind.PropertySignature,
  ts.SyntaxKind.MethodSignature,
]);

/** The source ranges of every member tagged @internal, with its doc comment. */
export function internalMembers(text, fileName = 'types.d.ts') {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const ranges = [];
  const visit = (node) => {
    if (MEMBER_KINDS.has(node.kind) && ts.getJSDocTags(node).some((tag) => tag.tagName.text === 'internal')) {
      ranges.push([node.getFullStart(), node.getEnd()]);
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return ranges;
}

/** The top-level declarations that nothing exports and nothing else in the file names. */
function unreachable(text, fileName) {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const exported = new Set();
  for (const statement of source.statements) {
    if (ts.isExportDeclaration(statement) && statement.exportClause && ts.isNamedExports(statement.exportClause)) {
      for (const element of statement.exportClause.elements) exported.add((element.propertyName ?? element.name).text);
    }
  }
  const ranges = [];
  for (const statement of source.statements) {
    const name = statement.name?.text;
    const isDeclaration = ts.isInterfaceDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isTypeAliasDeclaration(statement);
    if (!isDeclaration || name === undefined || exported.has(name)) continue;
    if (statement.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) continue;
    const rest = text.slice(0, statement.getFullStart()) + text.slice(statement.getEnd());
    if (!new RegExp(`\\b${name}\\b`).test(rest)) ranges.push([statement.getFullStart(), statement.getEnd()]);
  }
  return ranges;
}

function cut(text, ranges) {
  let out = text;
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0]).reverse()) out = out.slice(0, start) + out.slice(end);
  return out;
}

/**
 * `text` without its @internal members, then without the declarations only they named (until
 * none is left).
 */
export function stripInternal(text, fileName) {
  let out = cut(text, internalMembers(text, fileName));
  for (let ranges = unreachable(out, fileName); ranges.length > 0; ranges = unreachable(out, fileName)) out = cut(out, ranges);
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const dist = path.resolve(process.argv[2] ?? 'dist');
  let removed = 0;
  for (const name of fs.readdirSync(dist)) {
    if (!/\.d\.c?ts$/.test(name)) continue;
    const file = path.join(dist, name);
    const text = fs.readFileSync(file, 'utf8');
    removed += internalMembers(text, file).length;
    fs.writeFileSync(file, stripInternal(text, file));
  }
  console.log(`strip-internal: ${removed} internal members removed from the declaration files`);
}
