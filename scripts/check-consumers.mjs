// Compiles TypeScript consumers of the packed package, as users get it, with several TypeScript
// versions (5.2, the first with `using`, with @types/node 25, the newest it compiles, as the README
// says; 5.6, the first the README gives for the latest @types/node, with it; 5.9; 7, the native
// compiler; the latest, with the latest @types/node): packs the tarball, installs it with
// each compiler from the registry in a scratch project, and type-checks a consumer importing
// `.`, `./errors`, `./express`, `./fastify`, `./web`, `./s3`, `./azure` and `./testing`, and one serving `./tus` with @tus/server,
// under every module resolution (node10 with module commonjs and no esModuleInterop; node16 and
// nodenext, ESM and CJS; bundler), with skipLibCheck off, so that the package's own .d.ts and
// .d.cts files are checked too. The tus consumer needs no skipLibCheck: the errors @tus/server 2's
// declarations bring (srvx's, naming Deno's, Bun's and Cloudflare's types; under node10, its own
// default imports of node: modules) are inside those packages, reported and not counted as every
// other package's are. Then it builds the README's
// tsconfig example as written (an `await using` consumer), runs the output on this Node, and
// checks that the files were removed; and type-checks every TypeScript block of the README and
// docs/ under that tsconfig (scripts/doc-snippets.mjs).
//
//   node scripts/check-consumers.mjs [--ts 5.2+25,5.6+latest,5.9,7,latest+latest]   (TypeScript[+@types/node], else the repo's @types/node)
//
// Each TypeScript version is checked by a process of its own (this script with --one), two at a
// time, its output printed when it ends.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { explainErrors, readmeTsconfig, writeSnippetProject } from './doc-snippets.mjs';

const repo = path.join(import.meta.dirname, '..');
const argAfter = (flag) => {
  const at = process.argv.indexOf(flag);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const versions = (argAfter('--ts') ?? '5.2+25,5.6+latest,5.9,7,latest+latest').split(',');
const failures = [];

const run = (cmd, args, cwd) => {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { cwd, stdio: 'inherit' });
};

const consumerCode = `import { TempFileManager, isTempFileError, type TempFile } from 'tempfile-manager';
import { FileSystemError, type DiskErrors } from 'tempfile-manager/errors';
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
`;

// A server of tempfile-manager/tus: a file of its own, so that the errors of @tus/server's own
// declarations are told apart from this package's by their file.
const tusConsumerCode = `import * as http from 'node:http';
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
`;

/** One consumer: its tsconfig compiler options, its file name (the extension picks ESM or CJS). */
const consumers = [
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

/** Options a TypeScript major no longer has: the consumer is reported, not failed. */
function unsupported(version, consumer) {
  const major = Number.parseInt(version, 10);
  if (major >= 7 && consumer.options.moduleResolution === 'node10') return 'TypeScript 7 removed moduleResolution node10';
  if (major >= 7 && consumer.options.esModuleInterop === false) return 'TypeScript 7 removed esModuleInterop: false';
  return undefined;
}

/**
 * An error inside another package's own declarations, which that package has under this
 * compiler and these options whoever imports it: fastify 5 uses `NoInfer` (TypeScript 5.4), and
 * pino (under fastify) default-imports a CommonJS module, which needs esModuleInterop. Those are
 * reported, not counted; an error in this package's declarations or in the consumer fails.
 */
function othersOwnError(line) {
  return /^node_modules\//.test(line) && !/^node_modules\/tempfile-manager\//.test(line);
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

/** Installs the tarball with TypeScript `version` in a project under `work`, and checks every consumer. */
function checkVersion(spec, tarball, work) {
  const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));
  const devVersion = (name) => pkg.devDependencies[name];
  const [version, typesNode = devVersion('@types/node')] = spec.split('+');
  const project = path.join(work, `ts-${spec.replace('+', '-types-node-')}`);
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  run('npm', [
    'install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error',
    tarball, `typescript@${version}`, `@types/node@${typesNode}`,
    `express@${devVersion('express')}`, `@types/express@${devVersion('@types/express')}`, `fastify@${devVersion('fastify')}`,
    // docs/s3.md's snippets make an S3Client: the optional peers of tempfile-manager/s3.
    `@aws-sdk/client-s3@${devVersion('@aws-sdk/client-s3')}`, `@aws-sdk/lib-storage@${devVersion('@aws-sdk/lib-storage')}`,
    // tempfile-manager/azure's declarations name the ContainerClient: its optional peer.
    `@azure/storage-blob@${devVersion('@azure/storage-blob')}`,
    // The tus consumer's server: the optional peer of tempfile-manager/tus.
    `@tus/server@${devVersion('@tus/server')}`,
  ], project);
  const tsc = path.join(project, 'node_modules/typescript/bin/tsc');
  const versionOf = (name) => JSON.parse(fs.readFileSync(path.join(project, 'node_modules', name, 'package.json'), 'utf8')).version;
  const installed = versionOf('typescript');
  console.log(`-- TypeScript ${installed} with @types/node ${versionOf('@types/node')}`);
  for (const consumer of consumers) checkConsumer(consumer, installed, project, tsc);
  checkReadmeTsconfig(installed, project, tsc);
  checkSnippets(installed, project, tsc);
}

function checkConsumer(consumer, installed, project, tsc) {
  const label = `TypeScript ${installed}, ${consumer.name}`;
  const skipped = unsupported(installed, consumer);
  if (skipped) {
    console.log(`-- ${label}: not compiled (${skipped})`);
    return;
  }
  const dir = path.join(project, consumer.name);
  fs.mkdirSync(dir);
  const tusFile = consumer.file.replace('index', 'tus');
  fs.writeFileSync(path.join(dir, consumer.file), consumerCode);
  fs.writeFileSync(path.join(dir, tusFile), tusConsumerCode);
  // @tus/server is an ES module only: a CommonJS file imports it only where the compiler allows a
  // require() of an ES module (nodenext from TypeScript 5.8 on), as Node 20.19 and 22.12 do.
  const [major, minor] = installed.split('.').map(Number);
  const noTus = consumer.noTus?.(major, minor);
  const files = noTus ? [consumer.file] : [consumer.file, tusFile];
  if (noTus) console.log(`-- ${label}: tempfile-manager/tus not compiled (@tus/server is an ES module only, which ${noTus} lets no CommonJS file import)`);
  fs.writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { ...common, ...consumer.options }, files }, null, 2),
  );
  const result = spawnSync(process.execPath, [tsc, '-p', dir], { cwd: project, encoding: 'utf8' });
  const errors = `${result.stdout}${result.stderr}`.split('\n').filter((line) => /error TS\d+/.test(line));
  const ours = errors.filter((line) => !othersOwnError(line));
  if (result.status === 0 || (errors.length > 0 && ours.length === 0)) {
    const owners = [...new Set(errors.map((line) => /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(line)?.[1]))];
    const note = errors.length > 0 ? ` (${errors.length} errors inside the declarations of ${owners.join(', ')}, not of this package)` : '';
    console.log(`ok ${label}${note}`);
  } else {
    console.log(`FAIL ${label}\n${result.stdout}${result.stderr}`);
    failures.push(label);
  }
}

/** The README's tsconfig, as written, in a project of its own: build, run, check. */
function checkReadmeTsconfig(installed, project, tsc) {
  const app = path.join(project, 'readme-app');
  fs.mkdirSync(path.join(app, 'src'), { recursive: true });
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'readme-app', private: true, type: 'module' }));
  fs.writeFileSync(path.join(app, 'tsconfig.json'), readmeTsconfig(repo));
  fs.writeFileSync(path.join(app, 'src/index.ts'), readmeConsumer);
  fs.symlinkSync(path.join(project, 'node_modules'), path.join(app, 'node_modules'));
  const label = `TypeScript ${installed}, the README's tsconfig`;
  const build = spawnSync(process.execPath, [tsc, '-p', app], { cwd: app, encoding: 'utf8' });
  const output = build.status === 0
    ? spawnSync(process.execPath, [path.join(app, 'dist/index.js'), path.join(app, 'root')], { cwd: app, encoding: 'utf8' })
    : build;
  if (build.status === 0 && output.status === 0) console.log(`ok ${label}: ${output.stdout.trim()}`);
  else {
    console.log(`FAIL ${label}\n${output.stdout}${output.stderr}`);
    failures.push(label);
  }
}

/** Every TypeScript block of the README and docs/ (and the README's JavaScript), as written. */
function checkSnippets(installed, project, tsc) {
  const snippets = writeSnippetProject(repo, path.join(project, 'doc-snippets'));
  fs.symlinkSync(path.join(project, 'node_modules'), path.join(project, 'doc-snippets/node_modules'));
  for (const config of snippets.configs) {
    const snippetLabel = `TypeScript ${installed}, the docs' snippets (${path.basename(config)})`;
    const checked = spawnSync(process.execPath, [tsc, '-p', config], { cwd: project, encoding: 'utf8' });
    if (checked.status === 0) console.log(`ok ${snippetLabel}`);
    else {
      console.log(`FAIL ${snippetLabel}\n${explainErrors(`${checked.stdout}${checked.stderr}`, snippets.files)}`);
      failures.push(snippetLabel);
    }
  }
}

/** Runs this script with --one for `version`; resolves with its status once its output is printed. */
function checkVersionInChild(version, tarball, work) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [import.meta.filename, '--one', version, '--tarball', tarball, '--work', work], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('close', (status) => {
      process.stdout.write(`\n-- TypeScript ${version}\n${output}`);
      if (status !== 0) failures.push(`TypeScript ${version}`);
      resolve();
    });
  });
}

async function checkAllVersions() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-consumers-'));
  try {
    run('npm', ['run', 'build'], repo);
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: repo, encoding: 'utf8' }));
    const tarball = path.join(work, packed[0].filename);
    const waiting = [...versions];
    const lane = async () => {
      for (let version = waiting.shift(); version !== undefined; version = waiting.shift()) await checkVersionInChild(version, tarball, work);
    };
    await Promise.all([lane(), lane()]);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  if (failures.length > 0) {
    console.log(`\n${failures.length} check(s) failed: ${failures.join('; ')}`);
    process.exitCode = 1;
  } else {
    console.log(`\nevery consumer compiled with TypeScript ${versions.join(', ')}`);
  }
}

const one = argAfter('--one');
if (one === undefined) await checkAllVersions();
else {
  checkVersion(one, argAfter('--tarball'), argAfter('--work'));
  if (failures.length > 0) {
    console.log(`\n${failures.length} consumer(s) failed: ${failures.join('; ')}`);
    process.exitCode = 1;
  }
}
