#!/usr/bin/env node
// The handoff contract's suite (test/contract/) against promises broken on purpose: each mutation
// changes src/ (and, where the suite's child claimer must run it, a copy of dist/ that the child
// loads through TFM_CONTRACT_DIST, as test/hosts/mutations.mjs does), runs the one test of the
// promise it breaks on every backend, and must see it fail on each backend the mutation reaches;
// src/ is put back after each. Needs RGW, Azurite and a build, as `npm run test:contract` does.
//
//   node scripts/contract-mutations.mjs [name...]     all of them, or those named
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FENCE = 'takeover after staleMs, and fencing';
const EXCLUSIVE = 'exclusive: of 2 to 6 racing claimers';
const RELEASE = 'disposal without consume\\(\\) releases';
const CHECKED = 'checked bytes';
const EXPIRY = 'expiry: a ticket past expiresAt';
const BOUND = 'bound: a ticket whose meta, createdAt or digest \\(its algorithm too\\) was edited';

/** Each: the file and text it changes, the test it must fail, the backends it reaches, and the same change in the build when the child claimer must run it. */
export const MUTATIONS = {
  'object-no-fence': {
    what: "an object store's refused lease write goes on whoever the lease names: a holder taken over takes the lease back",
    file: 'src/object-store/lease.ts',
    from: 'if (seen && seen.holder === this.holder) {',
    to: 'if (seen) {',
    test: FENCE,
    backends: ['s3', 'azure'],
    dist: [{ from: /if \(seen && seen\.holder === this\.holder\) \{/, to: 'if (seen) {' }],
  },
  'disk-no-fence': {
    what: "a disk lease never learns it was taken over: a failed step does not look for its held name",
    file: 'src/handoff/disk-claim.ts',
    from: 'private stillHeld(): boolean {\n',
    to: 'private stillHeld(): boolean {\n    return true;\n',
    extra: { file: 'src/owner/heartbeat.ts', from: 'gone = true;', to: 'gone = false;' },
    test: FENCE,
    backends: ['disk'],
    dist: [
      { from: /stillHeld\(\) \{\n/, to: 'stillHeld() {\n    return true;\n' },
      { from: /gone = true;/, to: 'gone = false;' },
    ],
  },
  'azure-if-match-dropped': {
    what: "the Azure store's lease writes go without If-Match: a holder taken over writes over the new holder's lease",
    file: 'src/azure/io.ts',
    from: ": { ifMatch: condition.ifMatch };",
    to: ': {};',
    test: FENCE,
    backends: ['azure'],
    dist: [{ from: /\{ ifMatch: condition\.ifMatch \}/, to: '{}' }],
  },
  'azure-exists-not-refusal': {
    what: "the Azure store reads 409 BlobAlreadyExists as a failure, not as a create refused: a claimer that loses the race is told the store failed",
    file: 'src/azure/io.ts',
    from: "if (status === 412 || (status === 409 && code === 'BlobAlreadyExists'))",
    to: 'if (status === 412)',
    test: EXCLUSIVE,
    backends: ['azure'],
  },
  'object-no-lease': {
    what: "an object store's live lease is taken over at once",
    file: 'src/object-store/lease.ts',
    from: "if (seen.state !== 'released' && !leaseStale(io, keys.lease, seen, rules)) throw",
    to: 'if (false) throw',
    test: EXCLUSIVE,
    backends: ['s3', 'azure'],
  },
  'disk-no-lease': {
    what: 'every disk lease holder is judged dead: a claim takes over a live holder at once',
    file: 'src/handoff/lease.ts',
    from: /export function holderAlive\([^)]*\): boolean \{\n/,
    to: '$&  return false;\n',
    test: EXCLUSIVE,
    backends: ['disk'],
  },
  'object-release-held': {
    what: "an object store's release() writes the lease back as held: the entry waits for staleMs",
    file: 'src/object-store/claim.ts',
    from: "await this.fence('released', 'release the handoff');",
    to: "await this.fence('held', 'release the handoff');",
    test: RELEASE,
    backends: ['s3', 'azure'],
  },
  'object-unchecked-size': {
    what: "an object store's claim does not compare the bytes' count with the ticket's size",
    file: 'src/object-store/engine.ts',
    from: 'local.size !== ticket.size ?',
    to: 'false ?',
    test: CHECKED,
    backends: ['s3', 'azure'],
  },
  'disk-unchecked-size': {
    what: "a disk claim does not compare the file's size with the ticket's",
    file: 'src/handoff/disk-claim.ts',
    from: 'if (stat.size !== ticket.size) throw',
    to: 'if (false) throw',
    test: CHECKED,
    backends: ['disk'],
  },
  'object-sweep-takes-live': {
    what: "an object store's sweep takes an expired entry from a live holder",
    file: 'src/object-store/sweep.ts',
    from: "if (seen.state !== 'released' && !leaseStale(io, keys.lease, seen, rules)) return 'held';",
    to: '',
    test: EXPIRY,
    backends: ['s3', 'azure'],
  },
  'disk-unbound': {
    what: 'a shared-disk claim whose ticket was edited takes the entry of its id anyway: a worker acts on a forged meta',
    file: 'src/handoff/disk-claim.ts',
    from: "const edited = (await fs.promises.readdir(handoffBase)).some((name) => name.startsWith(prefix) && name !== bound);\n  if (edited) throw new HandoffMismatchError(ticket.id, 'the ticket differs from the one the handoff holds');",
    to: 'const edited = (await fs.promises.readdir(handoffBase)).find((name) => name.startsWith(prefix) && name !== bound);\n  if (edited) return edited;',
    test: BOUND,
    backends: ['disk'],
  },
  'object-unbound': {
    what: "an object store's claim does not compare the ticket with the binding the data object holds: a worker acts on a forged meta",
    file: 'src/object-store/engine.ts',
    from: 'if (signal?.aborted || !bindsTicket(got.metadata[META_TICKET], ticket, this.#location)) {',
    to: 'if (signal?.aborted) {',
    test: BOUND,
    backends: ['s3', 'azure'],
  },
};

function patch(file, from, to) {
  const text = fs.readFileSync(file, 'utf8');
  const changed = text.replace(from, to);
  if (changed === text) throw new Error(`${file}: the code this mutation changes is not there (update scripts/contract-mutations.mjs)`);
  fs.writeFileSync(file, changed);
  return text;
}

function run(name) {
  const m = MUTATIONS[name];
  const saved = [[m.file, patch(m.file, m.from, m.to)]];
  try {
    if (m.extra) saved.push([m.extra.file, patch(m.extra.file, m.extra.from, m.extra.to)]);
    const env = { ...process.env, CI: '1' };
    if (m.dist) env.TFM_CONTRACT_DIST = mutatedDist(m.dist);
    const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-mutation-')), 'report.json');
    const pattern = `the handoff contract on (${m.backends.join('|')}) ${m.test}`;
    spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', 'test/contract', '-t', pattern, '--reporter=json', `--outputFile.json=${report}`], { stdio: 'ignore', env });
    const results = JSON.parse(fs.readFileSync(report, 'utf8')).testResults.flatMap((file) => file.assertionResults);
    const caught = m.backends.map((backend) => {
      const test = results.find((r) => r.fullName.startsWith(`the handoff contract on ${backend} `) && new RegExp(m.test).test(r.fullName));
      return { backend, status: test?.status ?? 'not run', caught: test?.status === 'failed' };
    });
    return caught;
  } finally {
    for (const [file, text] of saved) fs.writeFileSync(file, text);
  }
}

/** A copy of dist/ with `patches` applied (each must change a file), resolving its dependencies from node_modules. */
function mutatedDist(patches) {
  if (!fs.existsSync('dist/index.js')) throw new Error('no dist/: run npm run build first');
  const into = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-mutated-')), 'dist');
  fs.cpSync('dist', into, { recursive: true });
  const files = fs.readdirSync(into).filter((file) => file.endsWith('.js')).map((file) => path.join(into, file));
  for (const { from, to } of patches) {
    const hit = files.filter((file) => from.test(fs.readFileSync(file, 'utf8')));
    if (hit.length === 0) throw new Error(`the build has no ${from}: rebuild, or update scripts/contract-mutations.mjs`);
    for (const file of hit) fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(from, to));
  }
  fs.symlinkSync(path.resolve('node_modules'), path.join(into, '..', 'node_modules'));
  return `${into}/`;
}

/** The suite's tests that did not pass, unmutated: a failure there would pass for a catch below. */
function baseline() {
  const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-mutation-')), 'report.json');
  spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', 'test/contract', '--reporter=json', `--outputFile.json=${report}`], { stdio: 'ignore', env: { ...process.env, CI: '1' } });
  return JSON.parse(fs.readFileSync(report, 'utf8')).testResults.flatMap((file) => file.assertionResults).filter((r) => r.status !== 'passed').map((r) => r.fullName);
}

/** Runs the suite unmutated, then each mutation named (all of them by default); exits 1 on any missed. */
function main(names) {
  const unmutated = baseline();
  if (unmutated.length > 0) {
    console.error(`the contract suite fails unmutated, so no mutation can be judged: ${unmutated.join('; ')}`);
    process.exit(1);
  }
  console.log('the contract suite passes unmutated on every backend');
  let missed = 0;
  for (const name of names) {
    const caught = run(name);
    for (const { backend, status, caught: ok } of caught) {
      if (!ok) missed++;
      console.log(`${ok ? 'caught' : 'MISSED'}  ${name} on ${backend} (the test ${status}): ${MUTATIONS[name].what}`);
    }
  }
  process.exit(missed === 0 ? 0 : 1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(MUTATIONS));
