import { liveDigest, removeDeadSignal, removeSignalOf } from '../owner/live-signal.js';
import { fs } from '../disk/fs.js';
import { onThisMachine } from '../owner/liveness.js';
import { logger } from '../base/log.js';
import { processIdentity, type ProcessIdentity } from '../owner/process-identity.js';
import { openPinned, openPinnedSync } from '../disk/pinned-dir.js';
import { removeTreeSync } from '../disk/remove.js';
import { emptyTally } from '../disk/walk.js';
import { isLiveSignalName, liveSignalName, parseSessionName, sessionLockPath } from '../base/layout.js';
import { DEFAULT_GRACE_MS, DEFAULT_STALE_MS } from '../root/options.js';
import { requireMarkedRoot } from '../root/root.js';
import { addRoot, atExit, knownRoots, mayHaveWorkers, onWorkerEnd, processSlot } from '../owner/registry.js';
import { findSessions, sweepSessions } from './session-sweep.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

const log = logger('threads');

// A worker thread ended by `worker.terminate()`, or by the end of the process, runs no more
// JavaScript: no 'exit' event, no exit hook. Its sessions are then removed from outside it: by
// the thread that made the worker, as soon as it sees the worker's 'exit' event, and at process
// exit by the main thread's exit task. Both need the roots the threads use: every thread tells
// the others (owner/registry.ts) when it opens a session under a root.

/**
 * Watches this process's threads for sessions under `root` that outlive their thread; with
 * `announce`, tells every thread of the process that this one has a session there.
 */
export function watchThreads(root: string, announce: boolean): void {
  addRoot(root, announce);
  // Once per process, whichever copy of the library (ESM, CJS) comes first.
  const watch = processSlot('thread-watch', () => ({ started: false }));
  if (watch.started) return;
  watch.started = true;
  onWorkerEnd(() => void reapEndedThreads());
  // Asked at exit, and only where there may be other threads: node:worker_threads costs a main
  // thread that never made one 1.5 MiB resident for good (and 3 ms to load at exit).
  atExit(() => {
    if (mayHaveWorkers() && builtin('node:worker_threads').isMainThread) removeOtherThreadsSessionsSync();
  });
}

/** Removes the sessions of this process's threads that have ended, under every known root. */
async function reapEndedThreads(): Promise<void> {
  const own = processIdentity('');
  for (const root of knownRoots()) {
    const target = { root, staleMs: DEFAULT_STALE_MS, graceMs: DEFAULT_GRACE_MS, hostId: '' };
    try {
      const pinned = await openPinned(root); // never through a root swapped for a symlink
      if (typeof pinned === 'string') continue;
      try {
        requireMarkedRoot(root, pinned.base);
        const { sessions, liveSignals } = await findSessions(target, pinned.base);
        const ours = sessions.filter((session) => session.parsed.pid === own.pid && onThisMachine(session.parsed));
        await sweepSessions(target, ours, { dryRun: false, tally: emptyTally() });
        // An ended thread's live signal: its pipe closed with the thread, nobody reads it now.
        for (const name of liveSignals) removeDeadSignal(pinned.base, name);
      } finally {
        await pinned.close();
      }
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
function removeOtherThreadsSessionsSync(): void {
  const own = processIdentity('');
  for (const root of knownRoots()) {
    // Through the root opened without following a link: a root swapped for a symlink is left alone.
    let pinned: ReturnType<typeof openPinnedSync>;
    try {
      pinned = openPinnedSync(root);
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

function removeThreadSessionsSync(root: string, rootBase: string, own: ProcessIdentity): void {
  let names: string[];
  try {
    names = fs.readdirSync(rootBase);
  } catch {
    return;
  }
  for (const name of names) {
    if (isLiveSignalName(name)) removeDeadSignal(rootBase, name);
    const owner = parseSessionName(name);
    if (!owner || owner.pid !== own.pid || owner.thread === own.thread || !onThisMachine(owner)) continue;
    const dir = path.join(root, name);
    try {
      removeTreeSync(dir, { access: `${rootBase}/${name}` });
      fs.rmdirSync(sessionLockPath(`${rootBase}/${name}`));
      // The thread's live signal dies with the process: its pipe is still open this instant.
      removeSignalOf(rootBase, liveSignalName(liveDigest(owner)));
    } catch (err) {
      log('removing the session of an ended thread %s: %O', dir, err);
    }
  }
}
