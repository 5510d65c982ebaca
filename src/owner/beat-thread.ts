import { monotonicMs } from '../base/clock.js';
import type { Worker } from 'node:worker_threads';
import { detached } from '../base/detached.js';
import { OPEN_EXISTING } from '../disk/open-checked.js';
import { logger } from '../base/log.js';
import { HEARTBEAT_MS } from './liveness.js';
import { InvalidOptionError } from '../base/errors.js';
import { mayStartThreads, mayTouchDescriptors } from '../base/permission-model.js';
import { processSlot, type Beat } from './registry.js';
import { builtin } from '../base/builtin.js';
import { isHeldFileName, parseRootEntry } from '../base/layout.js';
const { constants } = builtin('node:fs');

const log = logger('heartbeat');

// An observer that cannot ask the kernel about this process judges it by its heartbeat: one on
// this host without /proc (macOS, Windows; it cannot tell this process from another that was given
// its pid after a crash), one in another PID namespace (a container), one on another host sharing
// the root (liveness.ts). The heartbeat must then go on while the event loop is blocked (a long
// synchronous call, a debugger paused on a breakpoint): one worker thread per process beats every
// heartbeat target too, as the main thread's timer does, with the same checks (never following a
// link, never blocking on a FIFO, never touching an inode that is not the owner's kind). A thread
// that fails is started again after a wait that doubles (never a hot loop) and raises a process
// warning; the main thread's timer beats on meanwhile.

/** How the beat thread opens a target: never following a link, never blocking. @internal */
export const BEAT_OPEN = constants.O_RDONLY | OPEN_EXISTING;

// The thread's code: the same in the ESM and the CJS build, no file to find. A worker started
// with `eval: true` takes the parent's flags, and with them `--input-type=module` of a process
// started by `node --input-type=module -e ...`: its code is then read as an ES module, where
// `require` does not exist. So it uses neither `require` nor a static `import`: a dynamic
// `import()` reads the same as a script and as a module. Its checks are heartbeat.ts's `refresh`:
// the inode the main thread's first beat found (whatever other names the application gave it;
// until it is known, a file with one link), a session's
// lock a directory, a lease's held file a regular file; what the main thread's beat reports it
// leaves to that report (the main thread beats the same targets while its event loop runs); a name
// gone is dropped (the main thread makes a lock again, or learns that its lease was taken over, on
// its own next beat). Under Node's permission model, which refuses futimes, the checked name is
// touched by lutimes (never following a link). A beat that fails otherwise is reported once per
// target and cause: the main thread makes it a process warning.
const SOURCE = `
Promise.all([import('node:worker_threads'), import('node:fs')]).then(([threads, fs]) => {
  const { parentPort, workerData } = threads;
  const targets = new Map();
  const reported = new Set();
  parentPort.on('message', ({ at, kind, dev, ino }) => (kind === undefined ? targets.delete(at) : targets.set(at, { kind, dev, ino })));
  setInterval(() => { for (const [at, target] of targets) beat(at, target); }, workerData.periodMs);
  parentPort.postMessage({ ready: true });
  function beat(at, { kind, dev, ino }) {
    let fd;
    try {
      fd = fs.openSync(at, workerData.open);
      const stat = fs.fstatSync(fd);
      // Until the owner's inode is known, a held file with one link only (never a planted hard link).
      const sameInode = dev === undefined ? kind === 'session' || stat.nlink === 1 : stat.dev === dev && stat.ino === ino;
      const ours = sameInode && (kind === 'session' ? stat.isDirectory() : stat.isFile());
      if (!ours) return;
      const now = new Date();
      if (workerData.byPath) fs.lutimesSync(at, now, now);
      else fs.futimesSync(fd, now, now);
    } catch (err) {
      const code = err && err.code;
      if (code === 'ENOENT') targets.delete(at);
      // A link or a file planted at the name (O_NOFOLLOW, a lock's path below a file): not the
      // owner's, left untouched as the main thread's beat leaves it.
      else if (code === 'ELOOP' || code === 'ENOTDIR') return;
      else if (!reported.has(at + ':' + code)) {
        reported.add(at + ':' + code);
        parentPort.postMessage({ failed: at, code: String(code), message: String(err && err.message) });
      }
    } finally {
      if (fd !== undefined) try { fs.closeSync(fd); } catch {}
    }
  }
});
`;

/** How long a failed beat thread waits before it is started again: doubled at each failure in a row, up to {@link MAX_RESTART_MS}. @internal */
export const FIRST_RESTART_MS = 100;
/** The longest wait between two starts of a failing beat thread. @internal */
export const MAX_RESTART_MS = 30_000;
/** A thread that ran this long before it ended did not fail at start: the next waits start over. */
const RAN_WELL_MS = 60_000;
/** The `code` of the process warning a failing beat thread raises. @internal */
export const BEAT_THREAD_WARNING = 'WARN_TEMPFILE_BEAT_THREAD';

/** The device and inode a heartbeat beats. */
export interface BeatIdentity {
  readonly dev: number;
  readonly ino: number;
}

/** The process's one beat thread: what it beats, and whether it runs. @internal */
export interface BeatThread {
  /** Beats `at` off the main thread (once the thread is required) until the returned function is called. */
  add(at: string, kind: Beat['kind'], identity?: () => BeatIdentity | undefined): () => void;
  /** Tells the thread the inode `at` is (the main thread's first beat found it), to beat whatever its links. */
  identify(at: string): void;
  /**
   * Starts the thread, once for the life of the process: some owner of this process is judged by
   * its heartbeat alone (`why`: it holds no live signal). Idempotent.
   */
  require(why: string): void;
  /** Why the thread was required, or undefined while it was not. */
  readonly requiredBy: string | undefined;
  /** Whether the thread runs now (from its first requirement on, for the life of the process). */
  readonly running: boolean;
  /** How many targets it beats. */
  readonly targets: number;
  /** How many times a thread was started in this process. */
  readonly starts: number;
  /** Why the last thread failed (its error, or how it ended), until one runs again. */
  readonly failure: string | undefined;
}

/**
 * Beats `at` on the process's beat thread as well as on the main thread's timer, once the thread
 * is required (an owner of this process holds no live signal, live-signal.ts: an observer on
 * another host, or one that cannot reach its signal, judges it by its heartbeat, which a blocked
 * event loop must not stop). Returns the function that stops it.
 */
export function beatOffThread(at: string, kind: Beat['kind'], identity?: () => BeatIdentity | undefined): () => void {
  return beatThread().add(at, kind, identity);
}

/**
 * Throws unless this process can run the beat thread: under Node's permission model, only with
 * `--allow-worker`. Called by a manager's constructor, so that a process whose heartbeat would stop
 * with its event loop is refused at once rather than losing its files to a sweep later.
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`, option `--allow-worker`.
 * @internal
 */
export function requireBeatThread(root: string): void {
  if (mayStartThreads()) return;
  throw new InvalidOptionError(
    '--allow-worker',
    `Node runs with --permission and without --allow-worker (its permission flags: ${permissionFlags()}), ` +
      'so tempfile-manager cannot start the thread that keeps its ' +
      'heartbeat going while the event loop is blocked: a sweeper in another PID namespace, on another host or without /proc ' +
      'would remove this process\'s files during any long synchronous call. Start node with --allow-worker ' +
      `(and --allow-fs-write=${root}/*). See docs/crash-recovery.md, "Process starts and the permission model".`,
  );
}

/** The permission flags node was started with, as the refusal shows them. */
function permissionFlags(): string {
  const flags = process.execArgv.filter((arg) => /^--(experimental-)?(permission|allow-)/.test(arg));
  return flags.length > 0 ? flags.join(' ') : 'none on the command line (NODE_OPTIONS?)';
}

/**
 * The process's one beat thread, shared by every copy of the library loaded in the process (the
 * ESM and the CJS build): made on first use, started while it has something to beat. @internal
 */
export function beatThread(): BeatThread {
  return processSlot('beat-thread', makeBeatThread);
}

function makeBeatThread(): BeatThread {
  return new ProcessBeatThread();
}

/** What the thread beats at a path, and how many holders asked for it. */
interface Target {
  readonly kind: Beat['kind'];
  readonly identity: (() => BeatIdentity | undefined) | undefined;
  holders: number;
}

/** The beat thread's targets, and the worker that beats them, started again after a failure. */
class ProcessBeatThread implements BeatThread {
  readonly #targets = new Map<string, Target>();
  #requiredBy: string | undefined;
  #worker: Worker | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #failuresInARow = 0;
  #starts = 0;
  #failure: string | undefined;
  readonly #warned = new Set<string>();

  add(at: string, kind: Beat['kind'], identity?: () => BeatIdentity | undefined): () => void {
    // The thread is reachable from every copy of the library through the process registry: it
    // beats only what the library names so (a session's lock, a held file), never any path.
    if (!isBeatTarget(at, kind)) throw new TypeError(`The beat thread beats a session's lock or a held file, not ${JSON.stringify(at).slice(0, 200)}`);
    const held = this.#targets.get(at);
    if (held) held.holders += 1;
    else this.#targets.set(at, { kind, identity, holders: 1 });
    if (!held) this.#post(at, kind, identity);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      const target = this.#targets.get(at);
      if (target === undefined || --target.holders > 0) return;
      this.#targets.delete(at);
      this.#post(at, undefined);
    };
  }

  identify(at: string): void {
    const target = this.#targets.get(at);
    if (target !== undefined) this.#post(at, target.kind, target.identity);
  }

  // Started once and kept, idle when it has nothing to beat: a thread started per claim cost a
  // claim+consume cycle 3 ms where it takes 0.16 (bench/liveness.mjs).
  require(why: string): void {
    if (this.#requiredBy !== undefined) return;
    this.#requiredBy = why;
    log('the heartbeat thread starts: %s', why);
    if (this.#worker === undefined && this.#restartTimer === undefined) this.#start();
  }

  get requiredBy(): string | undefined {
    return this.#requiredBy;
  }

  get running(): boolean {
    return this.#worker !== undefined;
  }

  get targets(): number {
    return this.#targets.size;
  }

  get starts(): number {
    return this.#starts;
  }

  get failure(): string | undefined {
    return this.#failure;
  }

  // The inode the main thread's first beat found, once it has beaten (until then, any of the kind).
  #post(at: string, kind: Beat['kind'] | undefined, identity?: () => BeatIdentity | undefined): void {
    this.#worker?.postMessage({ at, kind, ...identity?.() });
  }

  // Never silent: what stops the thread, or a beat in it, is a process warning (once per cause),
  // not a debug line alone.
  #warn(why: string, detail: string): void {
    log('%s: %s', why, detail);
    if (this.#warned.has(detail)) return;
    this.#warned.add(detail);
    process.emitWarning(
      `tempfile-manager: ${why} (${detail}). Until it runs, only the main thread's timer beats the heartbeat: an event loop ` +
        'blocked for longer than a sweeper\'s staleMs lets a sweeper without /proc, in another PID namespace or on another ' +
        'host remove this process\'s files. Check what the process was started with (--require or --import preloads, ' +
        'NODE_OPTIONS, --permission without --allow-worker); see docs/crash-recovery.md.',
      { type: 'TempFileWarning', code: BEAT_THREAD_WARNING },
    );
  }

  #failed(detail: string): void {
    this.#failure = detail;
    const waitMs = Math.min(MAX_RESTART_MS, FIRST_RESTART_MS * 2 ** this.#failuresInARow);
    this.#failuresInARow += 1;
    // A start that fails once and then runs (the thread read the working directory while a
    // caller had it deeper than PATH_MAX) is logged; one that fails again is a warning.
    if (this.#failuresInARow === 1) log('the heartbeat thread failed and starts again in %d ms: %s', waitMs, detail);
    else this.#warn(`the heartbeat thread failed again and starts again in ${waitMs} ms (attempt ${this.#failuresInARow})`, detail);
    this.#restartAfter(waitMs);
  }

  #restartAfter(waitMs: number): void {
    if (this.#restartTimer !== undefined) return;
    this.#restartTimer = detached(() => setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#worker === undefined) this.#start();
    }, waitMs));
    this.#restartTimer.unref();
  }

  #start(): void {
    if (!mayStartThreads()) {
      this.#failure = 'the permission model withholds worker threads (no --allow-worker)';
      this.#warn('the heartbeat thread cannot start', this.#failure);
      return;
    }
    let started: Worker;
    try {
      // Made outside the caller's async context: the thread's handles and listeners would keep
      // the stores of whoever opened the first session (a request's) alive for the process's life.
      started = detached(() => new (builtin('node:worker_threads').Worker)(SOURCE, {
        eval: true,
        workerData: { periodMs: HEARTBEAT_MS, open: BEAT_OPEN, byPath: !mayTouchDescriptors() },
        stdout: false,
        stderr: false,
      }));
    } catch (err) {
      this.#failed(describe(err));
      return;
    }
    this.#starts += 1;
    this.#watch(started);
    // After the listeners: one added to an unref'd worker's port refs it again, and the thread
    // would keep the process alive.
    started.unref();
    this.#worker = started;
    for (const [at, { kind, identity }] of this.#targets) this.#post(at, kind, identity);
  }

  /** Hears what a started thread says, and starts it again when it ends. */
  #watch(started: Worker): void {
    const startedAt = monotonicMs();
    let error: string | undefined;
    started.on('message', (message: ThreadMessage) => {
      if ('ready' in message) this.#failure = undefined;
      else this.#warn(`a beat of the heartbeat thread failed at ${message.failed}`, `${message.code}: ${message.message}`);
    });
    started.on('error', (err) => (error = describe(err)));
    started.on('exit', (code) => {
      if (this.#worker !== started) return;
      this.#worker = undefined;
      // It ended while required: its targets, now or later, are still to beat. One that ran well starts again at
      // once; one that fails again and again waits longer each time, never in a hot loop.
      if (monotonicMs() - startedAt >= RAN_WELL_MS) this.#failuresInARow = 0;
      this.#failed(error ?? `the thread ended with code ${code}`);
    });
  }
}

/** What the thread posts: that it runs, or that a beat failed. */
type ThreadMessage = { readonly ready: true } | { readonly failed: string; readonly code: string; readonly message: string };

function describe(err: unknown): string {
  if (err instanceof Error) return `${(err as NodeJS.ErrnoException).code ?? err.name}: ${err.message}`;
  return String(err);
}

/** True when `at` is named as the library names what it beats: a session's lock, a held file. */
function isBeatTarget(at: string, kind: Beat['kind']): boolean {
  const name = at.slice(Math.max(at.lastIndexOf('/'), at.lastIndexOf('\\')) + 1);
  return kind === 'session' ? parseRootEntry(name).kind === 'session-lock' : kind === 'lease' && isHeldFileName(name);
}
