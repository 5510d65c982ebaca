import type * as ClientModule from '@aws-sdk/client-s3';
import type * as StorageModule from '@aws-sdk/lib-storage';
import type { S3Client } from '@aws-sdk/client-s3';
import { isTempFileError, StoreError, TempFileError } from '../base/errors.js';
import { loadPeer } from '../base/peer.js';
import { randomName } from '../base/random-name.js';
import { probeKey, shownKey } from './keys.js';
import { builtin } from '../base/builtin.js';
const { Readable, Transform } = builtin('node:stream');
type Readable = import('node:stream').Readable;
const { pipeline } = builtin('node:stream/promises');

// Every request the store makes, in one place: the SDK loaded on first use (never by the core),
// a timeout on each request, and each failure turned into a typed error that names the endpoint
// and the bucket and never a credential (the SDK's own message and request are not carried).

type Sdk = typeof ClientModule;
type Storage = typeof StorageModule;

let sdk: Promise<Sdk> | undefined;
let storage: Promise<Storage> | undefined;

function loadSdk(): Promise<Sdk> {
  return (sdk ??= loadPeer('@aws-sdk/client-s3', 'tempfile-manager/s3', () => import('@aws-sdk/client-s3')));
}

function loadStorage(): Promise<Storage> {
  return (storage ??= loadPeer('@aws-sdk/lib-storage', 'tempfile-manager/s3', () => import('@aws-sdk/lib-storage')));
}

/** An object's text and its ETag. */
export interface TextObject {
  readonly etag: string;
  readonly text: string;
}

/** A listed object. */
export interface ListedObject {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
}

/** The condition of a write: create only (`If-None-Match: *`), or replace only this ETag (`If-Match`). */
export type WriteCondition = { readonly create: true } | { readonly ifMatch: string };

/**
 * The requests the object-store engine (store.ts, lease.ts, claim.ts, direct.ts) makes of a store:
 * {@link StoreIo} for S3, and any other store with conditional writes (`src/azure/io.ts`). A failed
 * request rejects with an error of the S3 SDK's shape, `{ name, code, $metadata: { httpStatusCode } }`
 * (412 `PreconditionFailed` for a refused condition, 404 for a missing key, 404 `NoSuchBucket`, no
 * status when no answer came), which {@link isConditionFailed}, {@link isNotFound} and
 * {@link mayHaveLanded} read; {@link ObjectIo.failure} turns it into the typed error callers get.
 */
export interface ObjectIo {
  /** The bucket (or container) as heartbeats and messages name it. */
  readonly bucket: string;
  readonly timeoutMs: number;
  readonly partSize: number;
  /**
   * True when a stream of known size goes up in one request as it is read ({@link upload}), so
   * that reading a small file whole first ({@link putBytes}) only delays its sending.
   */
  readonly streamsKnownSize: boolean;
  failure(err: unknown, action: string): Promise<TempFileError>;
  put(key: string, body: string, condition: WriteCondition, metadata?: Record<string, string>): Promise<string>;
  getText(key: string): Promise<TextObject | undefined>;
  getStream(key: string): Promise<{ body: Readable; metadata: Record<string, string> }>;
  copy(from: string, to: string): Promise<void>;
  delete(key: string): Promise<void>;
  list(prefix: string): AsyncGenerator<ListedObject[]>;
  uploads(prefix: string): Promise<{ key: string; uploadId: string }[]>;
  putPlain(key: string, body: string): Promise<void>;
  createUpload(key: string, metadata: Record<string, string>): Promise<string>;
  uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, signal: AbortSignal): Promise<string>;
  completeUpload(key: string, uploadId: string, parts: readonly { ETag: string; PartNumber: number }[]): Promise<void>;
  abortUpload(key: string, uploadId: string): Promise<void>;
  putBytes(key: string, body: Buffer, metadata: Record<string, string>, sha256?: string): Promise<void>;
  /** `size`, when known: the bytes `body` will give (a store may then send them in one request). */
  upload(key: string, body: Readable, metadata: Record<string, string>, size?: number): Promise<void>;
}

/** What an S3 answer was, without its message (which may quote the request). */
interface S3Failure {
  readonly name: string | undefined;
  readonly status: number | undefined;
  readonly code: string | undefined;
}

function failureOf(err: unknown): S3Failure {
  if (typeof err !== 'object' || err === null) return { name: undefined, status: undefined, code: undefined };
  const e = err as { name?: unknown; code?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: unknown } };
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  const name = typeof e.name === 'string' ? e.name : undefined;
  const code = typeof e.code === 'string' ? e.code : typeof e.Code === 'string' ? e.Code : undefined;
  return { name, status, code };
}

/** A conditional write refused: 412 Precondition Failed, or 409 for a conflicting one in flight. */
export function isConditionFailed(err: unknown): boolean {
  const { name, status } = failureOf(err);
  return status === 412 || name === 'PreconditionFailed' || (status === 409 && name === 'ConditionalRequestConflict');
}

/**
 * The store failed the request (5xx, after the client's own retries). Ceph RGW answers 500 to a
 * conditional write that raced another on the same key (ECANCELED): whether it landed is found by
 * reading the object.
 */
export function isServerError(err: unknown): boolean {
  const { status } = failureOf(err);
  return status !== undefined && status >= 500;
}

/**
 * A write that failed in a way that may have let it land: the store failed it (5xx), or no answer
 * came (a connection lost, a timeout). Whether it landed is found by reading the object.
 */
export function mayHaveLanded(err: unknown): boolean {
  return isServerError(err) || failureOf(err).status === undefined;
}

/** No such key. */
/** The parts a multipart completion listed are not the upload's (a wrong ETag, a part never sent, one too small): the client's input. */
export function isRefusedParts(err: unknown): boolean {
  const { name, status } = failureOf(err);
  return status === 400 && (name === 'InvalidPart' || name === 'InvalidPartOrder' || name === 'EntityTooSmall');
}

export function isNotFound(err: unknown): boolean {
  const { name, status } = failureOf(err);
  return status === 404 && name !== 'NoSuchBucket';
}

const PAYLOAD_SHA256 = 'x-amz-content-sha256';

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET']);

/** The bucket, its endpoint and the SDK: what every request of one store uses. */
export class StoreIo implements ObjectIo {
  readonly bucket: string;
  readonly timeoutMs: number;
  readonly partSize: number;
  // A PutObject of a Buffer carries its SHA-256, which the store checks before the object lands.
  readonly streamsKnownSize = false;
  private readonly client: S3Client;
  private readonly prefix: string;
  private shownEndpoint: string | undefined;
  private etagForm: Promise<'quoted' | 'bare'> | undefined;

  constructor(client: S3Client, bucket: string, prefix: string, timeoutMs: number, partSize: number) {
    this.client = client;
    this.bucket = bucket;
    this.prefix = prefix;
    this.timeoutMs = timeoutMs;
    this.partSize = partSize;
  }

  /** The endpoint as scheme, host, port and path: never a credential (the SDK keeps those apart). */
  async endpoint(): Promise<string> {
    if (this.shownEndpoint !== undefined) return this.shownEndpoint;
    let shown = 'the default AWS S3 endpoint';
    try {
      const provider: unknown = this.client.config.endpoint;
      if (typeof provider === 'function') {
        const found: unknown = await (provider as () => Promise<unknown>)();
        if (typeof found === 'object' && found !== null) {
          const e = found as { protocol?: unknown; hostname?: unknown; port?: unknown; path?: unknown; url?: unknown };
          if (e.url instanceof URL) shown = `${e.url.protocol}//${e.url.host}${e.url.pathname === '/' ? '' : e.url.pathname}`;
          else if (typeof e.hostname === 'string') {
            const protocol = typeof e.protocol === 'string' ? e.protocol.replace(/:?$/, ':') : 'https:';
            const port = typeof e.port === 'number' ? `:${e.port}` : '';
            const path = typeof e.path === 'string' && e.path !== '/' ? e.path : '';
            shown = `${protocol}//${e.hostname}${port}${path}`;
          }
        }
      } else {
        const region: unknown = await this.client.config.region();
        if (typeof region === 'string') shown = `https://s3.${region}.amazonaws.com`;
      }
    } catch {
      // the default stays
    }
    this.shownEndpoint = shown;
    return shown;
  }

  /** A typed error for a failed request: the store unreachable, refusing, or answering otherwise. */
  async failure(err: unknown, action: string): Promise<TempFileError> {
    if (isTempFileError(err)) return err;
    const endpoint = await this.endpoint();
    const { name, status, code } = failureOf(err);
    const where = `the object store at ${endpoint} (bucket "${this.bucket}")`;
    if (status === undefined) {
      const why =
        name === 'TimeoutError' || name === 'AbortError'
          ? `no answer within ${this.timeoutMs} ms`
          : code !== undefined && NETWORK_CODES.has(code)
            ? code
            : name !== undefined && NETWORK_CODES.has(name)
              ? name
              : `no HTTP answer${name ? `: ${name}` : ''}`;
      return new StoreError(
        'unreachable',
        `Could not ${action}: ${where} did not answer (${why}). Check that it runs and that the client's endpoint is right; raise s3Store({ timeoutMs }) for a slow link.`,
        { endpoint },
      );
    }
    if (status === 403 || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'AccessDenied') {
      return new StoreError(
        'denied',
        `Could not ${action}: ${where} refused the client's credentials (${name ?? 'HTTP 403'}). Give the client credentials that may read, write, list and delete objects in the bucket.`,
        { endpoint, s3Code: name, httpStatus: status },
      );
    }
    if (name === 'NoSuchBucket') {
      return new StoreError('no-bucket', `Could not ${action}: ${where} has no such bucket. Create it, or pass s3Store({ bucket }) an existing one.`, {
        endpoint,
        s3Code: name,
        httpStatus: status,
      });
    }
    return new StoreError('failed', `Could not ${action}: ${where} answered HTTP ${status}${name ? ` ${name}` : ''}. Retry; if it persists, see the store's logs.`, {
      endpoint,
      s3Code: name,
      httpStatus: status,
    });
  }

  private options(): { abortSignal: AbortSignal } {
    return { abortSignal: timeoutSignal(this.timeoutMs) };
  }

  /**
   * Writes a small object under a condition, with `metadata` (user metadata, ASCII) if given;
   * resolves with its new ETag. Rejects with the SDK's error (see {@link isConditionFailed}).
   */
  async put(key: string, body: string, condition: WriteCondition, metadata?: Record<string, string>): Promise<string> {
    const conditional = 'create' in condition ? { IfNoneMatch: '*' } : { IfMatch: await this.ifMatch(condition.ifMatch) };
    return this.rawPut(key, body, conditional, metadata);
  }

  private async rawPut(key: string, body: string, conditional: { IfNoneMatch: string } | { IfMatch: string }, metadata?: Record<string, string>): Promise<string> {
    const { PutObjectCommand } = await loadSdk();
    const out = await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/json', ...conditional, ...(metadata && { Metadata: metadata }) }),
      this.options(),
    );
    if (!out.ETag) throw new StoreError('failed', `The object store gave no ETag for ${shownKey(this.prefix, key)}: a store without ETags cannot hold a lease.`);
    return out.ETag;
  }

  /**
   * The ETag as this store compares it in a PutObject's If-Match. AWS S3 takes the quoted ETag it
   * sent; Ceph RGW 16 refuses it (412) and takes it bare. Which one is found once per store, on an
   * object of its own under the prefix (keys.ts `probeKey`, deleted after): a refused
   * write must mean another writer, never a quoting habit. The same probe checks that a second
   * create (If-None-Match: *) is refused: a store that ignores conditions cannot hold a lease.
   */
  private async ifMatch(etag: string): Promise<string> {
    this.etagForm ??= this.probeEtagForm();
    this.etagForm.catch(() => (this.etagForm = undefined)); // a failed probe is tried again
    const bare = etag.replace(/^"(.*)"$/, '$1');
    return (await this.etagForm) === 'bare' ? bare : `"${bare}"`;
  }

  private async probeEtagForm(): Promise<'quoted' | 'bare'> {
    const key = probeKey(this.prefix, randomName(), Date.now());
    try {
      const etag = await this.rawPut(key, 'probe', { IfNoneMatch: '*' });
      try {
        await this.rawPut(key, 'probe again', { IfNoneMatch: '*' });
        throw new StoreError(
          'failed',
          `The object store at ${await this.endpoint()} (bucket "${this.bucket}") ignores If-None-Match on PutObject: it cannot hold a lease. Use a store that honours conditional writes (docs/s3.md).`,
        );
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
      const quoted = `"${etag.replace(/^"(.*)"$/, '$1')}"`;
      try {
        await this.rawPut(key, 'probe 2', { IfMatch: quoted });
        return 'quoted';
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
      try {
        await this.rawPut(key, 'probe 3', { IfMatch: quoted.slice(1, -1) });
        return 'bare';
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
        throw new StoreError('failed', `The object store at ${await this.endpoint()} (bucket "${this.bucket}") refuses a PutObject with If-Match on the current ETag: it cannot hold a lease.`);
      }
    } finally {
      await this.delete(key).catch(() => {});
    }
  }

  /** Reads a small object; `undefined` when there is none. */
  async getText(key: string): Promise<TextObject | undefined> {
    const { GetObjectCommand } = await loadSdk();
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), this.options());
      const text = out.Body ? await out.Body.transformToString() : '';
      return { etag: out.ETag ?? '', text };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The object's bytes as a stream, with its user metadata (keys in lower case) and its ETag. */
  async getStream(key: string): Promise<{ body: Readable; metadata: Record<string, string>; etag: string }> {
    const { GetObjectCommand } = await loadSdk();
    // `timeoutMs` bounds the wait for the answer's headers, then each wait for the body's next
    // bytes: a download that keeps moving takes as long as its bytes take, a stalled one stops.
    const stop = new AbortController();
    let timer = setTimeout(() => stop.abort(timeoutError(this.timeoutMs)), this.timeoutMs);
    let out: ClientModule.GetObjectCommandOutput;
    try {
      out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: stop.signal });
    } finally {
      clearTimeout(timer);
    }
    const body: unknown = out.Body;
    if (!(body instanceof Readable)) throw new StoreError('failed', `The object store sent ${shownKey(this.prefix, key)} as something that is not a Node.js stream.`);
    // One timer for the whole body, re-armed by each chunk (refresh() allocates nothing).
    clearTimeout(timer);
    timer = setTimeout(() => {
      stop.abort(); // the socket goes
      watched.destroy(timeoutError(this.timeoutMs));
    }, this.timeoutMs);
    const idle = (): void => {
      timer.refresh();
    };
    const watched = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        idle();
        done(null, chunk);
      },
    });
    idle();
    // Registered before pipeline()'s own listener: the error `watched` ends with is the kind of
    // the body's failure, never the SDK's error itself (its message may quote the request).
    body.once('error', (err: unknown) => watched.destroy(brokenOff(err)));
    pipeline(body, watched).then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
    return { body: watched, metadata: out.Metadata ?? {}, etag: out.ETag ?? '' };
  }

  /** Copies an object within the bucket, its metadata with it. Rejects with the SDK's error (404 when `from` is gone). */
  async copy(from: string, to: string): Promise<void> {
    const { CopyObjectCommand } = await loadSdk();
    await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: `${this.bucket}/${encodeURIComponent(from).replace(/%2F/g, '/')}` }), this.options());
  }

  /** An object's size, ETag and type; `undefined` when there is none. */
  async head(key: string): Promise<{ size: number; etag: string; contentType: string | undefined } | undefined> {
    const { HeadObjectCommand } = await loadSdk();
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), this.options());
      return { size: out.ContentLength ?? 0, etag: out.ETag ?? '', contentType: out.ContentType };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Copies an object within the bucket with new user metadata (the store's own, none of the source's); resolves with the copy's ETag. Rejects with the SDK's error (404 when `from` is gone). */
  async copyAs(from: string, to: string, metadata: Record<string, string>): Promise<string> {
    const { CopyObjectCommand } = await loadSdk();
    const source = `${this.bucket}/${encodeURIComponent(from).replace(/%2F/g, '/')}`;
    const out = await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: source, MetadataDirective: 'REPLACE', Metadata: metadata }), this.options());
    return out.CopyObjectResult?.ETag ?? '';
  }

  /** The parts a multipart upload holds so far. */
  async parts(key: string, uploadId: string): Promise<{ partNumber: number; etag: string; size: number }[]> {
    const { ListPartsCommand } = await loadSdk();
    const found: { partNumber: number; etag: string; size: number }[] = [];
    let marker: string | undefined;
    for (;;) {
      const out = await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }), this.options());
      for (const part of out.Parts ?? []) if (part.PartNumber !== undefined) found.push({ partNumber: part.PartNumber, etag: part.ETag ?? '', size: part.Size ?? 0 });
      if (!out.IsTruncated) return found;
      marker = out.NextPartNumberMarker;
    }
  }

  /** The caller's client, for the presigners (presign.ts), which sign with its credentials and never read them. */
  get signingClient(): S3Client {
    return this.client;
  }

  /** Deletes an object (a missing one is fine). */
  async delete(key: string): Promise<void> {
    const { DeleteObjectCommand } = await loadSdk();
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), this.options());
  }

  /** Every object under `prefix`, page by page. */
  async *list(prefix: string): AsyncGenerator<ListedObject[]> {
    const { ListObjectsV2Command } = await loadSdk();
    let token: string | undefined;
    do {
      const out = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }), this.options());
      yield (out.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [{ key: o.Key, size: o.Size ?? 0, etag: o.ETag ?? '' }]));
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  /** Multipart uploads begun under `prefix` and never completed nor aborted. */
  async uploads(prefix: string): Promise<{ key: string; uploadId: string }[]> {
    const { ListMultipartUploadsCommand } = await loadSdk();
    const found: { key: string; uploadId: string }[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const out = await this.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        this.options(),
      );
      for (const u of out.Uploads ?? []) if (u.Key !== undefined && u.UploadId !== undefined) found.push({ key: u.Key, uploadId: u.UploadId });
      if (!out.IsTruncated) return found;
      keyMarker = out.NextKeyMarker;
      uploadIdMarker = out.NextUploadIdMarker;
    }
  }

  /**
   * The client as lib-storage's Upload gets it: each of its requests (the upload's creation, each
   * part, the completion, an abort) bounded by `timeoutMs`, as every other request of the store,
   * together with the Upload's own abort. Everything else is the caller's client.
   */
  private eachRequestTimed(): S3Client {
    const timeoutMs = this.timeoutMs;
    return new Proxy(this.client, {
      get(target, property) {
        if (property !== 'send') return Reflect.get(target, property, target) as unknown;
        return (command: Parameters<S3Client['send']>[0], options?: { abortSignal?: AbortSignal }) => {
          const timeout = timeoutSignal(timeoutMs);
          const abortSignal = options?.abortSignal ? AbortSignal.any([options.abortSignal, timeout]) : timeout;
          return target.send(command, { ...options, abortSignal });
        };
      },
    });
  }

  /** Writes a small object with no condition (a heartbeat that only its writer rewrites). */
  async putPlain(key: string, body: string): Promise<void> {
    const { PutObjectCommand } = await loadSdk();
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/json' }), this.options());
  }

  /** Begins a multipart upload with user metadata (and a content type); resolves with its upload id. */
  async createUpload(key: string, metadata: Record<string, string>, contentType?: string): Promise<string> {
    const { CreateMultipartUploadCommand } = await loadSdk();
    const out = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, Metadata: metadata, ContentType: contentType }), this.options());
    if (!out.UploadId) throw new StoreError('failed', `The object store gave no upload id for ${shownKey(this.prefix, key)}.`);
    return out.UploadId;
  }

  /** Sends one part of a multipart upload, bounded by `timeoutMs` and by `signal`; resolves with its ETag. */
  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, signal: AbortSignal): Promise<string> {
    const { UploadPartCommand } = await loadSdk();
    const abortSignal = AbortSignal.any([signal, timeoutSignal(this.timeoutMs)]);
    const command = new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length });
    const out = await this.client.send(command, { abortSignal });
    return out.ETag ?? '';
  }

  /** Completes a multipart upload: the object appears whole. */
  async completeUpload(key: string, uploadId: string, parts: readonly { ETag: string; PartNumber: number }[]): Promise<void> {
    const { CompleteMultipartUploadCommand } = await loadSdk();
    await this.client.send(
      new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: [...parts] } }),
      this.options(),
    );
  }

  /** Aborts a multipart upload (its parts go). */
  async abortUpload(key: string, uploadId: string): Promise<void> {
    const { AbortMultipartUploadCommand } = await loadSdk();
    await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }), this.options());
  }

  /**
   * Writes an object whole from memory, with user metadata: one PutObject, no condition. With
   * `sha256`, the body's sha256 in hex, the request is signed with it rather than hashing the body
   * again (SigV4's `x-amz-content-sha256`, which the signer takes when it is set).
   */
  async putBytes(key: string, body: Buffer, metadata: Record<string, string>, sha256?: string): Promise<void> {
    const { PutObjectCommand } = await loadSdk();
    const command = new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length, Metadata: metadata });
    if (sha256 !== undefined) {
      command.middlewareStack.add(
        (next) => (args) => {
          const { headers } = args.request as { headers?: Record<string, string> };
          if (headers && !Object.keys(headers).some((name) => name.toLowerCase() === PAYLOAD_SHA256)) headers[PAYLOAD_SHA256] = sha256;
          return next(args);
        },
        { step: 'build', name: 'tempfileManagerPayloadSha256' },
      );
    }
    await this.client.send(command, this.options());
  }

  /**
   * Uploads a stream with user metadata in constant memory (parts of `partSize`, two in flight;
   * one PutObject for a small one). The object appears whole when the upload completes, never before; a failed one is
   * aborted.
   */
  async upload(key: string, body: Readable, metadata: Record<string, string>): Promise<void> {
    const { Upload } = await loadStorage();
    const upload = new Upload({
      client: this.eachRequestTimed(),
      params: { Bucket: this.bucket, Key: key, Body: body, Metadata: metadata },
      partSize: this.partSize,
      queueSize: 2,
      leavePartsOnError: false,
    });
    await upload.done();
  }
}

/**
 * A signal that aborts with a `TimeoutError` once `ms` passed. Not `AbortSignal.timeout()`: given
 * to `AbortSignal.any()`, which holds its sources weakly, that signal can be garbage-collected
 * before it fires (Node 20: after a collection none of them fired), and a request to a store that
 * stopped answering then waits forever. Here the timer holds the controller, so the signal fires
 * whoever holds it; the timer does not hold the process, as `AbortSignal.timeout()`'s does not.
 */
function timeoutSignal(ms: number): AbortSignal {
  const controller = new AbortController();
  setTimeout(() => controller.abort(timeoutError(ms)), ms).unref();
  return controller.signal;
}

/** An answer's body that failed mid-way, as its reader gets it: its name and code, for {@link StoreIo.failure}. */
function brokenOff(err: unknown): Error {
  const { name, code } = failureOf(err);
  const broken = new Error(`the answer broke off (${code ?? name ?? 'no reason given'})`);
  return Object.assign(broken, { name: name ?? broken.name }, code === undefined ? {} : { code });
}

/** The error of a request that got no answer (or no more bytes) within `timeoutMs`. */
function timeoutError(timeoutMs: number): Error {
  return Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' });
}
