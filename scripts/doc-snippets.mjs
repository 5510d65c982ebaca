// The TypeScript a reader copies from the docs: every ```ts block of README.md and docs/*.md, and
// the README's ```js blocks too (its TypeScript section compiles them as they are). Each becomes a
// module of a project built with the README's tsconfig (strict), beside one file declaring what
// the fragments take as given (a manager, a request, a queue). Used by scripts/check-consumers.mjs
// (the packed package, several TypeScript versions) and test/integration/doc-types.test.ts (this
// checkout, this TypeScript).
import fs from 'node:fs';
import path from 'node:path';

/** The names a fragment of the docs uses without declaring them, declared once for all. */
export const SNIPPET_CONTEXT = `import type { HandoffTicket, TempFile, TempFileManager, TempScope } from 'tempfile-manager';
import type { IncomingMessage } from 'node:http';
import type { pipeline as streamPipeline } from 'node:stream/promises';

declare global {
  const mgr: TempFileManager;
  const req: IncomingMessage & { tmp: TempScope };
  const queue: { add(name: string, data: { ticket: HandoffTicket }): Promise<unknown> };
  const job: { data: { ticket: HandoffTicket } };
  const userId: string;
  const video: TempFile;
  const progress: { set(bytes: number): void };
  const pipeline: typeof streamPipeline;
  const fs: typeof import('node:fs/promises');
  const TMP_ROOT: string;
  function transcode(path: string, meta?: unknown): Promise<void>;
  function extractFrames(video: string, into: string): Promise<void>;
  function makeThumbnail(video: string, thumb: string): Promise<void>;
  function renderPages(json: string, into: string): Promise<void>;
  function assemblePdf(pages: string, pdf: string): Promise<void>;
}
export {};
`;

/** The tsconfig.json the README shows for `await using` on Node 20 and 22, as written there. */
export function readmeTsconfig(repo) {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  const match = /<!-- tsconfig-for-using -->\s*```json\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error('README.md has no tsconfig block after <!-- tsconfig-for-using -->');
  return match[1];
}

/**
 * Every snippet: `{ page, line, code, js }`, `line` being the fence's line in `page`; `js` for a
 * JavaScript block, checked as JavaScript (`checkJs`: strict, without annotations to demand).
 */
export function docSnippets(repo) {
  const pages = ['README.md', ...fs.readdirSync(path.join(repo, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
  const snippets = [];
  for (const page of pages) {
    const text = fs.readFileSync(path.join(repo, page), 'utf8');
    const fences = page === 'README.md' ? /^```(?:ts|typescript|js|javascript)\n([\s\S]*?)^```/gm : /^```(?:ts|typescript)\n([\s\S]*?)^```/gm;
    for (const match of text.matchAll(fences)) {
      const js = /^```(js|javascript)\n/.test(match[0]);
      snippets.push({ page, line: text.slice(0, match.index).split('\n').length, code: match[1], js });
    }
  }
  return snippets;
}

/**
 * Writes the snippets into `project`: their `src/`, a package.json of type module, and two
 * configurations to give `tsc -p`: `tsconfig.json`, the README's as written (with `noEmit`), for
 * the TypeScript blocks; `tsconfig.js.json`, the same with `checkJs` for the JavaScript blocks
 * (without `noImplicitAny`: JavaScript has no annotations to demand; the libraries' declarations
 * were checked by the first). Returns the configurations,
 * and the snippet of each source file, to map tsc's errors back to a page and line.
 */
export function writeSnippetProject(repo, project) {
  fs.mkdirSync(path.join(project, 'src'), { recursive: true });
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'doc-snippets', private: true, type: 'module' }));
  const readme = JSON.parse(readmeTsconfig(repo));
  const ts = { ...readme, compilerOptions: { ...readme.compilerOptions, noEmit: true } };
  const js = { ...ts, compilerOptions: { ...ts.compilerOptions, allowJs: true, checkJs: true, noImplicitAny: false, skipLibCheck: true }, include: ['src/*.js', 'src/snippet-context.ts'] };
  fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify(ts, null, 2));
  fs.writeFileSync(path.join(project, 'tsconfig.js.json'), JSON.stringify(js, null, 2));
  fs.writeFileSync(path.join(project, 'src/snippet-context.ts'), SNIPPET_CONTEXT);
  const files = new Map();
  for (const snippet of docSnippets(repo)) {
    const name = `src/${snippet.page.replace(/[/.]/g, '-')}-${snippet.line}.${snippet.js ? 'js' : 'ts'}`;
    // `export {}` makes each a module of its own: top-level await, and no name clash between two.
    fs.writeFileSync(path.join(project, name), `${snippet.code}\nexport {};\n`);
    files.set(name, snippet);
  }
  return { configs: ['tsconfig.json', 'tsconfig.js.json'].map((c) => path.join(project, c)), files };
}

/** tsc's output with each snippet file's name replaced by its page and line there. */
export function explainErrors(output, files) {
  return output.replace(/src\/[\w-]+\.[jt]s\((\d+),(\d+)\)/g, (whole, line, column) => {
    const snippet = files.get(whole.slice(0, whole.indexOf('(')));
    return snippet ? `${snippet.page}:${snippet.line + Number(line)}:${column}` : whole;
  });
}
