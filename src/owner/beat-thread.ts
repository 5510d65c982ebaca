import { constants } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { OPEN_EXISTING } from '../disk/open-checked.js';
import { logger } from '../base/log.js';
import { HEARTBEAT_MS } from './liveness.js';
import { machineId } from './process-identity.js';
import { processSlot, type Beat } from './registry.js';

const log = logger('heartbeat');

// Without /proc (macOS, Windows), an observer on this host cannot tell this process from another
// that was given its pid after a crash: it judges a same-host owner whose pid exists by its
// heartbeat against this host's clock (liveness.ts). The heartbeat must then go on while the
// event loop is blocked (a long synchronous call, a debugger paused on a breakpoint): one worker
// thread per process beats every heartbeat target too, as the main thread's timer does, with the
// same checks (never following a link, never blocking on a FIFO, never touching an inode that is
// not the owner's kind). Where /proc tells the thread and its start time, liveness never reads
// the heartbeat of a same-host owner, and no thread is started.

/** How the beat thread opens a target: never following a link, never blocking. @internal */
export const BEAT_OPEN = constants.O_RDONLY | OPEN_EXISTING;

// The thread's code, evaluated as CommonJS: the same in the ESM and the CJS build, no file to
// find. Its checks are heartbeat.ts's `refresh`: a session's lock must be a directory, a lease's
// held file a regular file with one link; a name gone is dropped (the main thread makes a lock
// again, or learns that its lease was taken over, on its own next beat).
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const targets = new Map();
parentPort.on('message', ({ at, kind }) => (kind === undefined ? targets.delete(at) : targets.set(at, kind)));
setInterval(() => { for (const [at, kind] of targets) beat(at, kind); }, workerData.periodMs);
function beat(at, kind) {
  let fd;
  try {
    fd = fs.openSync(at, workerData.open);
    const stat = fs.fstatSync(fd);
    const ours = kind === 'session' ? stat.isDirectory() : stat.isFile() && stat.nlink === 1;
    if (!ours) return;
    const now = new Date();
    fs.futimesSync(fd, now, now);
  } catch (err) {
    if (err && err.code === 'ENOENT') targets.delete(at);
  } finally {
    if (fd !== undefined) try { fs.closeSync(fd); } catch {}
  }
}
`;

/** The process's one beat thread: what it beats, and whether it runs. @internal */
export interface BeatThread {
  /** Beats `at` off the main thread until the returned function is called. */
  add(at: string, kind: Beat['kind']): () => void;
  /** Whether the thread runs now (it ends once nothing is left to beat). */
  readonly running: boolean;
  /** How many targets it beats. */
  readonly targets: number;
}

/**
 * Beats `at` on the process's beat thread as well as on the main thread's timer, where the
 * liveness of this process's owners is judged by their heartbeat (no /proc); elsewhere does
 * nothing. Returns the function that stops it.
 */
export function beatOffThread(at: string, kind: Beat['kind']): () => void {
  if (machineId() !== undefined) return () => {};
  return beatThread().add(at, kind);
}

/**
 * The process's one beat thread, shared by every copy of the library loaded in the process (the
 * ESM and the CJS build): made on first use, started while it has something to beat. @internal
 */
export function beatThread(): BeatThread {
  return processSlot('beat-thread', makeBeatThread);
}

function makeBeatThread(): BeatThread {
  const targets = new Map<string, { kind: Beat['kind']; holders: number }>();
  let worker: Worker | undefined;
  const post = (at: string, kind: Beat['kind'] | undefined) => worker?.postMessage({ at, kind });
  const start = () => {
    const started = new Worker(SOURCE, { eval: true, workerData: { periodMs: HEARTBEAT_MS, open: BEAT_OPEN }, stdout: false, stderr: false });
    started.unref();
    started.on('error', (err) => log('the beat thread failed: %O', err));
    started.on('exit', () => {
      if (worker !== started) return;
      worker = undefined;
      if (targets.size > 0) restart(); // it died under its targets: they are still to beat
    });
    worker = started;
    for (const [at, { kind }] of targets) post(at, kind);
  };
  const restart = () => setImmediate(() => worker ?? (targets.size > 0 && start())).unref();
  const stop = () => {
    const ending = worker;
    worker = undefined;
    void ending?.terminate();
  };
  return {
    add(at, kind) {
      const held = targets.get(at);
      if (held) held.holders += 1;
      else targets.set(at, { kind, holders: 1 });
      if (worker === undefined) start();
      else if (!held) post(at, kind);
      let removed = false;
      return () => {
        if (removed) return;
        removed = true;
        const target = targets.get(at);
        if (target === undefined || --target.holders > 0) return;
        targets.delete(at);
        post(at, undefined);
        if (targets.size === 0) stop();
      };
    },
    get running() {
      return worker !== undefined;
    },
    get targets() {
      return targets.size;
    },
  };
}
