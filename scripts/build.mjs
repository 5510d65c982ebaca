// The package as published, into a fresh dist/: the JavaScript (scripts/build-javascript.mjs) and,
// alongside, the declarations (scripts/build-declarations.mjs).
//
//   node scripts/build.mjs
import fs from 'node:fs';
import path from 'node:path';
import { buildDeclarations } from './build-declarations.mjs';
import { buildJavaScript } from './build-javascript.mjs';

const repo = path.join(import.meta.dirname, '..');
fs.rmSync(path.join(repo, 'dist'), { recursive: true, force: true });

const javascript = buildJavaScript().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  return 1;
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
