import { ownOptions } from '../options.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidOptionError } from '../errors.js';
import { describe } from '../names.js';

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
  const o = ownOptions(value as DrainOptions);
  const valid = (n: unknown, max: number) => n === undefined || (typeof n === 'number' && n >= 0 && n <= max && !Number.isNaN(n));
  const accepted = '{ maxBytes, timeoutMs }, numbers of at least 0 (timeoutMs at most 2147483647)';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError('drain', `${where}: \`drain\` must be ${accepted}, got ${describe(value)}.`);
  }
  for (const [key, max] of [['maxBytes', Infinity], ['timeoutMs', 2 ** 31 - 1]] as const) {
    if (!valid(o[key], max)) {
      throw new InvalidOptionError('drain', `${where}: \`drain\` must be ${accepted}, got drain.${key} ${describe(o[key])}.`);
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
  if (req.complete || req.readableEnded || draining.has(req)) return;
  const socket = (req.socket ?? null) as SocketLike | null;
  if (socket?.destroyed) return;
  draining.add(req);
  const holdsSocket = typeof socket?.destroySoon === 'function' && typeof socket.destroy === 'function';
  const nodeDestroySoon = holdsSocket ? socket!.destroySoon! : undefined;
  if (holdsSocket) socket!.destroySoon = () => {}; // Node's close after a `Connection: close` answer waits for the body
  let discarded = 0;
  let bodyDone = false;
  let answered = res.writableFinished;
  const timer = setTimeout(() => close(false), limits.timeoutMs);
  timer.unref();

  const onData = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > limits.maxBytes) close(false);
  };
  const onEnd = () => {
    bodyDone = true;
    clearTimeout(timer); // the bounds are the body's; the answer may take its time
    if (answered) close(true);
  };
  const onFinish = () => {
    answered = true;
    if (bodyDone) close(true);
  };
  const onSocketClose = () => close(true); // the client went away: nothing left to do
  function close(graceful: boolean): void {
    clearTimeout(timer);
    req.off('data', onData).off('end', onEnd);
    res.off('finish', onFinish);
    socket?.off?.('close', onSocketClose);
    if (!holdsSocket) return;
    socket!.destroySoon = nodeDestroySoon!;
    if (socket!.destroyed) return;
    if (graceful) socket!.destroySoon!(); // every byte was read: a FIN, not a reset
    else socket!.destroy!();
  }

  // A reader that gave up (a write() of the request itself) may still listen for 'readable',
  // which would keep the request paused whatever resume() says.
  req.removeAllListeners('readable');
  req.unpipe();
  req.on('data', onData).once('end', onEnd);
  res.once('finish', onFinish);
  socket?.once?.('close', onSocketClose);
  req.resume();
  process.nextTick(() => req.resume()); // once Node has noticed that no one listens for 'readable'
}
