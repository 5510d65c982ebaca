// A process of the same uid that attacks the root while producers, workers and sweepers use it:
//  - plants FIFOs, sockets-to-be (FIFOs stand in), hard links to a file outside the root, and
//    symlinks, under fresh names in the root, the handoff directory, sessions and entries;
//  - plants FIFOs at keep() destinations that workers are about to use (`dest/<ticket id>`);
//  - swaps the root for a symlink to a victim directory for a moment, the victim holding a
//    directory named like every live session with a file named like each of their files, then
//    puts the root back and checks that the victim is exactly as it was.
// Records what it did in the ledger; 'victim-changed' breaks an invariant.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readLedger, record } from './ledger.mjs';
import { prng } from './prng.mjs';

const [root, ledger, seed, stopFile, canary, dest, victim] = process.argv.slice(2);
const rand = prng(Number(seed));
const counts = { fifos: 0, hardLinks: 0, symlinks: 0, destinationFifos: 0, rootSwaps: 0 };
let serial = 0;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const quietly = (fn) => {
  try {
    fn();
    return true;
  } catch {
    return false; // the directory went away under us: fine
  }
};

function mkfifo(at) {
  return spawnSync('mkfifo', ['-m', '600', at]).status === 0;
}

/** Directories to plant in: the root, the handoff directory, the sessions, the entries. */
function targets() {
  const dirs = [root];
  for (const name of quietly(() => fs.readdirSync(root)) ? fs.readdirSync(root) : []) {
    if (name.startsWith('session_') && !name.endsWith('.lock')) dirs.push(path.join(root, name));
  }
  const handoff = path.join(root, 'handoff');
  dirs.push(handoff);
  let entries = [];
  quietly(() => (entries = fs.readdirSync(handoff)));
  for (const name of entries.slice(0, 20)) dirs.push(path.join(handoff, name));
  return dirs;
}

function plantSpecial() {
  const dir = rand.pick(targets());
  const name = path.join(dir, `planted-${process.pid}-${serial++}`);
  const kind = rand.int(0, 2);
  if (kind === 0 && mkfifo(name)) counts.fifos += 1;
  if (kind === 1 && quietly(() => fs.linkSync(path.join(canary, 'precious.txt'), name))) counts.hardLinks += 1;
  if (kind === 2 && quietly(() => fs.symlinkSync(canary, name))) counts.symlinks += 1;
}

function plantDestination() {
  const issued = readLedger(ledger).filter((e) => e.type === 'issued');
  if (issued.length === 0) return;
  const { ticket } = rand.pick(issued.slice(-20));
  if (mkfifo(path.join(dest, ticket.id))) counts.destinationFifos += 1;
}

/** The victim mirrors the names under the root now: what a library reaching by path would hit. */
function mirrorIntoVictim() {
  fs.rmSync(victim, { recursive: true, force: true });
  fs.mkdirSync(victim, { mode: 0o700 });
  let sessions = [];
  quietly(() => (sessions = fs.readdirSync(root).filter((n) => n.startsWith('session_'))));
  for (const session of sessions) {
    quietly(() => {
      fs.mkdirSync(path.join(victim, session));
      for (const file of fs.readdirSync(path.join(root, session)).slice(0, 50)) {
        fs.writeFileSync(path.join(victim, session, file), `victim ${file}`);
      }
    });
  }
  fs.mkdirSync(path.join(victim, 'handoff'));
  fs.writeFileSync(path.join(victim, '.tempfile-manager'), fs.readFileSync(path.join(root, '.tempfile-manager')));
  fs.writeFileSync(path.join(victim, 'not-the-librarys.txt'), 'precious');
}

function hashTree(dir) {
  const hash = createHash('sha256');
  for (const rel of fs.readdirSync(dir, { recursive: true }).map(String).sort()) {
    const full = path.join(dir, rel);
    const stat = fs.lstatSync(full);
    hash.update(`${rel}:${stat.mode}:${stat.isFile() ? fs.readFileSync(full, 'hex') : ''}\n`);
  }
  return hash.digest('hex');
}

async function swapRoot() {
  mirrorIntoVictim();
  const before = hashTree(victim);
  const moved = `${root}.moved`;
  fs.renameSync(root, moved);
  try {
    fs.symlinkSync(victim, root);
    try {
      await sleep(rand.int(50, 400));
    } finally {
      fs.unlinkSync(root);
    }
  } finally {
    fs.renameSync(moved, root);
  }
  counts.rootSwaps += 1;
  const after = hashTree(victim);
  if (after !== before) record(ledger, { type: 'victim-changed', listing: fs.readdirSync(victim, { recursive: true }).map(String).sort().slice(0, 40) });
}

while (!fs.existsSync(stopFile)) {
  await sleep(rand.int(20, 200));
  const roll = rand.int(0, 99);
  if (roll < 60) plantSpecial();
  else if (roll < 85) plantDestination();
  else if (roll < 90) await swapRoot();
}
record(ledger, { type: 'attacker-counts', ...counts });
