import * as nodeFs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { callSites, realFs, type FsLayer } from './fs-layer.js';
import { beating } from '../../src/owner/registry.js';
import { systemError } from './faulty-fs.js';

/** The errnos every call is failed with in turn. */
export const ERRNOS = ['EIO', 'ENOSPC', 'EMFILE', 'EACCES', 'ENOENT'] as const;
export type Errno = (typeof ERRNOS)[number];

/** One fs call seen while recording. */
export interface FsCall {
  /** Position in the recording, from 1. */
  readonly seq: number;
  /** `mkdirSync`, `mkdir` (callback style), `promises.rename`, `handle.writev`, ... */
  readonly method: string;
  /** The path (or `fd:<n>` / the path a descriptor was opened at), normalised. */
  readonly path: string;
  /** `method(path)`, the identity used to target a call in another run. */
  readonly key: string;
  /** 1 for the first call with this key in the recording, 2 for the second... */
  readonly occurrence: number;
  /** Set on the call that was failed on purpose. */
  injected?: string;
}

/** Which call to fail: the `occurrence`-th call with `key`. */
export interface FaultTarget {
  readonly key: string;
  readonly occurrence: number;
  readonly code: Errno | string;
}

/** Or: the first call of `method` whose (normalised) path passes `path`. */
export interface FaultWhere {
  /** The method, or any of several (a call made inline or in the thread pool, whichever it is). */
  readonly method: string | readonly string[];
  readonly path: (path: string) => boolean;
  readonly code: Errno | string;
}

// Calls whose effect happens even when they report an error: close() releases the descriptor on
// Linux whatever it returns. They are failed after the real call, the others before it.
const FAIL_AFTER = new Set(['closeSync', 'close', 'promises.close', 'handle.close']);
const STREAMS = new Set(['createReadStream', 'createWriteStream']);

type AnyFn = (...args: unknown[]) => unknown;

function isConstructor(name: string): boolean {
  return /^[A-Z]/.test(name);
}

/**
 * A file system (the real one, or memfs) in which every function is counted and any one call can
 * be made to fail: sync calls throw, callback calls (proper-lockfile's `mkdir`, `stat`, `rmdir`,
 * `utimes`) call back with the error on the next tick, promise calls reject, streams error, and
 * the `FileHandle`s of `promises.open` are wrapped in turn. Nothing is counted or failed outside
 * `record()` ... `stop()`.
 *
 * A call is targeted by its key (`operation(normalised path)`, sync and async alike) and how many times that key was seen
 * before, not by its global position: calls issued in parallel (a sweep's lstat/unlink window)
 * finish in any order, but "the 2nd unlink of <orphan>/f1" is the same call in every run.
 */
export class FaultPlanFs {
  readonly fs: FsLayer;
  readonly calls: FsCall[] = [];
  private recording = false;
  private target: FaultTarget | undefined;
  private where: FaultWhere | undefined;
  private readonly seen = new Map<string, number>();
  private readonly fdPaths = new Map<number, string>();
  private normalize: (path: string) => string = (p) => p;

  constructor(readonly base: FsLayer = realFs) {
    const wrapped: Record<string, unknown> = {};
    const source = base as unknown as Record<string, unknown>;
    for (const name of Object.keys(source)) {
      const value = source[name];
      if (name === 'promises') continue;
      wrapped[name] = typeof value === 'function' && !isConstructor(name) ? this.wrapTop(name, value as AnyFn) : value;
    }
    const promises: Record<string, unknown> = {};
    const basePromises = base.promises as unknown as Record<string, unknown>;
    for (const name of Object.keys(basePromises)) {
      const value = basePromises[name];
      promises[name] =
        typeof value === 'function' && !isConstructor(name) ? this.wrapPromise(`promises.${name}`, value as AnyFn, basePromises) : value;
    }
    wrapped.promises = promises;
    this.fs = wrapped as unknown as FsLayer;
  }

  /** Starts a recording: counts every call from now on; fails `target` when it comes. */
  record(options: { target?: FaultTarget; where?: FaultWhere; normalize?: (path: string) => string } = {}): void {
    this.calls.length = 0;
    this.seen.clear();
    this.target = options.target;
    this.where = options.where;
    if (options.normalize) this.normalize = options.normalize;
    this.recording = true;
  }

  /** Ends the recording; later calls pass through untouched. Returns what was recorded. */
  stop(): FsCall[] {
    this.recording = false;
    this.target = undefined;
    this.where = undefined;
    return [...this.calls];
  }

  /** The call that was failed in this recording, if the target came. */
  get injected(): FsCall | undefined {
    return this.calls.find((c) => c.injected !== undefined);
  }

  /** Counts one call; returns the error to fail it with, if it is the target. */
  private hit(method: string, arg: unknown): NodeJS.ErrnoException | undefined {
    if (!this.recording || duringTimerBeat()) return undefined;
    const raw = typeof arg === 'number' ? (this.fdPaths.get(arg) ?? `fd:${arg}`) : typeof arg === 'string' || arg instanceof URL || Buffer.isBuffer(arg) ? String(arg) : '';
    const path = raw === '' ? '' : this.normalize(this.throughFd(raw));
    // The key names the operation, not how it was issued: the library makes some calls inline or
    // through the thread pool depending on how quick the disk has been (docs/streaming-writes.md),
    // so `writeSync(f)` in one run is `write(f)` in the next, and both are the same call.
    const key = `${operationOf(method)}(${path})`;
    const occurrence = (this.seen.get(key) ?? 0) + 1;
    this.seen.set(key, occurrence);
    const call: FsCall = { seq: this.calls.length + 1, method, path, key, occurrence };
    this.calls.push(call);
    const t = this.target;
    const w = this.where;
    let code: string;
    if (t && t.key === key && t.occurrence === occurrence) {
      this.target = undefined;
      code = t.code;
    } else if (w && (typeof w.method === 'string' ? w.method === method : w.method.includes(method)) && w.path(path)) {
      this.where = undefined;
      code = w.code;
    } else return undefined;
    call.injected = code;
    return systemError(code, method.replace(/^(promises|handle)\./, '').replace(/Sync$/, ''), raw);
  }

  private wrapTop(name: string, fn: AnyFn): AnyFn {
    const base = this.base;
    if (STREAMS.has(name)) {
      return (...args: unknown[]) => {
        const error = this.hit(name, args[0]);
        if (!error) return fn.apply(base, args);
        // As the real streams do: the failure comes as an 'error' event, not a throw.
        const stream = new PassThrough();
        process.nextTick(() => stream.destroy(error));
        return stream;
      };
    }
    if (name.endsWith('Sync')) {
      return (...args: unknown[]) => {
        const error = this.hit(name, args[0]);
        if (error && !FAIL_AFTER.has(name)) throw error;
        const result = fn.apply(base, args);
        if (name === 'openSync' && typeof result === 'number') this.fdPaths.set(result, this.throughFd(String(args[0])));
        if (error) throw error;
        return result;
      };
    }
    return (...args: unknown[]) => {
      const callback = args[args.length - 1];
      if (typeof callback !== 'function') {
        const error = this.hit(name, args[0]);
        if (error) throw error;
        return fn.apply(base, args);
      }
      const error = this.hit(name, args[0]);
      if (!error) return fn.apply(base, name === 'open' ? this.tracked(args) : args);
      if (FAIL_AFTER.has(name)) {
        return fn.apply(base, [...args.slice(0, -1), () => (callback as AnyFn)(error)]);
      }
      process.nextTick(() => (callback as AnyFn)(error));
      return undefined;
    };
  }

  /** `fs.open(path, ..., callback)`'s arguments with a callback that records what the descriptor names. */
  private tracked(args: unknown[]): unknown[] {
    const callback = args[args.length - 1] as AnyFn;
    const opened = this.throughFd(String(args[0]));
    return [
      ...args.slice(0, -1),
      (error: unknown, fd: unknown) => {
        if (!error && typeof fd === 'number') this.fdPaths.set(fd, opened);
        callback(error, fd);
      },
    ];
  }

  private wrapPromise(name: string, fn: AnyFn, owner: unknown): AnyFn {
    return async (...args: unknown[]) => {
      const error = this.hit(name, args[0]);
      if (error && !FAIL_AFTER.has(name)) throw error;
      const result = await fn.apply(owner, args);
      if (error) throw error;
      if (name === 'promises.open') {
        const opened = this.throughFd(String(args[0]));
        this.fdPaths.set((result as FileHandle).fd, opened);
        return this.wrapHandle(result as FileHandle, opened);
      }
      return result;
    };
  }

  private wrapHandle(handle: FileHandle, path: string): FileHandle {
    const plan = this;
    return new Proxy(handle, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function' || typeof property !== 'string') return value;
        const method = `handle.${property}`;
        return async (...args: unknown[]) => {
          const error = plan.hit(method, path);
          if (error && !FAIL_AFTER.has(method)) throw error;
          const result = await (value as AnyFn).apply(target, args);
          if (error) throw error;
          return result;
        };
      },
    });
  }

  /** `/proc/<self or pid>/fd/<fd>/x` names what `<fd>` was opened at: report it as `<that path>/x`. */
  private throughFd(raw: string): string {
    const match = /^\/proc\/(?:self|\d+)\/fd\/(\d+)(\/.*)?$/.exec(raw);
    const opened = match ? this.fdPaths.get(Number(match[1])) : undefined;
    if (!match || opened === undefined) return raw;
    return `${opened}${match[2] ?? ''}`;
  }
}

/**
 * True inside the heartbeat timer's beat (registry.ts's `beatAll`, synchronous): its calls land in
 * a run only when the machine's load made that run last a beat, so they are neither counted nor
 * failed. A beat's own failures are tested where they are the subject (heartbeat tests).
 */
function duringTimerBeat(): boolean {
  return callSites(12, duringTimerBeat).some((site) => site.getFunctionName() === 'beatAll');
}

/** `writeSync`, `write` and `promises.write` are one operation, `write`; a FileHandle's keep their `handle.` prefix. */
function operationOf(method: string): string {
  return method.replace(/^promises\./, '').replace(/Sync$/, '');
}

/** Open file descriptors of this process (Linux), at this instant. */
export function openFds(): number {
  // A thread's live signal is held open for its managers' life (src/owner/live-signal.ts): not a leak.
  return nodeFs.readdirSync('/proc/self/fd').filter((fd) => !isLiveSignal(fd)).length;
}

function isLiveSignal(fd: string): boolean {
  try {
    return /\/live_[0-9a-f]{16}$/.test(nodeFs.readlinkSync(`/proc/self/fd/${fd}`));
  } catch {
    return false;
  }
}

/**
 * Open file descriptors of this process (Linux) that stay open: the fewest of five counts 5 ms
 * apart. The beat thread opens each target it beats for a few microseconds, on a thread of its
 * own, so a single count can land on one of its descriptors; a leaked descriptor is in every count.
 */
export async function lastingFds(): Promise<number> {
  let fewest = openFds();
  for (let count = 1; count < 5; count++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    fewest = Math.min(fewest, openFds());
  }
  return fewest;
}

/** The session locks this process keeps alive (their heartbeats), by their public paths. */
export function heldLocks(): string[] {
  return beating().filter((beat) => beat.kind === 'session').map((beat) => beat.shown);
}
