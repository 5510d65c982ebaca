import type { IncomingMessage, ServerResponse } from 'node:http';
import { logger } from '../base/log.js';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { TempFileManager } from '../manager/manager.js';
import type { TempScope } from '../handles/scope.js';
import { AbortedError, InvalidOptionError, isTempFileError, MalformedUploadError } from '../base/errors.js';
import type { HandoffTicket } from '../handoff/ticket.js';
import { describe } from '../base/names.js';
import { ownOptions, validateOneOf, type NoneLeftOut } from '../base/validators.js';
import { nodeBody, receiveUpload, type FieldsRead } from '../uploads/multipart.js';
import { bindRequestScope, exchangeOf, type RequestScope } from '../uploads/request-scope.js';
import { sharedManager } from './shared-manager.js';
import { deferContinue as deferServerContinue, DEFAULT_DRAIN, discardUnreadBody, refuseUnreadBody, type ContinueServer, type DrainOptions, type ResolvedDrain } from '../uploads/unread-body.js';
import { answerRoute, confirmRoute, matchRoute, MAX_JSON_BYTES, resolveConfirmRoute, resolvePresignRoutes, type ConfirmRouteOptions, type PresignRoutesOptions } from '../uploads/presign-routes.js';
import { checkManager, declaredLengthRefusal, refusalBody, resolveScopeOptions, resolveUploadOptions, type HandedOffUpload, type UploadedFile, type UploadFields, type UploadOptions } from '../uploads/upload-options.js';

export type {
  HandedOffUpload,
  UploadedFile,
  UploadedFileInfo,
  UploadFieldSpec,
  UploadFields,
  UploadOptions,
  UploadProgress,
} from '../uploads/upload-options.js';
export type { ContinueServer, DrainOptions } from '../uploads/unread-body.js';
export type { ConfirmRouteOptions, DeclaredFile, PresignRoutesOptions, PresignStore } from '../uploads/presign-routes.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /**
       * This request's temp scope: everything in it is removed on the first of the response sent
       * and the client gone (its connection closed, even while a pipelined response waits its turn).
       */
      tmp: TempScope;
      /** The file of `upload({ field })`, a temp file of the request's scope. */
      file?: UploadedFile | undefined;
      /**
       * The files of `upload({ array })` (an array) or `upload({ fields })` (arrays by field
       * name, in a null-prototype object).
       */
      files?: UploadedFile[] | Record<string, UploadedFile[]> | undefined;
      /** The files of `upload({ store, ttlMs })`, handed straight to the store, in order of arrival. */
      handedOff?: HandedOffUpload[] | undefined;
      /** The ticket of the upload `confirmUpload({ store, ttlMs })` confirmed. */
      ticket?: HandoffTicket | undefined;
    }
  }
}

const log = logger('express');

/** Options of {@link tempScope}. */
export interface ExpressTempScopeOptions {
  /**
   * Called when removing a request's temp files fails. The response is never affected.
   * @default a process warning (`process.emitWarning`) and a debug log line
   */
  readonly onDisposeError?: (error: unknown, req: Request) => void;
  /**
   * When a response is sent before its request's body was read to the end (a refused upload), the
   * rest is read and thrown away within these bounds, then the connection is closed.
   * @default { maxBytes: 134217728, timeoutMs: 10000 }
   */
  readonly drain?: DrainOptions;
}

/** Options of {@link upload}: the upload options, and the manager when no `tempScope()` runs before it. */
export interface ExpressUploadOptions extends UploadOptions {
  /**
   * The manager whose scope holds the files, when no {@link tempScope} middleware ran before.
   * @default the request's `req.tmp` if there is one, else one manager shared by the process, with the default root
   */
  readonly manager?: TempFileManager;
  /**
   * Who answers a client's refused upload (a 4xx: a limit passed, a refused type, a malformed
   * form). `'answer'`: `upload()` itself, with the status and a short JSON body
   * `{ statusCode, code, error, message }` (Fastify's shape), no stack and no log line.
   * `'next'`: `next(err)`, for an error middleware of yours (Express's default one sends the
   * stack in development and logs it). Failures of the server (5xx) always go to `next(err)`.
   * @default 'answer'
   */
  readonly refusals?: 'answer' | 'next';
}

/** The names of `upload()`'s options beside the upload options: with those, every key of {@link ExpressUploadOptions} (`NoneLeftOut`). */
const EXPRESS_UPLOAD_OPTION_KEYS = ['manager', 'refusals'] as const satisfies readonly Exclude<keyof ExpressUploadOptions, keyof UploadOptions>[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type ExpressUploadOptionsListed = NoneLeftOut<Exclude<keyof ExpressUploadOptions, keyof UploadOptions | (typeof EXPRESS_UPLOAD_OPTION_KEYS)[number]>>;

/**
 * Express middleware: gives every request `req.tmp`, a `TempScope` removed with everything in
 * it when the response has been sent or the client went away.
 *
 * **Ownership:** each request's `req.tmp` is a new scope of `manager` and owns what the request
 * makes in it, until the first of: the response sent, its connection closed (even while a
 * pipelined response waits its turn). Then it is removed with everything in it but what was
 * kept or handed off. A failure to remove it goes to `onDisposeError`, never to the response.
 * The middleware never throws: a scope it cannot make (a {@link ManagerClosedError} once the
 * manager was closed) goes to `next(err)`.
 *
 * **Security:** a response sent before its request's body was read to the end (a refused
 * upload) still reaches the client: the rest of the body is read and thrown away within `drain`,
 * then the connection is closed (docs/security.md, "Threats, one by one": a client that declares
 * a huge body).
 *
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `options.drain` is not
 * `{ maxBytes, timeoutMs }` of numbers of at least 0 (`timeoutMs` at most 2147483647); thrown
 * here, when the middleware is made.
 *
 * @example
 * import { tempScope } from 'tempfile-manager/express';
 * app.use(tempScope(mgr));
 * app.post('/upload', async (req, res) => {
 *   const file = await req.tmp.write(req, { maxBytes: 100 * 1024 ** 2 });
 *   res.json({ size: file.size });
 * });
 */
export function tempScope(manager: TempFileManager, options: ExpressTempScopeOptions = {}): RequestHandler {
  const { onDisposeError = warn, drain } = resolveScopeOptions(manager, options, 'tempScope()');
  return (req: Request, res: Response, next: NextFunction): void => enterScope(req, res, next, { manager, drain, onDisposeError }, () => next());
}

/**
 * Express middleware that receives a `multipart/form-data` upload, multer's way: each file
 * streamed to a temp file of the request's scope in constant memory (`req.file`, `req.files`),
 * the text fields in `req.body` (a null-prototype object). The files are removed when the
 * response ends, unless kept (`file.keep()`) or handed off (`file.handoff()`).
 *
 * A client's refused upload is answered by the middleware itself (`refusals: 'answer'`, the
 * default): the status and a short JSON body, `{ statusCode, code, error, message }` as Fastify
 * answers, with no stack and no log line: 413 for a size or count limit, 415 for a refused type,
 * 400 for a malformed or truncated body; a client gone (499) gets nothing. The answer goes out at
 * once, even while the client is still sending (a chunked body has no length to refuse from its
 * head): the rest of the body is read and thrown away within `drain`, then the connection is
 * closed. With `refusals: 'next'` those go to `next(err)` as well, for an error middleware of yours.
 *
 * The middleware never throws. What reaches `next(err)`: a {@link QuotaExceededError},
 * {@link NoSpaceError} or {@link DiskQuotaError} (507), a {@link ManagerClosedError} (503) once
 * the manager was closed, any other error of `write()` that is the server's, and, on the first
 * request that needs it, what making the shared manager throws; with `refusals: 'next'`, also an
 * {@link UploadLimitError} or a {@link SizeLimitError} (413), a {@link TypeNotAcceptedError}
 * (415), a {@link MalformedUploadError} (400) and an {@link AbortedError} (499). Each is a
 * `TempFileError` with `statusCode`, so that Express's default error handler answers it.
 *
 * **Ownership:** each file is a temp file of the request's scope: `req.tmp`, or, when no
 * {@link tempScope} ran before, a scope of `manager` (else of one manager shared by the process,
 * whose session its exit hook removes) bound to the request the same way. The files are removed
 * when the response ends, unless kept or handed off. A refused form's files, those already
 * written included, are removed before it is answered or `next(err)` is called (one that cannot be removed stays
 * in the scope, removed when the response ends).
 *
 * **Security:** every file is named by the library: the name the client sent
 * (`file.originalName`) is untrusted and never a path (docs/uploads.md); with `accept` the type is
 * found from the bytes. Limits are enforced as the bytes arrive, and a declared `Content-Length`
 * past what the route's limits allow is refused from the request's head (docs/security.md,
 * "Threats, one by one": a client that declares a huge body).
 *
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: thrown here, when the
 * middleware is made: an unknown option, more than one of `field`, `array` and `fields`,
 * `maxCount` without `array`, a field name that is not a non-empty string, a limit that is not a
 * number of at least 0, a bad `accept`, `hash`, `onProgress` or `drain`, a `refusals` other than
 * `'answer'` and `'next'`, or a `manager` that is not a TempFileManager (`err.option` names it).
 *
 * @example
 * import { upload } from 'tempfile-manager/express';
 * app.post('/videos', upload({ field: 'video', maxBytes: 2 ** 31, accept: ['video/*'] }), async (req, res) => {
 *   if (!req.file) throw new Error('no file'); // never: upload({ field }) answers 400 without one
 *   res.status(202).json(await req.file.handoff({ ttlMs: 3_600_000 }));
 * });
 */
export function upload(options: ExpressUploadOptions = {}): RequestHandler {
  const spec = resolveUploadOptions(options, 'upload()', EXPRESS_UPLOAD_OPTION_KEYS);
  const own = ownOptions(options);
  checkManager(own.manager, 'upload()', false);
  const answer = refusalsOption(own.refusals) === 'answer';
  const receive = (req: Request, res: Response, next: NextFunction, scope: TempScope): void => {
    // A declared length no form within the limits can have: refused from the head, the body unread.
    const tooLarge = declaredLengthRefusal(req.headers, spec);
    if (tooLarge) {
      refuseUnreadBody(req, res, spec.drain);
      failRoute(res, next, tooLarge, answer);
      return;
    }
    const read: FieldsRead = {};
    receiveUpload(nodeBody(req, () => refuseBody(req, res, spec.drain), exchangeOf(scope)), scope, spec, read).then(
      ({ file, files, fields, handedOff }) => {
        req.body = fields satisfies UploadFields;
        if (handedOff) req.handedOff = handedOff;
        else if (spec.rule.kind === 'single') req.file = file;
        else req.files = files;
        next();
      },
      (error: unknown) => {
        log('upload failed: %O', error);
        if (read.fields) req.body = read.fields; // the fields read before the refusal, as multer keeps them
        failRoute(res, next, error, answer);
      },
    );
  };
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.tmp) receive(req, res, next, req.tmp);
    else enterScope(req, res, next, { manager: own.manager ?? sharedManager(), drain: spec.drain, onDisposeError: warn }, (scope) => receive(req, res, next, scope));
  };
}

/**
 * The request's body will not be read to its end: the request ends now for the app, so that any
 * answer (Express's default error handler waits for the end of the body) goes out at once; what
 * the client still sends is dropped within `drain`, and the connection is closed after the answer.
 */
function refuseBody(req: IncomingMessage, res: ServerResponse, drain: ResolvedDrain): void {
  if (req.complete) return;
  refuseUnreadBody(req, res, drain);
}

/** Validates `refusals` of {@link upload}. */
function refusalsOption(value: unknown): 'answer' | 'next' {
  if (value === undefined) return 'answer';
  const accepted = "'answer' (upload() answers a client's 4xx itself) or 'next' (it goes to next(err))";
  return validateOneOf(value, 'refusals', ['answer', 'next'] as const, accepted, { where: 'upload()' });
}

/**
 * Answers a client's refused upload (an exposed 4xx) with its status and a short JSON body, no
 * stack; false, and nothing sent, for anything else or once an answer has started.
 */
function answerRefusal(res: ServerResponse, error: unknown): boolean {
  if (!isTempFileError(error) || !error.expose || res.headersSent) return false;
  if (res.destroyed) return true; // the client is gone: nobody reads an answer, nothing to log
  const body = JSON.stringify(refusalBody(error));
  res.statusCode = error.statusCode;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
  return true;
}

/** Where a request's scope is made, and what gets a failure to remove it. */
interface ScopeTerms {
  readonly manager: TempFileManager;
  readonly drain: ResolvedDrain;
  readonly onDisposeError: (error: unknown, req: Request) => void;
}

/**
 * Gives the request its scope (`req.tmp`) and runs `handle` in the exchange's span; a scope that
 * cannot be made (the manager closed) goes to `next(err)`.
 */
function enterScope(req: Request, res: Response, next: NextFunction, { manager, drain, onDisposeError }: ScopeTerms, handle: (scope: TempScope) => void): void {
  let exchange: RequestScope;
  try {
    // Removed once the response is sent or the connection is gone, whichever comes first.
    exchange = bindRequestScope(manager, req, res, (error: unknown) => onDisposeError(error, req), 'express');
  } catch (error) {
    next(error);
    return;
  }
  const { scope } = exchange;
  req.tmp = scope;
  // An answer sent before the body was read (a refused upload): the client must still get it.
  res.once('prefinish', () => discardUnreadBody(req, res, drain));
  // A write() of the request itself that gives up: the rest of the body is dropped within bounds,
  // even when the answer waits for the end of the body (Express's default error handler does).
  scope.watchWriteFailures((source) => {
    if (source === req) refuseBody(req, res, drain);
  });
  exchange.enter(() => handle(scope));
}

/**
 * Makes `server` answer `Expect: 100-continue` when a route first reads the request's body,
 * instead of before any route ran (Node's default): {@link upload} then refuses a form whose
 * declared length is past its limits with a 413 and no `100 Continue`, and the client (curl,
 * for a body over 1 MiB) never sends the body. A route that reads its body (`express.json()`,
 * `upload()` within its limits, `req.tmp.write(req)`) gets the `100 Continue` on its first read,
 * as before; one that answers without reading sends no `100 Continue`, and the connection is
 * closed after its answer. Does nothing when `server` has a `checkContinue` listener already.
 *
 * **Ownership:** it owns nothing: it adds one `checkContinue` listener to `server`, for the
 * server's life.
 *
 * **Security:** without it, Node answers `100 Continue` before any route runs, and a client that
 * then sends its whole body before reading gets its 413 only within the drain bounds
 * (docs/security.md, "Threats, one by one": a client that declares a huge body).
 *
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `server` is not a server (it
 * has no `listenerCount`).
 * @example
 * import { deferContinue, tempScope, upload } from 'tempfile-manager/express';
 * const server = app.listen(3000);
 * deferContinue(server);
 */
export function deferContinue(server: ContinueServer): void {
  if (typeof (server as Partial<ContinueServer> | null)?.listenerCount !== 'function') {
    throw new InvalidOptionError('server', `deferContinue() takes the http.Server (or https.Server) of the app, such as the one app.listen() returns; got ${describe(server)}.`);
  }
  deferServerContinue(server);
}

function warn(error: unknown): void {
  log('removing a request scope failed: %O', error);
  process.emitWarning(`tempfile-manager: removing a request's temp files failed: ${String(error)}`, 'TempFileWarning');
}

/** Options of {@link presignUploads}: the presign routes' options, `meta` given the Express request. */
export type ExpressPresignOptions = PresignRoutesOptions<Request>;

/**
 * Express middleware that answers the routes `@uppy/aws-s3` calls on a Companion server, so that
 * a browser uploads straight to the bucket: mount it where Uppy's `companionEndpoint` points
 * (`app.use('/uploads', presignUploads({ store, maxBytes }))`). Below the mount point:
 *
 * | route | store call | answer |
 * |---|---|---|
 * | `GET` or `POST /s3/params` (`filename`, `type`, `metadata[...]`) | `presignUpload()` (a POST policy) | `{ method, url, fields, headers, key, expiresAt }` |
 * | `POST /s3/multipart` (JSON `{ filename, type }`) | `presignMultipart()` | `{ key, uploadId, expiresAt }` |
 * | `GET /s3/multipart/:uploadId/:partNumber?key=` | `signPart()` | `{ url, headers, expires, expiresAt }` |
 * | `GET /s3/multipart/:uploadId?key=` | `listParts()` | `[{ PartNumber, ETag, Size }]` |
 * | `POST /s3/multipart/:uploadId/complete?key=` (JSON `{ parts }`) | `completeMultipart()` | `{ location, key }` |
 * | `DELETE /s3/multipart/:uploadId?key=` | `abortMultipart()` | `{}` |
 *
 * The `key` is the upload's receipt, for {@link confirmUpload}. Other paths go to `next()`. A JSON
 * body is `req.body` if a parser ran, else read here (at most 1 MiB). A client's bad request is
 * answered as {@link upload} answers a refused form, `{ statusCode, code, error, message }`: 400
 * (a bad type, part number, key or body; a key or upload id the store did not make), 409, 410
 * (expired), 413 (parts over `maxBytes`, aborted first), 415 (a declared type `accept` refuses).
 * A `StoreError` (503) or a throw of `meta` goes to `next(err)`.
 *
 * **Ownership:** it owns nothing; an upload it presigns is the store's, swept once its presign
 * expired if never confirmed.
 *
 * **Security:** every key is the store's, random, one per presign; what the browser declares is
 * untrusted (the confirmation sniffs the bytes). Mount it behind your authentication.
 *
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`, when it is made: an unknown
 * option, a `store` without the presign methods, a bad `maxBytes` (1 to 5 GiB), `accept`, `ttlMs`
 * (1000 to 7 days), `suffix` or `meta`.
 *
 * @example
 * import { confirmUpload, presignUploads } from 'tempfile-manager/express';
 * app.use('/uploads', presignUploads({ store, maxBytes: 20 * 1024 ** 2, accept: ['image/*'] }));
 * app.post('/uploads/confirm', confirmUpload({ store, ttlMs: 3_600_000 }), async (req, res) => {
 *   res.status(202).json(await queue.add('thumbnail', { ticket: req.ticket }));
 * });
 */
export function presignUploads(options: ExpressPresignOptions): RequestHandler {
  const routes = resolvePresignRoutes(options, 'presignUploads()');
  return (req: Request, res: Response, next: NextFunction): void => {
    let route;
    try {
      route = matchRoute(req.method, req.path);
    } catch (error) {
      failRoute(res, next, error);
      return;
    }
    if (route === undefined) {
      next();
      return;
    }
    answerRoute(routes, route, { request: req, method: req.method, query: req.query, body: () => readJson(req, res) }).then(
      (body) => {
        if (res.headersSent) return;
        res.setHeader('Cache-Control', 'no-store');
        res.json(body);
      },
      (error: unknown) => failRoute(res, next, error),
    );
  };
}

/**
 * Express middleware that confirms a browser's upload: reads `{ key }` (the receipt) from the JSON
 * body, has the store judge the object (`S3Store.confirmUpload`), and sets `req.ticket`.
 *
 * A refusal is answered as {@link upload} answers one, the object removed first: 400 (a receipt
 * the store did not make: nothing touched), 409 (not uploaded yet, being confirmed, or sent again meanwhile), 410
 * (expired), 413 (over `maxBytes`), 415 (a type `accept` refuses, or not the declared one), 422 (an
 * empty upload, another checksum, a `verify` refusal). A `StoreError` or a `verify` that threw or
 * timed out (503) goes to `next(err)`, the object removed as well.
 *
 * **Ownership:** the ticket is the route's to hand on; an entry whose ticket reaches no worker is
 * swept once `ttlMs` passed. **Security:** only the key is read of what the browser sends; size
 * and type are the object's, checked on a copy no presign reaches.
 *
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`, when it is made: an unknown
 * option, a `store` without the presign methods, no `ttlMs` or a bad one, a bad `verify` or
 * `verifyTimeoutMs`.
 *
 * @example
 * import { confirmUpload } from 'tempfile-manager/express';
 * app.post('/uploads/confirm', confirmUpload({ store, ttlMs: 3_600_000 }), (req, res) => {
 *   res.status(202).json({ job: queue.add(req.ticket) });
 * });
 */
export function confirmUpload(options: ConfirmRouteOptions): RequestHandler {
  const route = resolveConfirmRoute(options, 'confirmUpload()');
  return (req: Request, res: Response, next: NextFunction): void => {
    readJson(req, res)
      .then((body) => confirmRoute(route, body))
      .then(
        (ticket) => {
          req.ticket = ticket;
          next();
        },
        (error: unknown) => failRoute(res, next, error),
      );
  };
}

/** A client's refusal answered here (unless `answer` is false), anything else to `next(err)`. */
function failRoute(res: Response, next: NextFunction, error: unknown, answer = true): void {
  if (!(answer && answerRefusal(res, error))) next(error);
}

/** The request's JSON body: `req.body` when a parser ran, else read here (at most 1 MiB); `undefined` when empty. */
function readJson(req: Request, res: Response): Promise<unknown> {
  if (req.body !== undefined) return Promise.resolve(req.body);
  if (req.readableEnded) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('aborted', onGone);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_JSON_BYTES) {
        chunks.push(chunk);
        return;
      }
      cleanup();
      refuseUnreadBody(req, res, DEFAULT_DRAIN);
      reject(new MalformedUploadError('malformed', `the JSON body is larger than ${MAX_JSON_BYTES} bytes: send { key } or { parts } alone.`));
    };
    const onEnd = () => {
      cleanup();
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') {
        resolve(undefined);
        return;
      }
      try {
        resolve(JSON.parse(text) as unknown);
      } catch {
        reject(new MalformedUploadError('malformed', 'the body is not JSON: send Content-Type: application/json and a JSON object such as { "key": "..." }.'));
      }
    };
    const onGone = (error?: unknown) => {
      cleanup();
      reject(new AbortedError('the client went away before the end of its request', error));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('aborted', onGone);
  });
}
