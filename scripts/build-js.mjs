// The package's JavaScript alone, without its declarations: what the demo and the examples run.
// The declarations take most of a full build (a minute or more on two cores); `npm run build`
// makes the whole package, as published. Cross-platform: no shell syntax in package.json.
//
//   node scripts/build-js.mjs
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const repo = path.join(import.meta.dirname, '..');
fs.rmSync(path.join(repo, 'dist'), { recursive: true, force: true });
const tsup = createRequire(import.meta.url).resolve('tsup/dist/cli-default.js');
const { status } = spawnSync(process.execPath, [tsup], { cwd: repo, stdio: 'inherit', env: { ...process.env, TEMPFILE_MANAGER_DECLARATIONS: 'off' } });
process.exit(status ?? 1);
