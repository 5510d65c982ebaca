// Create + dispose: the contenders (one create+dispose each, files and directories), and the
// suite that samples them, counts their syscalls and renders the section.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tmp from 'tmp';
import { TempFileManager } from '../dist/index.js';
import { formatRatio, sampleRoundRobin, speedTable, targetsTable } from './lib.mjs';
import { Settler } from './settle.mjs';
import { countSyscalls, FS_SYSCALLS, fsPerOp, straceProblem, syscallTable } from './syscalls.mjs';

const { O_CREAT, O_EXCL, O_WRONLY } = fs.constants;
const RAW_FLAGS = O_CREAT | O_EXCL | O_WRONLY;
const NODE_MAJOR = process.versions.node.split('.')[0];

/** A fresh 0700 directory under the bench root, one per contender. */
function subdir(root, name) {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { mode: 0o700 });
  return dir;
}

// tempy picks its directory once, at import, from os.tmpdir(): point TMPDIR at the contender's
// directory while importing it, so that it runs its default path (no per-call `rootDirectory`
// mkdir) and still writes under the bench root.
async function importTempy(dir) {
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    const { temporaryFile } = await import('tempy');
    if (!temporaryFile().startsWith(fs.realpathSync(dir))) throw new Error('tempy ignored TMPDIR');
    return temporaryFile;
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

/** Raw fs create + unlink; `unlink` returns a promise for the async twin. */
function rawFile(dir, unlink = fs.unlinkSync) {
  let n = 0;
  return () => {
    const p = path.join(dir, `f${n++}`);
    fs.closeSync(fs.openSync(p, RAW_FLAGS, 0o600));
    return unlink(p);
  };
}

/**
 * Raw fs as the library must make the calls: through a directory held open, by its descriptor's
 * `/proc/self/fd/<fd>/<name>` path, so that a swapped path cannot redirect them. The same three
 * calls as raw fs; what the kernel adds to resolve the descriptor's path is the cost of pinning.
 */
function pinnedRawFile(dir, nameOf = (n) => `f${n}`) {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  const base = `/proc/self/fd/${fd}/`;
  let n = 0;
  return {
    op: () => {
      const p = `${base}${nameOf(n++)}`;
      fs.closeSync(fs.openSync(p, RAW_FLAGS | fs.constants.O_NOFOLLOW, 0o600));
      fs.unlinkSync(p);
    },
    close: () => fs.closeSync(fd),
  };
}

/** File contenders; the first is the baseline of the ratios. */
export async function fileContenders(root) {
  const sync = new TempFileManager({ root: path.join(root, 'mgr-sync') });
  const async = new TempFileManager({ root: path.join(root, 'mgr-async') });
  const tmpDir = subdir(root, 'tmp');
  const temporaryFile = await importTempy(subdir(root, 'tempy'));
  const pinned = pinnedRawFile(subdir(root, 'raw-pinned'));
  // A name nobody can guess, as a careful hand would make it: 128 bits from the crypto RNG.
  const pinnedRandom = pinnedRawFile(subdir(root, 'raw-pinned-random'), () => randomBytes(16).toString('hex'));
  return [
    {
      id: 'raw',
      name: 'raw fs: `openSync(O_CREAT|O_EXCL|O_WRONLY, 0o600)` + `closeSync` + `unlinkSync`',
      short: 'raw fs',
      baseline: true,
      op: rawFile(subdir(root, 'raw')),
    },
    {
      id: 'raw-pinned',
      name: 'raw fs, pinned: the same three calls on `/proc/self/fd/<dir fd>/<name>` (reference: the floor of a pinned create)',
      op: pinned.op,
      close: pinned.close,
    },
    {
      id: 'raw-pinned-random',
      name: 'raw fs, pinned, random names: the same on names of 32 hex characters from `crypto.randomBytes(16)` (reference: the floor of what `mgr.file()` does)',
      op: pinnedRandom.op,
      close: pinnedRandom.close,
    },
    {
      id: 'mgr-sync',
      name: '`mgr.file()` + `removeSync()`',
      op: () => sync.file().removeSync(),
      close: () => sync.close(),
    },
    {
      id: 'mgr-async',
      name: '`mgr.file()` + `await remove()`',
      async: true,
      op: () => async.file().remove(),
      close: () => async.close(),
    },
    {
      id: 'raw-async',
      name: 'raw fs, async unlink: `openSync` + `closeSync` + `await fs.promises.unlink`',
      async: true,
      op: rawFile(subdir(root, 'raw-async'), fs.promises.unlink),
    },
    {
      id: 'tmp',
      name: '`tmp.fileSync()` + `removeCallback()`',
      op: () => tmp.fileSync({ tmpdir: tmpDir }).removeCallback(),
    },
    {
      id: 'tempy',
      name: 'tempy `temporaryFile()` + `writeFileSync(p, "")` + `unlinkSync`',
      op: () => {
        const p = temporaryFile();
        fs.writeFileSync(p, '');
        fs.unlinkSync(p);
      },
    },
  ];
}

/** Directory contenders; the first is the baseline of the ratios. */
export function dirContenders(root) {
  const mgr = new TempFileManager({ root: path.join(root, 'mgr-dir') });
  const rawPrefix = path.join(subdir(root, 'mkdtemp'), 'd-');
  const disposablePrefix = path.join(subdir(root, 'mkdtemp-disposable'), 'd-');
  return [
    {
      id: 'mkdtemp',
      name: '`fs.mkdtempSync()` + `fs.rmSync({ recursive: true })`',
      short: 'mkdtempSync',
      baseline: true,
      op: () => fs.rmSync(fs.mkdtempSync(rawPrefix), { recursive: true }),
    },
    {
      id: 'mgr-dir',
      name: '`mgr.dir()` + `removeSync()`',
      op: () => mgr.dir().removeSync(),
      close: () => mgr.close(),
    },
    {
      id: 'mkdtemp-disposable',
      name: '`fs.mkdtempDisposableSync()` + `[Symbol.dispose]()`',
      unavailable: typeof fs.mkdtempDisposableSync === 'function' ? undefined : `n/a on Node ${NODE_MAJOR}`,
      op: () => fs.mkdtempDisposableSync(disposablePrefix)[Symbol.dispose](),
    },
  ];
}

export async function closeAll(contenders) {
  for (const c of contenders) await c.close?.();
}

const params = {
  samples: 7,
  fileOps: 5000,
  dirOps: 2000,
  warmup: 500,
  syscallOps: 10_000,
  waitBudgetMs: 90_000,
};

export const METHOD = `- Every sample creates and disposes one file at a time (create, dispose, create, dispose...),
  as real code does; the directory never fills up. Samples are interleaved round-robin between
  the contenders (each round starts with the next contender) after one untimed warm-up round,
  and the tables give the median ops/s of the samples, their spread, and the ratio of medians
  to raw \`fs\`.
- Before every sample the bench runs \`sync\`, settles for 150 ms, and probes the file system
  with 300 raw creates+unlinks. On ext4 without a journal the inode allocator skips an inode
  freed in an earlier second for 60 s (300 s more while its inode-table block is dirty:
  \`recently_deleted()\` in \`fs/ext4/ialloc.c\`). After a burst of deletes in the same block
  group, by anything, every create scans past those inodes and the file system drops to about
  3,000 creates/s, at 100% system CPU, for a minute or more. A sample taken then measures the
  kernel and every contender looks alike, so while the probe is more than 4x below the best one
  seen, the bench waits (2 s steps, at most 90 s per run); each section says how long it waited
  and how many samples still started slow.
- Each sample also records the process's CPU time (user + system, \`process.cpuUsage()\`) per
  operation. On a shared machine it is the steadier figure: time spent waiting for a core is not
  in it. For the async rows it includes the thread pool's CPU.
- Every contender gets its own directory under one bench root in \`os.tmpdir()\`, removed at the
  end.
- tempy's \`temporaryFile()\` only hands out a path, so its row creates the file with
  \`writeFileSync(p, '')\` (mode 0666 minus umask, no \`O_EXCL\`) and removes it with
  \`unlinkSync\`. It runs tempy's default path, with \`TMPDIR\` pointed at its directory while
  tempy is imported.
- The async rows pay the libuv thread-pool round trip of \`fs.promises.unlink\` (futex, epoll and
  eventfd calls on top of the same three file calls); the raw async row shows that floor.
- \`tmp.fileSync()\` keeps its descriptor open until \`removeCallback()\`, which closes and unlinks.
- \`fs.mkdtempDisposableSync()\` (Node 24, feature-detected) makes a directory, so it is compared
  in the directories table.
- System calls come from \`strace -f -c\` of \`bench/syscall-worker.mjs\`: a run doing N
  create+dispose minus a baseline run doing 0 (both with the same setup and one warm-up
  operation), divided by N. The fs count adds up these calls:
  ${FS_SYSCALLS.map((s) => `\`${s}\``).join(', ')}.
  \`read\`/\`write\` are left out (the event loop's eventfd traffic; no contender writes data);
  "all syscalls" counts everything, including the event loop, futexes and memory management.`;

async function speedSuite(title, contenders, ops, settler) {
  const { samples, warmup } = params;
  try {
    const results = await sampleRoundRobin(contenders, { samples, ops, warmup, settler });
    console.log(`\n${title}\n\n${speedTable(results)}`);
    return results;
  } finally {
    await closeAll(contenders);
  }
}

async function syscalls(files, root) {
  const problem = straceProblem();
  if (problem) {
    console.log(`\nSyscalls: skipped, ${problem}.`);
    return { straceProblem: problem };
  }
  const results = await countSyscalls(files, root, params.syscallOps);
  console.log(`\nSyscalls per file\n\n${syscallTable(results)}`);
  return { syscalls: results };
}

const byId = (list, id) => list.find((r) => r.id === id);

/** Raw fs's CPU time per file over the contender's: above 1 is faster. */
const cpuRatio = (files, id) => byId(files, 'raw').cpuMicros / byId(files, id).cpuMicros;

/** The targets for `mgr.file()` + `removeSync()`: [what, measured, met]. */
function createTargets(files, syscalls) {
  const mgr = byId(files, 'mgr-sync').median;
  const vsRaw = mgr / byId(files, 'raw').median;
  const vsTmp = mgr / byId(files, 'tmp').median;
  const pinned = byId(files, 'raw-pinned').median;
  const vsFloor = mgr / byId(files, 'raw-pinned-random').median;
  const rows = [
    ['`mgr.file()` ≥ 0.95x raw fs, pinned, with random names (its floor: the same calls, on a pinned path, with a name nobody can guess)', formatRatio(vsFloor), vsFloor >= 0.95],
    ['`mgr.file()` ≥ 0.87x raw fs', formatRatio(vsRaw), vsRaw >= 0.87],
    ['(reference) raw fs, pinned, vs raw fs: what pinning costs the kernel', formatRatio(pinned / byId(files, 'raw').median), 'reference'],
    ['(reference) `mgr.file()` vs raw fs, pinned', formatRatio(mgr / pinned), 'reference'],
    ['(reference) by CPU time: `mgr.file()` vs raw fs', formatRatio(cpuRatio(files, 'mgr-sync')), 'reference'],
    ['(reference) by CPU time: raw fs, pinned, vs raw fs', formatRatio(cpuRatio(files, 'raw-pinned')), 'reference'],
    ['`mgr.file()` ≥ 1.5x `tmp.fileSync()`', formatRatio(vsTmp), vsTmp >= 1.5],
  ];
  if (syscalls) {
    const calls = fsPerOp(byId(syscalls, 'mgr-sync'));
    rows.push(['`mgr.file()` ≤ 5 fs syscalls / file', calls.toFixed(2), calls <= 5]);
  }
  return targetsTable(rows);
}

function renderCreate({ files, dirs, syscalls, straceProblem, settler }, info) {
  return [
    `### Create + dispose (Node ${process.version})`,
    '',
    `${info} ${params.samples} samples of ${params.fileOps} files ` +
      `(${params.dirOps} directories) per contender; syscalls over ${params.syscallOps} files. ` +
      `Waited ${settler.waitedMs / 1000} s for the file system's slow mode to pass; ` +
      `${settler.slowSamples} of ${settler.samples} samples still started in it.`,
    '',
    '#### Files: create + dispose',
    '',
    speedTable(files),
    '',
    '#### Directories: create + dispose',
    '',
    speedTable(dirs),
    '',
    '#### System calls per file (steady state)',
    '',
    syscalls ? syscallTable(syscalls) : `Not measured: ${straceProblem}.`,
    '',
    '#### Targets',
    '',
    createTargets(files, syscalls),
    '',
  ].join('\n');
}

async function runCreate(root) {
  const settler = new Settler(fs.mkdtempSync(path.join(root, 'probe-')), params.waitBudgetMs);
  const files = await speedSuite('Files: create + dispose', await fileContenders(root), params.fileOps, settler);
  const dirs = await speedSuite('Directories: create + dispose', dirContenders(root), params.dirOps, settler);
  console.log(`\nWaited ${settler.waitedMs / 1000} s for slow mode; ${settler.slowSamples} samples started in it.`);
  return { files, dirs, settler, ...(await syscalls(files, root)) };
}

/** The suite, as run.mjs drives it. */
export const createSuite = {
  id: 'create',
  title: 'Create + dispose',
  method: METHOD,
  run: async (root, info) => renderCreate(await runCreate(root), info),
};
