// The build's output: a clean build prints no warning (scripts/check-build.mjs, run by `npm run
// lint`, fails on any line a clean build does not print), and tempfile-manager/fastify keeps its
// default and its named `tempFiles` export, imported and required.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without declarations
import { buildWarnings } from '../../scripts/check-build.mjs';

const dist = path.join(import.meta.dirname, '../../dist');
const findWarnings = buildWarnings as (output: string) => string[];

const CLEAN = `
> tempfile-manager@0.1.0 build
> node scripts/build.mjs

CLI Building entry: {"cli":"src/bin.ts"}
ESM dist/cli.js 70.69 KB
CJS ⚡️ Build success in 6181ms
DTS dist/fastify.d.cts                 5.84 KB
strip-internal: 68 internal members removed from the declaration files
`;

describe('the build', () => {
  it('finds no warning in a clean build, and each warning rollup or esbuild prints', () => {
    expect(findWarnings(CLEAN)).toEqual([]);
    const unused = '"randomFillSync" is imported from external module "crypto" but never used in "dist/cli.js".';
    const mixed = 'Entry module "dist/fastify.cjs" is using named and default exports together. Consumers of your bundle will have to use `chunk.default` to access the default export.';
    const esbuild = '▲ [WARNING] Duplicate key "code" in object literal [duplicate-object-key]';
    expect(findWarnings(`${CLEAN}${unused}\nESM dist/cli.js 70 KB\n${mixed}\n${esbuild}\n`)).toEqual([unused, mixed, esbuild]);
  });

  it('keeps the default and the named tempFiles of tempfile-manager/fastify, imported and required', () => {
    const script = `
      import { createRequire } from 'node:module';
      const esm = await import(${JSON.stringify(path.join(dist, 'fastify.js'))});
      const cjs = createRequire(import.meta.url)(${JSON.stringify(path.join(dist, 'fastify.cjs'))});
      const name = (plugin) => plugin[Symbol.for('fastify.display-name')];
      // What TypeScript and Babel make of \`import tempFiles from\` compiled to CommonJS (__importDefault).
      const importDefault = (mod) => (mod && mod.__esModule ? mod : { default: mod });
      console.log(JSON.stringify({
        required: [typeof cjs.default, cjs.tempFiles === cjs.default, name(cjs.default)],
        compiledDefaultImport: name(importDefault(cjs).default),
        imported: [typeof esm.default, esm.tempFiles === esm.default, name(esm.default)],
      }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    const face = ['function', true, 'tempfile-manager'];
    expect(JSON.parse(out)).toEqual({ required: face, compiledDefaultImport: 'tempfile-manager', imported: face });
  });

  it('runs as a plain ES module bundle of an app (esbuild --bundle --platform=node --format=esm, no banner): nothing it inlines calls require()', async () => {
    const { build } = await import('esbuild');
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-bundle-')), 'app.mjs');
    await build({ entryPoints: [path.join(import.meta.dirname, '../fixtures/bundled-app.mjs')], bundle: true, platform: 'node', format: 'esm', outfile: out, logLevel: 'silent' });
    const root = path.join(path.dirname(out), 'root');
    expect(execFileSync(process.execPath, [out, root], { encoding: 'utf8' }).trim()).toBe('ok');
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  });
});
