import type { BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import { joinSignals } from '../base/any-signal.js';
import { isTempFileError, StoreError, type TempFileError } from '../base/errors.js';
import { randomName } from '../base/random-name.js';
import {
  idleWatch,
  isIoError,
  isNotFound,
  noAnswer,
  ObjectIoError,
  storeFailure,
  requestTimeout,
  type ListedObject,
  type ObjectIo,
  type TextObject,
  type WriteCondition,
} from '../object-store/io.js';
import { builtin } from '../base/builtin.js';
const { Readable } = builtin('node:stream');
type Readable = import('node:stream').Readable;
const { pipeline } = builtin('node:stream/promises');

// Every request the Azure store makes, in one place: through the caller's ContainerClient's own
// methods (the store never imports @azure/storage-blob: nothing of it is loaded but what the caller
// loaded), a timeout on each request, and each failure turned into the engine's own
// (object-store/io.ts, `ObjectIoError`) and then into a typed error that names the container's URL without
// its query (a SAS token is a credential) and never the SDK's message.
//
// What the engine needs of a store, and what Azure gives for it:
//   a create only if absent   Put Blob with If-None-Match: *  (409 BlobAlreadyExists when it exists)
//   a write under an ETag     Put Blob with If-Match: <etag>  (412 ConditionNotMet when it moved on)
//   a copy                    Copy Blob from the same account (metadata carried)
//   a multipart upload        Put Block × n, then Put Block List: the blob appears whole when the list
//                             is committed, never before; blocks never committed are "uncommitted
//                             blobs", which a listing with `include=uncommittedblobs` shows and a
//                             Delete Blob drops
// User metadata names must be C# identifiers: the engine's `-` are written as `_` and read back.

/** An SDK error (a `RestError`) as the engine reads it; `timedOut`: our own timeout aborted the request. */
function answerOf(err: unknown, timedOut: boolean): unknown {
  if (isTempFileError(err) || isIoError(err)) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as { statusCode?: unknown; code?: unknown; name?: unknown };
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  // A RestError with no status: its name says nothing, its code may name the network's failure.
  if (status === undefined) return noAnswer(e.name === 'RestError' ? { code } : err, timedOut);
  const details = { status, storeCode: code };
  // A create refused because the blob exists is a refused condition, as S3's 412 for If-None-Match.
  if (status === 412 || (status === 409 && code === 'BlobAlreadyExists')) return new ObjectIoError('condition-failed', details);
  if (status === 404) return new ObjectIoError(code === 'ContainerNotFound' ? 'no-container' : 'not-found', details);
  if (status === 401 || status === 403) return new ObjectIoError('denied', details);
  return new ObjectIoError('failed', details);
}

/** The requests of one Azure store: a container, under a prefix. */
export class AzureIo implements ObjectIo {
  readonly scheme = 'azure';
  readonly bucket: string;
  readonly timeoutMs: number;
  readonly partSize: number;
  readonly streamsKnownSize = true;
  /** The container's URL without its query (a SAS token). */
  readonly endpoint: string;
  /** The metadata of each staged upload, committed with its block list. */
  private readonly staged = new Map<string, Record<string, string>>();

  constructor(
    private readonly client: ContainerClient,
    readonly account: string,
    readonly container: string,
    timeoutMs: number,
    partSize: number,
  ) {
    this.bucket = `${account}/${container}`;
    this.timeoutMs = timeoutMs;
    this.partSize = partSize;
    let shown = 'the container';
    try {
      const url = new URL(client.url);
      shown = `${url.protocol}//${url.host}${url.pathname}`;
    } catch {
      // the default stays
    }
    this.endpoint = shown;
  }

  /** A typed error for a failed request: the store unreachable, refusing, or answering otherwise. */
  async failure(err: unknown, action: string): Promise<TempFileError> {
    return storeFailure(answerOf(err, false), action, {
      where: `the Azure container "${this.container}" at ${this.endpoint}`,
      endpoint: this.endpoint,
      timeoutMs: this.timeoutMs,
      address: 'URL',
      maker: 'azureStore',
      grant: 'a credential (or a SAS) that may read, write, list and delete blobs in the container',
      missing: 'does not exist. Create it (containerClient.createIfNotExists()), or pass azureStore() a client of an existing one.',
      logs: "the storage account's logs",
      s3Codes: false,
    });
  }

  private blob(key: string): BlockBlobClient {
    return this.client.getBlockBlobClient(key);
  }

  /** Runs one request bounded by `timeoutMs` (and by `signal`), its failure in the engine's shape. */
  private async request<T>(work: (abortSignal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const timeout = requestTimeout(this.timeoutMs);
    const joined = signal ? joinSignals([signal, timeout.signal]) : undefined;
    try {
      return await work(joined?.signal ?? timeout.signal);
    } catch (err) {
      throw answerOf(err, timeout.signal.aborted);
    } finally {
      joined?.release();
      timeout.clear();
    }
  }

  async put(key: string, body: string, condition: WriteCondition, metadata?: Record<string, string>): Promise<string> {
    const conditions = 'create' in condition ? { ifNoneMatch: '*' } : { ifMatch: condition.ifMatch };
    const out = await this.request((abortSignal) =>
      this.blob(key).upload(body, Buffer.byteLength(body), {
        conditions,
        abortSignal,
        blobHTTPHeaders: { blobContentType: 'application/json' },
        ...(metadata && { metadata: toAzure(metadata) }),
      }),
    );
    if (!out.etag) throw new StoreError('failed', `The Azure container "${this.container}" gave no ETag for a write: a store without ETags cannot hold a lease.`);
    return out.etag;
  }

  async getText(key: string): Promise<TextObject | undefined> {
    try {
      return await this.request(async (abortSignal) => {
        const out = await this.blob(key).download(0, undefined, { abortSignal });
        const chunks: Buffer[] = [];
        if (out.readableStreamBody) for await (const chunk of out.readableStreamBody) chunks.push(chunk as Buffer);
        return { etag: out.etag ?? '', text: Buffer.concat(chunks).toString('utf8') };
      });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async getStream(key: string): Promise<{ body: Readable; metadata: Record<string, string> }> {
    // `timeoutMs` bounds the wait for the answer's headers, then each wait for the body's next
    // bytes: a download that keeps moving takes as long as its bytes take, a stalled one stops.
    const stop = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stop.abort();
    }, this.timeoutMs);
    let out: Awaited<ReturnType<BlockBlobClient['download']>>;
    try {
      out = await this.blob(key).download(0, undefined, { abortSignal: stop.signal });
    } catch (err) {
      throw answerOf(err, timedOut);
    } finally {
      clearTimeout(timer);
    }
    const body: unknown = out.readableStreamBody;
    if (!(body instanceof Readable)) throw new StoreError('failed', `The Azure container "${this.container}" sent a blob as something that is not a Node.js stream.`);
    const watched = idleWatch(this.timeoutMs, () => {
      stop.abort(); // the socket goes
      watched.destroy(noAnswer(undefined, true));
    });
    // The error `watched` ends with is the kind of the body's failure, never the SDK's error itself.
    body.once('error', (err: unknown) => watched.destroy(answerOf(err, false) as Error));
    pipeline(body, watched).catch(() => {}); // its failure is `watched`'s, which the reader gets
    return { body: watched, metadata: fromAzure(out.metadata ?? {}) };
  }

  async copy(from: string, to: string): Promise<void> {
    await this.request(async (abortSignal) => {
      const poller = await this.blob(to).beginCopyFromURL(this.blob(from).url, { abortSignal, intervalInMs: 200 });
      const result = await poller.pollUntilDone();
      if (result.copyStatus !== undefined && result.copyStatus !== 'success') throw new ObjectIoError('failed', { status: 500, storeCode: `copy ${result.copyStatus}` });
    });
  }

  async delete(key: string): Promise<void> {
    try {
      await this.request((abortSignal) => this.blob(key).delete({ abortSignal }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async *list(prefix: string): AsyncGenerator<ListedObject[]> {
    let token: string | undefined;
    do {
      const page = await this.request(async (abortSignal) => {
        const next = await this.client.listBlobsFlat({ prefix, abortSignal }).byPage({ continuationToken: token, maxPageSize: 1000 }).next();
        return next.done ? undefined : next.value;
      });
      if (page === undefined) return;
      yield page.segment.blobItems.map((item) => ({ key: item.name, size: item.properties.contentLength ?? 0, etag: item.properties.etag ?? '' }));
      token = page.continuationToken || undefined;
    } while (token);
  }

  /**
   * Blobs under `prefix` that have uncommitted blocks and no committed content: a staged upload
   * never committed (listed with and without `include=uncommittedblobs`, the difference).
   */
  async uploads(prefix: string): Promise<{ key: string; uploadId: string }[]> {
    const names = async (uncommitted: boolean): Promise<Set<string>> => {
      const found = new Set<string>();
      let token: string | undefined;
      do {
        const page = await this.request(async (abortSignal) => {
          const next = await this.client.listBlobsFlat({ prefix, abortSignal, includeUncommitedBlobs: uncommitted }).byPage({ continuationToken: token, maxPageSize: 1000 }).next();
          return next.done ? undefined : next.value;
        });
        if (page === undefined) break;
        for (const item of page.segment.blobItems) found.add(item.name);
        token = page.continuationToken || undefined;
      } while (token);
      return found;
    };
    const [all, committed] = await Promise.all([names(true), names(false)]);
    return [...all].filter((key) => !committed.has(key)).map((key) => ({ key, uploadId: '' }));
  }

  async putPlain(key: string, body: string): Promise<void> {
    await this.request((abortSignal) => this.blob(key).upload(body, Buffer.byteLength(body), { abortSignal, blobHTTPHeaders: { blobContentType: 'application/json' } }));
  }

  /** Nothing is sent: Azure stages blocks without an upload to begin. The id names the blocks. */
  async createUpload(_key: string, metadata: Record<string, string>): Promise<string> {
    const uploadId = randomName().slice(0, 16);
    this.staged.set(uploadId, toAzure(metadata));
    return uploadId;
  }

  /**
   * Stages one block. `signal` (the upload stopped) does not cut it: a Put Block cut on the client
   * may still land on the service after the Delete Blob that drops the upload's blocks, and leave
   * an uncommitted blob behind; let finish (within `timeoutMs`), the delete comes after it.
   */
  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, _signal: AbortSignal): Promise<string> {
    const blockId = blockIdOf(uploadId, partNumber);
    await this.request((abortSignal) => this.blob(key).stageBlock(blockId, body, body.length, { abortSignal }));
    return blockId;
  }

  async completeUpload(key: string, uploadId: string, parts: readonly { ETag: string; PartNumber: number }[]): Promise<void> {
    const metadata = this.staged.get(uploadId) ?? {};
    await this.request((abortSignal) => this.blob(key).commitBlockList(parts.map((part) => part.ETag), { abortSignal, metadata }));
    this.staged.delete(uploadId);
  }

  /**
   * Drops a staged upload's uncommitted blocks: a Delete Blob of its key (the engine calls it only
   * for a key whose upload never completed, or whose ticket was never returned).
   */
  async abortUpload(key: string, uploadId: string): Promise<void> {
    this.staged.delete(uploadId);
    await this.request((abortSignal) => this.blob(key).delete({ abortSignal }));
  }

  /** One Put Blob of `size` bytes streamed from `body`; no bytes sent for `timeoutMs` (or no answer after the last) stops it. */
  private async putStream(key: string, body: Readable, metadata: Record<string, string>, size: number): Promise<void> {
    const stop = new AbortController();
    let timedOut = false;
    const watched = idleWatch(
      this.timeoutMs,
      () => {
        timedOut = true;
        stop.abort();
      },
      true, // after the last byte, the wait for the answer
    );
    body.once('error', (err: unknown) => watched.destroy(err as Error));
    body.pipe(watched);
    try {
      await this.blob(key).upload(watched, size, { abortSignal: stop.signal, metadata: toAzure(metadata) });
    } catch (err) {
      throw answerOf(err, timedOut);
    } finally {
      watched.destroy(); // and its timer
    }
  }

  async putBytes(key: string, body: Buffer, metadata: Record<string, string>): Promise<void> {
    await this.request((abortSignal) => this.blob(key).upload(body, body.length, { abortSignal, metadata: toAzure(metadata) }));
  }

  /**
   * Uploads a stream: of a known size up to {@link SINGLE_PUT_MAX_BYTES}, in one Put Blob streamed
   * from `body` (the blob appears whole when it lands; `timeoutMs` bounds each wait for the body's
   * next bytes to be sent, then the wait for the answer); else in blocks of `partSize`, two in
   * flight, each request bounded by `timeoutMs`, the blob appearing when its block list is
   * committed (a failed one drops its blocks). One request is what a bare `uploadFile()` makes up
   * to 256 MiB, and staged blocks cost Azurite about three times as long.
   */
  async upload(key: string, body: Readable, metadata: Record<string, string>, size?: number): Promise<void> {
    if (size !== undefined && size <= SINGLE_PUT_MAX_BYTES) return this.putStream(key, body, metadata, size);
    const uploadId = await this.createUpload(key, metadata);
    const stop = new AbortController();
    const parts: { ETag: string; PartNumber: number }[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const send = async (part: Buffer): Promise<void> => {
      while (inFlight.size >= 2) await Promise.race(inFlight);
      if (failure !== undefined) throw failure;
      const partNumber = parts.length + inFlight.size + 1;
      const sending: Promise<void> = this.uploadPart(key, uploadId, partNumber, part, stop.signal).then(
        (etag) => {
          parts.push({ ETag: etag, PartNumber: partNumber });
          inFlight.delete(sending);
        },
        (err: unknown) => {
          failure ??= err;
          inFlight.delete(sending);
        },
      );
      inFlight.add(sending);
    };
    try {
      for await (const chunk of body) {
        const bytes = chunk as Buffer;
        pending.push(bytes);
        pendingBytes += bytes.length;
        while (pendingBytes >= this.partSize) {
          const joined = Buffer.concat(pending, pendingBytes);
          await send(joined.subarray(0, this.partSize));
          pending = pendingBytes > this.partSize ? [joined.subarray(this.partSize)] : [];
          pendingBytes -= this.partSize;
        }
      }
      if (pendingBytes > 0 || parts.length + inFlight.size === 0) await send(Buffer.concat(pending, pendingBytes));
      await Promise.all(inFlight);
      if (failure !== undefined) throw failure;
      await this.completeUpload(key, uploadId, [...parts].sort((a, b) => a.PartNumber - b.PartNumber));
    } catch (err) {
      stop.abort();
      await Promise.allSettled(inFlight);
      await this.abortUpload(key, uploadId).catch(() => {}); // else the sweep, once expired
      throw failure ?? err;
    }
  }
}

/** The largest file of known size sent in one Put Blob (the SDK's own `maxSingleShotSize`). */
const SINGLE_PUT_MAX_BYTES = 256 * 1024 * 1024;

/** A block's id: the upload's, and the part's number, of one length for every block of a blob (base64). */
function blockIdOf(uploadId: string, partNumber: number): string {
  return Buffer.from(`${uploadId}-${String(partNumber).padStart(6, '0')}`).toString('base64');
}


/** Metadata names as Azure takes them (C# identifiers): `-` written as `_`. */
function toAzure(metadata: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([name, value]) => [name.replace(/-/g, '_'), value]));
}

function fromAzure(metadata: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([name, value]) => [name.toLowerCase().replace(/_/g, '-'), value]));
}
