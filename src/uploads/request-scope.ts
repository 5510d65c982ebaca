import type { IncomingMessage, ServerResponse } from 'node:http';
import { openSpan, TRACING_CHANNELS, type OpenSpan } from '../base/channels.js';
import type { TempScope } from '../handles/scope.js';
import type { TempFileManager } from '../manager/manager.js';

/** The part of a request's socket that is used: its `close`, and whether it is gone already. */
interface SocketLike {
  readonly destroyed?: boolean;
  once?(event: 'close', listener: () => void): unknown;
}

/** Every exchange of a connection whose scope is still live, by socket: one `close` listener per connection. */
const bySocket = new WeakMap<SocketLike, Set<RequestScope>>();
/**
 * Where an exchange is found: on its scope (`req.tmp`), never on the request. Express gives each
 * request a prototype of its own (`Object.setPrototypeOf(req, app.request)`), after which every
 * property added to it makes the request a map of its own in the old generation: about 1.1 KB an
 * upload (bench/analyses/uploads.md). Nor in a WeakMap: a long-lived WeakMap's value lives
 * through every collection of the young generation made while its key lives.
 */
const EXCHANGE = Symbol('tempfile-manager.exchange');

type BoundScope = TempScope & { [EXCHANGE]?: RequestScope };

/**
 * The temp scope of one HTTP exchange, a request and its response. The scope's lifetime ends,
 * and everything in it is removed, on the first of:
 *
 * - the response's `close`: it was sent, or its connection was lost while it was being answered;
 * - the connection's `close` while the response waits its turn behind another one (pipelining:
 *   a queued response gets no event of its own when its connection goes);
 * - {@link end}, called by an adapter on an event of its framework (Fastify's `onResponse`,
 *   `onRequestAbort`, `onTimeout`).
 *
 * A request whose connection is gone already when it is bound ends at once. A write still
 * streaming when the scope ends is stopped, and its file removed, by the scope itself; so is
 * one started after (it is refused). Each exchange costs one listener on its response, and each
 * connection one listener, whatever the number of requests made on it.
 * @internal
 */
export class RequestScope {
  /** True once the exchange ended: the scope is removed, or being removed. */
  ended = false;
  #listeners: (() => void)[] | undefined;
  // Dropped when the exchange ends: its scope may outlive it (kept by the application, or promoted
  // and not yet collected), and must keep nothing of the request then.
  #response: ServerResponse | undefined;
  #socket: SocketLike | undefined;
  #onDisposeError: ((error: unknown) => void) | undefined;
  #responseSent = false;
  /** The files its forms received, their bytes, and why a form was refused (for `tracing:tempfile-manager:request`). */
  readonly received: { files: number; bytes: number; refused?: string } = { files: 0, bytes: 0 };
  /** The exchange's span, when the request channel has a subscriber. */
  span: OpenSpan<typeof TRACING_CHANNELS.request> | undefined;

  constructor(
    readonly scope: TempScope,
    response: ServerResponse,
    socket: SocketLike | undefined,
    onDisposeError: (error: unknown) => void,
  ) {
    this.#response = response;
    this.#socket = socket;
    this.#onDisposeError = onDisposeError;
  }

  /** The exchange's response; undefined once the exchange ended. */
  get response(): ServerResponse | undefined {
    return this.#response;
  }

  /** Whether the response was sent to its end (as it was when the exchange ended, once it did). */
  get responseSent(): boolean {
    return this.#response ? this.#response.writableFinished : this.#responseSent;
  }

  /** Ends the exchange: calls the `onEnd` listeners, then removes the scope. Idempotent. */
  readonly end = (): void => {
    const response = this.#response;
    const onDisposeError = this.#onDisposeError;
    if (this.ended || !response || !onDisposeError) return;
    this.ended = true;
    response.off('close', this.end);
    if (this.#socket) bySocket.get(this.#socket)?.delete(this);
    const listeners = this.#listeners;
    this.#listeners = undefined;
    for (const listener of listeners ?? []) {
      try {
        listener();
      } catch (error) {
        onDisposeError(error); // never in the way of the removal, nor thrown from a 'close' listener
      }
    }
    this.#responseSent = response.writableFinished;
    this.span?.end({ status: response.statusCode, ...this.received, clientGone: !this.#responseSent });
    this.span = undefined;
    this.#response = undefined;
    this.#socket = undefined;
    this.#onDisposeError = undefined;
    this.scope.remove().catch(onDisposeError);
  };

  /**
   * Runs `fn`, the handling of the exchange, inside its span: the stores an APM tool bound to
   * `tracing:tempfile-manager:request:start` are entered. Without a subscriber, calls `fn`.
   */
  enter<R>(fn: () => R): R {
    return this.span ? this.span.enter(fn) : fn();
  }

  /**
   * Calls `listener` once, when the exchange ends, before its scope is removed (a form still
   * being received is failed with the right error, not with the scope's). Returns a function
   * that unsubscribes it.
   */
  onEnd(listener: () => void): () => void {
    if (this.ended) {
      listener();
      return () => {};
    }
    (this.#listeners ??= []).push(listener);
    return () => {
      const at = this.#listeners?.indexOf(listener) ?? -1;
      if (at >= 0) this.#listeners!.splice(at, 1);
    };
  }
}

/**
 * Gives `request` a new scope of `manager`, tied to the exchange as {@link RequestScope} says.
 * `onDisposeError` gets a failure to remove it; it never reaches the response.
 * @internal
 */
export function bindRequestScope(
  manager: TempFileManager,
  request: IncomingMessage,
  response: ServerResponse,
  onDisposeError: (error: unknown) => void,
  framework: 'express' | 'fastify',
): RequestScope {
  const scope = manager.scope();
  // HTTP/2's compatibility socket is the whole session's: its stream's response says when it ends.
  const raw = (request.httpVersionMajor === 2 ? undefined : request.socket) as SocketLike | null | undefined;
  const socket = raw && typeof raw.once === 'function' ? raw : undefined;
  const exchange = new RequestScope(scope, response, socket, onDisposeError);
  Object.defineProperty(scope, EXCHANGE, { value: exchange });
  exchange.span = openSpan(TRACING_CHANNELS.request, () => ({ root: manager.root, framework, method: request.method ?? '' }));
  if (socket?.destroyed === true || response.destroyed) {
    exchange.end(); // the client is gone already: nothing of this request may stay
    return exchange;
  }
  response.once('close', exchange.end);
  if (socket) (bySocket.get(socket) ?? watchConnection(socket)).add(exchange);
  return exchange;
}

/**
 * The connection's set of live exchanges, each ended when it closes. Apart from
 * {@link bindRequestScope}: a closure made there would keep that function's context, and with
 * it the connection's first request (its fields, its files, its response), for as long as a
 * keep-alive connection stays open.
 */
function watchConnection(socket: SocketLike): Set<RequestScope> {
  const peers = new Set<RequestScope>();
  bySocket.set(socket, peers);
  socket.once!('close', () => {
    for (const peer of [...peers]) peer.end();
  });
  return peers;
}

/** The exchange `scope` was made for by {@link bindRequestScope}, if any. @internal */
export function exchangeOf(scope: TempScope): RequestScope | undefined {
  return (scope as BoundScope)[EXCHANGE];
}
