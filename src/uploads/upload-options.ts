import type { IncomingHttpHeaders } from 'node:http';
import { InvalidOptionError, UploadLimitError, type TempFileError } from '../base/errors.js';
import { builtin } from '../base/builtin.js';
import { describe } from '../base/names.js';
import { ownOptions, validateBoolean, validateBytes, validateFunction, validateInteger, validateObject, type NoneLeftOut } from '../base/validators.js';
import type { TempFile } from '../handles/file.js';
import type { DetectedType } from '../base/errors.js';
import type { HandoffStore } from '../base/stores.js';
import type { StoreBackend } from '../handoff/backend.js';
import type { HandoffTicket } from '../handoff/ticket.js';
import { checkStreamHandoffOptions } from '../manager/stream-handoff.js';
import { parseAccept } from '../write/sniff.js';
import { hashOption } from '../write/options.js';
import { resolveVerify, type ResolvedVerify, type VerifyResult } from '../write/verify.js';
import { DEFAULT_DRAIN, resolveDrain, type DrainOptions, type ResolvedDrain } from './unread-body.js';
const { STATUS_CODES } = builtin('node:http');

/** One named file field of {@link UploadOptions.fields}. */
export interface UploadFieldSpec {
  /** The form field's name. */
  readonly name: string;
  /** At most this many files in it. @default 1 */
  readonly maxCount?: number;
}

/** Progress of one file of an upload, as its bytes reach the disk. */
export interface UploadProgress {
  /** The form field of the file. */
  readonly fieldName: string;
  /** The file name the client sent. */
  readonly originalName: string;
  /** The bytes of this file on disk so far. */
  readonly bytesWritten: number;
}

/**
 * Options of an upload: which files to take (at most one of `field`, `array`, `fields`; none of
 * them takes text fields only, and refuses every file), and the limits. Every limit passed is an
 * error with its HTTP status, never a silent truncation.
 *
 * @example
 * upload({ field: 'video', maxBytes: 2 ** 31, accept: ['video/*'] })        // req.file
 * upload({ array: 'photos', maxCount: 20, maxBytes: 20 * 1024 ** 2 })        // req.files: UploadedFile[]
 * upload({ fields: [{ name: 'avatar' }, { name: 'gallery', maxCount: 8 }] }) // req.files.avatar[0], ...
 */
export interface UploadOptions {
  /** One file, required, in this field: `req.file` (Fastify: `file`). Like multer's `.single(field)`. */
  readonly field?: string;
  /** Any number of files (up to `maxCount`) in this field: `req.files` as an array. Like multer's `.array(field, maxCount)`. */
  readonly array?: string;
  /** With `array`: at most this many files. @default `maxFiles` */
  readonly maxCount?: number;
  /** Files in these fields: `req.files` as `{ [name]: UploadedFile[] }`. Like multer's `.fields([...])`. */
  readonly fields?: readonly UploadFieldSpec[];
  /** The most bytes of one file: more is a `SizeLimitError` (413). @default 104857600 (100 MiB) */
  readonly maxBytes?: number;
  /** The most files in the form (413). @default 10 */
  readonly maxFiles?: number;
  /** The most text fields in the form (413). @default 100 */
  readonly maxFields?: number;
  /** The most parts, files and fields together (413). @default 1000 */
  readonly maxParts?: number;
  /** The longest field name, of text and file parts, in bytes (413). @default 100 */
  readonly maxFieldNameBytes?: number;
  /** The longest text field value in bytes (413). @default 1048576 (1 MiB) */
  readonly maxFieldBytes?: number;
  /**
   * The types a file may have, found from its first bytes (magic numbers), not from its name or
   * the client's header: `['image/png', 'video/*']`. Another type is a 415. Passed to `write()`.
   */
  readonly accept?: readonly string[];
  /**
   * Find each file's type from its first bytes, as `accept` does: `detectedType` is set and the
   * file takes that type's extension (`.png`). Without it and without `accept`, the bytes are not
   * read for their type (the sniffer is never loaded): `detectedType` is undefined and the file
   * takes the client's extension when it is letters and digits only. @default false
   */
  readonly detectType?: boolean;
  /** A `node:crypto` hash algorithm (`'sha256'`): each file's `digest` is computed as it streams by. */
  readonly hash?: string;
  /** Called as each file's bytes reach the disk. */
  readonly onProgress?: (progress: UploadProgress) => void;
  /**
   * Checks each complete file before the route sees it (an antivirus scan, a checksum against a
   * header): `true` accepts it; `false` or `{ reason, statusCode }` refuses it, a 422 (or that
   * 4xx) with the reason for the client; a throw (the scanner down) is a 503. A refused file is
   * removed, and so is the rest of the form. Passed to `write()`.
   */
  readonly verify?: (file: UploadedFile, signal: AbortSignal) => VerifyResult | PromiseLike<VerifyResult>;
  /** How long `verify` may take for one file before it is given up (a 503); 0: until the request ends. @default 60000 */
  readonly verifyTimeoutMs?: number;
  /**
   * Hand each file straight to this object store (`s3Store()` of `tempfile-manager/s3`), with no
   * local file: no temp file is made, the route gets `req.handedOff` (Fastify: `handedOff`), each
   * with its ticket, the same as `file.handoff({ ttlMs, store })` gives. `maxBytes`, `accept` and
   * `hash` hold as for a file; a refused or aborted form leaves nothing in the store. Needs
   * `ttlMs`; not with `onProgress` nor `verify` (docs/uploads.md, "Straight to an object store").
   */
  readonly store?: HandoffStore;
  /** With `store`: how long each entry waits for a claim (1 ms to 366 days). */
  readonly ttlMs?: number;
  /**
   * After an early refusal (a limit, a refused type), the rest of the body is read and thrown
   * away, so that a client that sends all of it before reading gets its answer; past these
   * bounds the connection is closed instead.
   * @default { maxBytes: 134217728, timeoutMs: 10000 }
   */
  readonly drain?: DrainOptions;
}

/**
 * A file of an upload: a {@link TempFile} of the request's scope (removed when the response ends,
 * unless kept or handed off), with what the client said about it; what its bytes say is
 * `detectedType` (`{ mime, ext }`, when the type is known). Its `suffix` is the extension of that
 * type (`.png`), else the client's extension when it is letters and digits only (`.csv`), else
 * none. Its `handoff()` keeps the client's file name, made safe (its last path segment, no
 * controls, no leading dot, no Windows device name, at most 255 bytes), in the ticket's
 * `meta.filename`, unless the `meta` passed has a `filename`.
 */
export type UploadedFile = TempFile & UploadedFileInfo;

/** What an upload knows about one of its files, besides the {@link TempFile} itself. */
export interface UploadedFileInfo {
  /** The form field it came in. */
  readonly fieldName: string;
  /**
   * The file name the client sent, as sent: untrusted, never use it as a path. The file's name
   * is the library's; a safe form of this one goes into a handoff's `meta.filename`.
   */
  readonly originalName: string;
  /** The `Content-Type` the client declared for the part: untrusted. */
  readonly declaredType: string;
  /** The part's `Content-Transfer-Encoding`, as the client sent it (`'7bit'` by default). */
  readonly encoding: string;
  /** The size in bytes. */
  readonly size: number;
}

/**
 * A file of an upload with `store`, handed straight to the object store: its ticket (the client's
 * file name, made safe, in `meta.filename`), and what the client and its bytes said about it.
 */
export interface HandedOffUpload {
  /** The ticket, the same as `file.handoff({ ttlMs, store })` gives: a worker's `mgr.claim(ticket)` takes it. */
  readonly ticket: HandoffTicket;
  /** The form field it came in. */
  readonly fieldName: string;
  /** The file name the client sent, as sent: untrusted, never use it as a path. */
  readonly originalName: string;
  /** The `Content-Type` the client declared for the part: untrusted. */
  readonly declaredType: string;
  /** The part's `Content-Transfer-Encoding`, as the client sent it. */
  readonly encoding: string;
  /** The size in bytes (the ticket's). */
  readonly size: number;
  /** `'<algorithm>:<hex>'` of the bytes (the ticket's): `hash`, else sha256. */
  readonly digest: string;
  /** The type found from the first bytes, when known. */
  readonly detectedType: DetectedType | undefined;
}

/** Text fields of a form, in a null-prototype object: a `__proto__` field is a field like any other. */
export type UploadFields = Record<string, string | string[]>;

/** Which files a form may have, and how many. */
type FileRule =
  | { readonly kind: 'none' }
  | { readonly kind: 'single'; readonly field: string }
  | { readonly kind: 'array'; readonly field: string; readonly maxCount: number }
  | { readonly kind: 'fields'; readonly maxCounts: ReadonlyMap<string, number> };

/** @internal */
export interface ResolvedUpload {
  readonly rule: FileRule;
  readonly maxBytes: number;
  readonly maxFiles: number;
  readonly maxFields: number;
  readonly maxParts: number;
  readonly maxFieldNameBytes: number;
  readonly maxFieldBytes: number;
  readonly accept: readonly string[] | undefined;
  /** Whether each file's first bytes are sniffed for its type: `detectType`, or `accept`. */
  readonly detectType: boolean;
  readonly hash: string | undefined;
  readonly onProgress: ((progress: UploadProgress) => void) | undefined;
  readonly verify: ResolvedVerify<UploadedFile> | undefined;
  readonly drain: ResolvedDrain;
  /** With `store`: where each file goes instead of a temp file. */
  readonly direct: { readonly store: StoreBackend; readonly ttlMs: number } | undefined;
}

/** The names of the upload options: every key of {@link UploadOptions} (`NoneLeftOut`). */
const UPLOAD_OPTION_KEYS = [
  'field', 'array', 'maxCount', 'fields', 'maxBytes', 'maxFiles', 'maxFields', 'maxParts',
  'maxFieldNameBytes', 'maxFieldBytes', 'accept', 'detectType', 'hash', 'onProgress', 'verify', 'verifyTimeoutMs', 'drain', 'store', 'ttlMs',
] as const satisfies readonly (keyof UploadOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type UploadOptionsListed = NoneLeftOut<Exclude<keyof UploadOptions, (typeof UPLOAD_OPTION_KEYS)[number]>>;
const KNOWN: ReadonlySet<string> = new Set<string>(UPLOAD_OPTION_KEYS);

/**
 * busboy's limits for an upload (the same parser under both adapters). `fileSize` must be given:
 * without it @fastify/multipart cuts every file at Fastify's `bodyLimit` (1 MiB by default),
 * silently (`throwFileSizeLimit: false`), and the route would get a cut file whole. It is one byte
 * past `maxBytes`: a cut file still holds the byte the intake's meter refuses, which owns the
 * limit; the parser's `'limit'` event only refuses sooner (form.ts).
 * @internal
 */
export function busboyLimits(spec: ResolvedUpload): Record<string, number> {
  return {
    fileSize: spec.maxBytes + 1,
    files: spec.maxFiles,
    fields: spec.maxFields,
    parts: spec.maxParts,
    // The parsers flag a name or a value as truncated once it reaches their limit, at the limit
    // itself included: one byte more lets a value of exactly the limit through whole, and the
    // form checks the lengths itself.
    fieldNameSize: spec.maxFieldNameBytes + 1,
    fieldSize: spec.maxFieldBytes + 1,
    // busboy takes 16 KiB of headers per part, always (this is for a parser that reads it, as
    // @fastify/busboy does): a form's largest size follows from its limits (maxBodyBytes()).
    headerSize: PART_HEADER_BYTES,
  };
}

/** The most bytes of headers one part of a form may have (busboy's fixed limit). */
const PART_HEADER_BYTES = 16 * 1024;

/**
 * The most bytes a multipart body can have and still be taken whole under `spec`, for a
 * boundary of `boundaryLength` characters: `maxBytes` for each file the route takes (1 for
 * `field`, `maxCount` for `array`, the sum of the `fields` counts; at most `maxFiles`),
 * `maxFieldBytes` for each of `maxFields` text fields, and for each part (at most `maxParts`,
 * and at most `maxFiles + maxFields`) its delimiter and 16 KiB of headers; then the closing
 * delimiter and 1 KiB for what a client may add (a preamble, an epilogue). Infinity when a limit
 * that counts is Infinity.
 */
function maxBodyBytes(spec: ResolvedUpload, boundaryLength: number): number {
  const times = (count: number, bytes: number) => (count === 0 ? 0 : count * bytes);
  const { files, fields, parts } = formCounts(spec);
  const delimiter = boundaryLength + 8; // CRLF "--" boundary CRLF, and the CRLF that ends the part's headers
  return times(files, spec.maxBytes) + times(fields, spec.maxFieldBytes) + times(parts, delimiter + PART_HEADER_BYTES) + delimiter + 1024;
}

/** How many files, text fields and parts a form within `spec`'s limits can have at most. */
function formCounts(spec: ResolvedUpload): { files: number; fields: number; parts: number } {
  const rule = spec.rule;
  const taken =
    rule.kind === 'single' ? 1
    : rule.kind === 'array' ? rule.maxCount
    : rule.kind === 'fields' ? [...rule.maxCounts.values()].reduce((a, b) => a + b, 0)
    : 0;
  const parts = Math.min(spec.maxParts, spec.maxFiles + spec.maxFields);
  return { files: Math.min(taken, spec.maxFiles, parts), fields: Math.min(spec.maxFields, parts), parts };
}

/**
 * The refusal of a request whose `Content-Length` is past {@link maxBodyBytes}: known from its
 * head, before any of its body is read. Undefined when the length fits or is not declared.
 * @internal
 */
export function declaredLengthRefusal(headers: IncomingHttpHeaders, spec: ResolvedUpload): UploadLimitError | undefined {
  const declared = Number(headers['content-length']);
  if (!Number.isFinite(declared) || headers['transfer-encoding'] !== undefined) return undefined;
  const boundary = /;\s*boundary=(?:"([^"]*)"|([^;\s]*))/i.exec(headers['content-type'] ?? '');
  const max = maxBodyBytes(spec, (boundary?.[1] ?? boundary?.[2] ?? '').length);
  if (declared <= max) return undefined;
  const { files, fields } = formCounts(spec);
  return new UploadLimitError('bodyBytes', max, undefined, declared, { files, maxBytes: spec.maxBytes, fields, maxFieldBytes: spec.maxFieldBytes });
}

/**
 * Validates upload options: once when an Express route is set up, at each call of Fastify's
 * `saveUploads()` (well under a microsecond: cheaper than caching by a new object each time).
 * `defaultDrain` stands in when the options give no `drain`.
 * @internal
 */
export function resolveUploadOptions(
  options: unknown,
  where: string,
  extra: readonly string[] = [],
  defaultDrain: ResolvedDrain = DEFAULT_DRAIN,
): ResolvedUpload {
  validateObject(options, where, extra.length === 0 ? KNOWN : new Set([...KNOWN, ...extra]), "{ field: 'file', maxBytes }");
  // Own properties only: a polluted Object.prototype must not lift `maxBytes` or set `accept` for every upload.
  const o = ownOptions(options as UploadOptions);
  const count = (name: keyof UploadOptions, fallback: number) => countOption(where, name, o[name], fallback);
  const maxFiles = count('maxFiles', 10);
  const accept = o.accept === undefined ? undefined : parseAccept(o.accept); // refused at set-up, not per request
  const hash = o.hash === undefined ? undefined : hashOption(o.hash, `${where}: `); // refused at set-up, not per request
  if (o.onProgress !== undefined) validateFunction(o.onProgress, 'onProgress', 'taking { fieldName, originalName, bytesWritten }', { where });
  const direct = directOption(where, o);
  return {
    rule: fileRule(where, o, maxFiles),
    maxBytes: byteOption(where, 'maxBytes', o.maxBytes, 100 * 1024 * 1024),
    maxFiles,
    maxFields: count('maxFields', 100),
    maxParts: count('maxParts', 1000),
    maxFieldNameBytes: count('maxFieldNameBytes', 100),
    maxFieldBytes: byteOption(where, 'maxFieldBytes', o.maxFieldBytes, 1024 * 1024),
    accept,
    detectType: (o.detectType !== undefined && validateBoolean(o.detectType, 'detectType', { where })) || accept !== undefined,
    hash,
    onProgress: o.onProgress,
    verify: resolveVerify<UploadedFile>(o.verify, o.verifyTimeoutMs, where), // refused at set-up, not per request
    drain: o.drain === undefined ? defaultDrain : resolveDrain(o.drain, where),
    direct,
  };
}

/** `store` and `ttlMs`, checked together: each needs the other; `onProgress` counts disk bytes and `verify` checks a file, and there are none. */
function directOption(where: string, o: UploadOptions): ResolvedUpload['direct'] {
  if (o.store === undefined && o.ttlMs === undefined) return undefined;
  if (o.onProgress !== undefined) {
    throw new InvalidOptionError('onProgress', `${where}: \`onProgress\` reports bytes written to disk, and with \`store\` none are: leave it out, or leave out \`store\`.`);
  }
  if (o.verify !== undefined) {
    throw new InvalidOptionError(
      'verify',
      `${where}: \`verify\` checks the complete file before the route sees it, and with \`store\` there is no file here: the bytes go straight to the store. ` +
        'Leave out `store` to check each file first (then hand it off with file.handoff({ ttlMs, store })), or leave out `verify`.',
    );
  }
  const { store, request } = checkStreamHandoffOptions({ store: o.store, ttlMs: o.ttlMs }, where);
  return { store, ttlMs: request.ttlMs };
}

function fileRule(where: string, o: UploadOptions, maxFiles: number): FileRule {
  const given = (['field', 'array', 'fields'] as const).filter((key) => o[key] !== undefined);
  if (given.length > 1) {
    throw new InvalidOptionError(given[1]!, `${where}: give one of \`field\`, \`array\` and \`fields\`, not ${given.map((g) => `\`${g}\``).join(' and ')}.`);
  }
  if (o.maxCount !== undefined && o.array === undefined) {
    throw new InvalidOptionError('maxCount', `${where}: \`maxCount\` goes with \`array\`; in \`fields\`, give each field its own maxCount.`);
  }
  if (o.field !== undefined) return { kind: 'single', field: fieldName(where, 'field', o.field) };
  if (o.array !== undefined) {
    return { kind: 'array', field: fieldName(where, 'array', o.array), maxCount: countOption(where, 'maxCount', o.maxCount, maxFiles) };
  }
  if (o.fields !== undefined) {
    if (!Array.isArray(o.fields) || o.fields.length === 0) {
      throw new InvalidOptionError('fields', `${where}: \`fields\` must be a non-empty array such as [{ name: 'avatar', maxCount: 1 }], got ${describe(o.fields)}.`);
    }
    const maxCounts = new Map<string, number>();
    for (const [index, spec] of (o.fields as readonly unknown[]).entries()) {
      const s = ownOptions((typeof spec === 'object' && spec !== null ? spec : {}) as UploadFieldSpec);
      const name = fieldName(where, 'fields', s.name);
      if (maxCounts.has(name)) throw new InvalidOptionError('fields', `${where}: the field ${JSON.stringify(name)} is listed twice in \`fields\`.`);
      maxCounts.set(name, countOption(where, 'fields', s.maxCount, 1, `\`fields[${index}].maxCount\``));
    }
    return { kind: 'fields', maxCounts };
  }
  return { kind: 'none' };
}

function fieldName(where: string, option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidOptionError(option, `${where}: \`${option}\` needs a form field name (a non-empty string), got ${describe(value)}.`);
  }
  return value;
}

function countOption(where: string, name: string, value: unknown, fallback: number, label?: string): number {
  return value === undefined ? fallback : validateInteger(value, name, { where, label, min: 0, infinity: true });
}

function byteOption(where: string, name: string, value: unknown, fallback: number): number {
  return value === undefined ? fallback : validateBytes(value, name, { where, infinity: true });
}

/**
 * Checks an adapter's `manager`: a TempFileManager (anything with a `scope()` method); `needed`
 * when the adapter has no default. @internal
 */
export function checkManager(manager: unknown, where: string, needed: boolean): void {
  if (manager === undefined && !needed) return;
  if (typeof (manager as { scope?: unknown } | null | undefined)?.scope === 'function') return;
  throw new InvalidOptionError('manager', `${where} needs \`manager\`, a TempFileManager, such as { manager: new TempFileManager() }; got ${describe(manager)}.`);
}

/**
 * Checks the options of a request scope's middleware or plugin (Express's `tempScope()`, the
 * Fastify plugin): its `manager`, `onDisposeError` and `drain`. @internal
 */
export function resolveScopeOptions<OnDisposeError>(
  manager: unknown,
  options: { readonly onDisposeError?: OnDisposeError; readonly drain?: DrainOptions },
  where: string,
): { onDisposeError: OnDisposeError | undefined; drain: ResolvedDrain } {
  checkManager(manager, where, true);
  const own = ownOptions(options);
  if (own.onDisposeError !== undefined) validateFunction(own.onDisposeError, 'onDisposeError', 'such as (error) => console.error(error)', { where });
  return { onDisposeError: own.onDisposeError, drain: resolveDrain(own.drain, where) };
}

/** The JSON body a client's refused upload is answered with: Fastify's shape, no stack. @internal */
export function refusalBody(error: TempFileError): { statusCode: number; code: string; error: string; message: string } {
  return { statusCode: error.statusCode, code: error.code, error: STATUS_CODES[error.statusCode] ?? 'Client Closed Request', message: error.message };
}
