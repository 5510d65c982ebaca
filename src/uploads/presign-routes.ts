import type { HandoffMeta, HandoffTicket } from '../handoff/ticket.js';
import type {
  ConfirmUploadOptions,
  IntakePart,
  PresignedMultipart,
  PresignedPart,
  PresignedUpload,
  PresignMultipartOptions,
  PresignUploadOptions,
  UploadReceipt,
} from '../s3/intake.js';
import { InvalidOptionError, MalformedUploadError, UploadReceiptError } from '../base/errors.js';
import { describe, validateNamePart } from '../base/names.js';
import { MAX_TIMER_MS, ownOptions, validateDuration, validateFunction, validateInteger, validateObject, type NoneLeftOut } from '../base/validators.js';
import { parseAccept } from '../write/sniff.js';
import { resolveVerify } from '../write/verify.js';

// The routes a browser uploads to a bucket through, in the shape `@uppy/aws-s3` speaks to a
// Companion server (`companionEndpoint`): what they read from a request, what they call on the
// store and what they answer, the same for Express and Fastify (express.ts and fastify.ts route
// them and send the answers). Only types come from s3/: the store is the caller's, so that
// loading these routes loads no AWS SDK.

/**
 * What the routes need of a store: {@link S3Store} from `tempfile-manager/s3` is one. Any object
 * with these methods, answering as S3Store's do, serves.
 */
export interface PresignStore {
  /** `S3Store.presignUpload`. */
  readonly presignUpload: (options: PresignUploadOptions) => Promise<PresignedUpload>;
  /** `S3Store.presignMultipart`. */
  readonly presignMultipart: (options: PresignMultipartOptions) => Promise<PresignedMultipart>;
  /** `S3Store.signPart`. */
  readonly signPart: (part: { key: string; uploadId: string; partNumber: number; size?: number }) => Promise<PresignedPart>;
  /** `S3Store.listParts`. */
  readonly listParts: (upload: { key: string; uploadId: string }) => Promise<IntakePart[]>;
  /** `S3Store.completeMultipart`. */
  readonly completeMultipart: (upload: { key: string; uploadId: string; parts: readonly IntakePart[] }) => Promise<{
    /** The receipt's key, to confirm. */
    key: string;
  }>;
  /** `S3Store.abortMultipart`. */
  readonly abortMultipart: (upload: { key: string; uploadId: string }) => Promise<void>;
  /** `S3Store.confirmUpload`. */
  readonly confirmUpload: (receipt: UploadReceipt, options: ConfirmUploadOptions) => Promise<HandoffTicket>;
}

/** What the browser declared of a file it asks to upload: untrusted, for the `meta` hook to read. */
export interface DeclaredFile {
  /** The file's name as the browser sent it (`filename`), at most 1024 characters; `''` when none. */
  readonly filename: string;
  /** Its declared type, lowercased, without parameters (`type`); `undefined` when none or `application/octet-stream`. */
  readonly type: string | undefined;
  /** Uppy's `metadata[...]` fields, strings only (at most 32, each at most 1024 characters). */
  readonly metadata: Readonly<Record<string, string>>;
}

/** Options of the presign routes (Express's `presignUploads()`, Fastify's `presignUploads` plugin). */
export interface PresignRoutesOptions<Request> {
  /** The store the browser uploads to: an `S3Store` (`s3Store({ client, bucket })`). */
  readonly store: PresignStore;
  /** The most bytes one upload may have: a whole number from 1 to 5 GiB. The bucket refuses a larger POST; a multipart upload's parts over it are refused at completion (413). */
  readonly maxBytes: number;
  /** The MIME types or patterns (`['image/*']`) an upload's bytes must be of, sniffed at confirmation (415); a declared type outside them is refused at once (415). */
  readonly accept?: readonly string[];
  /** How long a presign, and an upload never confirmed, live: whole milliseconds from 1000 to 7 days. @default 900000 (15 minutes) */
  readonly ttlMs?: number;
  /** The ticket's `suffix`, such as `'.png'`. @default '' */
  readonly suffix?: string;
  /**
   * The ticket's `meta` for this upload, from the request (the user's id, say): small JSON, the
   * API's, never the browser's. `file` is what the browser declared, untrusted. A throw fails the
   * request (500).
   */
  readonly meta?: (request: Request, file: DeclaredFile) => HandoffMeta | undefined | PromiseLike<HandoffMeta | undefined>;
}

/** Options of `confirmUpload()`: those of `S3Store.confirmUpload`, and the store. */
export interface ConfirmRouteOptions {
  /** The store the browser uploaded to. */
  readonly store: PresignStore;
  /** How long the ticket lives unclaimed: whole milliseconds from 1 to 2^31 - 1. */
  readonly ttlMs: number;
  /** Checks the object before it becomes a ticket, as `S3Store.confirmUpload`'s `verify`: a refusal is a 422, a throw or the timeout a 503. */
  readonly verify?: ConfirmUploadOptions['verify'];
  /** How long `verify` may take. @default 60000 */
  readonly verifyTimeoutMs?: number;
}

const PRESIGN_ROUTE_KEYS = ['store', 'maxBytes', 'accept', 'ttlMs', 'suffix', 'meta'] as const;
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type PresignRouteOptionsListed = NoneLeftOut<Exclude<keyof PresignRoutesOptions<unknown>, (typeof PRESIGN_ROUTE_KEYS)[number]>>;
const CONFIRM_ROUTE_KEYS = ['store', 'ttlMs', 'verify', 'verifyTimeoutMs'] as const;
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type ConfirmRouteOptionsListed = NoneLeftOut<Exclude<keyof ConfirmRouteOptions, (typeof CONFIRM_ROUTE_KEYS)[number]>>;

const STORE_METHODS = ['presignUpload', 'presignMultipart', 'signPart', 'listParts', 'completeMultipart', 'abortMultipart', 'confirmUpload'] as const;
const MAX_INTAKE_BYTES = 5 * 1024 ** 3;
const MAX_PRESIGN_MS = 7 * 24 * 3_600_000;
const MIME = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;
const MAX_TEXT = 1024;
const MAX_METADATA = 32;
const MAX_PARTS = 10_000;
/** The largest JSON body the routes read: a completion of 10,000 parts fits. */
export const MAX_JSON_BYTES = 1024 * 1024;

/** The presign routes' options, checked once when the routes are made. */
interface PresignRoutes<Request> {
  readonly store: PresignStore;
  readonly terms: Omit<PresignMultipartOptions, 'meta' | 'contentType'>;
  readonly meta: PresignRoutesOptions<Request>['meta'];
}

/** Checks the presign routes' options (`where`: the call that makes them). @internal */
export function resolvePresignRoutes<Request>(options: PresignRoutesOptions<Request>, where: string): PresignRoutes<Request> {
  validateObject(options, where, new Set(PRESIGN_ROUTE_KEYS), '{ store, maxBytes: 20 * 1024 ** 2, accept: [\'image/*\'] }');
  if (options === undefined || options === null) throw new InvalidOptionError('store', `${where} needs { store, maxBytes }: the S3Store the browser uploads to, and the most bytes an upload may have.`);
  const own = ownOptions(options);
  const store = checkStore(own.store, where);
  if (own.maxBytes === undefined) throw new InvalidOptionError('maxBytes', `${where} needs \`maxBytes\`: the most bytes the browser may upload, such as 20 * 1024 ** 2.`);
  const maxBytes = validateInteger(own.maxBytes, 'maxBytes', { where, min: 1, max: MAX_INTAKE_BYTES, unit: 'bytes', note: '(5 GiB, the most one CopyObject copies)' });
  const accept = own.accept === undefined ? undefined : parseAccept(own.accept);
  const ttlMs = own.ttlMs === undefined ? undefined : validateDuration(own.ttlMs, 'ttlMs', { min: 1000, max: MAX_PRESIGN_MS }, { where });
  const suffix = own.suffix === undefined ? undefined : validateNamePart(own.suffix, 'suffix');
  const meta = own.meta === undefined ? undefined : validateFunction<NonNullable<PresignRoutesOptions<Request>['meta']>>(own.meta, 'meta', 'such as (req) => ({ user: req.user.id })', { where });
  return { store, terms: { maxBytes, ...(accept && { accept }), ...(ttlMs !== undefined && { ttlMs }), ...(suffix !== undefined && { suffix }) }, meta };
}

/** The confirmation's options, checked once. */
interface ConfirmRoute {
  readonly store: PresignStore;
  readonly options: ConfirmUploadOptions;
}

/** Checks `confirmUpload()`'s options. @internal */
export function resolveConfirmRoute(options: ConfirmRouteOptions, where: string): ConfirmRoute {
  validateObject(options, where, new Set(CONFIRM_ROUTE_KEYS), '{ store, ttlMs: 3_600_000 }');
  if (options === undefined || options === null) throw new InvalidOptionError('store', `${where} needs { store, ttlMs }: the S3Store the browser uploaded to, and how long the ticket lives unclaimed.`);
  const own = ownOptions(options);
  const store = checkStore(own.store, where);
  if (own.ttlMs === undefined) throw new InvalidOptionError('ttlMs', `${where} needs \`ttlMs\`: how long the ticket lives unclaimed, in milliseconds, such as 3_600_000.`);
  const ttlMs = validateDuration(own.ttlMs, 'ttlMs', { min: 1, max: MAX_TIMER_MS }, { where });
  resolveVerify(own.verify, own.verifyTimeoutMs, where); // checked here; the store resolves it again
  return { store, options: { ttlMs, ...(own.verify !== undefined && { verify: own.verify }), ...(own.verifyTimeoutMs !== undefined && { verifyTimeoutMs: own.verifyTimeoutMs }) } };
}

function checkStore(store: unknown, where: string): PresignStore {
  const missing = STORE_METHODS.filter((name) => typeof (store as Record<string, unknown> | null | undefined)?.[name] !== 'function');
  if (typeof store !== 'object' || store === null || missing.length > 0) {
    throw new InvalidOptionError('store', `${where}: \`store\` must be an S3Store, such as s3Store({ client, bucket }) of tempfile-manager/s3; got ${describe(store)}${typeof store === 'object' && store !== null ? ` (without ${missing.join(', ')})` : ''}.`);
  }
  return store as PresignStore;
}

// --- what the routes read from a request ---

/** The file a presign is asked for: Uppy's `filename`, `type` and `metadata[...]` (a query or a JSON body). */
function readDeclaredFile(source: unknown): DeclaredFile {
  const from = (typeof source === 'object' && source !== null ? source : {}) as Record<string, unknown>;
  const filename = text(from.filename, 'filename') ?? '';
  const declared = text(from.type, 'type');
  const bare = declared === undefined ? '' : (declared.split(';')[0] ?? '').trim().toLowerCase();
  // No type, or the one that says none (Uppy's for a file the browser could not type): the bytes decide.
  const type = bare === '' || bare === 'application/octet-stream' ? undefined : bare;
  if (type !== undefined && !MIME.test(type)) {
    throw new MalformedUploadError('malformed', `the type must be a MIME type such as 'image/png' (the file's type), or none; got ${describe(declared)}.`, { field: 'type' });
  }
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const add = (name: string, value: unknown) => {
    if (typeof value !== 'string' || name.length > MAX_TEXT || value.length > MAX_TEXT || Object.keys(metadata).length >= MAX_METADATA) return;
    metadata[name] = value;
  };
  const nested = from.metadata;
  if (typeof nested === 'object' && nested !== null && !Array.isArray(nested)) for (const [name, value] of Object.entries(nested)) add(name, value);
  for (const [name, value] of Object.entries(from)) {
    const field = /^metadata\[([^\]]+)\]$/.exec(name)?.[1];
    if (field !== undefined) add(field, value);
  }
  return { filename, type, metadata };
}

function text(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > MAX_TEXT) {
    throw new MalformedUploadError('malformed', `\`${name}\` must be one string of at most ${MAX_TEXT} characters; got ${describe(value)}.`, { field: name });
  }
  return value;
}

/** A multipart upload named by the request: the path's upload id and the query's `key`. */
function readUpload(uploadId: unknown, query: unknown): { key: string; uploadId: string } {
  const key = (typeof query === 'object' && query !== null ? (query as Record<string, unknown>).key : undefined) as unknown;
  if (typeof key !== 'string' || key === '' || key.length > MAX_TEXT) {
    throw new UploadReceiptError('malformed', `the request needs ?key= with the key createMultipartUpload gave; got ${describe(key)}.`);
  }
  if (typeof uploadId !== 'string' || uploadId === '' || uploadId.length > MAX_TEXT) {
    throw new UploadReceiptError('malformed', `the path needs the upload id createMultipartUpload gave; got ${describe(uploadId)}.`);
  }
  return { key, uploadId };
}

/** A part's number from the path: a whole number from 1 to 10000. */
function readPartNumber(value: unknown): number {
  const number = typeof value === 'string' && /^[1-9][0-9]{0,4}$/.test(value) ? Number(value) : Number.NaN;
  if (!(number >= 1 && number <= MAX_PARTS)) {
    throw new UploadReceiptError('malformed', `the part number must be a whole number from 1 to ${MAX_PARTS}; got ${describe(value)}.`);
  }
  return number;
}

/** The parts of a completion's JSON body, `{ parts: [{ PartNumber, ETag }] }`; the store checks each. */
function readParts(body: unknown): IntakePart[] {
  const parts = typeof body === 'object' && body !== null ? (body as { parts?: unknown }).parts : undefined;
  if (!Array.isArray(parts)) {
    throw new UploadReceiptError('malformed', `the body must be JSON { "parts": [{ "PartNumber": 1, "ETag": "..." }] }, one for each part uploaded; got ${describe(body)}.`);
  }
  return parts as IntakePart[];
}

// --- what the routes answer ---

/** `GET|POST /s3/params`: a POST presign for one file, `{ method, url, fields, headers, key, expiresAt }`. */
async function presignParams<Request>(routes: PresignRoutes<Request>, request: Request, source: unknown): Promise<PresignedUpload> {
  return routes.store.presignUpload({ ...(await presignTerms(routes, request, source)), method: 'POST' });
}

/** `POST /s3/multipart`: a multipart upload begun, `{ key, uploadId, expiresAt }`. */
async function createMultipart<Request>(routes: PresignRoutes<Request>, request: Request, body: unknown): Promise<PresignedMultipart> {
  return routes.store.presignMultipart(await presignTerms(routes, request, body));
}

/** The routes' terms for the file `source` declares: its type, and the `meta` the app gives it. */
async function presignTerms<Request>(routes: PresignRoutes<Request>, request: Request, source: unknown): Promise<PresignMultipartOptions> {
  const file = readDeclaredFile(source);
  const meta = routes.meta === undefined ? undefined : await routes.meta(request, file);
  return { ...routes.terms, ...(file.type !== undefined && { contentType: file.type }), ...(meta !== undefined && { meta }) };
}

/** `GET /s3/multipart/:uploadId/:partNumber?key=`: `{ url, headers, expires (seconds), expiresAt }`. */
async function signPartRoute(store: PresignStore, uploadId: unknown, partNumber: unknown, query: unknown): Promise<PresignedPart & { expires: number }> {
  const upload = readUpload(uploadId, query);
  const signed = await store.signPart({ ...upload, partNumber: readPartNumber(partNumber) });
  return { ...signed, expires: Math.max(0, Math.floor((signed.expiresAt - Date.now()) / 1000)) };
}

/** `GET /s3/multipart/:uploadId?key=`: the parts uploaded so far, `[{ PartNumber, ETag, Size }]`. */
function listPartsRoute(store: PresignStore, uploadId: unknown, query: unknown): Promise<IntakePart[]> {
  return store.listParts(readUpload(uploadId, query));
}

/** `POST /s3/multipart/:uploadId/complete?key=` with `{ parts }`: `{ location, key }`, the location being the receipt's key. */
async function completeRoute(store: PresignStore, uploadId: unknown, query: unknown, body: unknown): Promise<{ location: string; key: string }> {
  const upload = readUpload(uploadId, query);
  const { key } = await store.completeMultipart({ ...upload, parts: readParts(body) });
  return { location: key, key };
}

/** `DELETE /s3/multipart/:uploadId?key=`: `{}` once its parts and its record are gone. */
async function abortRoute(store: PresignStore, uploadId: unknown, query: unknown): Promise<Record<string, never>> {
  await store.abortMultipart(readUpload(uploadId, query));
  return {};
}

/** The confirmation: the body's `{ key }` made a ticket, or the refusal the store threw. */
export function confirmRoute(route: ConfirmRoute, body: unknown): Promise<HandoffTicket> {
  return route.store.confirmUpload(body as UploadReceipt, route.options);
}

/** The routes' names. */
type RouteName = 'params' | 'create' | 'sign' | 'list' | 'complete' | 'abort';

/** A route a request names: `uploadId` and `partNumber` from its path (`''` where it has none). */
interface MatchedRoute {
  readonly name: RouteName;
  readonly uploadId: string;
  readonly partNumber: string;
}

/** The routes as a router registers them: method, path below the mount point, and name. @internal */
export const PRESIGN_PATHS = [
  ['GET', '/s3/params', 'params'],
  ['POST', '/s3/params', 'params'],
  ['POST', '/s3/multipart', 'create'],
  ['GET', '/s3/multipart/:uploadId/:partNumber', 'sign'],
  ['GET', '/s3/multipart/:uploadId', 'list'],
  ['POST', '/s3/multipart/:uploadId/complete', 'complete'],
  ['DELETE', '/s3/multipart/:uploadId', 'abort'],
] as const satisfies readonly (readonly [string, string, RouteName])[];

/** What a request to the routes is: its method, query and JSON body (read only by the routes that take one). */
interface RouteRequest<Request> {
  readonly request: Request;
  readonly method: string;
  readonly query: unknown;
  readonly body: () => unknown;
}

/** The answer of `route` to a request, or the refusal it throws. @internal */
export async function answerRoute<Request>(routes: PresignRoutes<Request>, route: MatchedRoute, { request, method, query, body }: RouteRequest<Request>): Promise<unknown> {
  switch (route.name) {
    case 'params':
      return presignParams(routes, request, method === 'POST' ? await body() : query);
    case 'create':
      return createMultipart(routes, request, await body());
    case 'sign':
      return signPartRoute(routes.store, route.uploadId, route.partNumber, query);
    case 'list':
      return listPartsRoute(routes.store, route.uploadId, query);
    case 'complete':
      return completeRoute(routes.store, route.uploadId, query, await body());
    case 'abort':
      return abortRoute(routes.store, route.uploadId, query);
  }
}

/** The route `method` and `path` (below the mount point) name, or `undefined` (not one of these routes). @internal */
export function matchRoute(method: string, path: string): MatchedRoute | undefined {
  const segments = path.split('/').filter((s, i) => i > 0 || s !== '');
  if (segments.at(-1) === '') segments.pop();
  if (segments[0] !== 's3') return undefined;
  let decoded: string[];
  try {
    decoded = segments.slice(1).map((s) => decodeURIComponent(s));
  } catch {
    throw new UploadReceiptError('malformed', `the path ${describe(path)} is not a valid URL path: encode the upload id with encodeURIComponent.`);
  }
  const [first, second, third, ...rest] = decoded;
  if (rest.length > 0) return undefined;
  const named = (name: RouteName) => ({ name, uploadId: second ?? '', partNumber: third ?? '' });
  if (first === 'params' && second === undefined && (method === 'GET' || method === 'POST')) return named('params');
  if (first !== 'multipart') return undefined;
  if (second === undefined) return method === 'POST' ? named('create') : undefined;
  if (third === undefined) return method === 'GET' ? named('list') : method === 'DELETE' ? named('abort') : undefined;
  if (third === 'complete' && method === 'POST') return named('complete');
  return method === 'GET' ? named('sign') : undefined;
}
