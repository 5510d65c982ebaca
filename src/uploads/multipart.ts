import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import busboy from 'busboy';
import { builtin } from '../base/builtin.js';
import { AbortedError, MalformedUploadError, UploadLimitError } from '../base/errors.js';
import type { TempScope } from '../handles/scope.js';
import { BodyChunks } from '../write/owned-chunks.js';
import { FormReceiver, type ReceivedForm } from './form.js';
import type { RequestScope } from './request-scope.js';
import { busboyLimits, type HandedOffUpload, type ResolvedUpload, type UploadedFile, type UploadFields } from './upload-options.js';

/**
 * A request body a form is read from, whatever the server: Node's `IncomingMessage` (Express,
 * Fastify) or a Web `Request` (fetch-style servers). @internal
 */
export interface FormBody {
  readonly headers: IncomingHttpHeaders;
  /** The body's bytes. */
  readonly stream: Readable;
  /** True once the whole body arrived. */
  complete(): boolean;
  /** Calls `listener` when the request ends, whole or not; returns the unsubscribe. */
  onClose(listener: () => void): () => void;
  /**
   * True when each chunk of `stream` is a buffer of its own that no one else holds unless they
   * listen to the stream (a Node request's body: its parser copies each chunk).
   */
  readonly freshChunks: boolean;
  /** The request's exchange, for an adapter whose scope ends with it. */
  readonly exchange: RequestScope | undefined;
  /**
   * Called the moment the form is refused (a limit, a refused type, a malformed body), before the
   * partial files are removed, so that the adapter stops reading the body at once.
   */
  refuse(): void;
}

/** The {@link FormBody} of a Node request, `refuse` being the adapter's. @internal */
export function nodeBody(req: IncomingMessage, refuse: () => void, exchange: RequestScope | undefined): FormBody {
  return {
    headers: req.headers,
    stream: req,
    // Only Node's own class, whose body its parser copies from the socket: a request made in
    // process (Fastify's inject(), serverless-http's subclass) hands out buffers its maker made.
    freshChunks: req.constructor === builtin('node:http').IncomingMessage,
    complete: () => req.complete,
    onClose: (listener) => {
      req.on('close', listener);
      return () => req.off('close', listener);
    },
    exchange,
    refuse,
  };
}

/** Where the text fields read so far are found once the form failed (multer keeps them in `req.body`). @internal */
export interface FieldsRead {
  fields?: UploadFields;
}

/** What a route gets of an upload, in the shape its options ask for. */
interface ShapedUpload {
  /** The file of `{ field }`. */
  readonly file: UploadedFile | undefined;
  /** The files of `{ array }` (an array) or `{ fields }` (arrays by field name). */
  readonly files: UploadedFile[] | Record<string, UploadedFile[]> | undefined;
  readonly fields: UploadFields;
  /** With `{ store }`: the files handed straight to the store; else undefined. */
  readonly handedOff: HandedOffUpload[] | undefined;
}

/**
 * The upload core of every adapter: reads a multipart form from `body` with busboy (multer's
 * parser), streaming each wanted file into `scope` (or to the store of `{ store }`), and shapes
 * what it received as `spec` asks. Rejects once the partial files of a refused form are gone.
 * @internal
 */
export async function receiveUpload(body: FormBody, scope: TempScope, spec: ResolvedUpload, read?: FieldsRead): Promise<ShapedUpload> {
  const form = await receiveForm(body, scope, spec, read);
  return {
    file: spec.rule.kind === 'single' ? form.files[0] : undefined,
    files: spec.direct ? undefined : shapeFiles(spec, form.files),
    fields: form.fields,
    handedOff: spec.direct ? [...form.handedOff] : undefined,
  };
}

/** The files of a form in the shape the rule asks for. */
function shapeFiles(spec: ResolvedUpload, files: readonly UploadedFile[]): UploadedFile[] | Record<string, UploadedFile[]> | undefined {
  const rule = spec.rule;
  if (rule.kind === 'array') return [...files];
  if (rule.kind !== 'fields') return undefined;
  const byField = Object.create(null) as Record<string, UploadedFile[]>;
  for (const file of files) (byField[file.fieldName] ??= []).push(file);
  return byField;
}

function receiveForm(body: FormBody, scope: TempScope, spec: ResolvedUpload, read?: FieldsRead): Promise<ReceivedForm> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: body.headers,
      // Read as bytes, then decoded by clientText(): UTF-8 when they are UTF-8, else Latin-1.
      defParamCharset: 'latin1',
      limits: busboyLimits(spec),
    });
  } catch (error) {
    body.refuse();
    return Promise.reject(notMultipart(error));
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    let stopFeeding = () => {};
    const chunks = body.freshChunks ? new BodyChunks() : undefined;
    const form = new FormReceiver(scope, spec, () => {
      stopFeeding();
      body.refuse();
      settle();
    }, body.exchange);
    if (read) read.fields = form.fields;
    const stopWatching = body.onClose(() => {
      if (!body.complete()) form.fail(new AbortedError('the client went away before the end of the form'));
    });
    function settle(): void {
      if (settled) return;
      settled = true;
      stopFeeding();
      stopWatching();
      // Once finish() settles, every write has: the files' sinks took their views of the chunks
      // written in part (at once: copied or written inline), and the parser, closed or left, holds none.
      form.finish().finally(() => chunks?.freeRest()).then(resolve, reject);
    }
    listen(parser, form, spec);
    parser.on('close', settle);
    stopFeeding = feed(body.stream, parser, chunks);
  });
}

/**
 * Writes the body's chunks into `parser` as they come, the body paused while the parser is full,
 * as a pipe does, with one listener; a chunk of a fresh body that no one else got is marked as the
 * library's own, to be freed once written (owned-chunks.ts). Returns the stop.
 */
function feed(stream: Readable, parser: Writable, chunks: BodyChunks | undefined): () => void {
  const onData = (chunk: unknown) => {
    chunks?.own(stream, chunk, 1);
    if (!parser.write(chunk)) stream.pause();
  };
  const onDrain = () => stream.resume();
  const onEnd = () => parser.end();
  stream.on('data', onData);
  parser.on('drain', onDrain);
  // As pipe() does: a body read to its end already ends the parser (which then finds the form
  // cut short), and a body paused before flows.
  if (stream.readableEnded) process.nextTick(onEnd);
  else stream.once('end', onEnd);
  if (!stream.readableFlowing) stream.resume();
  return () => {
    stream.off('data', onData);
    stream.off('end', onEnd);
    parser.off('drain', onDrain);
  };
}

/** Hands the parser's parts and limits to the form. */
function listen(parser: busboy.Busboy, form: FormReceiver, spec: ResolvedUpload): void {
  // busboy gives `undefined` for a part without a name (name=""): never let a part reach the form untyped.
  parser.on('file', (fieldName: string | undefined, stream, info) =>
    guarded(form, () =>
      form.file({ fieldName: clientText(fieldName ?? ''), stream, originalName: clientText(info.filename ?? ''), declaredType: info.mimeType ?? '', encoding: info.encoding ?? '' }),
    ),
  );
  parser.on('field', (name: string | undefined, value, info) =>
    guarded(form, () => form.field({ name: clientText(name ?? ''), value: value ?? '', nameTruncated: info.nameTruncated, valueTruncated: info.valueTruncated })),
  );
  parser.on('filesLimit', () => form.fail(new UploadLimitError('files', spec.maxFiles)));
  parser.on('fieldsLimit', () => form.fail(new UploadLimitError('fields', spec.maxFields)));
  parser.on('partsLimit', () => form.fail(new UploadLimitError('parts', spec.maxParts)));
  parser.on('error', (error: Error) => form.fail(malformed(error)));
}

/** A throw in a parser callback would crash the process (an 'error' of an event emitter): it fails the form instead. */
function guarded(form: FormReceiver, receive: () => void): void {
  try {
    receive();
  } catch (error) {
    form.fail(error instanceof Error ? error : new Error(String(error)));
  }
}

function notMultipart(error: unknown): MalformedUploadError {
  const message = error instanceof Error ? error.message : String(error);
  if (/boundary/i.test(message)) {
    return new MalformedUploadError('malformed', 'The multipart body has no boundary in its Content-Type: send a form the way browsers do (FormData).', { cause: error });
  }
  return new MalformedUploadError('not-multipart', `The body is not a form (${message}): send multipart/form-data.`, { cause: error });
}

function malformed(error: Error): MalformedUploadError {
  if (/unexpected end/i.test(error.message)) {
    return new MalformedUploadError('truncated', 'The form ends before its closing boundary: the body was cut off.', { cause: error });
  }
  return new MalformedUploadError('malformed', `The form is malformed (${error.message}).`, { cause: error });
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A header parameter the client sent (a part's name, a file's name), read by the parser as
 * Latin-1: its bytes as UTF-8 when they are valid UTF-8 (what browsers send), else as Latin-1
 * (what older clients send for é, ü...), never U+FFFD in place of a byte. An RFC 5987
 * `filename*=` value was decoded by its own charset already.
 */
function clientText(latin1: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[^\x00-\x7f]/.test(latin1)) return latin1;
  const bytes = Buffer.from(latin1, 'latin1');
  if (bytes.toString('latin1') !== latin1) return latin1; // decoded from filename*= already: code points past U+00FF
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return latin1;
  }
}
