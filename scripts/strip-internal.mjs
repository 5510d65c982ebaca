// Removes the class and interface members tagged @internal (the adapters' hooks, the handles'
// context, descriptors' paths) from the declaration files: the published types show what a user
// calls. Then the imports only those members used go, and the declarations of the shared chunks
// that no entry reaches any more: a chunk holds what any entry needs, and an entry's types are
// what it reaches. scripts/build-declarations.mjs strips each module's declarations before it
// bundles them, then passes over the bundle; the checks of the packed package
// (scripts/check-package.mjs, scripts/check-consumers.mjs) compile against the result.
//
//   node scripts/strip-internal.mjs [dist]   (a bundle already built)
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

/** The identifiers a node's code names (its doc comments are not its code). */
function namesIn(node, into = new Set()) {
  if (ts.isIdentifier(node)) into.add(node.text);
  ts.forEachChild(node, (child) => {
    namesIn(child, into);
  });
  return into;
}

/**
 * The top-level declarations (interfaces, classes, type aliases) that no export reaches: neither
 * exported nor named, directly or through other declarations, by the code of what is. A mention
 * in a doc comment does not keep a declaration.
 */
function unreachable(text, fileName) {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const removable = new Map();
  const roots = [];
  for (const statement of source.statements) {
    const name = statement.name?.text;
    const isDeclaration = ts.isInterfaceDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isTypeAliasDeclaration(statement);
    const exportedHere = statement.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    if (isDeclaration && name !== undefined && !exportedHere) removable.set(name, statement);
    else roots.push(statement);
  }
  const reached = new Set();
  const queue = roots.flatMap((statement) => [...namesIn(statement)]);
  while (queue.length > 0) {
    const name = queue.pop();
    if (reached.has(name) || !removable.has(name)) continue;
    reached.add(name);
    queue.push(...namesIn(removable.get(name)));
  }
  return [...removable].filter(([name]) => !reached.has(name)).map(([, statement]) => [statement.getFullStart(), statement.getEnd()]);
}

function cut(text, ranges) {
  let out = text;
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0]).reverse()) out = out.slice(0, start) + out.slice(end);
  return out;
}

/**
 * Each class's `private` members, with their doc comments, as one `#private;`: what TypeScript
 * declares for a class with ES private fields. The class stays nominal (an object of the same
 * shape is no instance of it); the names and notes of its internals are not the reader's.
 */
export function collapsePrivates(text, fileName = 'types.d.ts') {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const edits = [];
  const visit = (node) => {
    if (ts.isClassDeclaration(node)) {
      const hidden = node.members.filter((member) => member.modifiers?.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword) || (member.name && ts.isPrivateIdentifier(member.name)));
      hidden.forEach((member, i) => edits.push([member.getFullStart(), member.getEnd(), i === 0 ? '\n    #private;' : '']));
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  let out = text;
  for (const [start, end, replacement] of edits.sort((a, b) => b[0] - a[0])) out = out.slice(0, start) + replacement + out.slice(end);
  return out;
}

/**
 * `text` without its @internal members and with its classes' private members as one
 * `#private;`, then without the declarations only they named (until none is left).
 */
export function stripInternal(text, fileName) {
  let out = collapsePrivates(cut(text, internalMembers(text, fileName)), fileName);
  for (let ranges = unreachable(out, fileName); ranges.length > 0; ranges = unreachable(out, fileName)) out = cut(out, ranges);
  return out;
}

/** The local names an import binds, and a new text of the declaration keeping only `keep` of them. */
function importBindings(statement, text) {
  const clause = statement.importClause;
  if (!clause) return undefined; // `import 'x'`: kept, it binds nothing
  const names = [];
  if (clause.name) names.push({ local: clause.name.text, text: clause.name.text, kind: 'default' });
  const bindings = clause.namedBindings;
  if (bindings && ts.isNamespaceImport(bindings)) names.push({ local: bindings.name.text, text: bindings.getText(), kind: 'namespace' });
  if (bindings && ts.isNamedImports(bindings)) for (const element of bindings.elements) names.push({ local: element.name.text, text: element.getText(), kind: 'named' });
  const rebuild = (keep) => {
    if (keep.length === 0) return '';
    const named = keep.filter((n) => n.kind === 'named').map((n) => n.text);
    const parts = [...keep.filter((n) => n.kind !== 'named').map((n) => n.text), ...(named.length > 0 ? [`{ ${named.join(', ')} }`] : [])];
    return `import ${clause.isTypeOnly ? 'type ' : ''}${parts.join(', ')} from ${statement.moduleSpecifier.getText()};`;
  };
  return { names, rebuild, range: [statement.getStart(), statement.getEnd()], rest: text.slice(0, statement.getFullStart()) + text.slice(statement.getEnd()) };
}

/** `text` without the imported names nothing else in it uses (what stripped members named). */
export function dropUnusedImports(text, fileName) {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const edits = [];
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement)) continue;
    const found = importBindings(statement, text);
    if (!found) continue;
    // The bundler renames a clash `Readable$1`: `$` is a character of the name, not the end.
    const keep = found.names.filter((n) => new RegExp(`(?<![\\w$])${n.local.replaceAll('$', '\\$')}(?![\\w$])`).test(found.rest));
    if (keep.length < found.names.length) edits.push([...found.range, found.rebuild(keep)]);
  }
  let out = text;
  for (const [start, end, replacement] of edits.reverse()) out = out.slice(0, start) + replacement + out.slice(end);
  return out;
}

/** The file `specifier` names beside `fromFile` (`./store-X.js` from a .d.ts is `store-X.d.ts`). */
function declarationFileOf(specifier, fromFile) {
  if (!specifier.startsWith('./')) return undefined;
  const base = specifier.slice(2).replace(/\.(c?)js$/, (_, c) => `.d.${c}ts`);
  return path.join(path.dirname(fromFile), base);
}

/** For each file, the names other files import or re-export from it. */
function namesUsedFrom(files) {
  const used = new Map(Object.keys(files).map((file) => [file, new Set()]));
  for (const [file, text] of Object.entries(files)) {
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    for (const statement of source.statements) {
      const specifier = (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) && statement.moduleSpecifier;
      const target = specifier && ts.isStringLiteral(specifier) ? declarationFileOf(specifier.text, file) : undefined;
      if (!target || !used.has(target)) continue;
      const clause = ts.isImportDeclaration(statement) ? statement.importClause?.namedBindings : statement.exportClause;
      if (clause && (ts.isNamedImports(clause) || ts.isNamedExports(clause))) {
        for (const element of clause.elements) used.get(target).add((element.propertyName ?? element.name).text);
      } else if (clause || ts.isExportDeclaration(statement)) used.get(target).add('*');
    }
  }
  return used;
}

/** A shared chunk's `export { ... }` without the names no file imports from it. */
function dropUnimportedExports(text, fileName, used) {
  if (used.has('*')) return text;
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const edits = [];
  for (const statement of source.statements) {
    if (!ts.isExportDeclaration(statement) || statement.moduleSpecifier || !statement.exportClause || !ts.isNamedExports(statement.exportClause)) continue;
    const keep = statement.exportClause.elements.filter((element) => used.has(element.name.text)).map((element) => element.getText());
    if (keep.length < statement.exportClause.elements.length) edits.push([statement.getStart(), statement.getEnd(), keep.length === 0 ? 'export {};' : `export { ${keep.join(', ')} };`]);
  }
  let out = text;
  for (const [start, end, replacement] of edits.reverse()) out = out.slice(0, start) + replacement + out.slice(end);
  return out;
}

/**
 * The declaration files of one build (`.d.ts` or `.d.cts`), keyed by path, each without its
 * @internal members, and the shared chunks without what no entry reaches any more: imports
 * only stripped members used, and declarations only those imports named.
 */
export function stripBuild(files, entries) {
  let out = Object.fromEntries(Object.entries(files).map(([file, text]) => [file, stripInternal(text, file)]));
  for (let changed = true; changed; ) {
    changed = false;
    const used = namesUsedFrom(out);
    for (const [file, text] of Object.entries(out)) {
      let next = dropUnusedImports(text, file);
      if (!entries.has(file)) next = dropUnimportedExports(next, file, used.get(file));
      next = stripInternal(next, file);
      if (next !== text) [out[file], changed] = [next, true];
    }
  }
  return out;
}

/** The declaration files package.json's `exports` name: the entries, whose exports all stay. */
function entryFiles(dist) {
  const pkg = JSON.parse(fs.readFileSync(path.join(dist, '..', 'package.json'), 'utf8'));
  const targets = [];
  const collect = (value) => (typeof value === 'string' ? targets.push(value) : value && typeof value === 'object' && Object.values(value).forEach(collect));
  collect(pkg.exports);
  return new Set(targets.filter((t) => /\.d\.c?ts$/.test(t)).map((t) => path.join(dist, '..', t)));
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const dist = path.resolve(process.argv[2] ?? 'dist');
  const entries = entryFiles(dist);
  let removed = 0;
  for (const kind of [/\.d\.ts$/, /\.d\.cts$/]) {
    const files = {};
    for (const name of fs.readdirSync(dist)) if (kind.test(name)) files[path.join(dist, name)] = fs.readFileSync(path.join(dist, name), 'utf8');
    for (const [file, text] of Object.entries(files)) removed += internalMembers(text, file).length;
    for (const [file, text] of Object.entries(stripBuild(files, entries))) fs.writeFileSync(file, text);
  }
  console.log(`strip-internal: ${removed} internal members removed from the declaration files`);
}
