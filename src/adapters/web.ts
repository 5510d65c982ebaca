import type { IncomingHttpHeaders } from 'node:http';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';
import { AbortedError, forClientAnswer, InvalidOptionError, isTempFileError, MalformedUploadError } from '../base/errors.js';
import { describe } from '../base/names.js';
import { ownOptions, validateFunction } from '../base/validators.js';
import type { TempScope } from '../handles/scope.js';
import type { TempFileManager } from '../manager/manager.js';
import { receiveUpload, type FormBody } from '../uploads/multipart.js';
import { sharedManager } from './shared-manager.js';
import { checkManager, declaredLengthRefusal, refusalBody, resolveUploadOptions, type HandedOffUpload, type UploadedFile, type UploadFields, type UploadOptions } from '../uploads/upload-options.js';
import { DEFAULT_DRAIN, dropWithin } from '../uploads/unread-body.js';
import { builtin } from '../base/builtin.js';
const { Readable } = builtin('node:stream');
type Readable = import('node:stream').Readable;

export type { HandedOffUpload, UploadedFile, UploadedFileInfo, UploadFieldSpec, UploadFields, UploadOptions, UploadProgress } from '../uploads/upload-options.js';

/** Options of {@link handleUpload}: the upload options of `upload()`, and the manager. */
export interface WebUploadOptions extends Omit<UploadOptions, 'drain'> {
  /**
   * The manager whose scope holds the files.
   * @default one manager shared by the process, with the default root
   */
  readonly manager?: TempFileManager;
}

/** What {@link handleUpload} hands the route: the form's files and fields, in the request's scope. */
export interface WebUpload {
  /** The file of `{ field }`. */
  readonly file: UploadedFile | undefined;
  /** The files of `{ array }` (an array) or `{ fields }` (arrays by field name, in a null-prototype object). */
  readonly files: UploadedFile[] | Record<string, UploadedFile[]> | undefined;
  /** The text fields, in a null-prototype object. */
  readonly fields: UploadFields;
  /** The files of `{ store, ttlMs }`, handed straight to the store, in order of arrival. */
  readonly handedOff: HandedOffUpload[] | undefined;
  /** The request's scope: what the route makes in it is removed with the files. */
  readonly scope: TempScope;
}

/**
 * `upload()` for a Web `Request` (Hono, Next.js route handlers, `Bun.serve`, `Deno.serve`): the
 * form's files streamed in constant memory under `upload()`'s options, then `route` called with
 * them and its `Response` returned. A client's refusal is answered without `route`, as a
 * `Response` with `upload()`'s status and JSON body; the rest of the body is read and thrown away
 * within `upload()`'s default `drain`, so that a client still sending reads the answer.
 *
 * **Ownership:** the files belong to a scope made for the request, removed once `route`'s
 * promise settles unless kept or handed off. **Security:** as `upload()`'s (docs/uploads.md).
 *
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: a bad option or `route`,
 * before the body is read. Also what is the server's to answer (507, 503, 500: the typed error,
 * its message only its status for the client, the detail, path included, its `cause`) and what
 * `route` throws (as it is).
 *
 * @example
 * export const POST = (request: Request) =>
 *   handleUpload(request, { field: 'video', accept: ['video/*'] }, async ({ file }) => Response.json(await file!.handoff({ ttlMs: 3_600_000 })));
 */
export async function handleUpload(request: Request, options: WebUploadOptions, route: (upload: WebUpload) => Response | PromiseLike<Response>): Promise<Response> {
  const spec = resolveUploadOptions(options, 'handleUpload()', ['manager']);
  if ((ownOptions(options) as UploadOptions).drain !== undefined) {
    throw new InvalidOptionError('drain', 'handleUpload() takes no `drain`: the rest of a refused Web Request\'s body is thrown away within the default bounds (128 MiB, 10 s). Leave it out.');
  }
  const given = ownOptions(options).manager;
  checkManager(given, 'handleUpload()', false);
  validateFunction(route, 'route', 'taking the upload and returning a Response', { where: 'handleUpload()' });
  checkRequest(request);
  const headers = headersOf(request.headers);
  const tooLarge = declaredLengthRefusal(headers, spec);
  if (tooLarge) {
    request.body?.cancel().catch(() => {}); // the body of a refused request is not read
    return refusalResponse(tooLarge)!;
  }
  let scope: TempScope;
  try {
    scope = (given ?? sharedManager()).scope();
  } catch (error) {
    throw forClientAnswer(error); // a closed manager: 503
  }
  try {
    const upload = await receiveUpload(webBody(request, headers), scope, spec).catch((error: unknown) => {
      // A server failure rejects with a message for the client, the detail as its cause (as Fastify's saveUploads()).
      throw request.signal?.aborted ? new AbortedError('the client went away before the end of the form', error) : forClientAnswer(error);
    });
    return await route({ ...upload, scope });
  } catch (error) {
    const answer = refusalResponse(error);
    if (answer) return answer;
    throw error;
  } finally {
    await scope.remove();
  }
}

// A server that finds a body unread when its answer is out closes the connection under a client
// still sending, whose kernel then resets it before it has read the answer: the rest is read and
// thrown away within DEFAULT_DRAIN, then let go (a Node server ends the connection there).
function discardRest(stream: Readable): void {
  const stop = dropWithin(stream, DEFAULT_DRAIN, () => {
    stop();
    stream.destroy();
  });
  stream.once('end', stop);
  stream.resume();
}

/**
 * The `Response` of a client's refused upload (a 4xx of the library's), as {@link handleUpload}
 * answers it; undefined for any other error (the server's to answer). @throws Never.
 */
export function refusalResponse(error: unknown): Response | undefined {
  if (!isTempFileError(error) || !error.expose) return undefined;
  if (error.statusCode === 499) return new Response(null, { status: 499 });
  return Response.json(refusalBody(error), { status: error.statusCode });
}

function checkRequest(request: unknown): asserts request is Request {
  const candidate = request as Partial<Request> | null | undefined;
  if (typeof candidate?.headers?.get !== 'function' || !('body' in (candidate ?? {}))) {
    throw new InvalidOptionError('request', `handleUpload() takes a Web Request (the request of a fetch handler, Hono's c.req.raw), got ${describe(request)}.`);
  }
}

function headersOf(headers: Headers): IncomingHttpHeaders {
  const plain: IncomingHttpHeaders = Object.create(null) as IncomingHttpHeaders;
  headers.forEach((value, name) => {
    plain[name] = value;
  });
  return plain;
}

/** The request's body as a form reads it; a request without one is a malformed form. */
function webBody(request: Request, headers: IncomingHttpHeaders): FormBody {
  if (request.body === null) throw new MalformedUploadError('malformed', 'The request has no body: send a multipart/form-data form.');
  const stream = Readable.fromWeb(request.body as NodeWebStream<Uint8Array>);
  // A body cut off by its client errors on some servers (Deno.serve: BadResource) where others
  // only end it: unheard, that error would end the process. The 'close' after it fails the form.
  stream.on('error', () => {});
  let complete = false;
  stream.once('end', () => {
    complete = true;
  });
  return {
    headers,
    stream,
    // Its chunks may be views of buffers the request was made from, which the caller keeps.
    freshChunks: false,
    complete: () => complete,
    onClose: (listener) => {
      stream.once('close', listener);
      request.signal?.addEventListener('abort', listener, { once: true });
      return () => {
        stream.off('close', listener);
        request.signal?.removeEventListener('abort', listener);
      };
    },
    exchange: undefined,
    refuse: () => discardRest(stream),
  };
}
