// Compiles TypeScript consumers of the packed package as users get it: the tarball `npm pack`
// makes, installed from the registry into scratch projects, compiled with skipLibCheck off so that
// the package's own .d.ts and .d.cts files are checked too.
//
// - Each entry alone: a project with the tarball, @types/node and only the optional peers the docs
//   name for that entry (scripts/entries.json), a consumer of that entry compiled with the README's
//   tsconfig as written, with each TypeScript version, with noUncheckedSideEffectImports on
//   TypeScript 5.9 (6 and later have it on; it only adds errors, so 5.9 runs once, with it):
//   declarations that import another entry's peer, even for its side effects only, fail here.
// - Every entry together, every peer installed, on the first and the last version given: a consumer of each entry under every module
//   resolution (node10 with module commonjs and no esModuleInterop; node16 and nodenext, ESM and
//   CJS; bundler); the README's tsconfig example built as written (an `await using` consumer), run
//   on this Node, its files checked removed; and every TypeScript block of the README and docs/
//   under that tsconfig (scripts/doc-snippets.mjs).
//
// An error inside another package's own declarations, under the README's tsconfig, fails the check
// unless the README's TypeScript section names that package (srvx, whose declarations
// @tus/server's import, asks for aws-lambda's), with its workaround. Under the other module
// resolutions such errors (fastify's `NoInfer` before TypeScript 5.4, pino's default import
// without esModuleInterop) are reported, not counted.
//
// Each TypeScript version is installed once, in one project of npm aliases; every project installs
// through npm's one cache, preferring what it holds; the compilers run two at a time.
//
//   node scripts/check-consumers.mjs [--ts 5.2+25,5.6,5.9,6,latest]
//
// TypeScript[+@types/node], else the latest @types/node. A version given an older @types/node
// (5.2, the first with `using`, compiles @types/node 25 and older, as the README says) checks the
// all-entries project only: a user of it pins @types/node, whatever the entry.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { explainErrors, readmeTsconfig, writeSnippetProject } from './doc-snippets.mjs';

const repo = path.join(import.meta.dirname, '..');
const argAfter = (flag) => {
  const at = process.argv.indexOf(flag);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const specs = (argAfter('--ts') ?? '5.2+25,5.6,5.9,6,latest').split(',').map((spec) => {
  const [version, typesNode = 'latest'] = spec.split('+');
  return { spec, version, typesNode };
});
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));
const devVersion = (name) => pkg.devDependencies[name];

/** The entries of package.json's exports, each with the optional peers its docs tell a user to install with it. */
const entries = JSON.parse(fs.readFileSync(path.join(repo, 'scripts/entries.json'), 'utf8'));

/** A consumer of each entry. */
const CONSUMERS = {
  index: {
    code: `import { TempFileManager, isTempFileError, type TempFile } from 'tempfile-manager';

export async function use(): Promise<number> {
  const mgr = new TempFileManager({ sweepOnStart: false });
  await using file: TempFile = mgr.file('.txt');
  const size = await mgr.withScope(async (scope) => (await scope.write('x')).size ?? 0);
  await file.remove();
  await mgr.close();
  return size;
}
export const check: (e: unknown) => boolean = isTempFileError;
`,
  },
  errors: {
    code: `import { FileSystemError, TempFileError, type DiskErrors, type TempFileErrorCode } from 'tempfile-manager/errors';

export const syscallCode = (e: DiskErrors): string | undefined => (e instanceof FileSystemError ? e.syscallCode : undefined);
export const code = (e: unknown): TempFileErrorCode | undefined => (e instanceof TempFileError ? e.code : undefined);
`,
  },
  diagnostics: {
    code: `import { CHANNELS, TRACING_CHANNELS } from 'tempfile-manager/diagnostics';

export const names: string[] = [...Object.values(CHANNELS), ...Object.values(TRACING_CHANNELS)];
`,
  },
  testing: {
    code: `import { tempScopeFixture, tempScopeFor, type TempScopeFixture } from 'tempfile-manager/testing';

export const fixture: TempScopeFixture = tempScopeFixture();
export const helper = tempScopeFor;
`,
  },
  web: {
    code: `import { handleUpload, refusalResponse, type WebUpload, type WebUploadOptions } from 'tempfile-manager/web';

export const options: WebUploadOptions = { field: 'file', maxBytes: 2 ** 20, accept: ['image/*'] };
export function route(request: Request): Promise<Response> {
  return handleUpload(request, options, ({ file, fields }: WebUpload) => Response.json({ size: file?.size ?? 0, fields }));
}
export const refusal: (error: unknown) => Response | undefined = refusalResponse;
`,
  },
  express: {
    code: `import express from 'express';
import { TempFileManager } from 'tempfile-manager';
import { tempScope, upload } from 'tempfile-manager/express';

export const app = express();
app.post('/videos', tempScope(new TempFileManager({ sweepOnStart: false })), upload({ field: 'video', maxBytes: 2 ** 31, accept: ['video/*'] }), async (req, res) => {
  if (!req.file) throw new Error('no file');
  const note = await req.tmp.write('seen');
  res.status(202).json({ ticket: await req.file.handoff({ ttlMs: 3_600_000 }), note: note.path });
});
`,
  },
  fastify: {
    code: `import Fastify from 'fastify';
import { TempFileManager } from 'tempfile-manager';
import tempFiles, { tempFiles as named } from 'tempfile-manager/fastify';

export const app = Fastify();
await app.register(tempFiles, { manager: new TempFileManager({ sweepOnStart: false }) });
app.post('/videos', async (request, reply) => {
  const { file } = await request.saveUploads({ field: 'video', maxBytes: 2 ** 31, accept: ['video/*'] });
  return reply.code(202).send(await file.handoff({ ttlMs: 3_600_000 }));
});
export const same: boolean = tempFiles === named;
`,
  },
  s3: {
    code: `import { S3Client } from '@aws-sdk/client-s3';
import { TempFileManager } from 'tempfile-manager';
import { s3Store, type S3Store, type S3StoreOptions } from 'tempfile-manager/s3';

const options: S3StoreOptions = { client: new S3Client({ region: 'eu-west-1' }), bucket: 'uploads', prefix: 'handoff/' };
export const store: S3Store = s3Store(options);
export const mgr = new TempFileManager({ sweepOnStart: false, stores: [store] });
`,
  },
  azure: {
    code: `import { ContainerClient } from '@azure/storage-blob';
import { TempFileManager } from 'tempfile-manager';
import { azureStore, type AzureStore, type AzureStoreOptions } from 'tempfile-manager/azure';

const options: AzureStoreOptions = { client: new ContainerClient('https://account.blob.core.windows.net/uploads') };
export const store: AzureStore = azureStore(options);
export const mgr = new TempFileManager({ sweepOnStart: false, stores: [store] });
`,
  },
  tus: {
    code: `import * as http from 'node:http';
import { Server } from '@tus/server';
import { TempFileManager } from 'tempfile-manager';
import { tusStore, type TusStore, type TusStoreOptions } from 'tempfile-manager/tus';

export async function serve(): Promise<http.Server> {
  const manager = new TempFileManager({ sweepOnStart: false });
  const options: TusStoreOptions = { manager, maxBytes: 2 ** 20, onUploadFinish: (file, upload) => file.keep(\`/srv/uploads/\${upload.id}\`) };
  const { datastore, locker }: TusStore = await tusStore(options);
  const server = new Server({ path: '/files', datastore, locker });
  return http.createServer((req, res) => void server.handle(req, res));
}
`,
  },
};

const subpath = (name) => (name === 'index' ? 'tempfile-manager' : `tempfile-manager/${name}`);

/** The all-entries consumer: every entry but tus in one file (the tus one is a file of its own, ESM only). */
const allEntriesCode = `import { TempFileManager, isTempFileError, type TempFile } from 'tempfile-manager';
import { FileSystemError, type DiskErrors } from 'tempfile-manager/errors';
import { CHANNELS } from 'tempfile-manager/diagnostics';
import { tempScope } from 'tempfile-manager/express';
import tempFiles, { tempFiles as named } from 'tempfile-manager/fastify';
import { handleUpload, refusalResponse, type WebUpload, type WebUploadOptions } from 'tempfile-manager/web';
import { s3Store, type S3Store, type S3StoreOptions } from 'tempfile-manager/s3';
import { azureStore, type AzureStore, type AzureStoreOptions } from 'tempfile-manager/azure';
import { tempScopeFixture, type TempScopeFixture } from 'tempfile-manager/testing';

export async function use(): Promise<number> {
  const mgr = new TempFileManager({ sweepOnStart: false });
  const file: TempFile = mgr.file('.txt');
  const size = await mgr.withScope(async (scope) => (await scope.write('x')).size ?? 0);
  await file.remove();
  await mgr.close();
  return size;
}
export const adapters = [tempScope, tempFiles, named] as const;
export const webOptions: WebUploadOptions = { field: 'file', maxBytes: 2 ** 20, accept: ['image/*'] };
export function route(request: Request): Promise<Response> {
  return handleUpload(request, webOptions, ({ file, fields }: WebUpload) => Response.json({ size: file?.size ?? 0, fields }));
}
export const refusal: (error: unknown) => Response | undefined = refusalResponse;
export const storeFactory: (options: S3StoreOptions) => S3Store = s3Store;
export const azureFactory: (options: AzureStoreOptions) => AzureStore = azureStore;
export const fixture: TempScopeFixture = tempScopeFixture();
export const check: (e: unknown) => boolean = isTempFileError;
export const syscallCode = (e: DiskErrors): string | undefined => (e instanceof FileSystemError ? e.syscallCode : undefined);
export const channel: string = CHANNELS.fileCreate;
`;

/** One module resolution of the all-entries check: its compiler options, its file name (the extension picks ESM or CJS). */
const resolutions = [
  {
    name: 'node10-commonjs',
    file: 'index.ts',
    options: { module: 'commonjs', moduleResolution: 'node10', esModuleInterop: false },
  },
  {
    name: 'node16-cjs',
    file: 'index.cts',
    options: { module: 'node16', moduleResolution: 'node16' },
    noTus: () => 'node16',
  },
  { name: 'node16-esm', file: 'index.mts', options: { module: 'node16', moduleResolution: 'node16' } },
  {
    name: 'nodenext-cjs',
    file: 'index.cts',
    options: { module: 'nodenext', moduleResolution: 'nodenext' },
    noTus: (major, minor) => (major < 5 || (major === 5 && minor < 8) ? 'nodenext before TypeScript 5.8' : undefined),
  },
  { name: 'nodenext-esm', file: 'index.mts', options: { module: 'nodenext', moduleResolution: 'nodenext' } },
  { name: 'bundler', file: 'index.ts', options: { module: 'esnext', moduleResolution: 'bundler' } },
];

const common = {
  target: 'es2022',
  lib: ['es2022', 'esnext.disposable'],
  types: ['node'],
  strict: true,
  skipLibCheck: false,
  noEmit: true,
};

/** What a TypeScript major says of a resolution's options: not compiled (a string), or the options to add. */
function underVersion(version, resolution) {
  const major = Number.parseInt(version, 10);
  const { moduleResolution, esModuleInterop } = resolution.options;
  if (major >= 7 && moduleResolution === 'node10') return 'TypeScript 7 removed moduleResolution node10';
  if (major >= 7 && esModuleInterop === false) return 'TypeScript 7 removed esModuleInterop: false';
  // 6 still compiles them, once told that the deprecation is known.
  if (major === 6 && (moduleResolution === 'node10' || esModuleInterop === false)) return { ignoreDeprecations: '6.0' };
  return {};
}

const readmeConsumer = `import { TempFileManager } from 'tempfile-manager';
import fs from 'node:fs';

const root = process.argv[2]!;
const mgr = new TempFileManager({ root, sweepOnStart: false });
let seen = '';
{
  await using tmp = mgr.file('.txt');
  fs.writeFileSync(tmp.path, 'hello');
  seen = tmp.path;
}
if (fs.existsSync(seen)) throw new Error('await using did not remove the file');
await mgr.close();
console.log('README tsconfig: await using ran and removed the file');
`;

/** The packages whose own declarations' errors the README's TypeScript section lists, each an item opening with its name (- `srvx`, ...). */
function documentedOwners() {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  const section = /^## TypeScript\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? '';
  return new Set([...section.matchAll(/^- `((?:@[\w.-]+\/)?[\w.-]+)`/gm)].map((match) => match[1]));
}

/** The package a tsc error line lies in (`node_modules/srvx/dist/...`), or undefined for the consumer's own file. */
function ownerOf(line) {
  return /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(line.slice(0, line.indexOf('(')))?.[1];
}

function runAsync(cmd, args, cwd) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('close', (status) => resolve({ status, output }));
  });
}

/**
 * Runs `tasks` (functions returning promises) `width` at a time, in order. A failure stops the
 * lanes from starting more, and is thrown once the tasks under way have ended: none of them is
 * still writing into the scratch directory when the caller removes it.
 */
async function pool(tasks, width = 2) {
  const results = new Array(tasks.length);
  let next = 0;
  let failed = false;
  const lane = async () => {
    for (let i = next++; i < tasks.length && !failed; i = next++) {
      try {
        results[i] = await tasks[i]();
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const ended = await Promise.allSettled(Array.from({ length: width }, lane));
  const failure = ended.find((lane) => lane.status === 'rejected');
  if (failure) throw failure.reason;
  return results;
}

async function npmInstall(project, packages) {
  fs.mkdirSync(project, { recursive: true });
  if (!fs.existsSync(path.join(project, 'package.json'))) fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: path.basename(project), private: true, type: 'module' }));
  const args = ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', '--loglevel=error', ...packages];
  let { status, output } = await runAsync('npm', args, project);
  // Offline first, the cache may hold a stale package document: one that names, as its latest, a
  // version it does not list (ETARGET, seen once for @types/node). Then the registry is asked.
  if (status !== 0) ({ status, output } = await runAsync('npm', args.map((arg) => (arg === '--prefer-offline' ? '--prefer-online' : arg)), project));
  if (status !== 0) throw new Error(`npm ${args.join(' ')} in ${project} failed (also with --prefer-online):\n${output}`);
}

const results = [];
const record = (label, ok, detail = '') => {
  results.push({ label, ok });
  console.log(`${ok ? 'ok' : 'FAIL'} ${label}${detail ? (ok ? ` ${detail}` : `\n${detail}`) : ''}`);
};

/** tsc -p `config` with `compiler`: ok when it compiles, or its only errors are in packages the README's TypeScript section names (with `lenient`, in any other package). */
async function compile(label, compiler, config, extra = [], { lenient = false } = {}) {
  const { status, output } = await runAsync(process.execPath, [compiler.tsc, '-p', config, ...extra], path.dirname(config));
  const errors = output.split('\n').filter((line) => /error TS\d+/.test(line));
  const documented = documentedOwners();
  const owners = [...new Set(errors.map(ownerOf))];
  const excused = (owner) => owner !== undefined && owner !== 'tempfile-manager' && (lenient || documented.has(owner));
  if (status === 0 || (errors.length > 0 && owners.every(excused))) {
    const note = errors.length > 0 ? `(${errors.length} errors inside the declarations of ${owners.join(', ')}${lenient ? '' : ', named in the README'})` : '';
    record(label, true, note);
    return true;
  }
  record(label, false, output);
  return false;
}

/** Each entry alone, with its own peers: the README's tsconfig, and noUncheckedSideEffectImports where it is not the default. */
function entryChecks(compilers, projects) {
  const tasks = [];
  for (const compiler of compilers.filter((c) => c.typesNode === 'latest')) {
    for (const [entry, { dir }] of projects) {
      const [major, minor] = compiler.installed.split('.').map(Number);
      // The flag only adds errors (a side-effect import that resolves to nothing): a consumer that
      // compiles with it on compiles with the default too, so that version runs once, with it.
      if (major === 5 && minor >= 9) {
        tasks.push(() => compile(`TypeScript ${compiler.installed}, ${subpath(entry)} alone, noUncheckedSideEffectImports (and so the default)`, compiler, path.join(dir, 'tsconfig.json'), ['--noEmit', '--noUncheckedSideEffectImports']));
      } else {
        tasks.push(() => compile(`TypeScript ${compiler.installed}, ${subpath(entry)} alone`, compiler, path.join(dir, 'tsconfig.json'), ['--noEmit']));
      }
    }
  }
  return tasks;
}

/** Every entry together, under every module resolution; the README's tsconfig built and run; the docs' snippets. */
function allEntriesChecks(compiler, project) {
  const tasks = [];
  const [major, minor] = compiler.installed.split('.').map(Number);
  const base = path.join(project, `ts-${compiler.spec.replace('+', '-types-node-')}`);
  for (const resolution of resolutions) {
    const label = `TypeScript ${compiler.installed}, every entry, ${resolution.name}`;
    const options = underVersion(compiler.installed, resolution);
    if (typeof options === 'string') {
      console.log(`-- ${label}: not compiled (${options})`);
      continue;
    }
    const dir = path.join(base, resolution.name);
    fs.mkdirSync(dir, { recursive: true });
    const tusFile = resolution.file.replace('index', 'tus');
    fs.writeFileSync(path.join(dir, resolution.file), allEntriesCode);
    fs.writeFileSync(path.join(dir, tusFile), CONSUMERS.tus.code);
    // @tus/server is an ES module only: a CommonJS file imports it only where the compiler allows a
    // require() of an ES module (nodenext from TypeScript 5.8 on), as Node 20.19 and 22.12 do.
    const noTus = resolution.noTus?.(major, minor);
    if (noTus) console.log(`-- ${label}: tempfile-manager/tus not compiled (@tus/server is an ES module only, which ${noTus} lets no CommonJS file import)`);
    const compilerOptions = { ...common, ...resolution.options, ...options };
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: noTus ? [resolution.file] : [resolution.file, tusFile] }, null, 2));
    tasks.push(() => compile(label, compiler, path.join(dir, 'tsconfig.json'), [], { lenient: true }));
  }

  const app = path.join(base, 'readme-app');
  fs.mkdirSync(path.join(app, 'src'), { recursive: true });
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'readme-app', private: true, type: 'module' }));
  fs.writeFileSync(path.join(app, 'tsconfig.json'), readmeTsconfig(repo));
  fs.writeFileSync(path.join(app, 'src/index.ts'), readmeConsumer);
  tasks.push(async () => {
    const label = `TypeScript ${compiler.installed}, the README's tsconfig built and run`;
    const build = await runAsync(process.execPath, [compiler.tsc, '-p', app], app);
    const ran = build.status === 0 ? await runAsync(process.execPath, [path.join(app, 'dist/index.js'), path.join(app, 'root')], app) : build;
    record(label, build.status === 0 && ran.status === 0, build.status === 0 && ran.status === 0 ? `: ${ran.output.trim()}` : ran.output);
  });

  const snippets = writeSnippetProject(repo, path.join(base, 'doc-snippets'));
  for (const config of snippets.configs) {
    tasks.push(async () => {
      const label = `TypeScript ${compiler.installed}, the docs' snippets (${path.basename(config)})`;
      const checked = await runAsync(process.execPath, [compiler.tsc, '-p', config], path.dirname(config));
      record(label, checked.status === 0, checked.status === 0 ? '' : explainErrors(checked.output, snippets.files));
    });
  }
  return tasks;
}

async function main() {
  const exported = Object.keys(pkg.exports).filter((key) => key !== './package.json').map((key) => (key === '.' ? 'index' : key.slice(2)));
  const unlisted = exported.filter((name) => !(name in entries) || !(name in CONSUMERS));
  if (unlisted.length > 0) throw new Error(`package.json exports ${unlisted.join(', ')}, which scripts/entries.json or CONSUMERS here does not list`);

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-consumers-'));
  try {
    console.log('$ npm run build');
    execFileSync('npm', ['run', 'build'], { cwd: repo, stdio: 'inherit' });
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: repo, encoding: 'utf8' }));
    const tarball = path.join(work, packed[0].filename);
    const peer = (name) => `${name}@${devVersion(name)}`;
    const allPeers = [...new Set(Object.values(entries).flatMap((entry) => entry.peers))].map(peer);

    // Every compiler once, each under an alias of its own.
    const compilersDir = path.join(work, 'compilers');
    const alias = (version) => `typescript-${version}`;
    const typesNodes = [...new Set(specs.map((s) => s.typesNode))];
    const entryProjects = new Map(exported.map((name) => [name, { dir: path.join(work, `entry-${name}`) }]));
    const allProject = (typesNode) => path.join(work, `all-entries-types-node-${typesNode}`);
    console.log(`installing TypeScript ${specs.map((s) => s.version).join(', ')}; the tarball with every peer (@types/node ${typesNodes.join(', ')}); and with each entry's own peers (${exported.map(subpath).join(', ')})`);
    await pool([
      () => npmInstall(compilersDir, [...new Set(specs.map((s) => s.version))].map((version) => `${alias(version)}@npm:typescript@${version}`)),
      ...typesNodes.map((typesNode) => () => npmInstall(allProject(typesNode), [tarball, `@types/node@${typesNode}`, ...allPeers])),
      ...[...entryProjects].map(([entry, { dir }]) => async () => {
        await npmInstall(dir, [tarball, '@types/node@latest', ...entries[entry].peers.map(peer)]);
        fs.writeFileSync(path.join(dir, 'tsconfig.json'), readmeTsconfig(repo));
        fs.mkdirSync(path.join(dir, 'src'));
        fs.writeFileSync(path.join(dir, 'src/index.ts'), CONSUMERS[entry].code);
      }),
    ]);
    const installedVersion = (dir, name) => JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', name, 'package.json'), 'utf8')).version;
    const compilers = specs.map((s) => ({
      ...s,
      installed: installedVersion(compilersDir, alias(s.version)),
      tsc: path.join(compilersDir, 'node_modules', alias(s.version), 'bin/tsc'),
    }));
    for (const compiler of compilers) console.log(`-- TypeScript ${compiler.spec}: ${compiler.installed}; @types/node ${installedVersion(allProject(compiler.typesNode), '@types/node')}`);

    // Every entry together, the README's app and the snippets on the oldest and the newest compiler:
    // a module resolution or a default that changes between them shows at one end or the other,
    // and each entry alone, on every version, shows what a version in between does to one entry.
    const ends = [...new Set([compilers[0], compilers.at(-1)])];
    const tasks = [...entryChecks(compilers, entryProjects), ...ends.flatMap((compiler) => allEntriesChecks(compiler, allProject(compiler.typesNode)))];
    await pool(tasks);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    console.log(`\n${failed.length} of ${results.length} check(s) failed:\n${failed.map((r) => `  ${r.label}`).join('\n')}`);
    process.exitCode = 1;
  } else {
    console.log(`\nall ${results.length} checks passed, with TypeScript ${specs.map((s) => s.spec).join(', ')}`);
  }
}

await main();
