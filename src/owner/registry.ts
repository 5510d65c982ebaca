import { monotonicMs } from '../base/clock.js';
import type { BroadcastChannel, Worker } from 'node:worker_threads';
import { CHANNELS, publish } from '../base/channels.js';
import { detached } from '../base/detached.js';
import { logger } from '../base/log.js';
import { appHandles, listenToExitSignals, raiseAgain, signalExitListeners, stopListening, UNHELD_SIGNAL } from './exit-signals.js';
import { builtin } from '../base/builtin.js';

const log = logger('registry');

// Every piece of state that belongs to the process rather than to one manager lives here, in one
// object kept under one global symbol: the ESM and the CJS build of the library (or two copies in
// node_modules) find the same one. What runs at exit, on each heartbeat and when a worker thread
// ends is handed in as callbacks by the layers above; this module imports none of them.

/** Something run at process exit: synchronous; a throw is logged, and the next task runs. */
export type ExitTask = () => void;

/** Something refreshed on every heartbeat tick: synchronous, quick, never throwing. */
export interface Beat {
  /** What is refreshed, by its logical path (tests and leak checks list them). */
  readonly shown: string;
  /** What kind of owner beats: a session's lock or a claim's lease. */
  readonly kind: 'session' | 'lease';
  beat(): void;
}

interface ProcessState {
  readonly exitTasks: Set<ExitTask>;
  exitHookInstalled: boolean;
  // Optional: a state made by an earlier version of the library has none of the three below.
  exitTasksRunning?: boolean;
  /** The tasks ran as an uncaught error was about to end the process: its 'exit' runs none. */
  ranAtUncaught?: boolean;
  /** The signal the hook raised again to end the process by, once it has. */
  raised?: NodeJS.Signals;
  readonly beats: Set<Beat>;
  beatTimer: NodeJS.Timeout | undefined;
  readonly roots: Set<string>;
  channel: BroadcastChannel | undefined;
  /** Whether this thread listens for the workers it makes (optional: an earlier version's state has none). */
  watchingWorkers?: boolean;
  workersSeen?: boolean;
  readonly workerEndTasks: Set<() => void>;
  readonly slots: Map<string, unknown>;
}

const STATE_KEY = Symbol.for('tempfile-manager.process-state');
const ROOTS_CHANNEL = 'tempfile-manager:roots';
// Asks every thread for the roots it uses: sent by a thread as it starts listening. No root is
// this (a root is an absolute path).
const ROLL_CALL = 'roll-call';
// Delay before the worker-end tasks run: the ended worker's last root announcements arrive first.
const WORKER_END_DELAY_MS = 50;

function state(): ProcessState {
  const holder = globalThis as { [STATE_KEY]?: ProcessState };
  if (!holder[STATE_KEY]) {
    const fresh: ProcessState = {
      exitTasks: new Set(),
      exitHookInstalled: false,
      beats: new Set(),
      beatTimer: undefined,
      roots: new Set(),
      channel: undefined,
      workerEndTasks: new Set(),
      slots: new Map(),
    };
    Object.defineProperty(holder, STATE_KEY, { value: fresh, enumerable: false, writable: false, configurable: false });
  }
  return holder[STATE_KEY] as ProcessState;
}

/**
 * Runs `task` at process exit (normal exit, `process.exit()`, SIGINT, SIGTERM, SIGHUP and the other
 * signals that end a process but SIGKILL, an uncaught exception or an unhandled rejection), in the
 * order tasks were added, once. The hook listens on those signals from the first call on, in one
 * installation per process shared by every copy of the library: a signal caught while the tasks
 * run (a second Ctrl-C, a SIGTERM after a SIGINT, however soon after the first) is dropped, so it
 * neither stops them nor changes how the process ends; SIGQUIT (Ctrl-\\) is never held back. The
 * process then ends exactly as it would have: of the first signal, raised again once the tasks are
 * done, or with its exit code. The hook never calls `process.exit` and never swallows a signal
 * that the app handles itself (signal-exit's rule); with signal-exit loaded, each defers to the
 * other in turn, and signal-exit's handlers run after the tasks.
 * Returns the function that removes the task.
 * @throws Never.
 */
export function atExit(task: ExitTask): () => void {
  const shared = state();
  if (!shared.exitHookInstalled) {
    shared.exitHookInstalled = true;
    installExitHook(shared);
  }
  shared.exitTasks.add(task);
  return () => void shared.exitTasks.delete(task);
}

function installExitHook(shared: ProcessState): void {
  const onSignal = (signal: NodeJS.Signals): void => endBySignal(shared, onSignal, signal);
  listenToExitSignals(onSignal);
  process.on('exit', (code) => {
    if (!shared.ranAtUncaught) runExitTasks(shared, onSignal, `exit code ${code}`, null);
  });
  // Deno's test runner emits no 'exit' at the natural end of a run, only the global 'unload' (which
  // `deno run` emits too, just before 'exit': the tasks run once, at the first of the two).
  if (typeof (globalThis as { Deno?: unknown }).Deno === 'object') {
    (globalThis as unknown as EventTarget).addEventListener('unload', () => {
      if (!shared.ranAtUncaught) runExitTasks(shared, onSignal, 'unload', null);
    });
  }
  // Deno emits no 'exit' after an uncaught error (Node and Bun do): the monitor is the last code
  // that runs there, so the tasks run in it whenever the error is about to end the process.
  process.on('uncaughtExceptionMonitor', (_error, origin) => {
    if (!uncaughtEndsProcess()) return;
    runExitTasks(shared, onSignal, origin, null);
    shared.ranAtUncaught = true;
  });
}

/** Whether the uncaught error being reported ends the process: no handler of the app's takes it. */
function uncaughtEndsProcess(): boolean {
  const captured = typeof process.hasUncaughtExceptionCaptureCallback === 'function' && process.hasUncaughtExceptionCaptureCallback();
  return process.listenerCount('uncaughtException') === 0 && !captured;
}

function endBySignal(shared: ProcessState, ours: (signal: NodeJS.Signals) => void, signal: NodeJS.Signals): void {
  // Raised again, the first signal is on its way through signal-exit's handlers, which end the
  // process of it: until then, any other signal is dropped.
  if (shared.raised !== undefined && signalExitListeners(shared.raised) > 0) return;
  if (appHandles(signal, ours)) return;
  runExitTasks(shared, ours, signal, signal);
  shared.raised = signal;
  // Only this signal gets its default action back: the process dies of it before any other could
  // be dispatched, and signal-exit's handlers, if it waited for this one, run with the rest held.
  stopListening(signal, ours);
  raiseAgain(signal);
}

/** `ending` says what ends the process, for the log; `signal` is the signal's name, if one does. */
function runExitTasks(shared: ProcessState, ours: (signal: NodeJS.Signals) => void, ending: string, signal: NodeJS.Signals | null): void {
  if (shared.exitTasksRunning) return;
  shared.exitTasksRunning = true;
  stopListening(UNHELD_SIGNAL, ours);
  log('exit (%s): %d tasks', ending, shared.exitTasks.size);
  const tasks = shared.exitTasks.size;
  const started = monotonicMs();
  try {
    runEach(shared.exitTasks);
    publish(CHANNELS.exitHook, () => ({ reason: signal ?? 'exit', tasks, durationMs: monotonicMs() - started }));
  } finally {
    shared.exitTasksRunning = false;
  }
}

function runEach(tasks: Set<ExitTask>): void {
  for (const task of [...tasks]) {
    try {
      task();
    } catch (err) {
      log('an exit task failed: %O', err);
    }
  }
  tasks.clear();
}

/**
 * Refreshes `beat` every `periodMs` on one timer shared by every owner of the process (unref'd: it
 * never keeps the process alive), until the returned function is called.
 */
export function addBeat(beat: Beat, periodMs: number): () => void {
  const shared = state();
  shared.beats.add(beat);
  if (shared.beatTimer === undefined) {
    shared.beatTimer = detached(() => setInterval(beatAll, periodMs));
    shared.beatTimer.unref();
  }
  return () => {
    shared.beats.delete(beat);
    if (shared.beats.size === 0 && shared.beatTimer !== undefined) {
      clearInterval(shared.beatTimer);
      shared.beatTimer = undefined;
    }
  };
}

/** What this process refreshes now (tests, leak checks). @internal */
export function beating(): ReadonlyArray<Pick<Beat, 'shown' | 'kind'>> {
  return [...state().beats].map(({ shown, kind }) => ({ shown, kind }));
}

function beatAll(): void {
  for (const beat of [...state().beats]) {
    try {
      beat.beat();
    } catch (err) {
      log('a heartbeat failed: %O', err);
    }
  }
}

/**
 * Remembers that this thread uses `root`; with `announce`, tells every thread of the process too.
 * The channel between threads (node:worker_threads, 1.5 MiB resident in a main thread that has no
 * other use for it) opens at the first announcement or the first worker this thread makes, and
 * asks the threads already there for their roots.
 */
export function addRoot(root: string, announce: boolean): void {
  const shared = state();
  shared.roots.add(root);
  watchWorkers(shared);
  if (announce) rootsChannel(shared).postMessage(root);
}

/** The roots any thread of this process said it uses (as far as this thread heard). */
export function knownRoots(): ReadonlySet<string> {
  return state().roots;
}

/**
 * Whether this thread may run beside others it made: it opened its channel or saw a worker start,
 * or node:worker_threads was loaded in it before this library watched (Node lists what it loaded;
 * elsewhere, always true). No thread of a process is made without it.
 */
export function mayHaveWorkers(): boolean {
  const shared = state();
  if (shared.channel !== undefined || shared.workersSeen === true) return true;
  const loaded = (process as { moduleLoadList?: readonly string[] }).moduleLoadList;
  return loaded === undefined || loaded.includes('NativeModule worker_threads');
}

function watchWorkers(shared: ProcessState): void {
  if (shared.watchingWorkers) return;
  shared.watchingWorkers = true;
  process.on('worker', (worker: Worker) => {
    shared.workersSeen = true;
    rootsChannel(shared);
    worker.once('exit', () => setTimeout(runWorkerEndTasks, WORKER_END_DELAY_MS).unref());
  });
}

function rootsChannel(shared: ProcessState): BroadcastChannel {
  if (!shared.channel) {
    const channel = new (builtin('node:worker_threads').BroadcastChannel)(ROOTS_CHANNEL);
    channel.onmessage = (event) => {
      const data = (event as { data?: unknown }).data;
      if (data === ROLL_CALL) for (const root of shared.roots) channel.postMessage(root);
      else if (typeof data === 'string') shared.roots.add(data);
    };
    channel.unref();
    shared.channel = channel;
    channel.postMessage(ROLL_CALL);
  }
  return shared.channel;
}

/** Runs `task` (soon) whenever a worker thread made by this thread ends. Added once per task. */
export function onWorkerEnd(task: () => void): void {
  state().workerEndTasks.add(task);
}

function runWorkerEndTasks(): void {
  for (const task of state().workerEndTasks) {
    try {
      task();
    } catch (err) {
      log('a worker-end task failed: %O', err);
    }
  }
}

/**
 * A named piece of process-wide state owned by a layer above (the background sweepers): made by
 * `make` on first use, the same object afterwards.
 */
export function processSlot<T>(name: string, make: () => T): T {
  const { slots } = state();
  if (!slots.has(name)) slots.set(name, make());
  return slots.get(name) as T;
}
