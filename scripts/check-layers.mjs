// The layers of src/, from the ground up: a module imports only modules of its own layer or of a
// layer below (type-only imports included). Prints the import graph between layers; fails on any
// import that runs back up and is not in KNOWN_UPWARD, and on any entry of KNOWN_UPWARD that is
// gone (so the list only shrinks). docs/design.md draws the same layers.
//
//   node scripts/check-layers.mjs           check (npm test runs it through test/integration/layers.test.ts)
//   node scripts/check-layers.mjs --graph   print every import between layers as well
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/** Bottom first. Each entry: a layer name and the modules in it (a folder, or a top-level file). */
export const LAYERS = [
  ['base', ['errors.ts', 'log.ts', 'layout.ts', 'names.ts']],
  ['disk', ['disk/']],
  ['owner', ['owner/']],
  ['root', ['root.ts', 'options.ts']],
  ['limits', ['limits/']],
  ['lifetime', ['lifetime/']],
  ['handoff', ['handoff/']],
  ['context', ['context.ts']],
  ['write', ['write/']],
  ['handles', ['handles/']],
  ['manager', ['manager.ts']],
  ['adapters', ['adapters/', 'cli.ts']],
  ['entry', ['index.ts', 'bin.ts']],
];

/**
 * Imports that run back up today, `from -> to`, relative to src/. Each is a debt: the layer
 * below reaches a concept that should sit under it or be passed in as a callback.
 */
export const KNOWN_UPWARD = [
  'handoff/claim.ts -> handles/move.ts',
  'lifetime/sweep.ts -> handoff/entries.ts',
  'lifetime/sweep.ts -> handoff/lease.ts',
  'write/write.ts -> handles/create.ts',
  'write/write.ts -> handles/file.ts',
];

function layerOf(file) {
  for (let rank = 0; rank < LAYERS.length; rank++) {
    const [name, members] = LAYERS[rank];
    if (members.some((m) => (m.endsWith('/') ? file.startsWith(m) : file === m))) return { rank, name };
  }
  throw new Error(`${file} is in no layer: add it to LAYERS in scripts/check-layers.mjs`);
}

function sourceFiles(dir = SRC) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [path.relative(SRC, full)] : [];
  });
}

/** Every relative import of src/: `{ from, to }`, paths relative to src/. */
export function imports() {
  const edges = [];
  for (const from of sourceFiles()) {
    const text = fs.readFileSync(path.join(SRC, from), 'utf8');
    for (const match of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const to = path.relative(SRC, path.resolve(SRC, path.dirname(from), match[1])).replace(/\.js$/, '.ts');
      edges.push({ from, to });
    }
  }
  return edges;
}

export function check() {
  const edges = imports();
  const upward = [...new Set(edges.filter((e) => layerOf(e.to).rank > layerOf(e.from).rank).map((e) => `${e.from} -> ${e.to}`))].sort();
  return {
    edges,
    upward,
    unknown: upward.filter((edge) => !KNOWN_UPWARD.includes(edge)),
    stale: KNOWN_UPWARD.filter((edge) => !upward.includes(edge)),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { edges, upward, unknown, stale } = check();
  if (process.argv.includes('--graph')) {
    const counts = new Map();
    for (const { from, to } of edges) {
      const [a, b] = [layerOf(from), layerOf(to)];
      if (a.name === b.name) continue;
      const key = `${a.name} -> ${b.name}${b.rank > a.rank ? '  (up)' : ''}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    for (const [key, n] of [...counts].sort()) console.log(`${key}: ${n}`);
  }
  console.log(`${upward.length} imports run back up (${KNOWN_UPWARD.length} known)`);
  for (const edge of unknown) console.error(`new import running back up: ${edge}: import from a lower layer, or pass it in`);
  for (const edge of stale) console.error(`gone: ${edge}: remove it from KNOWN_UPWARD`);
  process.exit(unknown.length + stale.length > 0 ? 1 : 0);
}
