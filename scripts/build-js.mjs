// The package's JavaScript alone, without its declarations: what the demo, the examples and the
// tests run (the tests that read the declarations build them: test/helpers/declarations.ts).
// `npm run build` makes the whole package, as published. Cross-platform: no shell syntax in
// package.json.
//
//   node scripts/build-js.mjs
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const repo = path.join(import.meta.dirname, '..');
fs.rmSync(path.join(repo, 'dist'), { recursive: true, force: true });
const tsup = createRequire(import.meta.url).resolve('tsup/dist/cli-default.js');
const { status } = spawnSync(process.execPath, [tsup], { cwd: repo, stdio: 'inherit' });
process.exit(status ?? 1);
