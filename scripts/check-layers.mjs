// The layers of src/, from the ground up: a module imports only modules of its own layer or of a
// layer below (type-only imports included), and no modules import each other in a circle. A layer
// of rooms (the stores: s3/, azure/) is one floor of folders that never import each other: each
// stands on the floors below alone. Prints the import graph between layers; fails on any import
// that runs back up, runs sideways between rooms, or closes a circle.
// docs/design.md draws the same layers.
//
//   node scripts/check-layers.mjs           check (npm test runs it through test/integration/layers.test.ts)
//   node scripts/check-layers.mjs --graph   print every import between layers as well
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/**
 * Bottom first. Each entry: a layer name and its folders (the entry points sit at the top of
 * src/); a third element `'rooms'` makes its folders rooms, which may not import each other.
 */
export const LAYERS = [
  ['base', ['base/']],
  ['disk', ['disk/']],
  ['owner', ['owner/']],
  ['root', ['root/']],
  ['limits', ['limits/']],
  ['keep', ['keep/']],
  ['handoff', ['handoff/']],
  ['lifetime', ['lifetime/']],
  ['sweep', ['sweep/']],
  ['context', ['context/']],
  ['write', ['write/']],
  ['handles', ['handles/']],
  ['object-store', ['object-store/']],
  ['stores', ['s3/', 'azure/'], 'rooms'],
  ['manager', ['manager/']],
  ['tus', ['tus/']],
  ['testing', ['testing/']],
  ['uploads', ['uploads/']],
  ['adapters', ['adapters/']],
  ['cli', ['cli/']],
  ['entry', ['index.ts', 'errors.ts', 'diagnostics.ts', 'bin.ts']],
];


function layerOf(file) {
  for (let rank = 0; rank < LAYERS.length; rank++) {
    const [name, members, rooms] = LAYERS[rank];
    const member = members.find((m) => (m.endsWith('/') ? file.startsWith(m) : file === m));
    if (member !== undefined) return { rank, name, room: rooms === 'rooms' ? member : undefined };
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

/**
 * Import circles between modules: each strongly connected set of two or more modules (Tarjan),
 * as sorted module lists.
 */
export function circles(edges = imports()) {
  const next = new Map();
  for (const { from, to } of edges) {
    if (!next.has(from)) next.set(from, new Set());
    next.get(from).add(to);
  }
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  const visit = (node) => {
    index.set(node, index.size);
    low.set(node, index.get(node));
    stack.push(node);
    onStack.add(node);
    for (const to of next.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node), low.get(to)));
      } else if (onStack.has(to)) low.set(node, Math.min(low.get(node), index.get(to)));
    }
    if (low.get(node) !== index.get(node)) return;
    const members = [];
    let member;
    do {
      member = stack.pop();
      onStack.delete(member);
      members.push(member);
    } while (member !== node);
    if (members.length > 1) found.push(members.sort());
  };
  for (const node of next.keys()) if (!index.has(node)) visit(node);
  return found;
}

export function check() {
  const edges = imports();
  const upward = [...new Set(edges.filter((e) => layerOf(e.to).rank > layerOf(e.from).rank).map((e) => `${e.from} -> ${e.to}`))].sort();
  const sideways = [
    ...new Set(
      edges
        .filter((e) => {
          const [a, b] = [layerOf(e.from), layerOf(e.to)];
          return a.room !== undefined && a.rank === b.rank && a.room !== b.room;
        })
        .map((e) => `${e.from} -> ${e.to}`),
    ),
  ].sort();
  return {
    edges,
    upward,
    sideways,
    circles: circles(edges),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { edges, upward, sideways, circles: found } = check();
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
  console.log(`${upward.length} imports run back up`);
  for (const edge of upward) console.error(`import running back up: ${edge}: import from a lower layer, or pass it in`);
  console.log(`${sideways.length} imports between rooms`);
  for (const edge of sideways) console.error(`import between rooms: ${edge}: move what both need down a floor (object-store/)`);
  console.log(`${found.length} import circles`);
  for (const members of found) console.error(`import circle: ${members.join(' <-> ')}: break it by moving the shared part down`);
  process.exit(upward.length + sideways.length + found.length > 0 ? 1 : 0);
}
