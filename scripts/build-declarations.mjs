// The package's declarations, as published. The native TypeScript compiler (tsgo, a second or two
// where tsup's rollup-plugin-dts pass over the sources took most of a minute) writes one .d.ts per
// module of src/ to a scratch directory; each loses its members tagged @internal and what only
// they named (strip-internal.mjs), before bundling, so that the bundler's tree-shaking drops the
// rest; rollup-plugin-dts bundles them per entry (scripts/entries.json) as .d.ts files importing
// ./chunk.js and as .d.cts files importing ./chunk.cjs, the types entries share in chunks of the
// package's own. Rollup's transitive import hoisting stays off: it gave each entry a bare
// `import '<peer>'` of every package a chunk under it once imported (an Express user's
// declarations asked for @aws-sdk/client-s3). Last, strip-internal's pass over the bundle.
//
//   node scripts/build-declarations.mjs [outDir]   (dist by default)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { rollup } from 'rollup';
import { dts } from 'rollup-plugin-dts';
import { dropUnusedImports, internalMembers, stripBuild, stripInternal } from './strip-internal.mjs';

const repo = path.join(import.meta.dirname, '..');
const entries = JSON.parse(fs.readFileSync(path.join(repo, 'scripts/entries.json'), 'utf8'));

/** tsgo's per-module declarations of src/ in `dir`; throws with its errors. */
function emit(dir) {
  const tsgo = path.join(path.dirname(createRequire(import.meta.url).resolve('@typescript/native-preview/package.json')), 'bin/tsgo');
  const result = spawnSync(process.execPath, [tsgo, '-p', path.join(repo, 'tsconfig.declarations.json'), '--outDir', dir], { cwd: repo, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`the declarations did not compile:\n${result.stdout}${result.stderr}`);
}

function declarationFiles(dir) {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.d.ts')).map((name) => path.join(dir, name));
}

/** Strips each module's declarations in place; the number of @internal members removed. */
function stripModules(dir) {
  let removed = 0;
  for (const file of declarationFiles(dir)) {
    const text = fs.readFileSync(file, 'utf8');
    removed += internalMembers(text, file).length;
    const strip = (before) => dropUnusedImports(stripInternal(before, file), file);
    let out = text;
    for (let next = strip(out); next !== out; next = strip(out)) out = next;
    if (out !== text) fs.writeFileSync(file, out);
  }
  return removed;
}

/** Bundles the stripped modules of `dir` into `outDir`; the files written, with their sizes. */
async function bundle(dir, outDir) {
  const input = Object.fromEntries(Object.entries(entries).map(([name, { source }]) => [name, path.join(dir, path.relative('src', source).replace(/\.ts$/, '.d.ts'))]));
  const warnings = [];
  const build = await rollup({
    input,
    plugins: [dts({ compilerOptions: {} })],
    external: (id) => !id.startsWith('.') && !path.isAbsolute(id),
    // Rollup's info logs (how many chunks it merged) are not warnings: the build prints none.
    onLog: (level, log) => {
      if (level === 'warn') warnings.push(log.message);
    },
  });
  // A chunk is named after its first module, `io.d.ts` ("io.d"): `io-<hash>.d.ts`, not `io.d-<hash>.d.ts`.
  const chunkName = (extension) => (chunk) => `${chunk.name.replace(/\.d$/, '')}-[hash]${extension}`;
  // Chunks under 2.5 KB merged into others: the main entry's shared types in two chunks, not
  // three, within the 1,000 lines test/integration/surface.test.ts allows it (an entry's own
  // types, 3 KB and over, stay in its file). Rollup merges by side effects, which declarations
  // have none of, not by peers: isolated() checks the result.
  const outputs = await Promise.all(
    ['.d.ts', '.d.cts'].map((extension) =>
      build.write({ dir: outDir, hoistTransitiveImports: false, experimentalMinChunkSize: 2500, entryFileNames: `[name]${extension}`, chunkFileNames: chunkName(extension) }),
    ),
  );
  await build.close();
  for (const warning of warnings) console.warn(warning);
  for (const { output } of outputs) isolated(output);
  return outputs.flatMap(({ output }) => output).map((file) => ({ name: file.fileName, size: file.type === 'chunk' ? file.code.length : file.source.length }));
}

/**
 * Throws unless each entry's declarations, with the chunks they import, import no package but
 * Node's and that entry's own peers: a user installs only those (an Express user has no
 * @aws-sdk/client-s3), and TypeScript stops at an import it cannot resolve.
 */
function isolated(output) {
  const byName = new Map(output.map((file) => [file.fileName, file]));
  const leaks = [];
  for (const [name, { peers }] of Object.entries(entries)) {
    const entry = output.find((file) => file.type === 'chunk' && file.isEntry && file.name === name);
    const reached = new Set();
    const packages = new Set();
    const visit = (chunk) => {
      if (reached.has(chunk.fileName)) return;
      reached.add(chunk.fileName);
      for (const id of chunk.imports) {
        if (byName.has(id)) visit(byName.get(id));
        else packages.add(id);
      }
    };
    visit(entry);
    const foreign = [...packages].filter((id) => !id.startsWith('node:') && !peers.some((peer) => id === peer || id.startsWith(`${peer}/`)));
    if (foreign.length > 0) leaks.push(`${entry.fileName} imports ${foreign.join(', ')}`);
  }
  if (leaks.length > 0) throw new Error(`the declarations import packages that are not their entry's peers (scripts/entries.json):\n${leaks.join('\n')}`);
}

/** strip-internal's pass over the bundle, as the build ran it after tsup. */
function stripBundle(outDir) {
  const exportTargets = [];
  const collect = (value) => (typeof value === 'string' ? exportTargets.push(value) : value && typeof value === 'object' && Object.values(value).forEach(collect));
  collect(JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).exports);
  const entryFiles = new Set(exportTargets.filter((t) => /\.d\.c?ts$/.test(t)).map((t) => path.join(outDir, path.basename(t))));
  for (const kind of [/\.d\.ts$/, /\.d\.cts$/]) {
    const files = Object.fromEntries(fs.readdirSync(outDir).filter((name) => kind.test(name)).map((name) => [path.join(outDir, name), fs.readFileSync(path.join(outDir, name), 'utf8')]));
    for (const [file, text] of Object.entries(stripBuild(files, entryFiles))) if (text !== files[file]) fs.writeFileSync(file, text);
  }
}

const kilobytes = (size) => (size < 1024 ? `${size.toFixed(2)} B` : `${(size / 1024).toFixed(2)} KB`);

/** Builds the declarations into `outDir`, printing what it wrote as tsup did. */
export async function buildDeclarations(outDir = path.join(repo, 'dist')) {
  const started = Date.now();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-declarations-'));
  try {
    emit(scratch);
    const removed = stripModules(scratch);
    fs.mkdirSync(outDir, { recursive: true });
    const written = await bundle(scratch, outDir);
    stripBundle(outDir);
    console.log(`DTS ⚡️ Build success in ${Date.now() - started}ms`);
    const width = Math.max(...written.map((file) => path.join(path.relative(repo, outDir), file.name).length));
    for (const file of written) console.log(`DTS ${path.join(path.relative(repo, outDir), file.name).padEnd(width)} ${kilobytes(file.size)}`);
    console.log(`strip-internal: ${removed} internal members removed from the declaration files`);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  await buildDeclarations(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
}
