// The package's JavaScript: tsup (ESM, CJS and the CLI), then the ESM build's chunks that the main
// entry loads merged into one, `core-<hash>.js`, which every entry imports.
//
// Why: a module's source is a string on V8's heap, and one under 128 KiB is made in the young
// generation, copied at each scavenge while the module loads and then promoted; one larger is
// made in the large-object space once. tsup splits the code the entries share by which entries
// reach it, so the main entry loaded seven files of 3 to 128 KB: 1.5 to 1.8 MiB more resident
// memory at rest than the same code in one file (docs/design.md, "Memory at rest"). The other
// entries keep chunks of their own, loaded with them.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const repo = path.join(import.meta.dirname, '..');
const require = createRequire(import.meta.url);

/** Builds dist/'s JavaScript with tsup, then merges the main entry's ESM chunks. Resolves to an exit status. */
export async function buildJavaScript() {
  const status = await new Promise((resolve) => {
    spawn(process.execPath, [require.resolve('tsup/dist/cli-default.js')], { cwd: repo, stdio: 'inherit' }).on('close', (code) => resolve(code ?? 1));
  });
  if (status !== 0) return status;
  await mergeCore(path.join(repo, 'dist'));
  return 0;
}

/** The relative imports (static) of an ESM file of dist/. */
function importsOf(file) {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)(?:import|export)\b[^'"]*?['"]\.\/([^'"]+\.js)['"]/g)].map((match) => match[1]);
}

/** The ESM chunks that `index.js` loads, directly or not. */
function coreChunks(dist) {
  const found = new Set();
  const queue = ['index.js'];
  while (queue.length > 0) {
    for (const name of importsOf(path.join(dist, queue.pop()))) {
      if (found.has(name)) continue;
      found.add(name);
      queue.push(name);
    }
  }
  return found;
}

async function mergeCore(dist) {
  const { rollup } = await import('rollup');
  const entries = JSON.parse(fs.readFileSync(path.join(repo, 'scripts', 'entries.json'), 'utf8'));
  const core = coreChunks(dist);
  const bundle = await rollup({
    input: Object.fromEntries(Object.keys(entries).map((name) => [name, path.join(dist, `${name}.js`)])),
    // The code as tsup left it: nothing to shake, only files to join.
    treeshake: false,
    external: (id) => !id.startsWith('.') && !path.isAbsolute(id),
    onwarn: (warning) => {
      throw new Error(`merging the main entry's chunks: ${warning.message}`);
    },
  });
  const out = fs.mkdtempSync(path.join(dist, '.merged-'));
  await bundle.write({
    dir: out,
    format: 'es',
    entryFileNames: '[name].js',
    chunkFileNames: (chunk) => (chunk.name === 'core' ? 'core-[hash].js' : 'chunk-[hash].js'),
    manualChunks: (id) => (core.has(path.basename(id)) ? 'core' : undefined),
  });
  await bundle.close();
  for (const name of fs.readdirSync(dist)) if (/^chunk-.*\.js$/.test(name)) fs.rmSync(path.join(dist, name));
  for (const name of fs.readdirSync(out)) fs.renameSync(path.join(out, name), path.join(dist, name));
  fs.rmdirSync(out);
}
