import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { AbortedError, MalformedUploadError, UploadLimitError } from '../base/errors.js';
import type { TempScope } from '../handles/scope.js';
import { FormReceiver, type ReceivedForm } from './form.js';
import { requestScopeOf } from './request-scope.js';
import { busboyLimits, type ResolvedUpload } from './upload-options.js';

/**
 * Reads a multipart form from `req` with busboy (multer's parser), streaming each wanted file
 * into `scope`. `refuse()` is called the moment the form is refused (a limit, a refused type, a
 * malformed body), before the partial files are removed, so that the adapter can stop reading
 * the body at once; the promise rejects once they are gone.
 * @internal
 */
export function receiveMultipart(req: IncomingMessage, scope: TempScope, spec: ResolvedUpload, refuse: () => void): Promise<ReceivedForm> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      limits: busboyLimits(spec),
    });
  } catch (error) {
    refuse();
    return Promise.reject(notMultipart(error));
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const form = new FormReceiver(scope, spec, () => {
      req.unpipe(parser);
      refuse();
      settle();
    }, requestScopeOf(req));
    const onRequestClose = () => {
      if (!req.complete) form.fail(new AbortedError('the client went away before the end of the form'));
    };
    function settle(): void {
      if (settled) return;
      settled = true;
      req.off('close', onRequestClose);
      form.finish().then(resolve, reject);
    }
    // busboy gives `undefined` for a part without a name (name=""): never let a part reach the form untyped.
    parser.on('file', (fieldName: string | undefined, stream, info) =>
      guarded(form, () =>
        form.file({ fieldName: fieldName ?? '', stream, originalName: info.filename ?? '', declaredType: info.mimeType ?? '', encoding: info.encoding ?? '' }),
      ),
    );
    parser.on('field', (name: string | undefined, value, info) =>
      guarded(form, () => form.field({ name: name ?? '', value: value ?? '', nameTruncated: info.nameTruncated, valueTruncated: info.valueTruncated })),
    );
    parser.on('filesLimit', () => form.fail(new UploadLimitError('files', spec.maxFiles)));
    parser.on('fieldsLimit', () => form.fail(new UploadLimitError('fields', spec.maxFields)));
    parser.on('partsLimit', () => form.fail(new UploadLimitError('parts', spec.maxParts)));
    parser.on('error', (error: Error) => form.fail(malformed(error)));
    parser.on('close', settle);
    req.on('close', onRequestClose);
    req.pipe(parser);
  });
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
