import { procIsOurs } from '../disk/proc.js';
import { builtin } from '../base/builtin.js';
const { readFileSync, readlinkSync } = builtin('node:fs');
const os = builtin('node:os');

/** Who owns a session or a lease, as written into its name. */
export interface ProcessIdentity {
  /** The host id (see {@link hostId}); only `[A-Za-z0-9.-]`. Informative: it never decides liveness on Linux. */
  readonly host: string;
  readonly pid: number;
  /**
   * The owning thread's kernel thread id on Linux (the pid itself for the main thread); absent
   * elsewhere.
   */
  readonly thread?: number;
  /**
   * When the owner started, and on which machine. On Linux: `<boot>.<pidns>.<ticks>`, the first 8
   * hex digits of the kernel's boot id, the PID namespace's inode in base 36, and the owning
   * thread's start time in clock ticks since boot. Elsewhere: the process's start time in epoch
   * milliseconds.
   */
  readonly start: string;
}

let cachedIdentity: Omit<ProcessIdentity, 'host'> | undefined;

/**
 * This thread's identity on `host`. Module state is per thread (every worker thread loads its own
 * copy), so a worker gets its own kernel thread id.
 */
export function processIdentity(host: string): ProcessIdentity {
  cachedIdentity ??= ownIdentity();
  return { host, ...cachedIdentity };
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

function ownIdentity(): Omit<ProcessIdentity, 'host'> {
  const machine = machineId();
  const thread = machine === undefined ? undefined : ownThreadId();
  const task = thread === undefined ? undefined : readTask(process.pid, thread);
  const ticks = typeof task === 'object' ? task.ticks : undefined;
  if (machine === undefined || thread === undefined || ticks === undefined) {
    return { pid: process.pid, start: String(Math.round(Date.now() - process.uptime() * 1000)) };
  }
  return { pid: process.pid, thread, start: `${machine}.${ticks}` };
}

// A synchronous call runs on the calling thread, so /proc/thread-self is this thread's own.
function ownThreadId(): number | undefined {
  try {
    const link = readlinkSync('/proc/thread-self'); // `<pid>/task/<tid>`
    const [pid, , tid] = link.split('/');
    return Number(pid) === process.pid ? Number(tid) : undefined;
  } catch {
    return undefined;
  }
}

let cachedMachine: string | null | undefined;

/**
 * This machine, as far as pids mean anything: `<boot>.<pidns>`, the first 8 hex digits of the
 * kernel's boot id and the PID namespace's inode in base 36. Undefined where pids cannot be
 * checked: not Linux, or a /proc that shows another PID namespace than this process's own.
 */
export function machineId(): string | undefined {
  if (cachedMachine === undefined) cachedMachine = readMachineId() ?? null;
  return cachedMachine ?? undefined;
}

function readMachineId(): string | undefined {
  // /proc mounted for another PID namespace (unshare without --mount-proc) shows other pids.
  if (!procIsOurs()) return undefined;
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim().replace(/-/g, '').slice(0, 8);
    const namespace = /^pid:\[(\d+)\]$/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
    if (!/^[0-9a-f]{8}$/.test(boot) || namespace === undefined) return undefined;
    return `${boot}.${Number(namespace).toString(36)}`;
  } catch {
    return undefined;
  }
}

/** What /proc says of one thread: its start in clock ticks since boot, and whether it is a zombie. */
export interface TaskState {
  readonly ticks: string;
  readonly zombie: boolean;
}

/**
 * The state of thread `tid` of process `pid` from /proc; undefined when there is no such thread,
 * 'unreadable' when /proc would not say (then nobody can tell).
 */
export function readTask(pid: number, tid: number): TaskState | undefined | 'unreadable' {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ESRCH' ? undefined : 'unreadable';
  }
  // Fields counted after the command name, which is in parentheses and may hold spaces: the state
  // is field 3, the start time field 22.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const ticks = fields[19];
  if (ticks === undefined || !/^\d+$/.test(ticks)) return 'unreadable';
  return { ticks, zombie: state === 'Z' || state === 'X' };
}
