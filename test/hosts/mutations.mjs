// Invariants broken on purpose: each makes a copy of the build with one check sabotaged, for a
// run of the bed that must fail (`run.mjs --mutation NAME`).
import fs from 'node:fs';
import path from 'node:path';

export const MUTATIONS = {
  // Both ways a holder learns of a takeover go: the heartbeat that finds its held name gone, and
  // a failed step that looks for it. Breaking one alone leaves the other to fence the worker
  // whenever its timer fires first after SIGCONT, and the bed catches the mutation by chance.
  'no-fence': {
    what: 'a lease never learns it was taken over: neither its heartbeat nor a failed step tells the holder (no LeaseLostError)',
    patches: [
      { from: /stillHeld\(\) \{\n/, to: 'stillHeld() {\n    return true;\n' },
      { from: /gone = true;/, to: 'gone = false;' },
    ],
  },
  // The object-store lease (src/object-store/lease.ts): a refused write reads the lease and goes on only if
  // it still names this holder (an earlier write of its own whose answer was lost). Mutated, any
  // lease will do: a holder taken over writes over the new holder's lease and goes on.
  's3-no-fence': {
    what: "an object-store lease's refused write goes on whoever the lease names: a holder taken over takes the lease back (no LeaseLostError)",
    patches: [{ from: /if \(seen && seen\.holder === this\.holder\) \{/, to: 'if (seen) {' }],
  },
  'no-lease': {
    what: 'every lease is judged dead: a claim takes over a live holder at once',
    patches: [{ from: /function holderAlive\([^)]*\) \{\n/, to: '$&  return false;\n' }],
  },
};

/**
 * The build's files that hold the code each patch of a mutation breaks (the build shares code in
 * chunks), one list per patch: an empty list means that patch no longer applies.
 */
export function filesToMutate(name, dist) {
  const files = fs.readdirSync(dist).filter((file) => file.endsWith('.js')).map((file) => path.join(dist, file));
  return MUTATIONS[name].patches.map((patch) => files.filter((file) => patch.from.test(fs.readFileSync(file, 'utf8'))));
}

/** Copies `dist` to `into`, applies the mutation, and returns the mutated entry point. */
export function applyMutation(name, dist, into) {
  const mutation = MUTATIONS[name];
  fs.cpSync(dist, into, { recursive: true });
  const targets = filesToMutate(name, into);
  targets.forEach((files, i) => {
    if (files.length === 0) throw new Error(`mutation ${name}: the code of patch ${i + 1} is not in the build (rebuild, or update the mutation)`);
    const { from, to } = mutation.patches[i];
    for (const file of files) fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(from, to));
  });
  // The copy resolves its dependencies from the project's node_modules.
  fs.symlinkSync(path.resolve(dist, '..', 'node_modules'), path.join(into, 'node_modules'));
  return path.join(into, 'index.js');
}
