// The package's JavaScript alone, without its declarations: what the demo, the examples and the
// tests run (the tests that read the declarations build them: test/helpers/declarations.ts).
// `npm run build` makes the whole package, as published. Cross-platform: no shell syntax in
// package.json.
//
//   node scripts/build-js.mjs
import fs from 'node:fs';
import path from 'node:path';
import { buildJavaScript } from './build-javascript.mjs';

const repo = path.join(import.meta.dirname, '..');
fs.rmSync(path.join(repo, 'dist'), { recursive: true, force: true });
process.exitCode = await buildJavaScript();
