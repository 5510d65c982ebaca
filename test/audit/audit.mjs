// The system-call audit: runs workload.mjs (the whole public surface) under `strace -f` and
// judges every call the library makes on a path, whoever wrote it:
//   pinned: a call that names something under the root by its path after the manager was made
//           (a swapped root or session would redirect it) must instead go through a descriptor
//           the library holds (/proc/<pid>/fd/<fd>/<name>) or be listed below with its reason;
//   depth:  a path through a held descriptor names one entry of it (`<fd>/<name>`), never
//           `<fd>/<dir>/<name>`, whose directory could be swapped for a symlink in between;
//   open:   an open of an existing name under the root or a destination must carry O_NOFOLLOW
//           (a planted symlink) and O_NONBLOCK or O_DIRECTORY (a planted FIFO must not block).
// Exit 0 when every call passes; 1 with the offending calls printed; 3 when strace cannot run.
// Usage: node test/audit/audit.mjs [--json] [--keep]
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const packageDir = path.resolve(import.meta.dirname, '../..');
const json = process.argv.includes('--json');
const keep = process.argv.includes('--keep');

/**
 * Calls that name a path under the root and are safe, each with why. `path` is matched against the
 * path with the root replaced by `<root>`; `phase` limits an entry to the constructor.
 */
export const ALLOWED = [
  {
    rule: 'pinned',
    phase: 'construct',
    syscall: /./,
    path: /^<root>$/,
    why: 'the root is named by its path when the manager is made: created (mkdir 0700) or checked (lstat), then opened once without following a link and compared with that check',
  },
  {
    rule: 'pinned',
    syscall: /^(lstat|newfstatat|statx)$/,
    path: /^<root>(\/session_[^/]+)?$/,
    flags: /AT_SYMLINK_NOFOLLOW/,
    why: "the swap check: the root's (or the session's) path is lstat'ed and its (dev, ino) compared with the directory the manager made; nothing is created or removed by that path",
  },
  {
    rule: 'pinned',
    syscall: /^(open|openat)$/,
    path: /^<root>$/,
    flags: /O_NOFOLLOW.*O_DIRECTORY|O_DIRECTORY.*O_NOFOLLOW/,
    why: "the root is pinned: opened without following a link, then its (dev, ino) is compared with the root the manager was made with (a sweep of the CLI opens it once and reaches everything through that descriptor)",
  },
  {
    rule: 'open',
    syscall: /^(open|openat)$/,
    path: /^<dest>$/,
    flags: /O_DIRECTORY/,
    why: "a keep() destination's directory is the caller's choice and may be a symlink (documented on keep()); every name in it is then reached through this descriptor, never followed",
  },
  {
    rule: 'open',
    syscall: /^(open|openat)$/,
    path: /^\/proc\/(self|\d+)\/fd\/\d+\/\.\.$/,
    flags: /O_DIRECTORY/,
    why: "`..` of a held directory names its parent (a walk climbing back, or a mount check), never a link; an O_DIRECTORY open cannot block",
  },
];

/** The allowance that covers a finding, if any. */
function allowance(rule, call, shown) {
  return ALLOWED.find(
    (a) => a.rule === rule && (!a.phase || a.phase === call.phase) && a.syscall.test(call.syscall) && a.path.test(shown) && (!a.flags || a.flags.test(call.line)),
  );
}

const PATH_SYSCALLS = /^(open|openat|openat2|creat|mkdir|mkdirat|unlink|unlinkat|rmdir|rename|renameat|renameat2|link|linkat|symlink|symlinkat|stat|lstat|newfstatat|fstatat64|statx|access|faccessat|faccessat2|chmod|fchmodat|chown|lchown|fchownat|utime|utimes|utimensat|futimesat|readlink|readlinkat|truncate|statfs|mknod|mknodat|setxattr|lsetxattr|getxattr|lgetxattr|listxattr|llistxattr|removexattr|lremovexattr|execve|inotify_add_watch)$/;
const MARKER = '/tempfile-manager-audit-marker/';

function straceAvailable() {
  return spawnSync('strace', ['-V'], { encoding: 'utf8' }).status === 0;
}

function runTraced(work) {
  const trace = path.join(work, 'trace.txt');
  const result = spawnSync(
    'strace',
    ['-f', '-qq', '-s', '4096', '-e', 'trace=%file', '-o', trace, process.execPath, path.join(import.meta.dirname, 'workload.mjs'), packageDir, work],
    { encoding: 'utf8', cwd: '/', timeout: 120_000 },
  );
  if (result.status !== 0) {
    throw new Error(`the workload failed under strace (exit ${result.status}, signal ${result.signal}):\n${result.stderr}`);
  }
  return fs.readFileSync(trace, 'utf8');
}

/** One traced call: the thread, the syscall, its string arguments and its flags. */
function parseLine(line) {
  const match = /^(\d+)\s+([a-z0-9_]+)\((.*)$/.exec(line);
  if (!match) return undefined; // a resumed call, a signal, an exit
  const [, tid, syscall, rest] = match;
  const strings = [...rest.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
  const flags = /\b(O_[A-Z_|]+)/.exec(rest)?.[1]?.split('|') ?? [];
  const result = /=\s*(-?\d+|\?)(?:\s+([A-Z]+))?/.exec(rest.split(') = ').slice(1).join(') = ') ? `= ${rest.split(') = ').slice(1).join(') = ')}` : '');
  return { tid, syscall, strings, flags, line, failed: result?.[2] };
}

/** The calls the library made: the user's own (between markers, on their thread) are left out. */
export function libraryCalls(trace) {
  const inUser = new Set();
  let phase = 'run';
  const calls = [];
  for (const line of trace.split('\n')) {
    const call = parseLine(line);
    if (!call) continue;
    const marker = call.strings.find((s) => s.startsWith(MARKER));
    if (marker) {
      const what = marker.slice(MARKER.length);
      if (what === 'user-begin') inUser.add(call.tid);
      if (what === 'user-end') inUser.delete(call.tid);
      if (what === 'construct-begin') phase = 'construct';
      if (what === 'construct-end') phase = 'run';
      continue;
    }
    if (inUser.has(call.tid)) continue;
    calls.push({ ...call, phase });
  }
  return calls;
}

function isUnder(p, dir) {
  return p === dir || p.startsWith(`${dir}/`);
}

export function judge(calls, { root, dest }) {
  const findings = [];
  const procFd = /^\/proc\/(self|\d+)\/fd\/\d+(\/|$)/;
  for (const call of calls) {
    if (!PATH_SYSCALLS.test(call.syscall)) continue;
    // readlink's second string is what the link holds, not a path the call takes.
    const paths = /^readlink/.test(call.syscall) ? call.strings.slice(0, 1) : call.strings;
    for (const p of paths) {
      // Through a held directory, one name at most: a directory name in between could be swapped.
      const below = /^\/proc\/(?:self|\d+)\/fd\/\d+\/(.*)$/.exec(p)?.[1];
      if (below !== undefined && below.replace(/\/\.{1,2}$/, '').includes('/')) {
        findings.push({ rule: 'depth', call: call.line.replaceAll(root, '<root>').replaceAll(dest, '<dest>') });
      }
      if (isUnder(p, root)) {
        const shown = `<root>${p.slice(root.length)}`;
        if (!allowance('pinned', call, shown)) findings.push({ rule: 'pinned', call: call.line.replaceAll(root, '<root>').replaceAll(dest, '<dest>') });
      }
    }
    if (/^(open|openat|openat2)$/.test(call.syscall)) {
      const target = paths[0];
      if (target === undefined || !(isUnder(target, root) || isUnder(target, dest) || procFd.test(target))) continue;
      const creates = call.flags.includes('O_CREAT') && call.flags.includes('O_EXCL');
      // /proc/<pid>/fd/<fd> itself names the descriptor's own file: nothing to follow or swap.
      if (creates || /^\/proc\/(self|\d+)\/fd\/\d+$/.test(target)) continue;
      const noFollow = call.flags.includes('O_NOFOLLOW');
      const noBlock = call.flags.includes('O_NONBLOCK') || call.flags.includes('O_DIRECTORY');
      const shown = target.replace(root, '<root>').replace(dest, '<dest>');
      if ((!noFollow || !noBlock) && !allowance('open', call, shown)) {
        findings.push({ rule: 'open', call: call.line.replaceAll(root, '<root>').replaceAll(dest, '<dest>') });
      }
    }
  }
  return findings;
}

function main() {
  if (!straceAvailable()) {
    console.error('strace is missing: install it (apt-get install -y strace) to run the system-call audit.');
    process.exit(3);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-audit-'));
  let findings;
  try {
    const trace = runTraced(work);
    const calls = libraryCalls(trace);
    findings = judge(calls, { root: path.join(work, 'root'), dest: path.join(work, 'dest') });
    const summary = { calls: calls.length, findings };
    if (json) console.log(JSON.stringify(summary));
    else {
      console.log(`${calls.length} file-system calls of the library judged; ${findings.length} unsafe`);
      for (const finding of findings) console.log(`  [${finding.rule}] ${finding.call}`);
    }
  } finally {
    if (keep) console.error(`kept ${work}`);
    else execFileSync('rm', ['-rf', work]);
  }
  // After the work directory is gone: process.exit() inside the try would skip the finally.
  process.exit(findings.length === 0 ? 0 : 1);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
