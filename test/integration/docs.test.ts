// The docs say what the code does: every option, environment variable, error code and on-disk
// name the README and docs/ mention exists in src/ as written there; one HTTP status per error
// code across the pages; relative links to files that exist; an API reference a person can read.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSessionName } from '../../src/base/layout.js';
import { repo, repoFiles } from '../helpers/repo-files.js';
// @ts-expect-error: a plain script of the project, without types
import { brokenLinks as findBrokenLinks } from '../../scripts/check-links.mjs';

/** A link scripts/check-links.mjs found broken. */
interface BrokenLink { page: string; line: number; target: string; problem: string }
const brokenLinks = findBrokenLinks as (repo: string) => BrokenLink[];

const read = (file: string) => fs.readFileSync(path.join(repo, file), 'utf8');

/** The pages a user reads: the README, docs/*.md (not the generated API pages), the examples' READMEs. */
const pages = [
  'README.md',
  ...fs.readdirSync(path.join(repo, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
  ...fs.readdirSync(path.join(repo, 'examples')).map((d) => `examples/${d}/README.md`).filter((f) => fs.existsSync(path.join(repo, f))),
].map((file) => ({ file, text: read(file) }));

/** Every .ts/.mjs/.js file under `dir`, as text. */
function sources(dir: string): string[] {
  return repoFiles(dir)
    .filter((file) => /\.(ts|m?js)$/.test(file))
    .map(read);
}

/** The keys of `interface <name> { ... }` in a source file, at the first level of the body. */
function interfaceKeys(source: string, name: string): { key: string; internal: boolean }[] {
  const start = source.search(new RegExp(`export interface ${name}( extends [\\w, ]+)? \\{`));
  expect(start, `interface ${name}`).toBeGreaterThanOrEqual(0);
  const body = source.slice(start, source.indexOf('\n}', start));
  return [...body.matchAll(/(\/\*\*(?:(?!\*\/)[\s\S])*\*\/\s*)?readonly (\w+)\??:/g)].map((m) => ({
    key: m[2]!,
    internal: (m[1] ?? '').includes('@internal'),
  }));
}

/** Environment variables read in `files`: `process.env.X` and `process.env['X']`. */
function envReads(files: string[]): Set<string> {
  return new Set(files.flatMap((text) => [...text.matchAll(/process\.env(?:\.([A-Z][A-Z0-9_]*)|\[['"]([A-Z][A-Z0-9_]*)['"]\])/g)].map((m) => m[1] ?? m[2]!)));
}

/** The rows of every markdown table in `text` whose header's first cell is `header`, as cells. */
function tables(text: string, header: RegExp): string[][][] {
  const found: string[][][] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const cells = splitRow(lines[i]!);
    if (!cells || !header.test(cells[0]!) || !/^\|[-| :]+\|$/.test(lines[i + 1] ?? '')) continue;
    const rows: string[][] = [];
    for (let j = i + 2; j < lines.length && lines[j]!.startsWith('|'); j++) rows.push(splitRow(lines[j]!)!);
    found.push(rows);
  }
  return found;
}

function splitRow(line: string): string[] | undefined {
  if (!line.startsWith('|')) return undefined;
  return line.slice(1, -1).split(/(?<!\\)\|/).map((cell) => cell.trim());
}

const optionsSource = read('src/root/options.ts');
const managerOptions = interfaceKeys(optionsSource, 'TempFileManagerOptions');
const uploadOptions = [
  ...interfaceKeys(read('src/uploads/upload-options.ts'), 'UploadOptions'),
  ...interfaceKeys(read('src/adapters/express.ts'), 'ExpressUploadOptions'),
  ...interfaceKeys(read('src/adapters/express.ts'), 'ExpressTempScopeOptions'),
  ...interfaceKeys(read('src/adapters/fastify.ts'), 'TempFilesPluginOptions'),
  ...interfaceKeys(read('src/uploads/unread-body.ts'), 'DrainOptions'),
  ...interfaceKeys(read('src/s3/store.ts'), 'S3StoreOptions'),
  ...interfaceKeys(read('src/s3/store.ts'), 'S3SweepOptions'),
  ...interfaceKeys(read('src/azure/store.ts'), 'AzureStoreOptions'),
  ...interfaceKeys(read('src/azure/store.ts'), 'AzureSweepOptions'),
  ...interfaceKeys(read('src/tus/tus-store.ts'), 'TusStoreOptions'),
];

describe('the docs match the code', () => {
  it('docs/options.md documents every public TempFileManagerOptions key, and only those', () => {
    const [rows] = tables(read('docs/options.md'), /^option$/);
    expect(rows, 'an options table in docs/options.md').toBeDefined();
    const documented = rows!.map((row) => /^`(\w+)`$/.exec(row[0]!)?.[1]);
    const publicKeys = managerOptions.filter((o) => !o.internal).map((o) => o.key);
    expect(publicKeys.length).toBeGreaterThanOrEqual(9);
    expect(documented.sort()).toEqual([...publicKeys].sort());
  });

  it('every option named in an options table or options paragraph of any page exists', () => {
    const known = new Set([...managerOptions, ...uploadOptions].map((o) => o.key));
    for (const { file, text } of pages) {
      for (const rows of tables(text, /^option$/i)) {
        for (const row of rows) {
          const name = /^`(\w+)`/.exec(row[0]!)?.[1];
          expect(name && known.has(name), `${file}: option ${row[0]}`).toBe(true);
        }
      }
      for (const paragraph of text.split('\n\n').filter((p) => /^Options\b/.test(p))) {
        for (const [, name] of paragraph.matchAll(/`([a-z][A-Za-z]+)`(?!\()/g)) {
          expect(known.has(name!), `${file}: option \`${name}\` in "${paragraph.slice(0, 40)}…"`).toBe(true);
        }
      }
    }
  });

  it('every environment variable a page mentions is read by the code', () => {
    const library = envReads(sources('src'));
    const elsewhere = envReads([...sources('examples'), ...sources('scripts'), ...sources('test'), ...sources('bench'), ...sources('chaos')]);
    // Read by dependencies or tools, not by this code: `debug`'s namespaces, libuv's thread pool; the switch of the
    // portable no-/proc code path, which the liveness and removal code reads.
    const external = new Set(['DEBUG', 'TEMPFILE_MANAGER_NO_PROC', 'CI', 'TMPDIR', 'UV_THREADPOOL_SIZE']);
    expect(library).toContain('TEMPFILE_MANAGER_HOST_ID');
    const mentioned = new Map<string, string>();
    for (const { file, text } of pages) {
      const names = [
        ...[...text.matchAll(/`([A-Z][A-Z0-9_]*)=[^`]*`/g)].map((m) => m[1]!), // `NAME=value`
        ...[...text.matchAll(/`(TEMPFILE_[A-Z0-9_]+)`/g)].map((m) => m[1]!), // the library's own names
        ...[...text.matchAll(/name: ([A-Z][A-Z0-9_]+)\b/g)].map((m) => m[1]!), // a Kubernetes env entry
      ];
      for (const name of names) mentioned.set(name, file);
    }
    expect(mentioned.size).toBeGreaterThan(0);
    for (const [name, file] of mentioned) {
      const read = name.startsWith('TEMPFILE_') ? library.has(name) : library.has(name) || elsewhere.has(name);
      expect(read || external.has(name), `${file} mentions ${name}, which nothing reads`).toBe(true);
    }
  });

  it('every error code a page mentions exists, and each has one HTTP status across the pages', () => {
    const codes = new Set([...read('src/base/error-class.ts').matchAll(/'(ERR_TEMPFILE_[A-Z_]+)'/g)].map((m) => m[1]!));
    const statuses = new Map<string, Set<string>>();
    const note = (code: string, status: string) => statuses.set(code, (statuses.get(code) ?? new Set()).add(status));
    for (const { file, text } of pages) {
      for (const [, code] of text.matchAll(/(ERR_TEMPFILE_[A-Z_]+)/g)) expect(codes.has(code!), `${file}: ${code}`).toBe(true);
      for (const rows of tables(text, /^code$/)) {
        for (const row of rows) {
          const code = /`(ERR_TEMPFILE_\w+)`/.exec(row[0]!)?.[1];
          const status = /^(\d{3}|none)\b/.exec(row[1] ?? '')?.[1];
          if (code && status) note(code, status);
        }
      }
      for (const [, code, status] of text.matchAll(/(ERR_TEMPFILE_[A-Z_]+): (\d{3})\b/g)) note(code!, status!);
    }
    // An abort's status is 499 (the client closed the request) wherever a page gives one.
    expect([...(statuses.get('ERR_TEMPFILE_ABORTED') ?? [])].every((status) => status === '499')).toBe(true);
    for (const [code, seen] of statuses) expect([...seen], `${code} has more than one status in the docs`).toHaveLength(1);
  });

  it('the session name format in the docs is the one layout.ts parses', () => {
    const sample: Record<string, string> = {
      host: 'web-1', pid: '4242', thread: '4250', start: 'ab12cd34.99', boot: 'ab12cd34', pidns: '1x2y3z', ticks: '99',
      created: 'mf3k2x1a', random: 'cd'.repeat(8),
    };
    let checked = 0;
    for (const { file, text } of pages) {
      for (const [name] of text.matchAll(/session_<host>[^`]*/g)) {
        checked += 1;
        const filled = name.replace(/<([^>]+)>/g, (_, part: string) => sample[part.replace('process start', 'start')] ?? `?${part}?`);
        expect(parseSessionName(filled), `${file}: ${name}`).toMatchObject({
          host: sample.host, created: parseInt(sample.created!, 36), random: sample.random,
        });
      }
    }
    expect(checked).toBeGreaterThanOrEqual(2);
  });

  it('links to the project\'s own files are relative and reach a file (and a heading) that exists', () => {
    const problems = brokenLinks(repo).map(({ page, line, target, problem }) => `${page}:${line}: ${target}: ${problem}`);
    expect(problems).toEqual([]);
    // npm resolves a README's relative links against `repository`.
    const pkg = JSON.parse(read('package.json')) as Record<string, unknown>;
    expect(pkg).toMatchObject({
      repository: { type: 'git', url: 'git+https://github.com/tempfile-manager/tempfile-manager.git' },
      bugs: { url: 'https://github.com/tempfile-manager/tempfile-manager/issues' },
      homepage: 'https://github.com/tempfile-manager/tempfile-manager#readme',
    });
  });

  it('the link check fails on an absolute link into the repository, a missing file and a missing heading', () => {
    const fake = fs.mkdtempSync(path.join(os.tmpdir(), 'links-'));
    try {
      fs.mkdirSync(path.join(fake, 'docs'));
      fs.mkdirSync(path.join(fake, 'examples/one'), { recursive: true });
      fs.writeFileSync(path.join(fake, 'docs/a.md'), '# A page\n\n## Its `part` (two)\n');
      fs.writeFileSync(path.join(fake, 'examples/one/README.md'), 'See [a](../../docs/a.md#its-part-two) and [top](#nothing).\n');
      fs.writeFileSync(path.join(fake, 'README.md'), [
        '# Readme', '',
        '[ok](docs/a.md) [ok too](docs/a.md#a-page) [other site](https://nodejs.org/api/fs.html)',
        '[absolute](https://github.com/tempfile-manager/tempfile-manager/blob/main/docs/a.md)',
        '[gone](docs/gone.md) [no heading](docs/a.md#gone) [outside](../elsewhere.md)',
        '```md', '[in code](docs/gone.md)', '```', '',
      ].join('\n'));
      expect(brokenLinks(fake).map(({ page, line, target }) => `${page}:${line} ${target}`)).toEqual([
        'README.md:4 https://github.com/tempfile-manager/tempfile-manager/blob/main/docs/a.md',
        'README.md:5 docs/gone.md',
        'README.md:5 docs/a.md#gone',
        'README.md:5 ../elsewhere.md',
        'examples/one/README.md:1 #nothing',
      ]);
    } finally {
      fs.rmSync(fake, { recursive: true, force: true });
    }
  });

  it('an @example holds only code: no {@link} nor prose the API reference would show raw inside its code block', () => {
    const found: string[] = [];
    for (const file of repoFiles('src').filter((name) => name.endsWith('.ts'))) {
      const text = read(file);
      for (const comment of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
        const lines = comment[0].slice(3, -2).split('\n').map((line) => line.replace(/^\s*\* ?/, ''));
        for (const [, example] of lines.join('\n').matchAll(/@example\b([\s\S]*?)(?=\n@\w|$)/g)) {
          // TypeDoc fences an @example without a fence of its own whole: all of it must be code.
          const code = /```/.test(example!) ? [...example!.matchAll(/```[\s\S]*?```/g)].map((m) => m[0]).join('\n') : example!;
          const prose = /```/.test(example!) ? example!.replace(/```[\s\S]*?```/g, '').trim() : '';
          const at = `${file}:${text.slice(0, comment.index).split('\n').length}`;
          if (code.includes('{@link')) found.push(`${at}: {@link} inside an @example's code`);
          if (/^\*\*\w/m.test(code) || prose !== '') found.push(`${at}: prose inside an @example: move it above the tag`);
        }
      }
    }
    expect(found).toEqual([]);
  });

  it('the API reference is a page a person reads: one per entry point, named by its import path, no raw {@link}, no inherited Error members, no test-only types, at most 3,250 lines (each method says what it owns, throws and risks, once: what only repeats the signature is left out)', () => {
    const files = repoFiles('docs/api');
    // Each module is named by the path it is imported from (scripts/typedoc-plugin.mjs), not by its file under src/.
    expect(files.sort()).toEqual(['docs/api/index.md', 'docs/api/tempfile-manager.md', 'docs/api/tempfile-manager/azure.md', 'docs/api/tempfile-manager/diagnostics.md', 'docs/api/tempfile-manager/errors.md', 'docs/api/tempfile-manager/express.md', 'docs/api/tempfile-manager/fastify.md', 'docs/api/tempfile-manager/s3.md', 'docs/api/tempfile-manager/testing.md', 'docs/api/tempfile-manager/tus.md', 'docs/api/tempfile-manager/web.md']);
    expect(read('docs/api/index.md')).not.toContain('adapters/');
    const text = files.map(read).join('\n');
    expect(text, 'a {@link} TypeDoc left as it was written (inside an @example\'s code)').not.toContain('{@link');
    expect(text.split('\n').length).toBeLessThanOrEqual(3250); // 2,487 before the presigned uploads (about 240 for the store's, 190 for the routes') and tempfile-manager/azure (about 180)
    expect(text, 'a heading per @throws, or a Returns that repeats the signature').not.toMatch(/^#+ Throws\n\n[^#]*\n#+ Throws$|^#+ Returns\n\n[^\n]+\n\n#/m);
    expect(text).not.toMatch(/Inherited from|captureStackTrace|stackTraceLimit|prepareStackTrace/);
    expect(text).not.toMatch(/\bFileSystem\b(?!Error)/);
    expect(text).not.toContain('@packageDocumentation');
    // Members tagged @internal (the adapters' hooks, the handles' ownership and descriptors) are not the reader's.
    for (const member of ['writeAs', 'watchWriteFailures', 'abandon', 'adopt', 'forget', 'identity', 'access']) {
      expect(text, member).not.toMatch(new RegExp(`^#+ ${member}(\\(\\))?$`, 'm'));
    }
    const main = read('docs/api/tempfile-manager.md');
    expect(main).toMatch(/^# tempfile-manager\n\nSafe, scoped temporary files/m);
    expect(main).toMatch(/^### withScope\(\)|^##### withScope\(\)/m);
    expect(main).toMatch(/^### isTempFileError\(\)/m);
  });

  it('in the API reference, the manager\'s forwarders link the scope\'s member that says what they own and throw, and DiskErrors is described once, in tempfile-manager/errors', () => {
    const main = read('docs/api/tempfile-manager.md');
    const manager = main.slice(main.indexOf('\n## Manager\n'), main.indexOf('\n## Classes\n'));
    for (const method of ['file', 'dir', 'write', 'scope', 'withScope']) {
      const section = manager.split(/^(?=##### )/m).find((part) => part.startsWith(`##### ${method}()`));
      expect(section, `TempFileManager.${method}() in docs/api`).toBeDefined();
      expect(section, `TempFileManager.${method}()`).toMatch(new RegExp(`^Throws: see \\[TempScope\\.${method}\\]\\(#`, 'm'));
      expect(section, `TempFileManager.${method}()`).not.toContain('inheritDoc');
    }
    const scopes = main.slice(main.indexOf('\n### TempScope\n'));
    const file = scopes.split(/^(?=##### )/m).find((part) => part.startsWith('##### file()'))!;
    expect(file).toMatch(/\*\*Ownership:\*\*/);
    expect(file).toContain('[InvalidNameError](#invalidnameerror)');
    expect(file).toContain('See [DiskErrors](tempfile-manager/errors.md#diskerrors)');
    expect(read('docs/api/tempfile-manager/errors.md')).toMatch(/^### DiskErrors$[\s\S]*?\[RootChangedError\]\(#rootchangederror\) `ERR_TEMPFILE_ROOT_CHANGED`/m);
  });
});

describe('the docs are read in minutes', () => {
  const docs = pages.filter(({ file }) => file === 'README.md' || /^docs\/[^/]+\.md$/.test(file));

  it('the README has at most 250 lines, and a line for each page of docs/', () => {
    const readme = read('README.md');
    expect(readme.trimEnd().split('\n').length).toBeLessThanOrEqual(250);
    const documentation = readme.slice(readme.indexOf('\n## Documentation\n'), readme.indexOf('\n## ', readme.indexOf('\n## Documentation\n') + 1));
    for (const { file } of docs.filter((p) => p.file !== 'README.md')) {
      expect(documentation, `the README's Documentation has a line for ${file}`).toMatch(new RegExp(`^- \\[${file}\\]\\(${file}\\): .+\\?`, 'm'));
    }
  });

  it('no line of README.md or docs/*.md is over 400 characters, table rows included', () => {
    expect(docs.length).toBeGreaterThan(20);
    const long = docs.flatMap(({ file, text }) => text.split('\n').map((line, i) => ({ at: `${file}:${i + 1}`, length: line.length })).filter((l) => l.length > 400));
    expect(long.map((l) => `${l.at} (${l.length} characters)`)).toEqual([]);
  });

  it('docs/benchmarks.md, the summary, has at most 400 lines', () => {
    expect(read('docs/benchmarks.md').trimEnd().split('\n').length).toBeLessThanOrEqual(400);
  });
});
