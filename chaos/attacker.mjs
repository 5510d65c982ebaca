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
import { listTree } from './tree.mjs';

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

/** Directories to plant in: the root, the handoff directory, the sessions, the entries (never through a link). */
function targets() {
  const dirs = [root];
  let names = [];
  quietly(() => (names = fs.readdirSync(root)));
  for (const name of names) if (name.startsWith('session_') && !name.endsWith('.lock')) dirs.push(path.join(root, name));
  const handoff = path.join(root, 'handoff');
  dirs.push(handoff);
  let entries = [];
  quietly(() => (entries = fs.readdirSync(handoff).filter((name) => name.startsWith('entry_'))));
  for (const name of entries.slice(0, 20)) dirs.push(path.join(handoff, name));
  return dirs.filter((dir) => quietly(() => {
    if (!fs.lstatSync(dir).isDirectory()) throw new Error('not a directory');
  }));
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
  const { ticket } = rand.pick(issued.slice(-6)); // the newest: most likely still to be claimed
  if (mkfifo(path.join(dest, `${ticket.id}.kept`))) counts.destinationFifos += 1;
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

// The producers' own links (evil-*), planted by a path they were handed, land in the victim when
// they are made during a swap: user code, not the library (docs/security.md). They are not counted.
function hashTree(dir) {
  const hash = createHash('sha256');
  for (const rel of listTree(dir).filter((rel) => !path.basename(rel).startsWith('evil-'))) {
    const full = path.join(dir, rel);
    const stat = fs.lstatSync(full);
    hash.update(`${rel}:${stat.mode}:${stat.isFile() ? fs.readFileSync(full, 'hex') : ''}\n`);
  }
  return hash.digest('hex');
}

/**
 * Swaps two names atomically (renameat2 RENAME_EXCHANGE, through Python's ctypes: Node has no
 * binding): the root's path is never missing, so no manager starting meanwhile makes a new root.
 */
function exchange(a, b) {
  const script = 'import ctypes,sys\nlibc=ctypes.CDLL(None,use_errno=True)\nsys.exit(0 if libc.renameat2(-100,sys.argv[1].encode(),-100,sys.argv[2].encode(),2)==0 else 1)';
  return spawnSync('python3', ['-c', script, a, b]).status === 0;
}

async function swapRoot() {
  mirrorIntoVictim();
  const before = hashTree(victim);
  const link = `${root}.link`;
  fs.symlinkSync(victim, link);
  if (!exchange(root, link)) {
    fs.unlinkSync(link); // no renameat2 here: no swap
    return;
  }
  try {
    await sleep(rand.int(50, 400));
  } finally {
    if (!exchange(root, link)) throw new Error(`could not put the root back: it is at ${link}`);
  }
  fs.unlinkSync(link);
  counts.rootSwaps += 1;
  const after = hashTree(victim);
  if (after !== before) record(ledger, { type: 'victim-changed', listing: listTree(victim).slice(0, 40) });
}

while (!fs.existsSync(stopFile)) {
  await sleep(rand.int(20, 200));
  const roll = rand.int(0, 99);
  if (roll < 60) plantSpecial();
  else if (roll < 85) plantDestination();
  else if (roll < 87) await swapRoot();
}
// What it planted next to the library's own names (the root, handoff/) is never the library's to
// remove (the sweep reports such names as foreign): the attacker takes them back.
for (const dir of [root, path.join(root, 'handoff')]) {
  let names = [];
  quietly(() => (names = fs.readdirSync(dir)));
  for (const name of names) if (name.startsWith('planted-')) quietly(() => fs.unlinkSync(path.join(dir, name)));
}
record(ledger, { type: 'attacker-counts', ...counts });
