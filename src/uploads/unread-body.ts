import { MAX_TIMER_MS, ownOptions } from '../base/validators.js';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { InvalidOptionError } from '../base/errors.js';
import { describe } from '../base/names.js';

/** How much of a refused request's body is still read (and thrown away) so that the client gets its answer. */
export interface DrainOptions {
  /**
   * Read and throw away at most this many more bytes of the body; past them the connection is
   * closed.
   * @default 134217728 (128 MiB)
   */
  readonly maxBytes?: number;
  /**
   * Give up after this many milliseconds and close the connection.
   * @default 10000
   */
  readonly timeoutMs?: number;
}

/** @internal */
export interface ResolvedDrain {
  readonly maxBytes: number;
  readonly timeoutMs: number;
}

/** @internal */
export const DEFAULT_DRAIN: ResolvedDrain = { maxBytes: 128 * 1024 * 1024, timeoutMs: 10_000 };

/** Validates the `drain` option of the adapters. @internal */
export function resolveDrain(value: unknown, where: string): ResolvedDrain {
  if (value === undefined) return DEFAULT_DRAIN;
  const accepted = `{ maxBytes, timeoutMs }, numbers of at least 0 (timeoutMs at most ${MAX_TIMER_MS})`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError('drain', `${where}: \`drain\` must be ${accepted}, got ${describe(value)}.`);
  }
  const o = ownOptions(value as DrainOptions);
  for (const [key, max] of [['maxBytes', Infinity], ['timeoutMs', MAX_TIMER_MS]] as const) {
    const n = o[key];
    if (n !== undefined && !(typeof n === 'number' && n >= 0 && n <= max)) {
      throw new InvalidOptionError('drain', `${where}: \`drain\` must be ${accepted}, got drain.${key} ${describe(n)}.`);
    }
  }
  return { maxBytes: o.maxBytes ?? DEFAULT_DRAIN.maxBytes, timeoutMs: o.timeoutMs ?? DEFAULT_DRAIN.timeoutMs };
}

interface SocketLike {
  destroyed?: boolean;
  destroy?: () => void;
  destroySoon?: () => void;
  once?: (event: 'close', listener: () => void) => unknown;
  off?: (event: 'close', listener: () => void) => unknown;
}

const draining = new WeakSet<IncomingMessage>();

/**
 * A request refused before its body was read to its end (a limit, a refused type) still gets its
 * answer, even from a client that sends its whole body before it reads anything (Python's
 * http.client, curl without `Expect`): the rest of the body is read and thrown away, up to
 * `limits.maxBytes` more bytes and `limits.timeoutMs`; once both the body and the answer are
 * through, the connection is closed gracefully. Past a bound it is closed at once.
 *
 * Closing with bytes still unread would make the kernel reset the connection, and the client
 * could lose the answer; Node itself closes a `Connection: close` response's socket as soon as the
 * answer is written, so that close is held back until the body is through.
 *
 * Works on a request without a real socket too (Fastify's `inject()`): then the body is only read.
 * @internal
 */
export function discardUnreadBody(req: IncomingMessage, res: ServerResponse, limits: ResolvedDrain): void {
  if (continueOnRead.has(req)) {
    refuseUnreadBody(req, res, limits); // the client waits for our word before sending its body: it never gets it
    return;
  }
  if (req.complete || req.readableEnded || draining.has(req)) return;
  const socket = (req.socket ?? null) as SocketLike | null;
  if (socket?.destroyed) return;
  draining.add(req);
  const release = holdClose(socket);
  let bodyDone = false;
  let answered = res.writableFinished;
  // A reader that gave up (a write() of the request itself) may still listen for 'readable',
  // which would keep the request paused whatever resume() says.
  req.removeAllListeners('readable');
  req.unpipe();
  const stopCounting = dropWithin(req, limits, () => close(false));
  const onEnd = () => {
    bodyDone = true;
    stopCounting(); // the bounds are the body's; the answer may take its time
    if (answered) close(true);
  };
  const onFinish = () => {
    answered = true;
    if (bodyDone) close(true);
  };
  const onSocketClose = () => close(true); // the client went away: nothing left to do
  function close(graceful: boolean): void {
    stopCounting();
    req.off('end', onEnd);
    res.off('finish', onFinish);
    socket?.off?.('close', onSocketClose);
    release(graceful);
  }
  req.once('end', onEnd);
  res.once('finish', onFinish);
  socket?.once?.('close', onSocketClose);
  req.resume();
  process.nextTick(() => req.resume()); // once Node has noticed that no one listens for 'readable'
}

/**
 * Reads `stream` on, throwing its bytes away; `giveUp()` once more than `limits.maxBytes` came or
 * `limits.timeoutMs` passed. Returns what stops the count (idempotent).
 * @internal
 */
export function dropWithin(stream: Readable, limits: ResolvedDrain, giveUp: () => void): () => void {
  let dropped = 0;
  const timer = setTimeout(giveUp, limits.timeoutMs);
  timer.unref();
  const onData = (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > limits.maxBytes) giveUp();
  };
  stream.on('data', onData);
  return () => {
    clearTimeout(timer);
    stream.off('data', onData);
  };
}

/**
 * Holds back Node's own close of a `Connection: close` socket once the answer is written (the
 * body is still coming). The release closes it: with a FIN when `graceful` (every byte was read),
 * else at once. Nothing is held on a request without a real socket (`inject()`).
 */
function holdClose(socket: SocketLike | null): (graceful: boolean) => void {
  if (typeof socket?.destroySoon !== 'function' || typeof socket.destroy !== 'function') return () => {};
  const nodeDestroySoon = socket.destroySoon;
  socket.destroySoon = () => {};
  return (graceful) => {
    socket.destroySoon = nodeDestroySoon;
    if (socket.destroyed) return;
    if (graceful) nodeDestroySoon.call(socket);
    else socket.destroy!();
  };
}

/** The one internal of a Node request used here: whether it is destroyed on its end. */
interface EndableRequest {
  _readableState?: { autoDestroy?: boolean };
}

/** Requests that asked `Expect: 100-continue` and were not told yet, with what tells them on the first read. */
const continueOnRead = new WeakMap<IncomingMessage, () => void>();

/**
 * Lets `server` answer `Expect: 100-continue` only when a route first reads the body, instead of
 * before any route ran (Node's default with no `checkContinue` listener): a route that refuses
 * the request from its head (a declared length past its limits) answers with no `100 Continue`,
 * and the client never sends the body. Does nothing when the server has a `checkContinue`
 * listener already. @internal
 */
export function deferContinue(server: ContinueServer): void {
  if (deferring.has(server) || server.listenerCount('checkContinue') > 0) return;
  deferring.add(server);
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (req.httpVersionMajor === 1) armContinue(req, res);
    else res.writeContinue(); // HTTP/2's compatibility request: as Node would have
    server.emit('request', req, res);
  });
}
const deferring = new WeakSet<ContinueServer>();

/** An HTTP/1 server (`http`, `https`), as far as {@link deferContinue} uses it. */
export type ContinueServer = Pick<Server, 'listenerCount' | 'on' | 'emit'>;

function armContinue(req: IncomingMessage, res: ServerResponse): void {
  const read = req._read;
  const restore = () => {
    continueOnRead.delete(req);
    req._read = read;
  };
  continueOnRead.set(req, restore);
  req._read = function (this: IncomingMessage, size: number): void {
    restore();
    if (!res.headersSent && !res.writableEnded) res.writeContinue();
    read.call(this, size);
  };
}

/**
 * True when `req` asked `Expect: 100-continue` and was never told to go on: it is never told now
 * (the client then sends no body).
 */
function withholdContinue(req: IncomingMessage): boolean {
  const restore = continueOnRead.get(req);
  restore?.();
  return restore !== undefined;
}

/**
 * A request refused from its head, before any of its body was read (its declared length is past
 * the route's limits). The client that waits for `100 Continue` is never told to send the body;
 * the request stream is ended at once, what comes of its body counted and dropped, so that an
 * answer that waits for the end of the request (Express's default error handler) goes out now,
 * with `Connection: close`. Once it is out, the server ends its side of the connection and keeps
 * reading (and dropping) what the client still sends until the client closes, up to
 * `limits.maxBytes` and `limits.timeoutMs`: closing with bytes unread would make the kernel reset
 * the connection, and a client still sending could lose the answer.
 * @internal
 */
export function refuseUnreadBody(req: IncomingMessage, res: ServerResponse, limits: ResolvedDrain): void {
  withholdContinue(req);
  if (!res.headersSent) res.setHeader('Connection', 'close');
  if (req.complete || req.readableEnded || draining.has(req)) return;
  const state = (req as unknown as EndableRequest)._readableState;
  const socket = (req.socket ?? null) as NodeSocket | null;
  if (typeof state?.autoDestroy !== 'boolean' || !socket || typeof socket.destroySoon !== 'function' || typeof socket.end !== 'function') {
    discardUnreadBody(req, res, limits); // not a Node socket (inject()): read the body through
    return;
  }
  draining.add(req);
  let close = () => {};
  endForReader(req, state, limits.maxBytes, () => close());
  close = closeAfterAnswer(socket, res, limits);
}

/** A Node request's socket, as far as {@link refuseUnreadBody} uses it. */
type NodeSocket = SocketLike & { end?: () => void; writable?: boolean; bytesRead?: number; resume?: () => void };

/**
 * Ends `req` now for whoever reads it, its body unread: its next read ends it, so that its 'end'
 * comes after the reader's listeners (Express's default handler waits for it before it answers).
 * What Node's parser still hands over of the body is counted and dropped: past `maxBytes`, `close()`.
 */
function endForReader(req: IncomingMessage, state: { autoDestroy?: boolean }, maxBytes: number, close: () => void): void {
  req.removeAllListeners('readable');
  req.removeAllListeners('data');
  req.unpipe();
  // Ended before its body, it would destroy its socket on its end (a reset, and the answer lost).
  state.autoDestroy = false;
  const push = req.push.bind(req);
  // A read started now marks the request as consumed: Node would otherwise drop the rest of its
  // body itself once the answer is out, uncounted, whatever its size.
  req._read(0);
  req._read = () => push(null);
  let dropped = 0;
  req.push = (chunk: unknown): boolean => {
    if (chunk === null) return push(null);
    dropped += (chunk as Buffer).length;
    if (dropped > maxBytes) close();
    return true;
  };
}

/**
 * Once the answer is out, ends the server's side of the connection and keeps reading (and
 * dropping) what the client still sends until it closes, within `limits`: past them, or once the
 * client closed, the connection is destroyed. Returns that close (idempotent).
 */
function closeAfterAnswer(socket: NodeSocket, res: ServerResponse, limits: ResolvedDrain): () => void {
  // Node stops reading the connection while a request's body waits for a reader: the body that
  // is now dropped must flow, or the client's writes, and its close, stall behind it.
  socket.resume?.();
  const release = holdClose(socket);
  let ended = false;
  const timer = setTimeout(() => close(), limits.timeoutMs);
  timer.unref();
  // Once the answer is out, a request that its reader ended is let go by Node's parser, which
  // then drops the body uncounted: the connection's own count of bytes is looked at instead.
  const startBytes = socket.bytesRead ?? 0;
  const watch = setInterval(() => {
    if ((socket.bytesRead ?? 0) - startBytes > limits.maxBytes) close();
  }, 10);
  watch.unref();
  const onFinish = () => {
    if (!socket.destroyed && socket.writable !== false) socket.end!(); // the answer, then a FIN; reading goes on
  };
  const onClose = () => close();
  function close(): void {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    clearInterval(watch);
    res.off('finish', onFinish);
    socket.off?.('close', onClose);
    release(false);
  }
  if (res.writableFinished) onFinish();
  else res.once('finish', onFinish);
  socket.once?.('close', onClose);
  return close;
}
