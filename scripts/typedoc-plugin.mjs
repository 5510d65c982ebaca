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
//   package.json's `exports` has it), not by its file under src/ (`adapters/express`).
import fs from 'node:fs';
import { Comment, CommentTag, Converter, ReflectionKind } from 'typedoc';

const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/** The import path of an entry module TypeDoc named after its file (`adapters/express`): `<package>/<its last segment>`, if the package exports that subpath. */
function importPath(moduleName) {
  if (moduleName === pkg.name || moduleName.startsWith(`${pkg.name}/`)) return moduleName;
  const subpath = `./${moduleName.split('/').at(-1)}`;
  return Object.hasOwn(pkg.exports, subpath) ? `${pkg.name}/${subpath.slice(2)}` : undefined;
}

/** @param {import('typedoc').Application} app */
export function load(app) {
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
