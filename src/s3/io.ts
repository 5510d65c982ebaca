import type * as ClientModule from '@aws-sdk/client-s3';
import type * as StorageModule from '@aws-sdk/lib-storage';
import type { S3Client } from '@aws-sdk/client-s3';
import { joinSignals } from '../base/any-signal.js';
import { isTempFileError, StoreError, type TempFileError } from '../base/errors.js';
import { loadPeer } from '../base/peer.js';
import { randomName } from '../base/random-name.js';
import {
  idleWatch,
  isConditionFailed,
  isIoError,
  isNotFound,
  noAnswer,
  ObjectIoError,
  storeFailure,
  timeoutError,
  requestTimeout,
  type ListedObject,
  type ObjectIo,
  type TextObject,
  type WriteCondition,
} from '../object-store/io.js';
import { shownKey } from '../object-store/keys.js';
import { probeKey } from './keys.js';
import { builtin } from '../base/builtin.js';
const { Readable } = builtin('node:stream');
type Readable = import('node:stream').Readable;
const { pipeline } = builtin('node:stream/promises');

// Every request the S3 store makes, in one place: the SDK loaded on first use (never by the core),
// a timeout on each request, each failure turned into the engine's own (object-store/io.ts:
// `fromSdk`), and then into a typed error that names the endpoint and the bucket and never a
// credential (the SDK's own message and request are not carried).

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

/** What an S3 answer was, without its message (which may quote the request). */
interface S3Failure {
  readonly name: string | undefined;
  readonly status: number | undefined;
}

function failureOf(err: unknown): S3Failure {
  if (typeof err !== 'object' || err === null) return { name: undefined, status: undefined };
  const e = err as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  return { name: typeof e.name === 'string' ? e.name : undefined, status };
}

const DENIED = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied']);
const REFUSED_PARTS = new Set(['InvalidPart', 'InvalidPartOrder', 'EntityTooSmall']);

/** An S3 SDK error as the engine reads it (object-store/io.ts): its kind, status and S3 code, never its message. */
export function fromSdk(err: unknown): unknown {
  if (isTempFileError(err) || isIoError(err)) return err;
  const { name, status } = failureOf(err);
  if (status === undefined) return noAnswer(err, false);
  const details = { status, storeCode: name };
  // 409 ConditionalRequestConflict: a conflicting conditional write in flight.
  if (status === 412 || name === 'PreconditionFailed' || (status === 409 && name === 'ConditionalRequestConflict')) return new ObjectIoError('condition-failed', details);
  if (name === 'NoSuchBucket') return new ObjectIoError('no-container', details);
  if (status === 404) return new ObjectIoError('not-found', details);
  if (status === 403 || (name !== undefined && DENIED.has(name))) return new ObjectIoError('denied', details);
  if (status === 400 && name !== undefined && REFUSED_PARTS.has(name)) return new ObjectIoError('refused-parts', details);
  return new ObjectIoError('failed', details);
}

const PAYLOAD_SHA256 = 'x-amz-content-sha256';

/** The bucket, its endpoint and the SDK: what every request of one store uses. */
export class StoreIo implements ObjectIo {
  readonly scheme = 's3';
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
    return storeFailure(fromSdk(err), action, {
      where: `the object store at ${endpoint} (bucket "${this.bucket}")`,
      endpoint,
      timeoutMs: this.timeoutMs,
      address: 'endpoint',
      maker: 's3Store',
      grant: 'credentials that may read, write, list and delete objects in the bucket',
      missing: 'has no such bucket. Create it, or pass s3Store({ bucket }) an existing one.',
      logs: "the store's logs",
      s3Codes: true,
    });
  }

  /** Runs `request` bounded by `timeoutMs`; the timer stops once it is over. */
  private timed<T>(request: (options: { abortSignal: AbortSignal }) => Promise<T>): Promise<T> {
    const timeout = requestTimeout(this.timeoutMs);
    return request({ abortSignal: timeout.signal }).finally(timeout.clear);
  }

  /**
   * Writes a small object under a condition, with `metadata` (user metadata, ASCII) if given;
   * resolves with its new ETag. Rejects with an `ObjectIoError` (see {@link isConditionFailed}).
   */
  async put(key: string, body: string, condition: WriteCondition, metadata?: Record<string, string>): Promise<string> {
    const conditional = 'create' in condition ? { IfNoneMatch: '*' } : { IfMatch: await this.ifMatch(condition.ifMatch) };
    return this.rawPut(key, body, conditional, metadata);
  }

  private async rawPut(key: string, body: string, conditional: { IfNoneMatch: string } | { IfMatch: string }, metadata?: Record<string, string>): Promise<string> {
    const { PutObjectCommand } = await loadSdk();
    const command = new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/json', ...conditional, ...(metadata && { Metadata: metadata }) });
    const out = await this.timed((options) => this.client.send(command, options)).catch(rethrow);
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
      // The body is read within the bound too.
      return await this.timed(async (options) => {
        const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), options).catch(rethrow);
        const text = out.Body ? await out.Body.transformToString() : '';
        return { etag: out.ETag ?? '', text };
      });
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
    const timer = setTimeout(() => stop.abort(timeoutError(this.timeoutMs)), this.timeoutMs);
    let out: ClientModule.GetObjectCommandOutput;
    try {
      out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: stop.signal }).catch(rethrow);
    } finally {
      clearTimeout(timer);
    }
    const body: unknown = out.Body;
    if (!(body instanceof Readable)) throw new StoreError('failed', `The object store sent ${shownKey(this.prefix, key)} as something that is not a Node.js stream.`);
    const watched = idleWatch(this.timeoutMs, () => {
      stop.abort(); // the socket goes
      watched.destroy(noAnswer(undefined, true));
    });
    // Registered before pipeline()'s own listener: the error `watched` ends with is the kind of
    // the body's failure, never the SDK's error itself (its message may quote the request).
    body.once('error', (err: unknown) => watched.destroy(noAnswer(err, false)));
    pipeline(body, watched).catch(() => {}); // its failure is `watched`'s, which the reader gets
    return { body: watched, metadata: out.Metadata ?? {}, etag: out.ETag ?? '' };
  }

  /** Copies an object within the bucket, its metadata with it. Rejects with an `ObjectIoError` (`not-found` when `from` is gone). */
  async copy(from: string, to: string): Promise<void> {
    const { CopyObjectCommand } = await loadSdk();
    await this.timed((options) => this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: `${this.bucket}/${encodeURIComponent(from).replace(/%2F/g, '/')}` }), options)).catch(rethrow);
  }

  /** An object's size, ETag and type; `undefined` when there is none. */
  async head(key: string): Promise<{ size: number; etag: string; contentType: string | undefined } | undefined> {
    const { HeadObjectCommand } = await loadSdk();
    try {
      const out = await this.timed((options) => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), options)).catch(rethrow);
      return { size: out.ContentLength ?? 0, etag: out.ETag ?? '', contentType: out.ContentType };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Copies an object within the bucket with new user metadata (the store's own, none of the source's); resolves with the copy's ETag. Rejects with an `ObjectIoError` (`not-found` when `from` is gone). */
  async copyAs(from: string, to: string, metadata: Record<string, string>): Promise<string> {
    const { CopyObjectCommand } = await loadSdk();
    const source = `${this.bucket}/${encodeURIComponent(from).replace(/%2F/g, '/')}`;
    const out = await this.timed((options) => this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: source, MetadataDirective: 'REPLACE', Metadata: metadata }), options)).catch(rethrow);
    return out.CopyObjectResult?.ETag ?? '';
  }

  /** The parts a multipart upload holds so far. */
  async parts(key: string, uploadId: string): Promise<{ partNumber: number; etag: string; size: number }[]> {
    const { ListPartsCommand } = await loadSdk();
    const found: { partNumber: number; etag: string; size: number }[] = [];
    let marker: string | undefined;
    for (;;) {
      const out = await this.timed((options) => this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }), options)).catch(rethrow);
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
    await this.timed((options) => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), options)).catch(rethrow);
  }

  /** Every object under `prefix`, page by page. */
  async *list(prefix: string): AsyncGenerator<ListedObject[]> {
    const { ListObjectsV2Command } = await loadSdk();
    let token: string | undefined;
    do {
      const out = await this.timed((options) => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }), options)).catch(rethrow);
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
      const command = new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker });
      const out = await this.timed((options) => this.client.send(command, options)).catch(rethrow);
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
          const timeout = requestTimeout(timeoutMs);
          const joined = options?.abortSignal ? joinSignals([options.abortSignal, timeout.signal]) : undefined;
          return target.send(command, { ...options, abortSignal: joined?.signal ?? timeout.signal }).finally(() => {
            joined?.release();
            timeout.clear();
          });
        };
      },
    });
  }

  /** Writes a small object with no condition (a heartbeat that only its writer rewrites). */
  async putPlain(key: string, body: string): Promise<void> {
    const { PutObjectCommand } = await loadSdk();
    await this.timed((options) => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/json' }), options)).catch(rethrow);
  }

  /** Begins a multipart upload with user metadata (and a content type); resolves with its upload id. */
  async createUpload(key: string, metadata: Record<string, string>, contentType?: string): Promise<string> {
    const { CreateMultipartUploadCommand } = await loadSdk();
    const out = await this.timed((options) => this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, Metadata: metadata, ContentType: contentType }), options)).catch(rethrow);
    if (!out.UploadId) throw new StoreError('failed', `The object store gave no upload id for ${shownKey(this.prefix, key)}.`);
    return out.UploadId;
  }

  /** Sends one part of a multipart upload, bounded by `timeoutMs` and by `signal`; resolves with its ETag. */
  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, signal: AbortSignal): Promise<string> {
    const { UploadPartCommand } = await loadSdk();
    const timeout = requestTimeout(this.timeoutMs);
    const joined = joinSignals([signal, timeout.signal]);
    const command = new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length });
    try {
      const out = await this.client.send(command, { abortSignal: joined.signal }).catch(rethrow);
      return out.ETag ?? '';
    } finally {
      joined.release();
      timeout.clear();
    }
  }

  /** Completes a multipart upload: the object appears whole. */
  async completeUpload(key: string, uploadId: string, parts: readonly { ETag: string; PartNumber: number }[]): Promise<void> {
    const { CompleteMultipartUploadCommand } = await loadSdk();
    await this.timed((options) => this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: [...parts] } }), options)).catch(rethrow);
  }

  /** Aborts a multipart upload (its parts go). */
  async abortUpload(key: string, uploadId: string): Promise<void> {
    const { AbortMultipartUploadCommand } = await loadSdk();
    await this.timed((options) => this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }), options)).catch(rethrow);
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
    await this.timed((options) => this.client.send(command, options)).catch(rethrow);
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
    await upload.done().catch(rethrow);
  }
}

/** Throws an SDK error as the engine reads it ({@link fromSdk}). */
function rethrow(err: unknown): never {
  throw fromSdk(err);
}
