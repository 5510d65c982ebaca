// Checks the package as users get it: packs the tarball, lints it with publint and
// @arethetypeswrong/cli, installs it into a scratch project, and imports it from ESM and CJS.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-pack-'));
const run = (cmd, args, cwd = process.cwd()) => {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { cwd, stdio: 'inherit' });
};

try {
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { encoding: 'utf8' }));
  const tarball = path.join(work, packed[0].filename);
  const shipped = packed[0].files.map((f) => f.path).sort();
  console.log(`packed ${packed[0].filename}: ${shipped.join(', ')}`);
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
  const adapters = `if (typeof tempScope !== 'function' || typeof tempFiles !== 'function' || tempFiles !== fastifyDefault) throw new Error('bad adapter exports');`;
  run('node', ['--input-type=module', '-e', `import { tempScope } from 'tempfile-manager/express'; import fastifyDefault, { tempFiles } from 'tempfile-manager/fastify'; ${adapters} console.log('ESM adapters ok');`], app);
  run('node', ['-e', `const { tempScope } = require('tempfile-manager/express'); const { tempFiles, default: fastifyDefault } = require('tempfile-manager/fastify'); ${adapters} console.log('CJS adapters ok');`], app);
  run('npx', ['--no-install', 'tempfile-manager', '--help'], app);
  console.log('package checks passed');
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
