// Invariants broken on purpose: each makes a copy of the build with one check sabotaged, for a
// run of the bed that must fail (`run.mjs --mutation NAME`).
import fs from 'node:fs';
import path from 'node:path';

export const MUTATIONS = {
  'no-fence': {
    what: 'a claim never notices that its held name is gone: a worker that was taken over is not told (no LeaseLostError)',
    from: /stillHeld\(\) \{\n/,
    to: 'stillHeld() {\n    return true;\n',
  },
  'no-lease': {
    what: 'every lease is judged dead: a claim takes over a live holder at once',
    from: /function holderAlive\([^)]*\) \{\n/,
    to: '$&  return false;\n',
  },
};

/** The build's files that hold the code a mutation breaks (the build shares code in chunks). */
export function filesToMutate(name, dist) {
  const files = fs.readdirSync(dist).filter((file) => file.endsWith('.js')).map((file) => path.join(dist, file));
  return files.filter((file) => MUTATIONS[name].from.test(fs.readFileSync(file, 'utf8')));
}

/** Copies `dist` to `into`, applies the mutation, and returns the mutated entry point. */
export function applyMutation(name, dist, into) {
  const mutation = MUTATIONS[name];
  fs.cpSync(dist, into, { recursive: true });
  const patched = filesToMutate(name, into);
  if (patched.length === 0) throw new Error(`mutation ${name}: the code it breaks is not in the build (rebuild, or update the mutation)`);
  for (const file of patched) fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(mutation.from, mutation.to));
  // The copy resolves its dependencies from the project's node_modules.
  fs.symlinkSync(path.resolve(dist, '..', 'node_modules'), path.join(into, 'node_modules'));
  return path.join(into, 'index.js');
}
