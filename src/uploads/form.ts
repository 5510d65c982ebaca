import type { Readable } from 'node:stream';
import { isTempFileError } from '../base/error-class.js';
import { AbortedError, isErrorCode, MalformedUploadError, SizeLimitError, UploadLimitError, type DetectedType } from '../base/errors.js';
import { TempFile, type TempFileArgs } from '../handles/file.js';
import { writeAs, type TempScope } from '../handles/scope.js';
import type { WriteOptions } from '../handles/write.js';
import type { HandoffOptions } from '../handoff/handoff.js';
import type { HandoffTicket } from '../handoff/ticket.js';
import { clientFileName, uploadSuffix, withClientName } from './client-name.js';
import type { RequestScope } from './request-scope.js';
import type { ResolvedVerify } from '../write/verify.js';
import type { HandedOffUpload, ResolvedUpload, UploadedFile, UploadFields } from './upload-options.js';
import type { StreamHandoff } from '../handoff/backend.js';
import type { HandoffMeta } from '../handoff/ticket.js';

/** A file part as the parsers hand it over. */
interface FilePart {
  readonly fieldName: string;
  readonly originalName: string;
  readonly declaredType: string;
  readonly encoding: string;
  readonly stream: Readable;
}

/** A text field as the parsers hand it over. */
interface FieldPart {
  readonly name: string;
  readonly value: string;
  readonly nameTruncated: boolean;
  readonly valueTruncated: boolean;
}

/** What an upload gives the route: the files in order of arrival, and the text fields. @internal */
export interface ReceivedForm {
  readonly files: readonly UploadedFile[];
  readonly fields: UploadFields;
  /** With `store`: the files handed straight to it. */
  readonly handedOff: readonly HandedOffUpload[];
}

/**
 * One form being received: applies the file rule and the length limits to each part as it comes,
 * streams each wanted file into the request's scope, and keeps the first failure. A failure is
 * reported at once through `onFailure` (the adapter then stops parsing), and again by `finish()`
 * once every write has settled, that is, once every partial file is gone.
 * @internal
 */
export class FormReceiver {
  readonly fields: UploadFields = Object.create(null) as UploadFields;
  readonly #files: (UploadedFile | undefined)[] = []; // in order of arrival, whatever order the writes end in
  readonly #handedOff: (HandedOffUpload | undefined)[] = []; // with `store`, in order of arrival too
  readonly #sent: StreamHandoff[] = [];
  readonly #writes: Promise<void>[] = [];
  readonly #perField = new Map<string, number>();
  readonly #streams = new Set<Readable>();
  #failure: Error | undefined;
  /** Each file's write's own abort: a form's failure ends every write but the failing part's. */
  /** The stoppers of the files being checked (`verify`), made only for them. */
  #stoppers: Map<Readable, AbortController> | undefined;
  readonly #scope: TempScope;
  readonly #spec: ResolvedUpload;
  readonly #onFailure: (error: Error) => void;
  readonly #exchange: RequestScope | undefined;
  /** Unsubscribes from the end of the request's exchange. */
  readonly #unwatch: () => void;

  /**
   * `exchange`, when given, is the request's: once it ends (the client gone, the response sent or
   * timed out) while the form is still being received, the form fails with an `AbortedError`
   * instead of waiting for a parser whose bytes no longer come.
   */
  constructor(scope: TempScope, spec: ResolvedUpload, onFailure: (error: Error) => void, exchange?: RequestScope) {
    this.#scope = scope;
    this.#spec = spec;
    this.#onFailure = onFailure;
    this.#exchange = exchange;
    this.#unwatch = exchange?.scope === scope ? exchange.onEnd(() => this.fail(endedError(exchange))) : () => {};
  }

  /** Records the first failure, stops every file still streaming, and tells the adapter. */
  fail(error: Error, from?: Readable): void {
    if (this.#failure) return;
    this.#failure = error;
    if (this.#exchange && isTempFileError(error)) this.#exchange.received.refused ??= error.code;
    for (const stream of this.#streams) stream.destroy(error);
    this.#streams.clear();
    // The other files' reads end with their streams; their verify checks end now. The failing part's ends with its own error.
    for (const [stream, stopper] of this.#stoppers ?? []) if (stream !== from) stopper.abort(error);
    this.#onFailure(error);
  }

  field(part: FieldPart): void {
    if (this.#failure) return;
    const spec = this.#spec;
    if (part.name === '') {
      this.fail(new MalformedUploadError('missing-field-name', 'The form has a text field with no name: give every field a name (multer refuses one too).'));
    } else if (part.nameTruncated || Buffer.byteLength(part.name) > spec.maxFieldNameBytes) {
      this.fail(new UploadLimitError('fieldNameBytes', spec.maxFieldNameBytes));
    } else if (part.valueTruncated || Buffer.byteLength(part.value) > spec.maxFieldBytes) {
      this.fail(new UploadLimitError('fieldBytes', spec.maxFieldBytes, part.name));
    } else {
      const previous = Object.hasOwn(this.fields, part.name) ? this.fields[part.name] : undefined;
      this.fields[part.name] = previous === undefined ? part.value : [...(Array.isArray(previous) ? previous : [previous]), part.value];
    }
  }

  file(part: FilePart): void {
    part.stream.on('error', () => {}); // reported through write(), or through the parser's own 'error'
    // A file input left empty: browsers send filename="" and no bytes.
    const skipped = this.#failure !== undefined || part.originalName === '';
    const refusal = skipped ? undefined : this.#refusal(part.fieldName);
    if (skipped || refusal) {
      part.stream.resume();
      if (refusal) this.fail(refusal);
      return;
    }
    this.#perField.set(part.fieldName, (this.#perField.get(part.fieldName) ?? 0) + 1);
    this.#streams.add(part.stream);
    // The parser cuts a file at maxBytes + 1 and emits 'limit' in its own turn, as that byte
    // arrives; the meter refuses the byte only once write() has read its way there, behind the
    // part's stream buffer, the sniffed head and the sink's back-pressure. Refused at the event,
    // the form fails before the parser reads another part (req.body then holds only the fields
    // before the file, as multer's does) and before a later failure (a body cut short) answers
    // with another status; the parser discards the rest of the file as fast as the client sends.
    part.stream.once('limit', () => this.fail(new SizeLimitError(this.#spec.maxBytes, part.fieldName), part.stream));
    if (this.#spec.direct) this.#handOff(part, this.#spec.direct);
    else this.#write(part);
  }

  /** Streams the part into a temp file of the scope. */
  #write(part: FilePart): void {
    const slot = this.#files.push(undefined) - 1;
    const make = (...args: TempFileArgs) => new UploadedTempFile(part, ...args);
    // The file takes the extension of its type (else a safe one of the client's name): a worker's
    // tools see a .png. Sniffed only where the route asks for the type: else the client's extension.
    const suffixOf = this.#spec.detectType ? (type: DetectedType | undefined) => uploadSuffix(type, part.originalName) : undefined;
    const options = this.#writeOptions(part);
    const suffix = suffixOf ? '' : uploadSuffix(undefined, part.originalName);
    const write = writeAs(this.#scope, part.stream, suffix === '' ? options : { ...options, suffix }, make, suffixOf).then(
      (file) => {
        this.#streams.delete(part.stream);
        this.#files[slot] = file;
        if (this.#exchange) {
          this.#exchange.received.files += 1;
          this.#exchange.received.bytes += file.size ?? 0;
        }
      },
      (error: unknown) => {
        this.#streams.delete(part.stream);
        this.fail(ofField(error, part.fieldName), part.stream);
      },
    );
    this.#writes.push(write);
  }

  /** Hands the part straight to the store: no temp file; its ticket is the route's. */
  #handOff(part: FilePart, direct: NonNullable<ResolvedUpload['direct']>): void {
    const slot = this.#handedOff.push(undefined) - 1;
    const { meta } = withClientName({ meta: undefined as HandoffMeta | undefined }, clientFileName(part.originalName));
    const request = {
      ttlMs: direct.ttlMs,
      meta,
      maxBytes: this.#spec.maxBytes,
      accept: this.#spec.accept,
      hash: this.#spec.hash ?? 'sha256',
      suffixOf: (type: DetectedType | undefined) => uploadSuffix(type, part.originalName),
      detectType: this.#spec.detectType,
    };
    const sending = direct.store.handOffStream(part.stream, request).then(
      (sent) => {
        this.#streams.delete(part.stream);
        this.#sent.push(sent);
        const { ticket, detectedType } = sent;
        const { fieldName, originalName, declaredType, encoding } = part;
        this.#handedOff[slot] = { ticket, fieldName, originalName, declaredType, encoding, size: ticket.size, digest: ticket.digest ?? '', detectedType };
      },
      (error: unknown) => {
        this.#streams.delete(part.stream);
        this.fail(ofField(error, part.fieldName));
      },
    );
    this.#writes.push(sending);
  }

  /**
   * Waits for every write; resolves with the form, or rejects with the first failure once the
   * files already written are removed too (a refused form keeps nothing, whatever the route does
   * with the error before it answers). A file whose removal fails stays in the request's scope,
   * which removes it when the response ends.
   */
  async finish(): Promise<ReceivedForm> {
    await Promise.all(this.#writes);
    this.#unwatch();
    if (this.#failure) {
      await Promise.all([...this.#files.map((file) => file?.remove().catch(() => {})), ...this.#sent.map((sent) => sent.discard())]);
      throw this.#failure;
    }
    const files = this.#files.filter((file): file is UploadedFile => file !== undefined);
    const handedOff = this.#handedOff.filter((sent): sent is HandedOffUpload => sent !== undefined);
    if (this.#spec.rule.kind === 'single' && files.length === 0 && handedOff.length === 0) {
      const field = this.#spec.rule.field;
      throw new MalformedUploadError('missing-file', `The form has no file in the field ${JSON.stringify(field)}: send one there.`, { field });
    }
    return { files, fields: this.fields, handedOff };
  }

  #refusal(field: string): Error | undefined {
    if (field === '') return new MalformedUploadError('missing-field-name', 'The form has a file with no field name: give every part a name (multer refuses one too).');
    if (Buffer.byteLength(field) > this.#spec.maxFieldNameBytes) return new UploadLimitError('fieldNameBytes', this.#spec.maxFieldNameBytes);
    const rule = this.#spec.rule;
    const wanted =
      rule.kind === 'single' ? (field === rule.field ? 1 : 0)
      : rule.kind === 'array' ? (field === rule.field ? rule.maxCount : 0)
      : rule.kind === 'fields' ? (rule.maxCounts.get(field) ?? 0)
      : 0;
    const taken = this.#perField.get(field) ?? 0;
    if (wanted === 0) {
      return new MalformedUploadError('unexpected-file', `The form has a file in the field ${JSON.stringify(field.slice(0, 100))}, which takes none here.`, { field });
    }
    if (taken >= wanted) return new UploadLimitError('files', wanted, field);
    return undefined;
  }

  #writeOptions(part: FilePart): WriteOptions {
    const spec = this.#spec;
    const onProgress = spec.onProgress;
    return {
      maxBytes: spec.maxBytes,
      ...(spec.verify && { signal: this.#stopperOf(part.stream) }),
      ...(spec.hash !== undefined && { hash: spec.hash }),
      ...(spec.accept !== undefined && { accept: spec.accept }),
      ...(spec.verify && uploadVerify(spec.verify)),
      ...(onProgress && {
        onProgress: (bytesWritten: number) => onProgress({ fieldName: part.fieldName, originalName: part.originalName, bytesWritten }),
      }),
    };
  }

  /**
   * The signal that ends a file's `verify` check when another part of the form fails. Only a
   * check needs one: a write still reading is ended by its stream's destruction (`fail()`), and
   * a file written meanwhile is removed with the form's.
   */
  #stopperOf(stream: Readable): AbortSignal {
    const stopper = new AbortController();
    (this.#stoppers ??= new Map()).set(stream, stopper);
    return stopper.signal;
  }
}

/** The `verify` and `verifyTimeoutMs` of write() for an upload's hook, which takes the file as the {@link UploadedFile} it is. */
function uploadVerify(verify: ResolvedVerify<UploadedFile>): Pick<WriteOptions, 'verify' | 'verifyTimeoutMs'> {
  return {
    verify: (file, signal) => verify.hook(file as UploadedTempFile, signal),
    verifyTimeoutMs: verify.timeoutMs,
  };
}

/** Why a form still being received when its exchange ended was given up. */
function endedError(exchange: RequestScope): AbortedError {
  return exchange.responseSent
    ? new AbortedError('the response was sent before the end of the form')
    : new AbortedError('the client went away before the end of the form');
}

/** A file received in a form: the {@link TempFile} `write()` made, with where it came from. */
class UploadedTempFile extends TempFile implements UploadedFile {
  readonly fieldName: string;
  readonly originalName: string;
  readonly declaredType: string;
  readonly encoding: string;

  constructor(part: FilePart, ...args: TempFileArgs) {
    super(...args);
    this.fieldName = part.fieldName;
    this.originalName = part.originalName;
    this.declaredType = part.declaredType;
    this.encoding = part.encoding;
  }

  /** {@link TempFile.handoff}, the client's file name (made safe) kept in the ticket's `meta.filename` unless `meta` has one. */
  override handoff(options: HandoffOptions): Promise<HandoffTicket> {
    return super.handoff(withClientName(options, clientFileName(this.originalName)));
  }

  /** The size in bytes: an upload's file is always written by `write()`, which records it. */
  override get size(): number {
    return super.size ?? 0;
  }
}

/** A part's failure as the form reports it: a size limit names the part's field, as multer's does. */
function ofField(error: unknown, field: string): Error {
  if (isErrorCode(error, 'ERR_TEMPFILE_SIZE_LIMIT') && error.field === undefined && error.limit !== undefined) return new SizeLimitError(error.limit, field);
  return error instanceof Error ? error : new Error(String(error));
}
