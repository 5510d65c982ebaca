// A TypeDoc plugin for docs/api, so that a class's entry lists what a reader needs:
// - what the class itself declares, not what it inherits: every error class would otherwise
//   repeat Error's members (message, stack, captureStackTrace, ...) and TempFileError's; its
//   "Extends" line links to the parent instead;
// - no constructors of TempFileError's subclasses: the library throws them, callers branch on
//   `code` or `instanceof` and never make one (the classes and their types are unchanged), nor
//   the "Overrides TempFileError.code" note under each subclass's narrowed `code`;
// - TempFileManager, where a reader starts, in a group of its own ahead of the other classes
//   ("Manager"), and the error classes (every class named `...Error`) in one after the rest
//   ("Errors"), in the order of typedoc.json's groupOrder.
import { Comment, CommentTag, Converter, ReflectionKind } from 'typedoc';

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(
    Converter.EVENT_RESOLVE_BEGIN,
    (context) => {
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
