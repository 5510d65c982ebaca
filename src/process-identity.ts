import { readFileSync } from 'node:fs';
import os from 'node:os';

/** Who this process is, as written into its session's name. */
export interface ProcessIdentity {
  /** The host id (see {@link hostId}); only `[A-Za-z0-9.-]`. */
  readonly host: string;
  readonly pid: number;
  /**
   * When the process started. On Linux: the first 8 hex digits of the boot id, a dot, and the
   * start time in clock ticks since boot from /proc (comparable with any other pid's).
   * Elsewhere: the start time in epoch milliseconds.
   */
  readonly start: string;
}

let cachedStart: string | undefined;

/** This process's identity on `host`. */
export function processIdentity(host: string): ProcessIdentity {
  cachedStart ??= ownStart();
  return { host, pid: process.pid, start: cachedStart };
}

/**
 * The default host id: the `TEMPFILE_MANAGER_HOST_ID` environment variable when set (containers
 * sharing a volume, tests playing several hosts), else the host name; made safe for file names.
 */
export function hostId(): string {
  return toHostId(process.env.TEMPFILE_MANAGER_HOST_ID || os.hostname() || 'host');
}

/** Restricts a host id to `[A-Za-z0-9.-]`, at most 64 characters. */
export function toHostId(raw: string): string {
  return raw.replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 64) || 'host';
}

function ownStart(): string {
  return linuxProcessStart(process.pid) ?? String(Math.round(Date.now() - process.uptime() * 1000));
}

/** The Linux start token of `pid` (see {@link ProcessIdentity.start}); undefined if it is gone or not Linux. */
export function linuxProcessStart(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const ticks = linuxStartTicks(pid);
  return ticks === undefined ? undefined : `${bootId().slice(0, 8)}.${ticks}`;
}

function linuxStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Field 22, counted after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

let cachedBootId: string | undefined;

/** The kernel's boot id on Linux (a new one at every boot), or 'unknown' elsewhere. */
export function bootId(): string {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim().replace(/-/g, '');
    } catch {
      cachedBootId = 'unknown';
    }
  }
  return cachedBootId;
}
