// The package as published, into a fresh dist/: the JavaScript (tsup: ESM, CJS and the CLI) and,
// alongside, the declarations (scripts/build-declarations.mjs).
//
//   node scripts/build.mjs
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { buildDeclarations } from './build-declarations.mjs';

const repo = path.join(import.meta.dirname, '..');
fs.rmSync(path.join(repo, 'dist'), { recursive: true, force: true });

const tsup = createRequire(import.meta.url).resolve('tsup/dist/cli-default.js');
const javascript = new Promise((resolve) => {
  spawn(process.execPath, [tsup], { cwd: repo, stdio: 'inherit' }).on('close', (status) => resolve(status ?? 1));
});
const declarations = buildDeclarations().then(
  () => 0,
  (error) => {
    console.error(error instanceof Error ? error.message : error);
    return 1;
  },
);
const statuses = await Promise.all([javascript, declarations]);
process.exitCode = statuses.some((status) => status !== 0) ? 1 : 0;
