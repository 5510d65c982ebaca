import { logger } from '../base/log.js';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { forClientAnswer, InvalidOptionError } from '../base/errors.js';
import type { TempFileManager } from '../manager/manager.js';
import type { TempScope } from '../handles/scope.js';
import type { HandoffStore } from '../base/stores.js';
import type { HandoffTicket } from '../handoff/ticket.js';
import { answerRoute, confirmRoute, PRESIGN_PATHS, resolveConfirmRoute, resolvePresignRoutes, type ConfirmRouteOptions, type PresignRoutesOptions } from '../uploads/presign-routes.js';
import { nodeBody, receiveUpload } from '../uploads/multipart.js';
import { loadPeer } from '../base/peer.js';
import { ownOptions } from '../base/validators.js';
import { bindRequestScope, exchangeOf, type RequestScope } from '../uploads/request-scope.js';
import { deferContinue, discardUnreadBody, refuseUnreadBody, type DrainOptions, type ResolvedDrain } from '../uploads/unread-body.js';
import {
  declaredLengthRefusal,
  resolveScopeOptions,
  resolveUploadOptions,
  type HandedOffUpload,
  type UploadedFile,
  type UploadFields,
  type UploadFieldSpec,
  type UploadOptions,
} from '../uploads/upload-options.js';

export type {
  HandedOffUpload,
  UploadedFile,
  UploadedFileInfo,
  UploadFieldSpec,
  UploadFields,
  UploadOptions,
  UploadProgress,
} from '../uploads/upload-options.js';
export type { DrainOptions } from '../uploads/unread-body.js';
export type { ConfirmRouteOptions, DeclaredFile, PresignRoutesOptions, PresignStore } from '../uploads/presign-routes.js';

/** What `request.saveUploads()` resolves to; which of `file` and `files` is set follows the options. */
export interface SavedUploads<Files = undefined, File = undefined> {
  /** The file of `{ field }`. */
  readonly file: File;
  /** The files of `{ array }` (an array) or `{ fields }` (arrays by field name). */
  readonly files: Files;
  /** The text fields, in a null-prototype object. */
  readonly fields: UploadFields;
  /** With `{ store, ttlMs }`: the files handed straight to the store, in order of arrival (else empty). */
  readonly handedOff: readonly HandedOffUpload[];
}

/**
 * `request.saveUploads(options)`: receives the request's multipart form with the form reader of
 * `upload()`, each file streamed to a temp file of `request.tmp`.
 */
export interface SaveUploads {
  (options: UploadOptions & { readonly store: HandoffStore }): Promise<SavedUploads>;
  (options: UploadOptions & { readonly field: string }): Promise<SavedUploads<undefined, UploadedFile>>;
  (options: UploadOptions & { readonly array: string }): Promise<SavedUploads<UploadedFile[]>>;
  (options: UploadOptions & { readonly fields: readonly UploadFieldSpec[] }): Promise<SavedUploads<Record<string, UploadedFile[]>>>;
  (options?: UploadOptions): Promise<SavedUploads>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * This request's temp scope, removed with everything in it on the first of: the response
     * sent, the client gone (its connection closed, before, during or after its body), the
     * request aborted or timed out.
     */
    tmp: TempScope;
    /**
     * Receives the multipart form in one call (`@fastify/multipart` lets the body through): the
     * files go to temp files of `request.tmp`, removed after the response unless kept or handed
     * off. Every failure is a `TempFileError` with `statusCode` (413, 415, 422, 400, 507, 503,
     * 499); a server's failure (5xx) has a message for the client, its detail (a path, a system
     * call's text) the error's `cause`, which Fastify's logger writes (docs/uploads.md). The body
     * is read once: a later call resolves (or rejects) as the first did, whatever its options, as
     * `@fastify/multipart`'s `saveRequestFiles()` does. A body read before the call (by
     * `@fastify/multipart` registered with `attachFieldsToBody`) is an `InvalidOptionError` (500)
     * naming that option.
     *
     * @example
     * app.post('/videos', async (request, reply) => {
     *   const { file } = await request.saveUploads({ field: 'video', maxBytes: 2 ** 31, accept: ['video/*'] });
     *   return reply.code(202).send(await file.handoff({ ttlMs: 3_600_000 }));
     * });
     */
    saveUploads: SaveUploads;
    /** The ticket of the upload the `confirmUpload({ store, ttlMs })` pre-handler confirmed. */
    ticket?: HandoffTicket | undefined;
  }
}

const log = logger('fastify');

/** Options of the Fastify plugin. */
export interface TempFilesPluginOptions {
  /** The manager that makes each request's scope. */
  readonly manager: TempFileManager;
  /**
   * Called when removing a request's temp files fails; the reply is never affected.
   * @default `request.log.error`
   */
  readonly onDisposeError?: (error: unknown, request: FastifyRequest) => void;
  /**
   * When a reply is sent before its request's body was read to the end (a refused upload), the
   * rest is read and thrown away within these bounds, then the connection is closed.
   * @default { maxBytes: 134217728, timeoutMs: 10000 }
   */
  readonly drain?: DrainOptions;
}

const plugin: FastifyPluginAsync<TempFilesPluginOptions> = async (app: FastifyInstance, options) => {
  const manager = ownOptions(options).manager as TempFileManager; // checked on the next line
  const { drain, ...given } = resolveScopeOptions(manager, options, 'tempfile-manager/fastify');
  const onDisposeError =
    given.onDisposeError ?? ((error: unknown, request: FastifyRequest) => request.log.error({ err: error }, 'removing temp files failed'));
  if (!app.hasRequestDecorator('parts')) {
    const { default: multipart } = await loadPeer('@fastify/multipart', 'tempfile-manager/fastify', () => import('@fastify/multipart'));
    await app.register(multipart);
  }
  // `Expect: 100-continue` is answered when a route first reads the body, not before any route
  // ran: an upload refused from its head (413) is never sent.
  if (typeof app.server?.listenerCount === 'function') deferContinue(app.server);
  app.decorateRequest('tmp', null as unknown as TempScope);
  app.decorateRequest('saveUploads', function saveUploads(this: FastifyRequest, uploadOptions?: UploadOptions) {
    // A body is read once: a second call answers what the first one got, as @fastify/multipart's saveRequestFiles() does.
    let saved = savedForms.get(this);
    if (saved === undefined) {
      saved = answerable(() => receiveForm(this, uploadOptions, drain));
      savedForms.set(this, saved);
    }
    return saved;
  } as SaveUploads);
  app.addHook('onRequest', (request, reply, next) => {
    let exchange: RequestScope;
    try {
      exchange = bindRequestScope(manager, request.raw, reply.raw, (error: unknown) => {
        log('removing a request scope failed: %O', error);
        onDisposeError(error, request);
      }, 'fastify');
    } catch (error) {
      next(forClientAnswer(error as Error)); // the manager closed: a 503 whose message is for the client
      return;
    }
    request.tmp = exchange.scope;
    exchange.enter(next);
  });
  addEndHooks(app, drain);
};

/**
 * An answer sent before the body was read to its end (a refused upload) still reaches the client;
 * the request's scope ends on its response's or its connection's close (request-scope.ts), and on
 * Fastify's own ends of a request, whichever comes first.
 */
function addEndHooks(app: FastifyInstance, drain: ResolvedDrain): void {
  const end = (request: FastifyRequest) => exchangeOfRequest(request)?.end();
  app.addHook('onSend', (request, reply, payload, next) => {
    discardUnreadBody(request.raw, reply.raw, drain);
    next(null, payload);
  });
  app.addHook('onResponse', (request, _reply, next) => {
    end(request);
    next();
  });
  app.addHook('onRequestAbort', (request, next) => {
    end(request);
    next();
  });
  app.addHook('onTimeout', (request, _reply, next) => {
    end(request);
    next();
  });
}

/** The exchange of the request's scope; none where the scope could not be made (the manager closed). */
function exchangeOfRequest(request: FastifyRequest): RequestScope | undefined {
  const scope = request.tmp as TempScope | null;
  return scope === null ? undefined : exchangeOf(scope);
}

/**
 * `work`'s result, or its failure as Fastify's error handler may send it to the client: a server
 * failure (a 5xx) with a message of its status alone, the original as its `cause` for the log
 * (`forClientAnswer`); a client's refusal as it is.
 */
async function answerable<T>(work: () => T | PromiseLike<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw forClientAnswer(error);
  }
}

/** The form each request's first `saveUploads()` received (or its failure). */
const savedForms = new WeakMap<FastifyRequest, Promise<SavedUploads<unknown, unknown>>>();

async function receiveForm(
  request: FastifyRequest,
  options: UploadOptions | undefined,
  drain: ResolvedDrain,
): Promise<SavedUploads<unknown, unknown>> {
  const spec = resolveUploadOptions(options, 'request.saveUploads()', [], drain);
  const raw = request.raw;
  const exchange = exchangeOfRequest(request);
  const response = exchange?.response;
  // A declared length no form within the limits can have: refused from the head, the body unread.
  const tooLarge = declaredLengthRefusal(raw.headers, spec);
  if (tooLarge) {
    if (response) refuseUnreadBody(raw, response, spec.drain);
    throw tooLarge;
  }
  // A form whose body was read before this call (by @fastify/multipart registered with
  // attachFieldsToBody, or by a hook of the app's): nothing is left to read, and the client is not
  // at fault. Read on, it would look cut off (a 400 blaming the client).
  if (raw.readableEnded && /^multipart\/form-data\b/i.test(raw.headers['content-type'] ?? '')) {
    throw new InvalidOptionError(
      'attachFieldsToBody',
      'request.saveUploads(): the body was read before the route called it (@fastify/multipart registered with attachFieldsToBody, or another reader): ' +
        'register @fastify/multipart without attachFieldsToBody, or let tempfile-manager/fastify register it.',
    );
  }
  // The body is read by the form reader of upload() and handleUpload() (busboy), not through
  // @fastify/multipart's parts(), whose parser decodes a part's parameters as UTF-8 before they
  // reach a route (a Latin-1 file name would arrive as U+FFFD). @fastify/multipart's content-type
  // parser leaves the body unread for it.
  const refuse = () => {
    if (raw.complete) return;
    if (response && !response.headersSent) response.setHeader('Connection', 'close');
    if (response) discardUnreadBody(raw, response, spec.drain);
  };
  const { handedOff, ...upload } = await receiveUpload(nodeBody(raw, refuse, exchange), request.tmp, spec);
  return { ...upload, handedOff: handedOff ?? [] };
}

/**
 * The Fastify plugin: every request gets `request.tmp`, a `TempScope` removed on the first of the
 * response sent, the client gone (its connection closed), the request aborted or timed out; and
 * `request.saveUploads(options)`, a multipart upload in one call. Registers `@fastify/multipart`
 * unless it is registered already.
 *
 * **Ownership:** each request's `request.tmp` is a new scope of `manager` and owns what the
 * request makes in it (the files of `saveUploads()` too), until the first of: the response sent,
 * the client gone, the request aborted or timed out. Then it is removed with everything in it
 * but what was kept or handed off; a failure to remove it goes to `onDisposeError`, never to the
 * reply. A form refused by `saveUploads()` has its files removed before the promise rejects
 * (one that cannot be removed stays in the scope).
 *
 * **Security:** the files are named by the library: the name the client sent
 * (`file.originalName`) is untrusted and never a path (docs/uploads.md). `Expect: 100-continue`
 * is answered on a route's first read, so that a declared `Content-Length` past the limits is
 * refused from the request's head (docs/security.md, "Threats, one by one": a client that
 * declares a huge body).
 *
 * `request.saveUploads()` reads the form as the Express adapter's `upload()` does (busboy: a
 * Latin-1 file name arrives whole, a `__proto__` field is a field like any other), and rejects
 * with the errors `upload()` passes to `next(err)`, and with an {@link InvalidOptionError} for
 * bad options (checked at each call). A server's failure (a 5xx: 507, 503, 500) keeps its
 * class, `code`, `statusCode` and fields, but its message is only a sentence for the client, as
 * Fastify's default error handler sends it beside the status (`the server has no room for this upload now; try again later`); the original, with its path, is
 * its `cause`, which Fastify's logger writes with it. So is a request's 503 when `manager` was
 * closed.
 *
 * Registration fails (the plugin's promise rejects) with the errors below, or with what
 * registering `@fastify/multipart` throws.
 *
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: no `{ manager }`, one without a
 * `scope()` method, or an `onDisposeError` that is not a function.
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `drain` is not
 * `{ maxBytes, timeoutMs }` of numbers of at least 0 (`timeoutMs` at most 2147483647).
 * @throws {@link MissingPeerError} `ERR_TEMPFILE_MISSING_PEER`: `@fastify/multipart` is not
 * installed and not registered already (`npm install @fastify/multipart`).
 *
 * @example
 * import tempFiles from 'tempfile-manager/fastify';
 * await app.register(tempFiles, { manager: mgr });
 * app.post('/videos', async (request, reply) => {
 *   const { file } = await request.saveUploads({ field: 'video', maxBytes: 2 ** 31, accept: ['video/*'] });
 *   return reply.code(202).send(await file.handoff({ ttlMs: 3_600_000 }));
 * });
 */
export const tempFiles = fp(plugin, { fastify: '5.x', name: 'tempfile-manager' });
export default tempFiles;

/** Options of the {@link presignUploads} plugin: the presign routes' options, `meta` given the Fastify request. */
export type FastifyPresignOptions = PresignRoutesOptions<FastifyRequest>;

/** What Fastify itself reads from a plugin's options, left out of the check of the routes' own. */
const REGISTER_OPTIONS: ReadonlySet<string> = new Set(['prefix', 'logLevel', 'logSerializers']);

/**
 * A Fastify plugin of the routes `@uppy/aws-s3` calls on a Companion server, so that a browser
 * uploads straight to the bucket: register it at the prefix Uppy's `companionEndpoint` names
 * (`app.register(presignUploads, { prefix: '/uploads', store, maxBytes })`). Its routes and
 * answers are those of the Express adapter's `presignUploads()`; a refusal is thrown with its
 * `statusCode` to Fastify's error handler, which answers `{ statusCode, code, error, message }`;
 * a store's failure (`StoreError`, 503) with a message for the client, its detail (the endpoint,
 * the system's text) the error's `cause`. It needs no `tempFiles` plugin.
 *
 * **Ownership:** it owns nothing; an upload it presigns is the store's, swept once its presign
 * expired if never confirmed. **Security:** every key is the store's, random, one per presign;
 * what the browser declares is untrusted. Register it behind your authentication.
 *
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`, rejecting the registration: an
 * unknown option, a `store` without the presign methods, a bad `maxBytes` (1 to 5 GiB), `accept`,
 * `ttlMs` (1000 to 7 days), `suffix` or `meta`.
 *
 * @example
 * import { confirmUpload, presignUploads } from 'tempfile-manager/fastify';
 * await app.register(presignUploads, { prefix: '/uploads', store, maxBytes: 20 * 1024 ** 2 });
 * app.post('/uploads/confirm', { preHandler: confirmUpload({ store, ttlMs: 3_600_000 }) }, async (request, reply) => {
 *   return reply.code(202).send(await queue.add('thumbnail', { ticket: request.ticket }));
 * });
 */
export const presignUploads: FastifyPluginAsync<FastifyPresignOptions> = async (app: FastifyInstance, options) => {
  const own = Object.fromEntries(Object.entries(options ?? {}).filter(([name]) => !REGISTER_OPTIONS.has(name))) as unknown as FastifyPresignOptions;
  const routes = resolvePresignRoutes(own, 'presignUploads');
  for (const [method, url, name] of PRESIGN_PATHS) {
    app.route<{ Params: { uploadId?: string; partNumber?: string } }>({
      method,
      url,
      handler: async (request, reply) => {
        const route = { name, uploadId: request.params.uploadId ?? '', partNumber: request.params.partNumber ?? '' };
        const body = await answerable(() => answerRoute(routes, route, { request, method, query: request.query, body: () => request.body }));
        reply.header('cache-control', 'no-store');
        return body;
      },
    });
  }
};

/**
 * A Fastify pre-handler that confirms a browser's upload: reads `{ key }` from the JSON body, has
 * the store judge the object (`S3Store.confirmUpload`) and sets `request.ticket`. A refusal is
 * thrown, its object removed first, with the statuses of the Express adapter's `confirmUpload()`;
 * a server's failure (a 5xx) with a message for the client, its detail the error's `cause`.
 *
 * **Ownership:** the ticket is the route's to hand on. **Security:** only the key is read of what
 * the browser sends; size and type are the object's.
 *
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`, when it is made: an unknown
 * option, a `store` without the presign methods, no `ttlMs` or a bad one, a bad `verify` or
 * `verifyTimeoutMs`.
 *
 * @example
 * import { confirmUpload } from 'tempfile-manager/fastify';
 * app.post('/uploads/confirm', { preHandler: confirmUpload({ store, ttlMs: 3_600_000 }) }, async (request) => {
 *   return queue.add('thumbnail', { ticket: request.ticket });
 * });
 */
export function confirmUpload(options: ConfirmRouteOptions): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const route = resolveConfirmRoute(options, 'confirmUpload()');
  return async (request: FastifyRequest): Promise<void> => {
    request.ticket = await answerable(() => confirmRoute(route, request.body));
  };
}
