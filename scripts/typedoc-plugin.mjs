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
//   by the member's, as TypeDoc intends: its warning that it will be is not printed.
import fs from 'node:fs';
import { Comment, CommentTag, Converter, ReflectionKind } from 'typedoc';

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

/** @param {import('typedoc').Application} app */
export function load(app) {
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
