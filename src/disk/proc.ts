import { HOST_PLATFORM } from '../base/platform.js';
import { mayRead, mayWrite } from '../base/permission-model.js';
import { builtin } from '../base/builtin.js';
const { existsSync, readlinkSync } = builtin('node:fs');

// How this process reaches directories through their descriptors: detected once, on first use
// (never at import), from the platform and what /proc shows. Where /proc is missing (macOS, the
// BSDs, Windows), or turned off with `TEMPFILE_MANAGER_NO_PROC=1` (documented in docs/security.md:
// it runs the portable paths on Linux, e.g. to test them), directories are reached by name and a
// process of this host by its pid and its heartbeat (owner/liveness.ts). What is weaker then:
// docs/security.md.

interface ProcAccess {
  /** This process reads /proc (Linux, not turned off). */
  readonly reads: boolean;
  /** Directories are reached through their descriptors in /proc ({@link procFdPath}). */
  readonly fd: boolean;
  /** /proc shows this process under its own pid (not /proc of another PID namespace). */
  readonly isOurs: boolean;
  /** Where this process's descriptors are listed: `/proc/<pid>/fd` spares the kernel resolving `self`. */
  readonly fdDir: string;
}

let detected: ProcAccess | undefined;

function procAccess(): ProcAccess {
  if (detected) return detected;
  const reads = !/^(1|true|yes)$/i.test(process.env['TEMPFILE_MANAGER_NO_PROC'] ?? '') && HOST_PLATFORM === 'linux' && mayRead('/proc');
  const isOurs = reads && procSelfIsThisPid();
  const fdDir = isOurs ? `/proc/${process.pid}/fd` : '/proc/self/fd';
  // Node's permission model judges a write through /proc/<pid>/fd/<n>/... by that path, not by the
  // directory the descriptor holds: where it withholds that path, directories are reached by
  // their checked paths, as without /proc (liveness still reads /proc).
  detected = { reads, fd: reads && existsSync('/proc/self/fd') && mayWrite(`${fdDir}/`), isOurs, fdDir };
  return detected;
}

function procSelfIsThisPid(): boolean {
  try {
    return Number(readlinkSync('/proc/self')) === process.pid;
  } catch {
    return false;
  }
}

/** Whether this process reads /proc at all (Linux, not turned off by `TEMPFILE_MANAGER_NO_PROC`). @internal */
export function procReads(): boolean {
  return procAccess().reads;
}

/** Whether directories are reached through their descriptors in /proc ({@link procFdPath}). @internal */
export function procFd(): boolean {
  return procAccess().fd;
}

/** Whether /proc shows this process under its own pid (not /proc of another PID namespace). @internal */
export function procIsOurs(): boolean {
  return procAccess().isOurs;
}

/** The path that names an open descriptor of this process (and a directory's entries below it). @internal */
export function procFdPath(fd: number): string {
  return `${procAccess().fdDir}/${fd}`;
}

/**
 * Whether `dir` is reached through one of this process's descriptors in /proc: a path that only a
 * pinned directory whose /proc path was checked to lead to its descriptor hands out. @internal
 */
export function isProcFdPath(dir: string): boolean {
  return procAccess().fd && dir.startsWith(`${procAccess().fdDir}/`);
}

/** Where this process's descriptors' details are listed (`fdinfo`). @internal */
export function procFdInfoDir(): string {
  return procAccess().isOurs ? `/proc/${process.pid}/fdinfo` : '/proc/self/fdinfo';
}
