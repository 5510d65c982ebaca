// A TypeDoc plugin for docs/api, so that a class's entry lists what a reader needs:
// - what the class itself declares, not what it inherits: every error class would otherwise
//   repeat Error's members (message, stack, captureStackTrace, ...) and TempFileError's; its
//   "Extends" line links to the parent instead;
// - no constructors of TempFileError's subclasses: the library throws them, callers branch on
//   `code` or `instanceof` and never make one (the classes and their types are unchanged), nor
//   the "Overrides TempFileError.code" note under each subclass's narrowed `code`;
// - TempFileManager, where a reader starts, in a group of its own ahead of the other classes
//   ("Manager"), and the error classes (every class named `...Error`) in one after the rest
//   ("Errors"), in the order of typedoc.json's groupOrder;
// - each module named by the path users import it from (`tempfile-manager/express`, as
//   package.json's `exports` has it), not by its file under src/ (`adapters/express`);
// - a member documented by `{@inheritDoc Class.member}` (TempFileManager's forwarders to its own
//   scope) shows all of that member's docs: TypeDoc copies the summary, `@remarks`, `@returns`
//   and parameters, and this copies the other block tags it lacks (`@throws`, `@example`). Its
//   one-line summary, kept for editors' hovers (TypeScript does not expand the tag), is replaced
//   by the member's, as TypeDoc intends: its warning that it will be is not printed;
// - a `{@link SomeError}` TypeScript could not follow into another entry point's page (a class of
//   tempfile-manager/errors named in the main entry's docs) linked to the one declaration of
//   that name;
// - each member's errors under one "Throws" heading, one item each, where TypeDoc gives every
//   `@throws` a heading of its own; no "Returns" section or parameter table that only repeats
//   what the signature shows, no "Implementation of" note (`AsyncDisposable.[asyncDispose]`), no
//   rule between entries (their headings part them), and "Extends", "Extended by", "Implements",
//   a `@throws Never.` and a lone `@throws` as a line;
// - getters that throw nothing as one table, and no "Properties" heading over a table that is
//   all a section has;
// - each error class's `code` at the head of its summary, once "Errors" says they all extend
//   TempFileError, rather than a row and a line repeated thirty times;
// - overloads that share their docs as one list of signatures, and a page's re-exports as one
//   paragraph of links.
import fs from 'node:fs';
import { Comment, CommentTag, Converter, Reflection, ReflectionKind } from 'typedoc';
import { MarkdownPageEvent } from 'typedoc-plugin-markdown';

const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/** The import path of an entry module TypeDoc named after its file (`adapters/express`): `<package>/<its last segment>`, if the package exports that subpath. */
function importPath(moduleName) {
  if (moduleName === pkg.name || moduleName.startsWith(`${pkg.name}/`)) return moduleName;
  const subpath = `./${moduleName.split('/').at(-1)}`;
  return Object.hasOwn(pkg.exports, subpath) ? `${pkg.name}/${subpath.slice(2)}` : undefined;
}

const INHERIT_SUMMARY_WARNING = /Content in the summary section will be overwritten by the @inheritDoc tag/;

/** The `X.member` of a comment's `{@inheritDoc X.member}`, if it has one. */
function inheritDocReference(comment) {
  const part = comment?.summary.find((p) => p.kind === 'inline-tag' && p.tag === '@inheritDoc');
  return part?.text.trim() || undefined;
}

/** The reflection `Class.member` names, by name (the references the TSDoc check accepts). */
function findByReference(project, reference) {
  const [owner, member] = reference.split('.');
  const cls = project.getReflectionsByKind(ReflectionKind.ClassOrInterface).find((r) => r.name === owner);
  return member === undefined ? cls : cls?.getChildByName(member);
}

/** The reflection to copy from: the signature at the target's own signature's place, if it has signatures. */
function sourceFor(found, target) {
  const signatures = found?.signatures ?? [];
  const at = target.parent?.signatures?.indexOf(target) ?? -1;
  return (at >= 0 ? signatures[at] : undefined) ?? signatures[0] ?? found;
}

/** Copies to `target` the block tags of `source` whose kind it has none of. */
function copyMissingBlockTags(source, target) {
  if (!source?.comment || !target.comment) return;
  const own = new Set(target.comment.blockTags.map((tag) => tag.tag));
  for (const tag of source.comment.blockTags) {
    if (!own.has(tag.tag) && tag.tag !== '@remarks' && tag.tag !== '@returns') target.comment.blockTags.push(tag.clone());
  }
}

/**
 * A page of the API reference without what only repeats the signature, with each member's
 * `@throws` as one list: `###### Throws` before each is one heading, the paragraphs its items.
 */
export function compactPage(markdown) {
  // One blank line more at the end, so that a page's last section ends as every other does.
  return `${markdown.replace(/\n*$/, '')}\n\n`
    .replace(/^\*\*\*\n\n/gm, '')
    .replace(/^#{4,7} Extends\n\n- ([^\n]+)\n\n/gm, 'Extends $1.\n\n')
    .replace(/^#{4,7} Extended by\n\n((?:- [^\n]+\n)+)\n/gm, (whole, list) => `Extended by ${list.trim().split('\n').map((line) => line.slice(2)).join(', ')}.\n\n`)
    .replace(/^#{6,7} Get Signature\n\n/gm, '')
    .replace(/^#{4,7} Parameters\n\n\| Parameter \| Type \|\n(?:\|[^\n]*\|\n)+\n/gm, '')
    .replace(/^#{4,7} Type Parameters\n\n\| Type Parameter \|\n(?:\|[^\n]*\|\n)+\n/gm, '')
    .replace(/^#{4,7} Returns\n\n[^\n]+\n\n(?=#|$)/gm, '')
    .replace(/^#{4,7} Implementation of\n\n[^\n]+\n\n/gm, '')
    .replace(/^(#{4,7}) Throws\n\n((?:(?!#)[^\n]*\n)+?)\n(?=\1 Throws\n|#|$)/gm, (whole, level, body) => `${level} Throws\n\n${item(body)}`)
    .replace(THROWS_RUN, (run, level) => `${level} Throws\n\n${run.split(`${level} Throws\n\n`).join('').replace(/\n\n(?=- )/g, '\n')}`)
    .replace(/^#{4,7} Throws\n\n- Never[.:]? ?([^\n]*(?:\n {2}[^\n]*)*)\n\n/gm, (whole, why) => `Throws nothing${why ? `: ${why.replace(/\n {2}/g, '\n')}` : '.'}\n\n`)
    .replace(/^#{4,7} Throws\n\n- ([^\n]*(?:\n {2}[^\n]*)*)\n\n(?=#|$)/gm, (whole, only) => `Throws: ${lowerSee(only.replace(/\n {2}/g, '\n'))}\n\n`)
    .replace(/^## Errors\n\n(?=[\s\S]*?^Extends \[`TempFileError`\]\(([^)]*)\)\.$)/m, (heading, link) => `${heading}Each class extends [TempFileError](${link}) unless it says otherwise; its \`code\` comes first.\n\n`)
    .replace(/^#{4,7} Implements\n\n((?:- [^\n]+\n)+)\n/gm, (whole, list) => `Implements ${list.trim().split('\n').map((line) => line.slice(2)).join(', ')}.\n\n`)
    .replace(/^#{4} Accessors\n\n((?:#{5} [^\n]+\n\n> \*\*get\*\* [^\n]+\n\n(?:(?!#)[^\n]*\n)+?\nThrows nothing\.\n\n)+)/gm, (whole, run) => accessorTable(run))
    .replace(/^## References\n\n((?:### [^\n]+\n\n(?:Renames and re-exports|Re-exports) [^\n]+\n\n)+)/gm, (whole, run) => referenceList(run))
    .split(/^(?=### )/m)
    .map((section) => withoutLoneProperties(errorWithCodeFirst(signaturesTogether(section))))
    .join('')
    .replace(/\n+$/, '\n');
}

/** A sentence as the tail of "Throws: " (its first word in lower case, unless a name or a code). */
function lowerSee(text) {
  return text.replace(/^[A-Z](?=[a-z]+ )/, (first) => first.toLowerCase());
}

/** Getters that throw nothing, as one table: name, type, description. */
function accessorTable(run) {
  const rows = run.split(/^(?=#{5} )/m).map((entry) => {
    const [, name, type, body] = /^#{5} (.+)\n\n> \*\*get\*\* .*?\(\): (.+)\n\n([\s\S]*?)\n\nThrows nothing\.\n\n$/.exec(entry) ?? [];
    if (name === undefined) throw new Error(`An accessor the API reference cannot list: ${entry.slice(0, 80)}`);
    return `| \`${name}\` | ${type} | ${body.replace(/\n/g, ' ')} |`;
  });
  return `#### Accessors\n\n| Accessor | Type | Description |\n| ------ | ------ | ------ |\n${rows.join('\n')}\n\n`;
}

const CODE_ROW = /^\| <a id="property-code[-\d]*"><\/a> `code` \| `readonly` \| `"(ERR_\w+)"` \| A stable, documented identifier of the failure\. \|\n/m;
const EXTENDS_BASE = /^Extends \[`TempFileError`\]\([^)]*\)\.\n\n/m;

/**
 * An error class's section with its `code` at the head of its summary, in place of a row of its
 * table that says the same for every class, and without the line "Extends TempFileError" that the
 * Errors group's heading says once for all.
 */
function errorWithCodeFirst(section) {
  const code = CODE_ROW.exec(section)?.[1];
  if (code === undefined || !EXTENDS_BASE.test(section)) return section;
  return section
    .replace(CODE_ROW, '')
    .replace(EXTENDS_BASE, '')
    .replace(/^(### \w+\n\n)/, `$1\`${code}\`: `)
    .replace(/^\| Property \| Modifier \| Type \| Description \|\n\| [-| ]+\|\n\n/m, '');
}

/** A page's re-exports as one paragraph of links, the renamed ones (`default`) said as such. */
function referenceList(run) {
  const plain = [];
  const renamed = [];
  for (const [, name, how, target] of run.matchAll(/^### (.+)\n\n(Renames and re-exports|Re-exports) (.+)$/gm)) {
    if (how === 'Re-exports') plain.push(target);
    else renamed.push(`\`${name.replace(/\\/g, '')}\` is ${target}`);
  }
  const sentences = [plain.length > 0 ? `Re-exported here: ${plain.join(', ')}.` : '', renamed.length > 0 ? `${renamed.join('; ')}.` : ''];
  return `## References\n\n${sentences.filter(Boolean).join(' ')}\n\n`;
}

/** Overloads listed one under another, without the summary TypeDoc repeats under each when they have no docs of their own. */
function signaturesTogether(section) {
  const summary = /^### [^\n]+\n\n((?:(?!#)[^\n]+\n)+)\n/.exec(section)?.[1];
  if (summary === undefined || !section.includes('#### Call Signature\n')) return section;
  const overloads = [...section.matchAll(/^#### Call Signature\n\n(> [^\n]+)\n\n((?:(?!#)[^\n]+\n)+)\n/gm)];
  if (overloads.some(([, , own]) => own !== summary)) return section;
  const first = section.indexOf('#### Call Signature\n');
  const rest = section.slice(first).replace(/^#### Call Signature\n\n> [^\n]+\n\n(?:(?!#)[^\n]+\n)+\n/gm, '');
  return `${section.slice(0, first)}#### Call Signatures\n\n${overloads.map(([, signature]) => signature).join('\\\n')}\n\n${rest}`;
}

/** A section whose only part is its properties' table: the table without its heading. */
function withoutLoneProperties(section) {
  const headings = section.match(/^#{4} .+$/gm) ?? [];
  return headings.length === 1 && headings[0] === '#### Properties' ? section.replace(/^#### Properties\n\n/m, '') : section;
}

/** Consecutive "Throws" sections, each one list (as `item` makes them): merged into one. */
const THROWS_RUN = /^(#{4,7}) Throws\n\n(?:- [^\n]*\n(?: {2}[^\n]*\n)*)+\n(?:\1 Throws\n\n(?:- [^\n]*\n(?: {2}[^\n]*\n)*)+\n)+/gm;

/** A `@throws` paragraph as a list item: `- ` before its first line, two spaces before the rest. */
function item(paragraph) {
  return `${paragraph.replace(/\n(?=.)/g, '\n  ').replace(/^/, '- ')}\n`;
}

/** Points each `{@link Name}` left unresolved at the one class, interface or type of that name. */
function linkByName(project) {
  const byName = new Map();
  for (const reflection of project.getReflectionsByKind(ReflectionKind.ClassOrInterface | ReflectionKind.TypeAlias)) {
    byName.set(reflection.name, byName.has(reflection.name) ? null : reflection);
  }
  const parts = (comment) => [...(comment?.summary ?? []), ...(comment?.blockTags ?? []).flatMap((tag) => tag.content)];
  for (const reflection of Object.values(project.reflections)) {
    for (const part of parts(reflection.comment)) {
      if (part.kind !== 'inline-tag' || part.tag !== '@link' || part.target instanceof Reflection || typeof part.target === 'string') continue;
      const found = byName.get(part.text.trim());
      if (found) part.target = found;
    }
  }
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_END, (context) => linkByName(context.project), -400);
  app.renderer.on(MarkdownPageEvent.END, (page) => {
    if (page.contents !== undefined) page.contents = compactPage(page.contents);
  });

  const warn = app.logger.warn.bind(app.logger);
  app.logger.warn = (message, ...rest) => (INHERIT_SUMMARY_WARNING.test(String(message)) ? undefined : warn(message, ...rest));

  // Before TypeDoc's own inheritDoc step removes the tag: which reflections inherit from what.
  const inheriting = new Map();
  app.converter.on(
    Converter.EVENT_RESOLVE_END,
    (context) => {
      for (const reflection of Object.values(context.project.reflections)) {
        const reference = inheritDocReference(reflection.comment);
        if (reference !== undefined) inheriting.set(reflection, reference);
      }
    },
    500,
  );
  app.converter.on(
    Converter.EVENT_RESOLVE_END,
    (context) => {
      for (const [target, reference] of inheriting) copyMissingBlockTags(sourceFor(findByReference(context.project, reference), target), target);
      inheriting.clear();
    },
    -500,
  );
  app.converter.on(
    Converter.EVENT_RESOLVE_BEGIN,
    (context) => {
      for (const module of context.project.getReflectionsByKind(ReflectionKind.Module)) {
        const name = importPath(module.name);
        if (name === undefined) app.logger.error(`Module ${module.name} is no subpath of package.json's exports: give it a @module tag naming its import path.`);
        else module.name = name;
      }
      for (const owner of context.project.getReflectionsByKind(ReflectionKind.Class)) {
        const group = owner.name === 'TempFileManager' ? 'Manager' : owner.name.endsWith('Error') ? 'Errors' : undefined;
        if (group === undefined) continue;
        owner.comment ??= new Comment();
        if (!owner.comment.blockTags.some((tag) => tag.tag === '@group')) {
          owner.comment.blockTags.push(new CommentTag('@group', [{ kind: 'text', text: group }]));
        }
      }
    },
    1000,
  );
  app.converter.on(Converter.EVENT_RESOLVE_END, (context) => {
    const project = context.project;
    for (const owner of project.getReflectionsByKind(ReflectionKind.ClassOrInterface)) {
      const thrownOnly = owner.extendedTypes?.some((type) => type.toString() === 'TempFileError') ?? false;
      for (const member of [...(owner.children ?? [])]) {
        const inherited = member.inheritedFrom && !member.overwrites;
        const errorConstructor = thrownOnly && member.kind === ReflectionKind.Constructor;
        if (inherited || errorConstructor) project.removeReflection(member);
        else if (thrownOnly) member.overwrites = undefined; // its own `code` type says it all
      }
    }
  });
}
