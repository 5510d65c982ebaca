import { BroadcastChannel, isMainThread, type Worker } from 'node:worker_threads';
import path from 'node:path';
import { realFs } from '../disk/fs.js';
import { onThisMachine } from './liveness.js';
import { logger } from '../log.js';
import { processIdentity } from '../owner/process-identity.js';
import { openPinnedSync } from '../disk/pinned-dir.js';
import { removeTreeSync } from '../disk/remove.js';
import { parseSessionName, sessionLockPath } from '../layout.js';
import { DEFAULT_GRACE_MS, DEFAULT_STALE_MS } from '../options.js';
import { sweepRoot } from './sweep.js';

const log = logger('threads');

// A worker thread ended by `worker.terminate()`, or by the end of the process, runs no more
// JavaScript: no 'exit' event, no exit hook. Its sessions are then removed from outside it: by
// the thread that made the worker, as soon as it sees the worker's 'exit' event, and at process
// exit by the main thread's exit hook. Both need the roots the threads use: every thread tells
// the others on a BroadcastChannel when it opens a session under a root.

interface ThreadWatch {
  readonly roots: Set<string>;
  readonly channel: BroadcastChannel;
}

const CHANNEL = 'tempfile-manager:roots';
const WATCH_KEY = Symbol.for('tempfile-manager.thread-watch');
// Delay before looking at the roots after a worker ended: its last announcements arrive first.
const REAP_DELAY_MS = 50;

function threadWatch(): ThreadWatch {
  const holder = globalThis as { [WATCH_KEY]?: ThreadWatch };
  if (!holder[WATCH_KEY]) {
    const roots = new Set<string>();
    const channel = new BroadcastChannel(CHANNEL);
    channel.onmessage = (event) => {
      const root = (event as { data?: unknown }).data;
      if (typeof root === 'string') roots.add(root);
    };
    channel.unref();
    process.on('worker', (worker: Worker) => worker.once('exit', () => setTimeout(reapDeadThreads, REAP_DELAY_MS).unref()));
    Object.defineProperty(holder, WATCH_KEY, { value: { roots, channel }, enumerable: false, writable: false, configurable: false });
  }
  return holder[WATCH_KEY] as ThreadWatch;
}

/** Starts watching this process's threads (once per thread); `root` is one this thread uses. */
export function watchThreads(root: string): void {
  threadWatch().roots.add(root);
}

/** Tells every thread of this process that this one opened a session under `root`. */
export function announceRoot(root: string): void {
  const watch = threadWatch();
  watch.roots.add(root);
  watch.channel.postMessage(root);
}

/** Removes the sessions of this process's threads that have ended, under every known root. */
async function reapDeadThreads(): Promise<void> {
  const own = processIdentity('');
  for (const root of threadWatch().roots) {
    const target = { fs: realFs, root, staleMs: DEFAULT_STALE_MS, graceMs: DEFAULT_GRACE_MS, hostId: '' };
    try {
      await sweepRoot(target, {}, (session) => session.parsed.pid === own.pid && onThisMachine(session.parsed));
    } catch (err) {
      log('reaping ended threads under %s: %O', root, err);
    }
  }
}

/**
 * At process exit, in the main thread: removes the sessions of every other thread of this
 * process, under every known root (they die with it, and run no exit hook of their own).
 * Synchronous, never throws.
 */
export function removeOtherThreadsSessionsSync(): void {
  const holder = globalThis as { [WATCH_KEY]?: ThreadWatch };
  if (!isMainThread || !holder[WATCH_KEY]) return;
  const own = processIdentity('');
  for (const root of holder[WATCH_KEY].roots) {
    // Through the root opened without following a link: a root swapped for a symlink is left alone.
    let pinned: ReturnType<typeof openPinnedSync>;
    try {
      pinned = openPinnedSync(realFs, root);
    } catch {
      continue;
    }
    if (typeof pinned === 'string') continue;
    try {
      removeThreadSessionsSync(root, pinned.base, own);
    } finally {
      pinned.close();
    }
  }
}

function removeThreadSessionsSync(root: string, rootBase: string, own: ReturnType<typeof processIdentity>): void {
  let names: string[];
  try {
    names = realFs.readdirSync(rootBase);
  } catch {
    return;
  }
  for (const name of names) {
    const owner = parseSessionName(name);
    if (!owner || owner.pid !== own.pid || owner.thread === own.thread || !onThisMachine(owner)) continue;
    const dir = path.join(root, name);
    try {
      removeTreeSync(realFs, dir, { access: `${rootBase}/${name}` });
      realFs.rmdirSync(sessionLockPath(`${rootBase}/${name}`));
    } catch (err) {
      log('removing the session of an ended thread %s: %O', dir, err);
    }
  }
}
