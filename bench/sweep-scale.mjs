// The sweep's cost as entries grow: `mgr.sweep()`, `rm -rf` and the pinned floor (each file
// lstat'ed and unlinked through its directory held open, what the sweep promises at least) over
// the same trees of orphaned sessions at 10,000, 100,000 and 1,000,000 files, and the CLI's
// `ls --json` of such a tree. Interleaved, one child a sample, on tmpfs (the software's own cost).
//
//   node bench/sweep-scale.mjs                    10k, 100k and 1M files, 3 rounds
//   node bench/sweep-scale.mjs --sizes 10000 --rounds 5
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { deadOwnerFor, formatInt, formatRatio, median, plantDeadSessions, table } from './lib.mjs';

const HERE = fileURLToPath(import.meta.url);
const DIST = path.join(path.dirname(HERE), '..', 'dist');
const HOST_ID = 'scale-host';
const FILES_PER_DIR = 1000;
const DATA = Buffer.alloc(1024, 0x61);
// The tree each child sweeps first, untimed, so that the timed sweep runs compiled code, as in a
// process that sweeps every minute: as large as the timed one up to 10,000 files. After 500 files,
// V8 was still compiling the walk on its background threads during the timed sweep (its CPU time
// 1.3x to 1.4x its wall time), and the sweep of 10,000 files measured 0.84x the pinned floor.
const WARM_FILES = 10_000;

/** A shape of `files` files: sessions of up to 25 directories of 1,000 files (500 at 10,000). */
function shapeOf(files) {
  const perDir = Math.min(FILES_PER_DIR, files / 20);
  const dirs = files / perDir;
  const sessions = Math.max(2, Math.ceil(dirs / 25));
  return { sessions, dirs: dirs / sessions, files: perDir };
}

// ------------------------------------------------------------------------------------------
// The child: one sample. argv: --child <contender> <tree> <warm tree> <files>. Prints { ms }.

async function child([id, tree, warm, files]) {
  const { TempFileManager } = await import(path.join(DIST, 'index.js'));
  const manager = (root) => new TempFileManager({ root, hostId: HOST_ID, graceMs: 0, sweepOnStart: false, exitHook: false });
  const sweepers = {
    sweep: async (root) => {
      const report = await manager(root).sweep();
      if (report.errors.length > 0) throw new Error(`the sweep reported ${report.errors.length} errors`);
      return report.filesRemoved;
    },
    pinned: async (root) => pinnedRemove(root),
    'rm -rf': async (root) => {
      await new Promise((resolve, reject) => spawn('rm', ['-rf', root], { stdio: 'inherit' }).on('error', reject).on('exit', resolve));
      return Number(files);
    },
    'ls --json': async (root) => {
      const out = spawnSync(process.execPath, [path.join(DIST, 'cli.js'), 'ls', '--json', '--root', root, '--host-id', HOST_ID], { encoding: 'utf8', maxBuffer: 1 << 30 });
      if (out.status !== 0) throw new Error(`ls --json exited ${out.status}: ${out.stderr}`);
      return JSON.parse(out.stdout).sessions.reduce((sum, s) => sum + s.files, 0);
    },
  };
  const run = sweepers[id];
  await run(warm); // compiles the contender's code: what a sweep costs each time, not once
  const started = process.hrtime.bigint();
  const counted = await run(tree);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (counted !== Number(files)) throw new Error(`${id} counted ${counted} of ${files} files`);
  console.log(JSON.stringify({ ms }));
}

/** Each file lstat'ed and unlinked through its directory held open (/proc/self/fd), sync. */
function pinnedRemove(root) {
  let files = 0;
  const removeTree = (at, isRoot) => {
    const fd = fs.openSync(at, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    const base = `/proc/self/fd/${fd}`;
    let bytes = 0;
    for (const entry of fs.readdirSync(base, { withFileTypes: true })) {
      const child = `${base}/${entry.name}`;
      if (entry.isDirectory()) removeTree(child, false);
      else if (!isRoot) {
        bytes += fs.lstatSync(child).size;
        fs.unlinkSync(child);
        files++;
      }
    }
    fs.closeSync(fd);
    if (!isRoot) fs.rmdirSync(at);
    return bytes;
  };
  removeTree(root, true);
  return files;
}

// ------------------------------------------------------------------------------------------
// The parent.

const CONTENDERS = ['rm -rf', 'pinned', 'sweep', 'ls --json'];

function plant(root, shape, owner, index) {
  fs.mkdirSync(root, { mode: 0o700 });
  fs.writeFileSync(path.join(root, '.tempfile-manager'), 'tempfile-manager root\nformat 1\n');
  plantDeadSessions(root, { ...shape, owner, data: DATA, index });
}

function sample(id, tree, warm, files) {
  const out = spawnSync(process.execPath, [HERE, '--child', id, tree, warm, String(files)], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`${id}: ${out.stderr}`);
  return JSON.parse(out.stdout.trim().split('\n').at(-1)).ms;
}

async function parent() {
  const { values } = parseArgs({ options: { sizes: { type: 'string', default: '10000,100000,1000000' }, rounds: { type: 'string', default: '3' } } });
  const sizes = values.sizes.split(',').map(Number);
  const rounds = Number(values.rounds);
  const shm = fs.existsSync('/dev/shm') && fs.statfsSync('/dev/shm').type === 0x01021994 ? '/dev/shm' : os.tmpdir();
  const place = fs.mkdtempSync(path.join(shm, 'tempfile-manager-sweep-scale-'));
  const { TempFileManager } = await import(path.join(DIST, 'index.js'));
  const owner = deadOwnerFor(TempFileManager, place, HOST_ID);
  const rows = [];
  let index = 0;
  try {
    for (const files of sizes) {
      const shape = shapeOf(files);
      const times = Object.fromEntries(CONTENDERS.map((c) => [c, []]));
      for (let round = 0; round < rounds; round++) {
        for (let k = 0; k < CONTENDERS.length; k++) {
          const id = CONTENDERS[(round + k) % CONTENDERS.length];
          const tree = path.join(place, `tree-${index}`);
          const warm = path.join(place, `warm-${index}`);
          plant(tree, shape, owner, index++);
          plant(warm, shapeOf(Math.min(files, WARM_FILES)), owner, index++);
          times[id].push(sample(id, tree, warm, files));
          fs.rmSync(tree, { recursive: true, force: true });
          fs.rmSync(warm, { recursive: true, force: true });
        }
      }
      const ms = Object.fromEntries(CONTENDERS.map((c) => [c, median(times[c])]));
      const perFile = (c) => `${((ms[c] * 1000) / files).toFixed(1)} µs`;
      rows.push([formatInt(files), ...CONTENDERS.map((c) => `${ms[c].toFixed(0)} ms (${perFile(c)})`), formatRatio(ms['rm -rf'] / ms.sweep), formatRatio(ms.pinned / ms.sweep)]);
      console.log(`${formatInt(files)} files: ${CONTENDERS.map((c) => `${c} ${ms[c].toFixed(0)} ms`).join(', ')}`);
    }
  } finally {
    fs.rmSync(place, { recursive: true, force: true });
  }
  console.log(`\nNode ${process.version}, ${os.cpus().length} cores, ${rounds} interleaved rounds, medians, in ${shm}; each sample in a child that first sweeps, untimed, a tree of up to 10,000 files (its code compiled).\n`);
  console.log(
    table(['files', ...CONTENDERS.map((c) => `${c} (per file)`), 'sweep vs `rm -rf`', 'sweep vs pinned floor'], rows, ['r', 'r', 'r', 'r', 'r', 'r', 'r']),
  );
}

if (process.argv[2] === '--child') await child(process.argv.slice(3));
else await parent();
