// Checks the package as users get it: packs a clean copy of the tree (no dist/, as a fresh
// clone: `prepack` must build it), checks the tarball ships every file `exports` and `bin` name,
// lints it with publint and @arethetypeswrong/cli, installs it into a scratch project, and
// imports it from ESM and CJS.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-pack-'));
const run = (cmd, args, cwd = process.cwd()) => {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { cwd, stdio: 'inherit' });
};

/** A copy of the tracked files (as a fresh clone has them), sharing this tree's node_modules. */
function cleanCopy() {
  const copy = path.join(work, 'clone');
  const tracked = execFileSync('git', ['ls-files', '-z'], { encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const file of tracked) {
    if (!fs.existsSync(file)) continue; // deleted in the work tree, not yet committed
    fs.mkdirSync(path.join(copy, path.dirname(file)), { recursive: true });
    fs.copyFileSync(file, path.join(copy, file));
  }
  fs.symlinkSync(path.resolve('node_modules'), path.join(copy, 'node_modules'));
  return copy;
}

/** Every file package.json promises: each `exports` target (types and code) and each `bin`. */
function promisedFiles(pkg) {
  const targets = [];
  const collect = (value) => {
    if (typeof value === 'string') targets.push(value);
    else if (value && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect(pkg.exports);
  collect(pkg.bin);
  collect(pkg.main);
  collect(pkg.types);
  collect(pkg.typesVersions);
  return [...new Set(targets.map((t) => path.posix.normalize(t)))].filter((t) => t.startsWith('dist/'));
}

try {
  const clone = cleanCopy();
  if (fs.existsSync(path.join(clone, 'dist'))) throw new Error('dist/ is tracked by git: it must come from prepack');
  // prepack's build prints to stdout too: the JSON is the array at the end.
  const packOutput = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: clone, encoding: 'utf8' });
  const packed = JSON.parse(packOutput.slice(packOutput.lastIndexOf('[\n  {')));
  const tarball = path.join(work, packed[0].filename);
  const shipped = packed[0].files.map((f) => f.path).sort();
  console.log(`packed ${packed[0].filename}: ${shipped.join(', ')}`);
  const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'));
  const promised = promisedFiles(pkg);
  const kinds = ['.js', '.cjs', '.d.ts', '.d.cts'];
  for (const entry of ['index', 'errors', 'express', 'fastify', 's3', 'azure', 'tus', 'diagnostics', 'testing', 'web']) {
    for (const kind of kinds) if (!promised.includes(`dist/${entry}${kind}`)) throw new Error(`exports does not name dist/${entry}${kind}`);
  }
  const absent = promised.filter((file) => !shipped.includes(file));
  if (absent.length > 0) throw new Error(`the tarball lacks files package.json promises: ${absent.join(', ')}`);
  console.log(`the tarball ships all ${promised.length} files package.json promises`);
  const unexpected = shipped.filter((f) => !/^(dist\/.*\.(c?js|d\.c?ts)|README\.md|CHANGELOG\.md|LICENSE|package\.json)$/.test(f));
  if (unexpected.length > 0) throw new Error(`the tarball ships files users do not need: ${unexpected.join(', ')}`);

  run('npx', ['publint', 'run', '--strict', tarball]);
  run('npx', ['attw', tarball]);

  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), '{"name":"app","private":true}');
  run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', tarball], app);
  const smoke = `const mgr = new TempFileManager({ root: ${JSON.stringify(path.join(work, 'root'))}, sweepOnStart: false });
    const f = mgr.file('.txt'); if (!f.path.endsWith('.txt')) throw new Error('bad path'); mgr.closeSync();`;
  run('node', ['--input-type=module', '-e', `import { TempFileManager } from 'tempfile-manager'; ${smoke} console.log('ESM import ok');`], app);
  run('node', ['-e', `const { TempFileManager } = require('tempfile-manager'); ${smoke} console.log('CJS require ok');`], app);
  // file-type is ESM only: write({ accept }) loads it with import(), from the CJS build too.
  const sniff = `const m = new TempFileManager({ root: ${JSON.stringify(path.join(work, 'root-sniff'))}, sweepOnStart: false });
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55', 'hex');
    m.write(png, { accept: ['image/*'] }).then((f) => { if (f.detectedType?.mime !== 'image/png') throw new Error('no type'); return m.close(); })
      .then(() => console.log('write({ accept }) ok'));`;
  run('node', ['--input-type=module', '-e', `import { TempFileManager } from 'tempfile-manager'; ${sniff}`], app);
  run('node', ['-e', `const { TempFileManager } = require('tempfile-manager'); ${sniff}`], app);
  // An adapter's error is an instance of the main entry's classes: one copy of them, shared.
  const adapters = `if (typeof tempScope !== 'function' || typeof upload !== 'function' || typeof tempFiles !== 'function' || tempFiles !== fastifyDefault) throw new Error('bad adapter exports');
    try { upload({ nope: 1 }); throw new Error('upload() took an unknown option'); } catch (err) { if (!(err instanceof TempFileError)) throw new Error('an adapter error is not a TempFileError of the main entry'); }`;
  run('node', ['--input-type=module', '-e', `import { TempFileError } from 'tempfile-manager'; import { tempScope, upload } from 'tempfile-manager/express'; import fastifyDefault, { tempFiles } from 'tempfile-manager/fastify'; ${adapters} console.log('ESM adapters ok');`], app);
  run('node', ['-e', `const { TempFileError } = require('tempfile-manager'); const { tempScope, upload } = require('tempfile-manager/express'); const { tempFiles, default: fastifyDefault } = require('tempfile-manager/fastify'); ${adapters} console.log('CJS adapters ok');`], app);
  // tempfile-manager/s3 imports without the AWS SDK (an optional peer, not installed here): its
  // first request rejects with a MissingPeerError of the main entry naming the install command.
  const s3 = `const store = s3Store({ client: { send() { throw new Error('sent'); }, config: {} }, bucket: 'uploads' });
    store.sweep().then(() => { throw new Error('swept without the SDK'); }, (err) => {
      if (!(err instanceof TempFileError) || err.code !== 'ERR_TEMPFILE_MISSING_PEER' || err.install !== 'npm install @aws-sdk/client-s3') throw err;
      console.log('s3 without the SDK: ' + err.install);
    });`;
  run('node', ['--input-type=module', '-e', `import { TempFileError } from 'tempfile-manager'; import { s3Store } from 'tempfile-manager/s3'; ${s3}`], app);
  run('node', ['-e', `const { TempFileError } = require('tempfile-manager'); const { s3Store } = require('tempfile-manager/s3'); ${s3}`], app);
  // tempfile-manager/azure imports without @azure/storage-blob (an optional peer, not installed
  // here): it never imports the SDK, and checks its options with the main entry's errors.
  const azure = `try { azureStore({ client: {} }); throw new Error('azureStore() took a client that is none'); } catch (err) {
      if (!(err instanceof TempFileError) || err.code !== 'ERR_TEMPFILE_INVALID_OPTION' || err.option !== 'client') throw err;
      console.log('azure without the SDK: imported, and refuses a client that is none');
    }`;
  run('node', ['--input-type=module', '-e', `import { TempFileError } from 'tempfile-manager'; import { azureStore } from 'tempfile-manager/azure'; ${azure}`], app);
  run('node', ['-e', `const { TempFileError } = require('tempfile-manager'); const { azureStore } = require('tempfile-manager/azure'); ${azure}`], app);
  // tempfile-manager/errors is the same classes as the main entry's, imported and required.
  const errors = `if (errors.TempFileError !== main.TempFileError || errors.SizeLimitError !== main.SizeLimitError || typeof errors.FileSystemError !== 'function' || 'FileSystemError' in main) throw new Error('tempfile-manager/errors does not hold the main entry classes'); console.log('errors subpath ok');`;
  run('node', ['--input-type=module', '-e', `import * as main from 'tempfile-manager'; import * as errors from 'tempfile-manager/errors'; ${errors}`], app);
  run('node', ['-e', `const main = require('tempfile-manager'); const errors = require('tempfile-manager/errors'); ${errors}`], app);
  // tempfile-manager/tus imports without @tus/server (an optional peer, not installed here):
  // tusStore() rejects with a MissingPeerError of the main entry naming the install command.
  const tus = `tusStore({ manager: new TempFileManager({ root: 'tus-root', sweepOnStart: false }) }).then(() => { throw new Error('made without @tus/server'); }, (err) => {
      if (!(err instanceof TempFileError) || err.code !== 'ERR_TEMPFILE_MISSING_PEER' || err.install !== 'npm install @tus/server') throw err;
      console.log('tus without @tus/server: ' + err.install);
    });`;
  run('node', ['--input-type=module', '-e', `import { TempFileError, TempFileManager } from 'tempfile-manager'; import { tusStore } from 'tempfile-manager/tus'; ${tus}`], app);
  run('node', ['-e', `const { TempFileError, TempFileManager } = require('tempfile-manager'); const { tusStore } = require('tempfile-manager/tus'); ${tus}`], app);
  run('npx', ['--no-install', 'tempfile-manager', '--help'], app);
  console.log('package checks passed');
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
