// The links of the pages a user reads (README.md, docs/*.md, examples/*/README.md) to the
// project's own files: relative, so that they work in the repository, in a checkout and in the
// packed package (npm resolves a README's relative links against `repository`), and reaching a
// file that exists, and a heading of it for an anchor. `node scripts/check-links.mjs` prints each
// broken link and exits 1; test/integration/docs.test.ts runs it too.
import fs from 'node:fs';
import path from 'node:path';

/** The project's repository, as package.json names it: links to it must be relative. */
export const REPOSITORY = /^https?:\/\/(www\.)?github\.com\/tempfile-manager\/tempfile-manager(\/|#|$)/i;

/** The pages whose links are checked, relative to `repo`. */
export function linkedPages(repo) {
  const docs = fs.readdirSync(path.join(repo, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`);
  const examples = fs.readdirSync(path.join(repo, 'examples')).sort().map((d) => `examples/${d}/README.md`);
  return ['README.md', ...docs, ...examples].filter((page) => fs.existsSync(path.join(repo, page)));
}

/** The text of a page without its fenced code blocks and inline code, where `](` is not a link. */
function prose(text) {
  return text.replace(/^(```|~~~)[\s\S]*?^\1/gm, (block) => block.replace(/[^\n]/g, ' ')).replace(/`[^`\n]*`/g, (code) => ' '.repeat(code.length));
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
export function headingAnchors(text) {
  const anchors = new Set();
  const seen = new Map();
  for (const [, heading] of prose(text.replace(/`([^`\n]*)`/g, '$1')).matchAll(/^#{1,6} +(.+?) *#* *$/gm)) {
    const base = heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** Every `[text](target)` and `[label]: target` of a page, with the line it is on. */
function links(text) {
  const found = [];
  const visible = prose(text);
  for (const match of visible.matchAll(/\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)|^\s*\[[^\]]+\]:\s*(\S+)/gm)) {
    found.push({ target: match[1] ?? match[2], line: visible.slice(0, match.index).split('\n').length });
  }
  return found;
}

/**
 * Every broken link of `repo`'s pages: `{ page, line, target, problem }`. A link to the project's
 * repository must be relative; a relative link must reach a file or directory that exists inside
 * `repo`; an anchor must be a heading of the page it points into.
 */
export function brokenLinks(repo) {
  const problems = [];
  for (const page of linkedPages(repo)) {
    const text = fs.readFileSync(path.join(repo, page), 'utf8');
    for (const { target, line } of links(text)) {
      const problem = linkProblem(repo, page, text, target);
      if (problem) problems.push({ page, line, target, problem });
    }
  }
  return problems;
}

function linkProblem(repo, page, text, target) {
  if (target === '') return 'an empty link';
  if (REPOSITORY.test(target)) return 'an absolute link to the project\'s repository: make it relative to the page';
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // another site, or mailto:
  const [file, anchor] = decodeURI(target).split('#');
  const resolved = file === '' ? path.join(repo, page) : path.resolve(path.dirname(path.join(repo, page)), file);
  if (path.relative(repo, resolved).startsWith('..')) return 'a relative link that leaves the repository';
  if (!fs.existsSync(resolved)) return `no file ${path.relative(repo, resolved)}`;
  if (anchor === undefined || anchor === '' || !resolved.endsWith('.md')) return undefined;
  const into = file === '' ? text : fs.readFileSync(resolved, 'utf8');
  return headingAnchors(into).has(anchor) ? undefined : `no heading #${anchor} in ${path.relative(repo, resolved)}`;
}

if (process.argv[1] === import.meta.filename) {
  const problems = brokenLinks(path.join(import.meta.dirname, '..'));
  for (const { page, line, target, problem } of problems) console.log(`${page}:${line}: ${target}: ${problem}`);
  console.log(problems.length === 0 ? 'links: all relative and all reach their target' : `links: ${problems.length} broken`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}
