// System calls per create+dispose, from `strace -f -c`: a run of N operations minus a baseline
// run of 0, divided by N.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { table } from './lib.mjs';
import { flush } from './settle.mjs';

const WORKER = fileURLToPath(new URL('./syscall-worker.mjs', import.meta.url));

/** The calls counted as file-system work (plus getrandom, for the random names). */
export const FS_SYSCALLS = [
  'open', 'openat', 'openat2', 'creat', 'close', 'close_range',
  'unlink', 'unlinkat', 'mkdir', 'mkdirat', 'rmdir', 'rename', 'renameat', 'renameat2',
  'link', 'linkat', 'symlink', 'symlinkat', 'readlink', 'readlinkat',
  'stat', 'lstat', 'fstat', 'newfstatat', 'statx', 'statfs', 'fstatfs',
  'access', 'faccessat', 'faccessat2', 'chmod', 'fchmod', 'fchmodat', 'chown', 'fchown', 'lchown', 'fchownat',
  'utime', 'utimes', 'utimensat', 'futimesat', 'getdents64', 'truncate', 'ftruncate',
  'fsync', 'fdatasync', 'flock', 'getcwd', 'getrandom',
];
const COUNTED = new Set(FS_SYSCALLS);

/** Why strace cannot be used here, or undefined when it can. */
export function straceProblem() {
  const probe = spawnSync('strace', ['-f', '-c', '-o', '/dev/null', 'true'], { encoding: 'utf8' });
  if (probe.error?.code === 'ENOENT') return 'strace is not installed (`apt-get install -y strace`)';
  if (probe.error || probe.status !== 0) {
    return `strace cannot trace here: ${(probe.error?.message ?? probe.stderr).trim().split('\n')[0]}`;
  }
  return undefined;
}

/** Parses `strace -c` output into { syscall: calls }. */
function parseSummary(text) {
  const counts = {};
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    const name = cols.at(-1);
    if (cols.length < 5 || !/^[\d.]+$/.test(cols[0]) || name === 'total') continue;
    counts[name] = Number(cols[3]);
  }
  return counts;
}

function traceRun(id, n, root) {
  const dir = fs.mkdtempSync(path.join(root, `strace-${id}-${n}-`));
  const out = path.join(dir, 'summary.txt');
  const args = ['-f', '-c', '-o', out, process.execPath, WORKER, id, String(n), dir];
  const run = spawnSync('strace', args, { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`strace run of ${id} failed: ${run.stderr}`);
  return parseSummary(fs.readFileSync(out, 'utf8'));
}

/** Per-operation syscall counts of each contender, steady state (baseline subtracted). */
export async function countSyscalls(contenders, root, n) {
  const results = [];
  for (const c of contenders) {
    await flush();
    const base = traceRun(c.id, 0, root);
    await flush();
    const full = traceRun(c.id, n, root);
    const perOp = {};
    for (const name of new Set([...Object.keys(base), ...Object.keys(full)])) {
      perOp[name] = ((full[name] ?? 0) - (base[name] ?? 0)) / n;
    }
    results.push({ ...c, perOp });
  }
  return results;
}

const sum = (values) => values.reduce((a, b) => a + b, 0);
const fmt = (x) => (Math.abs(x) < 0.005 ? '0' : x.toFixed(2));

/** Counted (file-system) syscalls per operation of one result. */
export const fsPerOp = (r) => sum(Object.entries(r.perOp).filter(([k]) => COUNTED.has(k)).map(([, v]) => v));

function breakdown(perOp) {
  return FS_SYSCALLS.filter((k) => Math.abs(perOp[k] ?? 0) >= 0.005)
    .map((k) => `${k} ${fmt(perOp[k])}`)
    .join(', ');
}

export function syscallTable(results) {
  const rows = results.map((r) => [r.name, fmt(fsPerOp(r)), fmt(sum(Object.values(r.perOp))), breakdown(r.perOp)]);
  return table(['Contender', 'fs syscalls / file', 'all syscalls / file', 'fs syscalls per file'], rows, [
    'l', 'r', 'r', 'l',
  ]);
}
