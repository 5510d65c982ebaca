import { existsSync, readlinkSync } from 'node:fs';

/**
 * `TEMPFILE_MANAGER_NO_PROC=1` (read once, at load) makes the library take the portable paths it
 * takes where there is no `/proc` (macOS, the BSDs, Windows): directories reached by name instead
 * of through `/proc/self/fd/<fd>`, a process judged alive by its pid alone. A Linux CI can so run
 * every test through them. What is weaker then: docs/security.md.
 * @internal
 */
export const NO_PROC = /^(1|true|yes)$/i.test(process.env['TEMPFILE_MANAGER_NO_PROC'] ?? '');

/** Whether this process reads `/proc` (Linux, unless {@link NO_PROC}). @internal */
export const READS_PROC = !NO_PROC && process.platform === 'linux';

/** Whether directories are reached through their descriptors in /proc ({@link procFdPath}). @internal */
export const PROC_FD = READS_PROC && existsSync('/proc/self/fd');

/** Whether /proc shows this process under its own pid (not /proc of another PID namespace). @internal */
export const PROC_IS_OURS = READS_PROC && procSelfIsThisPid();

function procSelfIsThisPid(): boolean {
  try {
    return Number(readlinkSync('/proc/self')) === process.pid;
  } catch {
    return false;
  }
}

// `/proc/<pid>/fd` spares the kernel resolving the `self` link on every call: a removal makes
// one call through it per file.
const FD_DIR = PROC_IS_OURS ? `/proc/${process.pid}/fd` : '/proc/self/fd';

/** The path that names an open descriptor of this process (and a directory's entries below it). @internal */
export function procFdPath(fd: number): string {
  return `${FD_DIR}/${fd}`;
}
