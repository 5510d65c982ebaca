// Every public export of the package says what it throws. Loads the program from tsconfig.json,
// walks the exports of the entry points (src/index.ts, src/errors.ts, src/adapters/express.ts,
// src/adapters/fastify.ts, src/s3/index.ts, src/azure/index.ts, src/tus/index.ts, src/diagnostics.ts, src/testing/index.ts), and fails on every exported function, and every public constructor,
// method and getter of every exported class (inherited ones too, where the project declares
// them), whose doc comment is missing or has no `@throws` tag. A member that cannot throw says so
// with `@throws Never.` and the reason. A member that does what another documents says so with
// `{@inheritDoc Class.member}` in place of its own tags: the member named must exist and pass the
// check itself. A `@throws See {@link Name}` (the errors shared by many calls, described once)
// must name a symbol in scope, as a dangling link would be rendered as plain text. Members tagged `@internal`, private and protected ones
// (`#private` too) are skipped, as TypeDoc skips them (typedoc.json: excludeInternal,
// excludePrivate, excludeProtected).
//
//   node scripts/check-tsdoc.mjs                            check the package (npm run test:docs runs it through test/integration/tsdoc.test.ts)
//   node scripts/check-tsdoc.mjs --list                     also print every member checked
//   node scripts/check-tsdoc.mjs [--project P] ENTRY.ts...  check other entry points (under P's compiler options, if given)
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPO = fileURLToPath(new URL('../', import.meta.url));

/** The package's entry points: the main export and the two adapters' subpath exports. */
export const ENTRIES = ['src/index.ts', 'src/errors.ts', 'src/adapters/express.ts', 'src/adapters/fastify.ts', 'src/s3/index.ts', 'src/azure/index.ts', 'src/tus/index.ts', 'src/diagnostics.ts', 'src/testing/index.ts'];

/**
 * Checks the entry points' exports. `project` is a tsconfig.json to take the compiler options from
 * (its own file list is not used: the entries and what they import make the program); `null`
 * for TypeScript's defaults for Node 20 ES modules. Returns every member checked and, among them,
 * the `problems`: `{ file, line, name, why }`, `file` relative to `cwd`.
 * @param {{ entries?: string[], project?: string, cwd?: string }} [options]
 */
export function checkTsdoc({ entries = ENTRIES, project = path.join(REPO, 'tsconfig.json'), cwd = REPO } = {}) {
  const roots = entries.map((entry) => path.resolve(cwd, entry));
  const program = ts.createProgram({ rootNames: roots, options: compilerOptions(project) });
  const checker = program.getTypeChecker();
  const own = (file) => !file.isDeclarationFile && !program.isSourceFileFromExternalLibrary(file) && !file.fileName.includes('/node_modules/');
  const seen = new Set();
  const members = [];

  const visit = (decl, name) => {
    if (seen.has(decl)) return;
    seen.add(decl);
    const file = decl.getSourceFile();
    if (!own(file) || isInternal(decl) || isHidden(decl)) return;
    const at = decl.name ?? decl;
    const line = file.getLineAndCharacterOfPosition(at.getStart(file)).line + 1;
    const why = problemOf(checker, decl);
    members.push({ file: path.relative(cwd, file.fileName), line, name, why });
  };

  for (const root of roots) {
    const source = program.getSourceFile(root);
    if (!source) throw new Error(`${root} is not in the program: check the path`);
    const moduleSymbol = checker.getSymbolAtLocation(source);
    if (!moduleSymbol) continue; // a file with no exports
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      if (symbol.flags & ts.SymbolFlags.Class) checkClass(checker, symbol, visit);
      else if (symbol.flags & ts.SymbolFlags.Function) checkFunction(symbol, visit);
      else if (symbol.flags & ts.SymbolFlags.Variable) checkCallableVariable(checker, symbol, visit);
    }
  }
  members.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  return { members, problems: members.filter((member) => member.why !== undefined) };
}

function compilerOptions(project) {
  const defaults = { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, noEmit: true, skipLibCheck: true };
  if (!project) return defaults;
  const read = ts.readConfigFile(project, ts.sys.readFile);
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(project));
  return { ...parsed.options, noEmit: true };
}

/** A function's declarations as TypeDoc shows them: the overload signatures, or the one declaration. */
function checkFunction(symbol, visit) {
  const declarations = (symbol.declarations ?? []).filter(ts.isFunctionDeclaration);
  const signatures = declarations.length > 1 ? declarations.filter((decl) => decl.body === undefined) : declarations;
  for (const decl of signatures) visit(decl, symbol.name);
}

/** `export const plugin = fp(...)`: a value that can be called is a function of the API too. */
function checkCallableVariable(checker, symbol, visit) {
  const decl = symbol.valueDeclaration;
  if (!decl || !ts.isVariableDeclaration(decl)) return;
  if (checker.getTypeOfSymbolAtLocation(symbol, decl).getCallSignatures().length === 0) return;
  visit(decl, symbol.name);
}

/** The constructor, and every public method and getter of the class, its own and inherited. */
function checkClass(checker, symbol, visit) {
  const decl = symbol.declarations?.find(ts.isClassDeclaration);
  if (!decl || isInternal(decl)) return;
  const className = symbol.name;
  const ctor = constructorOf(checker, decl);
  if (ctor) visit(ctor, `${ctor.parent.name?.text ?? className}.constructor`);
  const instance = checker.getDeclaredTypeOfSymbol(symbol);
  const statics = checker.getTypeOfSymbolAtLocation(symbol, decl);
  for (const [type, isStatic] of [[instance, false], [statics, true]]) {
    for (const property of checker.getPropertiesOfType(type)) {
      if (isStatic && property.name === 'prototype') continue;
      for (const member of property.declarations ?? []) {
        if (!ts.isMethodDeclaration(member) && !ts.isGetAccessorDeclaration(member)) continue;
        if (!ts.isClassLike(member.parent)) continue;
        const owner = member.parent.name?.text ?? className;
        const kind = ts.isGetAccessorDeclaration(member) ? 'get ' : '';
        visit(member, `${owner}.${kind}${memberName(member)}`);
      }
    }
  }
}

/** The constructor a class is made with: its own, else the nearest one up its `extends` chain. */
function constructorOf(checker, decl) {
  for (let cls = decl; cls; ) {
    const own = cls.members.find((member) => ts.isConstructorDeclaration(member) && member.body !== undefined);
    const overloads = cls.members.filter((member) => ts.isConstructorDeclaration(member) && member.body === undefined);
    if (overloads.length > 0) return overloads[0];
    if (own) return own;
    const base = cls.heritageClauses?.find((clause) => clause.token === ts.SyntaxKind.ExtendsKeyword)?.types[0];
    if (!base) return undefined;
    let baseSymbol = checker.getSymbolAtLocation(base.expression);
    if (baseSymbol && baseSymbol.flags & ts.SymbolFlags.Alias) baseSymbol = checker.getAliasedSymbol(baseSymbol);
    cls = baseSymbol?.declarations?.find(ts.isClassDeclaration);
  }
  return undefined;
}

function memberName(member) {
  const name = member.name;
  if (ts.isComputedPropertyName(name)) return `[${name.expression.getText()}]`;
  return name.getText();
}

function isHidden(decl) {
  if (decl.name && ts.isPrivateIdentifier(decl.name)) return true;
  return (ts.getCombinedModifierFlags(decl) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) !== 0;
}

/** The doc comment TypeDoc reads: the last `/** ... *\/` block right before the declaration. */
function docComment(decl) {
  const blocks = ts.getJSDocCommentsAndTags(decl).filter(ts.isJSDoc);
  const last = blocks.at(-1);
  return last === undefined ? undefined : last.getText();
}

// Tags as TSDoc reads them: `@tag` at the start of a line or after a space, outside code spans.
function tagged(comment, tag) {
  return new RegExp(`(?:^|\\s)@${tag}(?![\\w-])`).test(plainText(comment));
}

/** The comment's text without its `/**`, `*` margins, and code. */
function plainText(comment) {
  return comment
    .replace(/^\/\*\*|\*\/$/g, '')
    .split('\n')
    .map((line) => line.replace(/^\s*\*(?!\/) ?/, ''))
    .join('\n')
    .replace(/```[\s\S]*?```/g, '')
    .replace(/`[^`\n]*`/g, '');
}

/** Why a declaration's doc comment fails the check, or `undefined` when it passes. */
function problemOf(checker, decl, following = new Set()) {
  const doc = docComment(decl);
  if (doc === undefined) return 'no doc comment';
  const reference = inheritDocReference(doc);
  if (reference !== undefined) return inheritedProblem(checker, decl, reference, following);
  if (!tagged(doc, 'throws')) return 'no @throws tag';
  const dangling = seeLinks(doc).find((name) => resolveEntity(checker, decl, name) === undefined);
  return dangling === undefined ? undefined : `@throws See {@link ${dangling}} names nothing in scope: export or import ${dangling}, or fix the name`;
}

/** `{@inheritDoc X.member}`: the reference, when the comment inherits its docs. */
function inheritDocReference(comment) {
  return /\{@inheritDoc\s+([^\s}]+)\s*\}/.exec(plainText(comment))?.[1];
}

/** The names `@throws See {@link Name}` lines link to. */
function seeLinks(comment) {
  return [...plainText(comment).matchAll(/(?:^|\s)@throws\s+See\s+\{@link\s+([^\s|}]+)/g)].map((match) => match[1]);
}

function inheritedProblem(checker, decl, reference, following) {
  const source = resolveEntity(checker, decl, reference);
  const target = source?.declarations?.find((d) => docComment(d) !== undefined) ?? source?.declarations?.[0];
  if (target === undefined) return `{@inheritDoc ${reference}} names nothing: no such class member in scope`;
  following.add(decl);
  if (following.has(target)) return `{@inheritDoc ${reference}} goes round in a circle`;
  const why = problemOf(checker, target, following);
  return why === undefined ? undefined : `{@inheritDoc ${reference}} names a member that fails the check (${why})`;
}

/** `Name` or `Class.member` (instance member, else static), resolved from where `decl` stands. */
function resolveEntity(checker, decl, reference) {
  const [head, ...rest] = reference.split('.');
  let symbol = checker.resolveName(head, decl, ts.SymbolFlags.Value | ts.SymbolFlags.Type | ts.SymbolFlags.Alias, false);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  for (const name of rest) {
    if (!symbol) return undefined;
    const classDecl = symbol.declarations?.find(ts.isClassLike);
    const instance = classDecl ? checker.getDeclaredTypeOfSymbol(symbol) : undefined;
    const statics = checker.getTypeOfSymbol(symbol);
    symbol = (instance && checker.getPropertyOfType(instance, name)) ?? checker.getPropertyOfType(statics, name);
  }
  return symbol;
}

/** `@internal` in the declaration's doc comment (a member inherited from an internal base class is still public). */
function isInternal(decl) {
  const doc = docComment(decl);
  return doc !== undefined && tagged(doc, 'internal');
}

function main(args) {
  const list = args.includes('--list');
  const at = args.indexOf('--project');
  const project = at >= 0 ? path.resolve(args[at + 1]) : undefined;
  const entries = args.filter((arg, i) => !arg.startsWith('--') && (at < 0 || i !== at + 1));
  const options = entries.length > 0 ? { entries, project: project ?? null, cwd: process.cwd() } : {};
  const { members, problems } = checkTsdoc(options);
  if (list) for (const m of members) console.log(`${m.file}:${m.line} ${m.name}${m.why ? `  (${m.why})` : ''}`);
  if (problems.length > 0) {
    console.error(`${problems.length} public member${problems.length === 1 ? '' : 's'} without a doc comment that has a @throws tag (or a {@inheritDoc} of one that has):`);
    for (const p of problems) console.error(`${p.file}:${p.line} ${p.name} (${p.why})`);
    console.error('Say what each throws: one `@throws {@link SomeError}` line per error class, with its code and when; `@throws Never.` and why, for one that cannot throw; `{@inheritDoc Class.member}` for one that does what another documents; `@throws See {@link DiskErrors}` for the errors shared by every call that touches the disk.');
    process.exitCode = 1;
    return;
  }
  console.log(`${members.length} public members, each with a @throws tag.`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
