import { monotonicMs } from './clock.js';
import { captureContext } from './detached.js';
import { builtin } from './builtin.js';
import { digestHex } from './sha256.js';
const dc = builtin('node:diagnostics_channel');

/**
 * The names of the plain channels the library publishes on (`node:diagnostics_channel`): one
 * message per event, sent synchronously, only while the channel has a subscriber. Names and
 * payloads are stable; docs/observability.md describes each.
 */
export const CHANNELS = {
  /** A file or directory was made: {@link FileCreatedMessage}. */
  fileCreate: 'tempfile-manager:file:create',
  /** A file or directory was removed by its handle: {@link FileRemovedMessage}. */
  fileRemove: 'tempfile-manager:file:remove',
  /** A file (or a claimed file) was kept at a destination: {@link FileKeptMessage}. */
  fileKeep: 'tempfile-manager:file:keep',
  /** A claim took an entry over from a dead holder: {@link HandoffEventMessage}. */
  claimTakeover: 'tempfile-manager:claim:takeover',
  /** A claimed file was consumed: {@link HandoffEventMessage}. */
  claimConsume: 'tempfile-manager:claim:consume',
  /** A claimed file was given back unconsumed: {@link HandoffEventMessage}. */
  claimRelease: 'tempfile-manager:claim:release',
  /** A sweep removed a handoff entry whose ticket expired: {@link HandoffEventMessage}. */
  handoffExpire: 'tempfile-manager:handoff:expire',
  /** The exit hook ran its tasks: {@link ExitHookMessage}. */
  exitHook: 'tempfile-manager:exit-hook:run',
  /** A manager found its root swapped (every later call throws `RootChangedError`): {@link RootChangedMessage}. */
  rootChange: 'tempfile-manager:root:change',
  /** A heartbeat of this process could not be refreshed: {@link HeartbeatFailedMessage}. */
  heartbeatFail: 'tempfile-manager:heartbeat:fail',
} as const;

/**
 * The names of the tracing channels (`diagnostics_channel.tracingChannel(name)`): each operation
 * publishes on `tracing:<name>:start`, `:end`, `:asyncStart`, `:asyncEnd` and, when it fails,
 * `:error`, one context object through all of them, so that an APM tool sees a span.
 */
export const TRACING_CHANNELS = {
  /** `write()` and every upload's file: {@link WriteTrace}. */
  write: 'tempfile-manager:write',
  /** `TempFile.handoff()`: {@link HandoffTrace}. */
  handoff: 'tempfile-manager:handoff',
  /** `claim()` and `withClaim()`'s claim: {@link ClaimTrace}. */
  claim: 'tempfile-manager:claim',
  /** `sweep()`, a background sweep and the CLI's: {@link SweepTrace}. */
  sweep: 'tempfile-manager:sweep',
  /** One HTTP exchange given a scope by the Express or Fastify adapter, from the scope's start to its end: {@link RequestTrace}. */
  request: 'tempfile-manager:request',
} as const;

/** The message of `tempfile-manager:file:create`. */
export interface FileCreatedMessage {
  /** The manager's root. */
  readonly root: string;
  /** The new file's or directory's path. */
  readonly path: string;
  /** What was made. */
  readonly kind: 'file' | 'dir';
  /** `'write'` for the file of `write()` or an upload, else `'create'`. */
  readonly by: 'create' | 'write';
}

/** The message of `tempfile-manager:file:remove`. */
export interface FileRemovedMessage {
  /** The manager's root. */
  readonly root: string;
  /** The removed path. */
  readonly path: string;
  /** What was removed. */
  readonly kind: 'file' | 'dir';
  /** The bytes the file held (0 for a directory). */
  readonly size: number;
}

/** The message of `tempfile-manager:file:keep`. */
export interface FileKeptMessage {
  /** The manager's root (absent for a claimed file). */
  readonly root?: string;
  /** The temp file's path (absent for a claimed file: its path holds the ticket's id). */
  readonly path?: string;
  /** Where it was kept. */
  readonly destination: string;
  /** The bytes kept. */
  readonly size: number;
  /** A `TempFile` or a `ClaimedFile`. */
  readonly from: 'file' | 'claim';
}

/**
 * The message of a handoff's events (`claim:takeover`, `claim:consume`, `claim:release`,
 * `handoff:expire`). It never holds the ticket's id, which is all a claimer needs: `handoff` is
 * a one-way digest of it, the same for every event of one handoff, to correlate them.
 */
export interface HandoffEventMessage {
  /** The first 16 hex digits of the SHA-256 of the ticket's id. */
  readonly handoff: string;
  /** The file's size, when known. */
  readonly size?: number;
}

/** The message of `tempfile-manager:exit-hook:run`. */
export interface ExitHookMessage {
  /** What ended the process: `'exit'` or the signal's name. */
  readonly reason: string;
  /** The tasks run (sessions removed, leases given back, ...). */
  readonly tasks: number;
  /** How long they took, in milliseconds. */
  readonly durationMs: number;
}

/** The message of `tempfile-manager:root:change`. */
export interface RootChangedMessage {
  /** The root whose path no longer leads to the directory the manager holds. */
  readonly root: string;
  /** What is at its path now (`RootChangedError`'s `change`). */
  readonly change: string;
  /** True when only the manager's session directory went (the root itself is still its own). */
  readonly session: boolean;
}

/** The message of {@link CHANNELS}`.heartbeatFail`. */
export interface HeartbeatFailedMessage {
  /** What beats: a session's lock, or a claim's held file. */
  readonly kind: 'session' | 'lease';
  /** The session lock's path; absent for a claim (a held file's path holds its ticket's id). */
  readonly path?: string;
  /** What was found: `gone`, `replaced: <what stands there>`, or a system error code (`EACCES`, `ENOSPC`, `EIO`...). */
  readonly reason: string;
}

/** What every traced operation's context gets when it ends. */
export interface TraceEnd {
  /** The time from `start` to the operation's end, in milliseconds. */
  durationMs?: number;
  /** The typed error it failed with (published on `:error` too). */
  error?: unknown;
}

/** The context of `tracing:tempfile-manager:write:*`. */
export interface WriteTrace extends TraceEnd {
  /** The manager's root. */
  readonly root: string;
  /** The `maxBytes` limit in force. */
  readonly maxBytes: number;
  /** On success: the file's path and size. */
  result?: {
    /** The new temp file's path. */
    readonly path: string;
    /** The bytes written. */
    readonly size: number;
  };
}

/** The context of `tracing:tempfile-manager:handoff:*`. */
export interface HandoffTrace extends TraceEnd {
  /** The manager's root. */
  readonly root: string;
  /** The temp file handed off (its path in the session, before the handoff). */
  readonly path: string;
  /** The bytes handed off. */
  readonly size: number;
  /** True when handed off through an object store. */
  readonly store: boolean;
  /** On success: the handoff's digest (see {@link HandoffEventMessage}) and when it expires (epoch ms). */
  result?: {
    /** The handoff's digest (see {@link HandoffEventMessage}). */
    readonly handoff: string;
    /** When the handoff expires, in milliseconds since the epoch. */
    readonly expiresAt: number;
  };
}

/** The context of `tracing:tempfile-manager:claim:*`. */
export interface ClaimTrace extends TraceEnd {
  /** The manager's root. */
  readonly root: string;
  /** The handoff's digest (see {@link HandoffEventMessage}). */
  readonly handoff: string;
  /** On success: the claimed file's size. */
  result?: {
    /** The claimed file's size in bytes. */
    readonly size: number;
  };
}

/** The context of `tracing:tempfile-manager:sweep:*`. */
export interface SweepTrace extends TraceEnd {
  /** The manager's root. */
  readonly root: string;
  /** True for a dry run, which removes nothing. */
  readonly dryRun: boolean;
  /** On success: the report's counts (never its paths), and how many paths could not be removed. */
  result?: {
    /** Orphaned sessions removed. */
    readonly sessionsRemoved: number;
    /** Files removed. */
    readonly filesRemoved: number;
    /** Directories removed. */
    readonly dirsRemoved: number;
    /** Bytes freed. */
    readonly bytesFreed: number;
    /** Handoff entries removed. */
    readonly handoffEntriesRemoved: number;
    /** Paths that could not be removed. */
    readonly errors: number;
  };
}

/** The context of `tracing:tempfile-manager:request:*`. */
export interface RequestTrace extends TraceEnd {
  /** The manager's root. */
  readonly root: string;
  /** `'express'` or `'fastify'`. */
  readonly framework: 'express' | 'fastify';
  /** The request's method. */
  readonly method: string;
  /**
   * When the exchange ended: the status of the response, the files and bytes its forms received
   * (`upload()`, `saveUploads()`), the `code` of the error a form was refused with, if one was,
   * and whether the client left before the response was sent.
   */
  result?: {
    /** The response's status code. */
    readonly status: number;
    /** The files received. */
    readonly files: number;
    /** Their bytes. */
    readonly bytes: number;
    /** Why the form was refused: the refusing error's `code`. */
    readonly refused?: string;
    /** True when the client left before the response. */
    readonly clientGone: boolean;
  };
}

interface PlainMessages {
  [CHANNELS.fileCreate]: FileCreatedMessage;
  [CHANNELS.fileRemove]: FileRemovedMessage;
  [CHANNELS.fileKeep]: FileKeptMessage;
  [CHANNELS.claimTakeover]: HandoffEventMessage;
  [CHANNELS.claimConsume]: HandoffEventMessage;
  [CHANNELS.claimRelease]: HandoffEventMessage;
  [CHANNELS.handoffExpire]: HandoffEventMessage;
  [CHANNELS.exitHook]: ExitHookMessage;
  [CHANNELS.rootChange]: RootChangedMessage;
  [CHANNELS.heartbeatFail]: HeartbeatFailedMessage;
}

interface TraceContexts {
  [TRACING_CHANNELS.write]: WriteTrace;
  [TRACING_CHANNELS.handoff]: HandoffTrace;
  [TRACING_CHANNELS.claim]: ClaimTrace;
  [TRACING_CHANNELS.sweep]: SweepTrace;
  [TRACING_CHANNELS.request]: RequestTrace;
}

type PlainName = keyof PlainMessages;
type TraceName = keyof TraceContexts;
type Result<N extends TraceName> = NonNullable<TraceContexts[N]['result']>;

// Channels are global by name: another copy of the library publishes on the same objects.
const plain = new Map<string, import('node:diagnostics_channel').Channel>(Object.values(CHANNELS).map((name) => [name, dc.channel(name)]));
const tracing = new Map<string, import('node:diagnostics_channel').TracingChannel<unknown, object>>(
  Object.values(TRACING_CHANNELS).map((name) => [name, dc.tracingChannel(name)]),
);

/**
 * Publishes on a plain channel; `build` runs only when it has a subscriber, so that an app that
 * listens to nothing pays one property read. A subscriber that throws does not stop the caller:
 * Node rethrows its error on the next tick (`process.on('uncaughtException')`). @internal
 */
export function publish<N extends PlainName>(name: N, build: () => PlainMessages[N]): void {
  const channel = plain.get(name)!;
  if (channel.hasSubscribers) channel.publish(build());
}

/** True while any of a tracing channel's five channels has a subscriber (Node 20's TracingChannel has no hasSubscribers). */
function traceActive(channel: import('node:diagnostics_channel').TracingChannel<unknown, object>): boolean {
  return (
    channel.start.hasSubscribers ||
    channel.end.hasSubscribers ||
    channel.asyncStart.hasSubscribers ||
    channel.asyncEnd.hasSubscribers ||
    channel.error.hasSubscribers
  );
}

/**
 * Sets a field of a context handed to subscribers. A subscriber may have frozen the object,
 * sealed it, or put a setter on it that throws: the field is then left as it is, and the
 * operation goes on as if nobody listened. The library never reads a field back.
 */
function note(ctx: object, key: 'durationMs' | 'result' | 'error', value: unknown): void {
  try {
    Reflect.set(ctx, key, value);
  } catch {
    // the subscriber's object refuses the field: its business, not the operation's
  }
}

/**
 * The error as it is handed to subscribers: its stack (and its causes', a few deep) formatted
 * now, so that a subscriber that keeps the context keeps a string, not the frames' receivers
 * (a write's 64 KiB chunk among them) that an unformatted stack holds.
 */
function settled(error: unknown): unknown {
  let at: unknown = error;
  for (let depth = 0; depth < 4 && typeof at === 'object' && at !== null; depth += 1) {
    try {
      void (at as { stack?: unknown }).stack;
      at = (at as { cause?: unknown }).cause;
    } catch {
      break;
    }
  }
  return error;
}

/**
 * Runs `run` as a span of a tracing channel. The context's `result` is what `summarize` makes of
 * the value, never the value itself (a ticket, a handle holding one). Without a subscriber,
 * `run()` is all that happens. `context` must not throw: a call checks its options before.
 *
 * The span is published as `TracingChannel.tracePromise()` would (stores bound to `start` are
 * entered around `run`), but the library keeps its state off the context: its value and its
 * error are its own, the fields it sets on the context are set through {@link note}, so that a
 * subscriber that freezes, changes, keeps or throws on the context changes no outcome. @internal
 */
export function traced<N extends TraceName, T>(
  name: N,
  context: () => TraceContexts[N],
  run: () => Promise<T>,
  summarize: (value: T) => Result<N>,
): Promise<T> {
  const channel = tracing.get(name)!;
  if (!traceActive(channel)) return run();
  const ctx: object = context();
  const started = monotonicMs();
  const failed = (error: unknown): never => {
    note(ctx, 'durationMs', monotonicMs() - started);
    note(ctx, 'error', settled(error));
    channel.error.publish(ctx);
    channel.asyncStart.publish(ctx);
    channel.asyncEnd.publish(ctx);
    throw error;
  };
  return channel.start.runStores(ctx, () => {
    let running: Promise<T>;
    try {
      running = run();
    } catch (error) {
      running = Promise.reject(error);
    } finally {
      channel.end.publish(ctx);
    }
    return running.then((value) => {
      note(ctx, 'durationMs', monotonicMs() - started);
      let summary: Result<N> | undefined;
      try {
        summary = summarize(value);
      } catch {
        summary = undefined; // a summary is a report: it never fails the operation
      }
      note(ctx, 'result', summary);
      channel.asyncStart.publish(ctx);
      channel.asyncEnd.publish(ctx);
      return value;
    }, failed);
  });
}

/** A span opened by {@link openSpan}. @internal */
export interface OpenSpan<N extends TraceName> {
  /** Runs `fn` in the async context the span started in, the stores bound to its `start` entered. */
  enter<R>(fn: () => R): R;
  /** Ends the span with its result: `asyncStart` and `asyncEnd`. */
  end(result: Result<N>): void;
}

/**
 * A manual span, for an operation that ends on an event rather than a promise: `start` (its
 * bound stores entered) and `end` now, `asyncStart` and `asyncEnd` when `end()` is called with
 * the result. The work the span covers runs through `enter()`, in the context `start` made.
 * Undefined without a subscriber. The context is only written to through {@link note}. @internal
 */
export function openSpan<N extends TraceName>(name: N, context: () => TraceContexts[N]): OpenSpan<N> | undefined {
  const channel = tracing.get(name)!;
  if (!traceActive(channel)) return undefined;
  const ctx: object = context();
  const started = monotonicMs();
  let inside: (<R>(fn: () => R) => R) | undefined;
  try {
    channel.start.runStores(ctx, () => {
      inside = captureContext();
    });
  } finally {
    channel.end.publish(ctx);
  }
  let ended = false;
  return {
    enter: (fn) => (inside ? inside(fn) : fn()),
    end: (result) => {
      if (ended) return;
      ended = true;
      inside = undefined; // the span's stores are no longer held once it ends
      note(ctx, 'result', result);
      note(ctx, 'durationMs', monotonicMs() - started);
      channel.asyncStart.publish(ctx);
      channel.asyncEnd.publish(ctx);
    },
  };
}

/** The correlation key of a ticket's id: a one-way digest, so that no payload lets its reader claim. @internal */
export function handoffKey(id: string): string {
  return digestHex(id).slice(0, 16);
}
