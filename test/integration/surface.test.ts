// The main entry is a surface a user reads in one sitting: its declarations as published
// (dist/index.d.ts and the chunks it imports) hold at most 1,000 lines, no declaration file shows
// a member tagged @internal or the names of a class's private members, and what the build's
// pruning leaves still compiles for a consumer with skipLibCheck off. The declarations are built
// here, as `npm run build` makes them (test/helpers/declarations.ts).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script of the repo, without declarations
import { internalMembers, stripBuild } from '../../scripts/strip-internal.mjs';
import { declarationsPackage } from '../helpers/declarations.js';
import { scratchDir } from '../helpers/roots.js';

const repo = path.join(import.meta.dirname, '../..');
let pkg = '';
let dist = '';
beforeAll(() => {
  pkg = declarationsPackage();
  dist = path.join(pkg, 'dist');
});
const strip = stripBuild as (files: Record<string, string>, entries: Set<string>) => Record<string, string>;
const membersTaggedInternal = internalMembers as (text: string, fileName: string) => unknown[];

/** A declaration file and every chunk it imports, directly or through another chunk. */
function withChunks(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = fs.readFileSync(file, 'utf8');
  for (const [, specifier] of text.matchAll(/from '(\.\/[^']+)\.js'/g)) withChunks(path.join(dist, `${specifier}.d.ts`), seen);
  return seen;
}

const lines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').length;

it('the main entry\'s declarations, with the chunks they import, hold at most 1,000 lines', () => {
  const files = [...withChunks(path.join(dist, 'index.d.ts'))];
  const total = files.reduce((sum, file) => sum + lines(file), 0);
  const each = files.map((file) => `${path.basename(file)} ${lines(file)}`).join(', ');
  expect(total, each).toBeLessThanOrEqual(1000);
  // The error catalogue stays out of it: only the classes callers branch on are there.
  const text = files.map((file) => fs.readFileSync(file, 'utf8')).join('\n');
  for (const name of ['FileSystemError', 'UploadLimitError', 'MissingPeerError', 'RootChangedError']) {
    expect(text, name).not.toMatch(new RegExp(`declare class ${name}\\b`));
  }
});

it('no published declaration file shows a member tagged @internal, or a private member by name', () => {
  const files = fs.readdirSync(dist).filter((name) => /\.d\.c?ts$/.test(name));
  expect(files.length).toBeGreaterThan(10);
  for (const name of files) {
    const text = fs.readFileSync(path.join(dist, name), 'utf8');
    expect(membersTaggedInternal(text, name), name).toEqual([]);
    expect(text, name).not.toMatch(/^\s+private\s/m);
  }
  // The `fs` test hook of the manager's options, and the handle's descriptor path, are internal.
  const main = [...withChunks(path.join(dist, 'index.d.ts'))].map((file) => fs.readFileSync(file, 'utf8')).join('\n');
  expect(main).not.toMatch(/^\s+readonly fs\?:/m);
  expect(main).not.toMatch(/^\s+readonly access:/m);
});

it('drops a declaration of a shared chunk that only an internal member named, with the import that named it', () => {
  const entry = path.join('/d', 'index.d.ts');
  const chunk = path.join('/d', 'chunk-X.d.ts');
  const files = {
    [entry]: [
      "import { A as Shown, B as Hidden } from './chunk-X.js';",
      'declare class Handle {',
      '    /** @internal */',
      '    make(from: Hidden): void;',
      '    private secret;',
      '    /** Where it is. */',
      '    readonly place: Shown;',
      '}',
      'export { Handle };',
      '',
    ].join('\n'),
    [chunk]: [
      '/** Public. */',
      'interface Shown { readonly x: number }',
      '/** Only the internal member named it. */',
      'interface Hidden { readonly y: Helper }',
      '/** Only Hidden named it. */',
      'interface Helper { readonly z: string }',
      'export { Shown as A, Hidden as B };',
      '',
    ].join('\n'),
  };
  const out = strip(files, new Set([entry]));
  expect(out[entry]).not.toContain('make(');
  expect(out[entry]).not.toContain('Hidden');
  expect(out[entry]).not.toContain('secret');
  expect(out[entry]).toContain('#private;');
  expect(out[entry]).toContain("import { A as Shown } from './chunk-X.js';");
  expect(out[chunk]).toContain('interface Shown');
  expect(out[chunk]).not.toContain('interface Hidden');
  expect(out[chunk]).not.toContain('interface Helper');
  expect(out[chunk]).toContain('export { Shown as A };');
});

it('a consumer of every entry point compiles against the published declarations, skipLibCheck off', () => {
  const project = scratchDir();
  fs.mkdirSync(path.join(project, 'node_modules'));
  for (const entry of fs.readdirSync(path.join(repo, 'node_modules'))) fs.symlinkSync(path.join(repo, 'node_modules', entry), path.join(project, 'node_modules', entry));
  fs.symlinkSync(pkg, path.join(project, 'node_modules', 'tempfile-manager'));
  fs.writeFileSync(
    path.join(project, 'index.mts'),
    `import { TempFileManager, isTempFileError, SizeLimitError, type TempFile, type SweepReport } from 'tempfile-manager';
import { FileSystemError, StoreError, type DiskErrors, type TempFileErrorCode } from 'tempfile-manager/errors';
import { tempScope } from 'tempfile-manager/express';
import tempFiles from 'tempfile-manager/fastify';
import { s3Store } from 'tempfile-manager/s3';
import { tempScopeFixture, tempScopeFor } from 'tempfile-manager/testing';

export async function use(mgr: TempFileManager): Promise<SweepReport> {
  await using file: TempFile = mgr.file('.txt');
  try {
    await file.keep('/tmp/kept.txt');
  } catch (err) {
    if (err instanceof FileSystemError) console.log(err.syscallCode);
    if (err instanceof SizeLimitError || err instanceof StoreError) throw err;
    if (isTempFileError(err)) console.log(err.code satisfies TempFileErrorCode);
  }
  return mgr.sweep();
}
export const caught: DiskErrors | undefined = undefined;
export const adapters = [tempScope, tempFiles, s3Store] as const;
export const testing = [tempScopeFixture(), tempScopeFor] as const;
`,
  );
  const config = { compilerOptions: { target: 'es2022', lib: ['es2022', 'esnext.disposable'], module: 'nodenext', moduleResolution: 'nodenext', types: ['node'], strict: true, skipLibCheck: false, noEmit: true }, files: ['index.mts'] };
  fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify(config));
  const tsc = spawnSync(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', project], { encoding: 'utf8', timeout: 120_000 });
  expect(tsc.status, `${tsc.stdout}${tsc.stderr}`).toBe(0);
});
