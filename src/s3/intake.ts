import type { Readable } from 'node:stream';
import { AbortedError, InvalidOptionError, isTempFileError, SizeLimitError, TypeNotAcceptedError, UploadReceiptError, type DetectedType } from '../base/errors.js';
import { describe, validateNamePart } from '../base/names.js';
import { randomName } from '../base/random-name.js';
import { MAX_TIMER_MS, ownOptions, validateAbortSignal, validateDuration, validateInteger, validateObject, validateOneOf, type NoneLeftOut } from '../base/validators.js';
import type { S3Location } from './location.js';
import { checkMeta, type HandoffMeta, type HandoffTicket } from '../handoff/ticket.js';
import { isAccepted, parseAccept } from '../write/sniff.js';
import { Meter, pump, sniffSource, type IntakeSink } from '../write/intake.js';
import { resolveVerify, runVerify, type ResolvedVerify, type VerifyResult } from '../write/verify.js';
import { bindingMetadata, type BoundTicket } from '../object-store/binding.js';
import { isConditionFailed, isNotFound, isRefusedParts } from '../object-store/io.js';
import { entryKeys } from '../object-store/keys.js';
import type { StoreIo } from './io.js';
import { intakeKeys, intakePrefix, parseIntakeKey, type IntakeKeys } from './keys.js';
import { signPart, signPost, signPut } from './presign.js';
import { builtin } from '../base/builtin.js';
const { PassThrough } = builtin('node:stream');
const { pipeline } = builtin('node:stream/promises');

// Uploads from a browser straight to the bucket, under the store's intake prefix (keys.ts), and
// their confirmation into a handoff entry. The flow, and why each step is where it is:
//
//   presign     the record (the presign's terms, the library's own object) is written first; then
//               the browser gets a presign for exactly one key beside it, bound to maxBytes (the
//               bucket enforces it) and to its type, and, for a PUT, to its length and If-None-Match.
//   confirm     the receipt's key must be of this intake and have a record (else 400: touched
//               nothing), read beside the object's real size (HEAD: 413 over maxBytes); the
//               record is taken by a conditional write (a second confirmation gets 409); then at
//               once: the object is copied into a new entry's data key with the ticket's binding
//               (binding.ts; a server-side copy, no byte through the API), and read once through
//               the intake (write/intake.ts) into a sink that keeps nothing: its type sniffed by
//               the one sniffer (415), every byte counted against maxBytes and hashed by the
//               meter (413 past it: the HEAD's size is an early answer, not the rule). `verify`
//               reads the copy, which no presign reaches. The copy must have the ETag of the bytes
//               read (409 otherwise: the upload was sent again meanwhile); the ticket carries the
//               digest, which the worker's claim checks: what was checked is what a worker gets.
//   refused     the entry's data, the upload and the record are deleted.
//   crashed     the intake goes with the sweep once its presign expired, the entry (which nobody
//               holds a ticket for) once its own expiry passed.

/** The longest a presign may live: SigV4's limit, seven days. */
const MAX_PRESIGN_MS = 7 * 24 * 3_600_000;
/** The largest object one CopyObject copies: the most a presigned upload may hold. */
const MAX_INTAKE_BYTES = 5 * 1024 ** 3;
const DEFAULT_PRESIGN_MS = 15 * 60_000;
const DEFAULT_TYPE = 'application/octet-stream';
const MIME = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;
const SHA256_BASE64 = /^[A-Za-z0-9+/]{43}=$/;
const MAX_PARTS = 10_000;

/** Options of {@link S3Store.presignUpload}. */
export interface PresignUploadOptions {
  /** The most bytes the object may have: a whole number from 1 to 5 GiB. The bucket refuses a larger body (a POST's `content-length-range`, a PUT's signed length); the confirmation checks it again. */
  readonly maxBytes: number;
  /** MIME types or patterns (`['image/*']`) the object's first bytes must be of, sniffed at confirmation (415 otherwise); the declared `contentType` must fit them too. */
  readonly accept?: readonly string[];
  /** The type the browser declares, fixed by the presign (the object's `Content-Type`): untrusted, never what is checked. @default 'application/octet-stream' */
  readonly contentType?: string;
  /** How long the presign, and the intake object it makes, live: whole milliseconds from 1000 to 7 days. @default 900000 (15 minutes) */
  readonly ttlMs?: number;
  /** Small JSON (at most 4 KiB) for the ticket's `meta`: the API's, never the browser's. */
  readonly meta?: HandoffMeta;
  /** The ticket's `suffix`, such as `'.png'`: the claimed file's name ends with it. @default '' */
  readonly suffix?: string;
  /** `'POST'` (a form with a policy, as browsers and `@uppy/aws-s3` send it) or `'PUT'` (needs `size`). @default 'POST' */
  readonly method?: 'POST' | 'PUT';
  /** With `'PUT'`: the body's exact length in bytes, signed (1 to `maxBytes`). */
  readonly size?: number;
  /** With `'PUT'`: the body's SHA-256 as base64, signed and checked again at confirmation (422 when it differs). */
  readonly checksumSha256?: string;
}

/** What a browser needs to upload: send `fields` then the file as a form for a POST; the body with `headers` for a PUT. The shape `@uppy/aws-s3`'s `getUploadParameters` returns. */
export interface PresignedUpload {
  /** `'POST'` or `'PUT'`. */
  readonly method: 'POST' | 'PUT';
  /** Where to send it. */
  readonly url: string;
  /** A POST's form fields, in order, before the file (empty for a PUT). */
  readonly fields: Readonly<Record<string, string>>;
  /** The headers a PUT must send as they are (empty for a POST). */
  readonly headers: Readonly<Record<string, string>>;
  /** The object's key: the receipt the browser sends back to be confirmed (`{ key }`). */
  readonly key: string;
  /** When the presign, and the object if never confirmed, expire (epoch ms). */
  readonly expiresAt: number;
}

/** Options of {@link S3Store.presignMultipart}: those of a POST's presign. */
export type PresignMultipartOptions = Omit<PresignUploadOptions, 'method' | 'size' | 'checksumSha256'>;

/** A multipart upload begun for a browser (`@uppy/aws-s3`'s `createMultipartUpload` result). */
export interface PresignedMultipart {
  /** The object's key: the receipt. */
  readonly key: string;
  /** The multipart upload's id. */
  readonly uploadId: string;
  /** When it expires (epoch ms): an upload not confirmed by then is aborted by the sweep. */
  readonly expiresAt: number;
}

/** One part of a multipart upload (`@uppy/aws-s3`'s shape). */
export interface IntakePart {
  /** From 1 to 10000. */
  readonly PartNumber: number;
  /** The part's ETag, as the bucket gave it. */
  readonly ETag: string;
  /** Its size in bytes, when listed. */
  readonly Size?: number;
}

/** A part's presign: PUT the part's bytes to `url` with `headers`. */
export interface PresignedPart {
  /** Where to PUT it. */
  readonly url: string;
  /** Headers to send as they are. */
  readonly headers: Readonly<Record<string, string>>;
  /** When the presign expires (epoch ms). */
  readonly expiresAt: number;
}

/** The object a confirmation judges, as `verify` gets it. */
export interface PresignedObject {
  /** Its key in the store. */
  readonly key: string;
  /** Its size in bytes, as stored. */
  readonly size: number;
  /** The type the browser declared: untrusted. */
  readonly declaredType: string;
  /** The type its first bytes are, when known. */
  readonly detectedType: DetectedType | undefined;
  /** A new stream of its bytes from the store (constant memory); each call is a new read. */
  open(): Readable;
}

/** Options of {@link S3Store.confirmUpload}. */
export interface ConfirmUploadOptions {
  /** How long the ticket lives unclaimed: whole milliseconds from 1 to 2^31 - 1. */
  readonly ttlMs: number;
  /** Checks the object before it becomes a ticket: `true` accepts, `false` or `{ reason, statusCode }` refuses (422); a throw or the timeout is a 503. The same hook as `write()`'s, given the object. */
  readonly verify?: (object: PresignedObject, signal: AbortSignal) => VerifyResult | PromiseLike<VerifyResult>;
  /** How long `verify` may take. @default 60000 */
  readonly verifyTimeoutMs?: number;
  /** Gives up the confirmation: it rejects with an `AbortedError` (499), and the upload stays, to be confirmed again. */
  readonly signal?: AbortSignal;
}

/** A receipt as the browser sends it back: the key, or `{ key }`. */
export type UploadReceipt =
  | string
  | {
      /** The key the presign gave. */
      readonly key: string;
    };

/** The presign's terms, kept beside the upload (the library's own object). */
interface IntakeRecord {
  readonly v: 1;
  readonly state: 'open' | 'confirming' | 'confirmed';
  readonly maxBytes: number;
  readonly accept: readonly string[] | null;
  readonly contentType: string;
  readonly meta: HandoffMeta | null;
  readonly checksumSha256: string | null;
  readonly uploadId: string | null;
  readonly suffix: string;
}

/** What a confirmation judges with. */
interface Judging {
  readonly verify: ResolvedVerify<PresignedObject> | undefined;
  readonly signal: AbortSignal | undefined;
}

interface Terms {
  readonly maxBytes: number;
  readonly accept: readonly string[] | undefined;
  readonly contentType: string;
  readonly ttlMs: number;
  readonly meta: HandoffMeta | undefined;
  readonly suffix: string;
}

/** The names of `presignMultipart()`'s options: every key of {@link PresignMultipartOptions} (`NoneLeftOut`). */
const PRESIGN_MULTIPART_OPTION_KEYS = ['maxBytes', 'accept', 'contentType', 'ttlMs', 'meta', 'suffix'] as const satisfies readonly (keyof PresignMultipartOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type PresignMultipartOptionsListed = NoneLeftOut<Exclude<keyof PresignMultipartOptions, (typeof PRESIGN_MULTIPART_OPTION_KEYS)[number]>>;
/** The names of `presignUpload()`'s options: a multipart's and a PUT's, every key of {@link PresignUploadOptions} (`NoneLeftOut`). */
const PRESIGN_OPTION_KEYS = [...PRESIGN_MULTIPART_OPTION_KEYS, 'method', 'size', 'checksumSha256'] as const satisfies readonly (keyof PresignUploadOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type PresignUploadOptionsListed = NoneLeftOut<Exclude<keyof PresignUploadOptions, (typeof PRESIGN_OPTION_KEYS)[number]>>;
/** The names of `confirmUpload()`'s options: every key of {@link ConfirmUploadOptions} (`NoneLeftOut`). */
const CONFIRM_OPTION_KEYS = ['ttlMs', 'verify', 'verifyTimeoutMs', 'signal'] as const satisfies readonly (keyof ConfirmUploadOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type ConfirmUploadOptionsListed = NoneLeftOut<Exclude<keyof ConfirmUploadOptions, (typeof CONFIRM_OPTION_KEYS)[number]>>;
const PRESIGN_OPTIONS: ReadonlySet<string> = new Set<string>(PRESIGN_OPTION_KEYS);
const MULTIPART_OPTIONS: ReadonlySet<string> = new Set<string>(PRESIGN_MULTIPART_OPTION_KEYS);
const CONFIRM_OPTIONS: ReadonlySet<string> = new Set<string>(CONFIRM_OPTION_KEYS);

/** The intake of one store: its presigns, multipart calls and confirmations. @internal */
export class StoreIntake {
  constructor(
    private readonly io: StoreIo,
    private readonly location: S3Location,
  ) {}

  async presign(options: PresignUploadOptions): Promise<PresignedUpload> {
    validateObject(options, 'presignUpload()', PRESIGN_OPTIONS, '{ maxBytes: 20 * 1024 ** 2, accept: [\'image/*\'] }');
    const own = ownOptions(options);
    const terms = readTerms(own, 'presignUpload()');
    const method = own.method === undefined ? 'POST' : validateOneOf(own.method, 'method', ['POST', 'PUT'] as const, "'POST' or 'PUT'", { where: 'presignUpload()' });
    const put = method === 'PUT' ? readPutTerms(own, terms.maxBytes) : undefined;
    const { keys, expiresAt, expiresInS } = this.newIntake(terms.ttlMs);
    await this.writeRecord(keys, terms, put?.checksumSha256 ?? null, null);
    if (put) {
      const signed = await this.signing(() => signPut(this.io, keys.upload, { ...put, contentType: terms.contentType, expiresInS }));
      return { method, url: signed.url, fields: {}, headers: signed.headers, key: keys.upload, expiresAt };
    }
    const signed = await this.signing(() => signPost(this.io, keys.upload, { maxBytes: terms.maxBytes, contentType: terms.contentType, expiresInS }));
    return { method, url: signed.url, fields: signed.fields, headers: {}, key: keys.upload, expiresAt };
  }

  async presignMultipart(options: PresignMultipartOptions): Promise<PresignedMultipart> {
    validateObject(options, 'presignMultipart()', MULTIPART_OPTIONS, '{ maxBytes: 4 * 1024 ** 3, accept: [\'video/*\'] }');
    const terms = readTerms(ownOptions(options), 'presignMultipart()');
    const { keys, expiresAt } = this.newIntake(terms.ttlMs);
    // The upload first: one without a record is aborted by the sweep at its expiry; a record
    // without its upload would make a receipt that can never be completed.
    let uploadId: string;
    try {
      uploadId = await this.io.createUpload(keys.upload, {}, terms.contentType);
      await this.writeRecord(keys, terms, null, uploadId);
    } catch (err) {
      throw await this.io.failure(err, 'begin a presigned multipart upload');
    }
    return { key: keys.upload, uploadId, expiresAt };
  }

  async signPart(receipt: { key: string; uploadId: string; partNumber: number; size?: number }): Promise<PresignedPart> {
    const { keys, expiresAt, record } = await this.openMultipart(receipt, 'signPart()');
    const partNumber = validateInteger(receipt.partNumber, 'partNumber', { where: 'signPart()', min: 1, max: MAX_PARTS });
    const size = receipt.size === undefined ? undefined : validateInteger(receipt.size, 'size', { where: 'signPart()', min: 1, max: record.maxBytes, unit: 'bytes' });
    const expiresInS = Math.max(1, Math.floor((expiresAt - Date.now()) / 1000));
    const signed = await this.signing(() => signPart(this.io, keys.upload, { uploadId: receipt.uploadId, partNumber, size, expiresInS }));
    return { url: signed.url, headers: signed.headers, expiresAt };
  }

  async listParts(receipt: { key: string; uploadId: string }): Promise<IntakePart[]> {
    const { keys } = await this.openMultipart(receipt, 'listParts()');
    try {
      return (await this.io.parts(keys.upload, receipt.uploadId)).map((p) => ({ PartNumber: p.partNumber, ETag: p.etag, Size: p.size }));
    } catch (err) {
      throw await this.receiptFailure(err, 'list the parts of a presigned upload');
    }
  }

  /** Completes a multipart upload whose parts, as the bucket lists them, fit `maxBytes`; else aborts it (413). */
  async complete(receipt: { key: string; uploadId: string; parts: readonly IntakePart[] }): Promise<{ key: string }> {
    const { keys, record } = await this.openMultipart(receipt, 'completeMultipart()');
    const parts = readParts(receipt.parts);
    try {
      const listed = await this.io.parts(keys.upload, receipt.uploadId);
      const total = listed.reduce((sum, part) => sum + part.size, 0);
      if (total > record.maxBytes) {
        await this.discardMultipart(keys, receipt.uploadId);
        throw new SizeLimitError(record.maxBytes);
      }
      await this.io.completeUpload(keys.upload, receipt.uploadId, parts);
    } catch (err) {
      if (isTempFileError(err)) throw err;
      throw await this.receiptFailure(err, 'complete a presigned upload');
    }
    return { key: keys.upload };
  }

  async abort(receipt: { key: string; uploadId: string }): Promise<void> {
    const { keys } = await this.openMultipart(receipt, 'abortMultipart()');
    try {
      await this.discardMultipart(keys, receipt.uploadId);
    } catch (err) {
      throw await this.io.failure(err, 'abort a presigned upload');
    }
  }

  async confirm(receipt: UploadReceipt, options: ConfirmUploadOptions): Promise<HandoffTicket> {
    validateObject(options, 'confirmUpload()', CONFIRM_OPTIONS, '{ ttlMs: 3_600_000 }');
    if (options === undefined) throw new InvalidOptionError('ttlMs', 'confirmUpload() needs { ttlMs }: how long the ticket lives unclaimed, in milliseconds.');
    const own = ownOptions(options);
    const ttlMs = validateDuration(own.ttlMs, 'ttlMs', { min: 1, max: MAX_TIMER_MS }, { where: 'confirmUpload()' });
    const verify = resolveVerify<PresignedObject>(own.verify, own.verifyTimeoutMs, 'confirmUpload()');
    const signal = own.signal === undefined ? undefined : validateAbortSignal(own.signal, 'signal', { where: 'confirmUpload()' });
    const { keys, expiresAt } = this.receiptKeys(receipt);
    if (signal?.aborted) throw confirmationAborted(signal);
    // The record and the object's size at once: both reads, neither touches anything.
    const [record, found] = await Promise.all([this.readRecord(keys, expiresAt), this.headUpload(keys)]);
    if (signal?.aborted) throw confirmationAborted(signal);
    if (Date.now() > expiresAt) throw new UploadReceiptError('expired', 'the upload expired before it was confirmed: upload it again with a new presign.');
    if (record.state === 'confirmed') throw confirmedAlready();
    if (found === undefined) {
      throw new UploadReceiptError(record.state === 'open' ? 'not-uploaded' : 'in-progress', record.state === 'open' ? 'nothing was uploaded with this presign yet: confirm once the upload finished.' : 'this upload is being confirmed, or was.');
    }
    if (found.size > record.maxBytes || found.size === 0) {
      await this.take(keys, record); // only the confirmation that holds the record removes its upload
      const why = found.size === 0 ? new UploadReceiptError('empty', 'the upload is empty: send the file again.') : new SizeLimitError(record.maxBytes);
      return this.refuse(keys, undefined, why);
    }
    return this.commit(keys, record, found.size, { ttlMs, verify, signal });
  }

  // --- the confirmation's steps ---

  /**
   * Takes the record, copies the upload into a new entry and reads and judges the upload, all
   * three at once; the ticket, once the record is this confirmation's and the copy is known to
   * hold the bytes judged (the upload and the record deleted then). A confirmation that did not
   * get the record removes its own copy only.
   */
  private async commit(keys: IntakeKeys, record: IntakeRecord & { etag: string }, size: number, how: Judging & { ttlMs: number }): Promise<HandoffTicket> {
    const createdAt = Date.now();
    const bound: BoundTicket = { v: 1, id: randomName(), suffix: record.suffix, createdAt, expiresAt: createdAt + how.ttlMs, meta: record.meta ?? undefined, store: this.location };
    const data = entryKeys(this.location.prefix, bound.id, bound.expiresAt).data;
    const taking = this.take(keys, record);
    // A server-side copy (no byte through the API), beside the read: it is what the ticket names.
    const copying = this.io.copyAs(keys.upload, data, bindingMetadata(bound, this.location, 'sha256'));
    for (const step of [taking, copying]) step.catch(() => {}); // awaited below
    let judged: { size: number; digest: string; etag: string };
    let copiedEtag: string;
    let takenEtag: string;
    try {
      [judged, copiedEtag, takenEtag] = await Promise.all([this.judge(keys.upload, size, record, { ...how, copy: { key: data, done: copying } }), copying, taking]);
    } catch (err) {
      const held = await taking.then(() => true, () => false);
      await copying.catch(() => {});
      if (!held) {
        await this.io.delete(data).catch(() => {}); // another confirmation holds the upload: only the copy is ours
        throw await taking.then(() => err, (lost: unknown) => lost);
      }
      if (how.signal?.aborted) return this.giveUp(keys, record, data, await taking, how.signal);
      return this.refuse(keys, data, isTempFileError(err) ? err : await this.io.failure(err, 'confirm a presigned upload'));
    }
    if (how.signal?.aborted) return this.giveUp(keys, record, data, takenEtag, how.signal);
    if (!sameObject(judged.etag, copiedEtag)) {
      return this.refuse(keys, data, new UploadReceiptError('changed', 'the upload was sent again while it was confirmed: confirm once, after the last upload.'));
    }
    // The intake object once read (a delete under a read slows the gateway's). The record stays,
    // saying confirmed, until the sweep removes it at the presign's expiry: a confirmation sent
    // again meanwhile (a browser that lost the first answer) is a 409, not a forged key's 400.
    const confirmed = JSON.stringify({ ...record, etag: undefined, state: 'confirmed' });
    await Promise.all([this.io.delete(keys.upload), this.io.put(keys.record, confirmed, { ifMatch: takenEtag })].map((p) => p.catch(() => {})));
    return { ...bound, size: judged.size, digest: judged.digest };
  }

  /**
   * Reads the upload once through the intake: its type sniffed (the one sniffer), every byte
   * counted against `maxBytes` and hashed by the meter, kept nowhere; `verify` beside it over the
   * copy. Its real size, digest and ETag, or the refusal.
   */
  private async judge(key: string, size: number, record: IntakeRecord, how: Judging & { copy: { key: string; done: Promise<string> } }): Promise<{ size: number; digest: string; etag: string }> {
    const { body, etag } = await this.io.getStream(key);
    const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const next = async (): Promise<Buffer | undefined> => {
      const step = await chunks.next();
      return step.done ? undefined : step.value;
    };
    const meter = new Meter({ maxBytes: record.maxBytes, hash: 'sha256' });
    const stopRead = (): void => void body.destroy(confirmationAborted(how.signal!));
    how.signal?.addEventListener('abort', stopRead, { once: true });
    try {
      const sniffed = await sniffSource(next, record.accept ?? undefined, meter);
      refuseUndeclaredType(record, sniffed.type);
      const reading = pump(sniffed.next, meter, new KeepsNothing(), undefined);
      // `verify` reads the copy, which no presign reaches, once it is made.
      const object: PresignedObject = { key: how.copy.key, size, declaredType: record.contentType, detectedType: sniffed.type, open: () => this.openStream(how.copy.key, how.copy.done) };
      await Promise.all([reading, how.verify && runVerify(how.verify, object, how.signal ? [how.signal] : [], confirmationAborted)]);
    } finally {
      how.signal?.removeEventListener('abort', stopRead);
      body.destroy();
    }
    const digest = meter.digest()!;
    if (record.checksumSha256 !== null && Buffer.from(digest.slice('sha256:'.length), 'hex').toString('base64') !== record.checksumSha256) {
      throw new UploadReceiptError('checksum', 'the bytes that arrived are not those of the checksum the upload was presigned with.');
    }
    return { size: meter.size, digest, etag };
  }

  /** A stream of the object once `ready` settled; a failure to make or open it is the stream's error. */
  private openStream(key: string, ready: Promise<unknown>): Readable {
    const out = new PassThrough();
    ready.then(() => this.io.getStream(key)).then(
      ({ body }) => {
        out.on('close', () => body.destroy());
        pipeline(body, out).catch(() => {}); // its error is out's, which the reader sees
      },
      (err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))),
    );
    return out;
  }

  /**
   * A confirmation its signal gave up: its copy is removed and the record given back, open, so
   * that the upload may be confirmed again (a record that cannot be given back waits, 409, for the
   * sweep at the presign's expiry).
   */
  private async giveUp(keys: IntakeKeys, record: IntakeRecord, data: string, takenEtag: string, signal: AbortSignal): Promise<never> {
    const open = JSON.stringify({ ...record, etag: undefined, state: 'open' });
    await Promise.all([this.io.delete(data), this.io.put(keys.record, open, { ifMatch: takenEtag })].map((p) => p.catch(() => {})));
    throw confirmationAborted(signal);
  }

  /** Removes what a refused confirmation leaves (the entry's data, the upload, the record) and throws `why`. */
  private async refuse(keys: IntakeKeys, data: string | undefined, why: Error): Promise<never> {
    await Promise.all([data === undefined ? undefined : this.io.delete(data), this.io.delete(keys.upload), this.io.delete(keys.record)].map((p) => p?.catch(() => {})));
    throw why;
  }

  /** Takes the record for this confirmation (its new ETag): a second one, at once or later, gets 409. */
  private async take(keys: IntakeKeys, record: IntakeRecord & { etag?: string }): Promise<string> {
    if (record.state !== 'open' || record.etag === undefined) throw new UploadReceiptError('in-progress', 'this upload is being confirmed, or was.');
    try {
      return await this.io.put(keys.record, JSON.stringify({ ...record, etag: undefined, state: 'confirming' }), { ifMatch: record.etag });
    } catch (err) {
      if (isConditionFailed(err)) throw new UploadReceiptError('in-progress', 'this upload is being confirmed, or was.');
      throw await this.io.failure(err, 'confirm a presigned upload');
    }
  }

  // --- receipts and records ---

  private newIntake(ttlMs: number): { keys: IntakeKeys; expiresAt: number; expiresInS: number } {
    const expiresInS = Math.ceil(ttlMs / 1000);
    const expiresAt = Date.now() + expiresInS * 1000;
    return { keys: intakeKeys(this.location.prefix, randomName(), expiresAt), expiresAt, expiresInS };
  }

  private async writeRecord(keys: IntakeKeys, terms: Terms, checksumSha256: string | null, uploadId: string | null): Promise<void> {
    const record: IntakeRecord = { v: 1, state: 'open', maxBytes: terms.maxBytes, accept: terms.accept ?? null, contentType: terms.contentType, meta: terms.meta ?? null, checksumSha256, uploadId, suffix: terms.suffix };
    try {
      await this.io.put(keys.record, JSON.stringify(record), { create: true });
    } catch (err) {
      throw await this.io.failure(err, 'presign an upload');
    }
  }

  /** The receipt's keys: 400 for one that is not of this intake's form, touching nothing. */
  private receiptKeys(receipt: unknown): { keys: IntakeKeys; expiresAt: number } {
    const key = typeof receipt === 'string' ? receipt : receiptKey(receipt);
    const parsed = key === undefined ? undefined : parseIntakeKey(this.location.prefix, key);
    if (parsed?.part !== 'upload') {
      const under = intakePrefix(this.location.prefix);
      throw new UploadReceiptError('malformed', `the receipt must be { key } with the key the presign gave, under "${under}" of bucket "${this.location.bucket}"; ${receiptProblem(receipt, key, under)}.`);
    }
    return { keys: intakeKeys(this.location.prefix, parsed.id, parsed.expiresAt), expiresAt: parsed.expiresAt };
  }

  /** The receipt's record: 400 for one no presign of this store made, 410 for one swept since it expired. */
  private async readRecord(keys: IntakeKeys, expiresAt: number): Promise<IntakeRecord & { etag: string }> {
    let found: Awaited<ReturnType<StoreIo['getText']>>;
    try {
      found = await this.io.getText(keys.record);
    } catch (err) {
      throw await this.io.failure(err, 'read a presigned upload');
    }
    const record = found && parseRecord(found.text);
    if (!found || !record) {
      const gone = Date.now() > expiresAt;
      throw new UploadReceiptError(gone ? 'expired' : 'unknown', gone ? 'the upload expired before it was confirmed: upload it again with a new presign.' : 'no presign of this store made that key: send the key the presign gave.');
    }
    return { ...record, etag: found.etag };
  }

  private async headUpload(keys: IntakeKeys): Promise<Awaited<ReturnType<StoreIo['head']>>> {
    try {
      return await this.io.head(keys.upload);
    } catch (err) {
      throw await this.io.failure(err, 'read a presigned upload');
    }
  }

  private async openMultipart(receipt: { key: string; uploadId: string }, where: string): Promise<{ keys: IntakeKeys; expiresAt: number; record: IntakeRecord }> {
    if (typeof receipt !== 'object' || receipt === null) throw new UploadReceiptError('malformed', `${where} needs { key, uploadId }; got ${describe(receipt)}.`);
    const { keys, expiresAt } = this.receiptKeys(receipt.key);
    const read = { keys, expiresAt, record: await this.readRecord(keys, expiresAt) };
    if (read.record.uploadId === null || read.record.uploadId !== receipt.uploadId) {
      throw new UploadReceiptError('unknown', 'no presigned multipart upload of this store has that key and upload id: send the ones createMultipartUpload gave.');
    }
    if (Date.now() > read.expiresAt) throw new UploadReceiptError('expired', 'the upload expired: upload it again with a new presign.');
    if (read.record.state === 'confirmed') throw confirmedAlready();
    if (read.record.state !== 'open') throw new UploadReceiptError('in-progress', 'this upload is being confirmed, or was.');
    return read;
  }

  private async discardMultipart(keys: IntakeKeys, uploadId: string): Promise<void> {
    await this.io.abortUpload(keys.upload, uploadId).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
    await this.io.delete(keys.record);
  }

  /**
   * A failure of a multipart call: the bucket's 404 (no such upload) and its refusal of the parts
   * listed are the receipt's, anything else the store's.
   */
  private async receiptFailure(err: unknown, action: string): Promise<Error> {
    if (isNotFound(err)) return new UploadReceiptError('unknown', 'the bucket has no such multipart upload: it was completed or aborted. Begin a new one.');
    if (isRefusedParts(err)) {
      return new UploadReceiptError('malformed', `the bucket refused the parts listed (${(err as Error).name}): list each part uploaded, in order, with the ETag its upload answered (every part but the last at least 5 MiB).`);
    }
    return this.io.failure(err, action);
  }

  private async signing<T>(sign: () => Promise<T>): Promise<T> {
    try {
      return await sign();
    } catch (err) {
      if (isTempFileError(err)) throw err;
      throw await this.io.failure(err, 'presign an upload');
    }
  }
}

/**
 * Refuses a type that is not the one the browser declared, when it declared one and the bytes are
 * of a known type (a lying `Content-Type`: 415). One `accept` does not list the sniffer refused.
 */
function refuseUndeclaredType(record: IntakeRecord, detected: DetectedType | undefined): void {
  if (record.contentType !== DEFAULT_TYPE && detected !== undefined && detected.mime.toLowerCase() !== record.contentType) throw new TypeNotAcceptedError(detected, [record.contentType], record.contentType);
}

/**
 * The intake's sink of a confirmation's read: it keeps nothing. The object is judged where it is
 * (the meter counts and hashes it, the sniffer reads its head); its copy is the entry's data.
 */
class KeepsNothing implements IntakeSink {
  readonly hashes = false;
  bytesStored = 0;

  write(chunk: Buffer): undefined {
    this.bytesStored += chunk.length;
    return undefined;
  }

  end(): Promise<void> {
    return Promise.resolve();
  }
}

function confirmationAborted(signal: AbortSignal): AbortedError {
  return new AbortedError('its signal was aborted', signal.reason, 'the confirmation', 'the upload is kept: confirm it again');
}

/**
 * Whether the copy holds the bytes judged: the same ETag. A copy of a multipart object may be
 * given an ETag of its own (AWS S3 makes one; Ceph RGW keeps the source's): then the digest the
 * ticket carries, which the worker's claim checks, is what tells.
 */
function sameObject(judged: string, copied: string): boolean {
  const bare = (etag: string) => etag.replace(/^"(.*)"$/, '$1');
  return bare(judged) === bare(copied) || bare(judged).includes('-');
}

/** What is wrong with a receipt that names no upload of this intake, for the client to read. */
function receiptProblem(receipt: unknown, key: string | undefined, under: string): string {
  if (typeof receipt !== 'string' && (typeof receipt !== 'object' || receipt === null)) return `got ${describe(receipt)}`;
  const given = typeof receipt === 'string' ? receipt : (receipt as { key?: unknown }).key;
  if (given === undefined) return 'got an object without `key`';
  if (typeof given !== 'string') return `its key is ${describe(given)}, not a string`;
  if (key === undefined) return `its key is ${given.length} characters long: the presign's are far shorter`;
  const shown = JSON.stringify(key.length > 120 ? `${key.slice(0, 120)}…` : key);
  if (!key.startsWith(under)) return `its key ${shown} is not under "${under}"`;
  return `its key ${shown} is not one a presign gives (${under}<32 hex digits>.<expiry>/upload)`;
}

function receiptKey(receipt: unknown): string | undefined {
  if (typeof receipt !== 'object' || receipt === null) return undefined;
  const key = (receipt as { key?: unknown }).key;
  return typeof key === 'string' && key.length <= 1024 ? key : undefined;
}

const RECORD_STATES: ReadonlySet<string> = new Set(['open', 'confirming', 'confirmed']);

/** A confirmation of an upload confirmed before: 409, and no second ticket. */
function confirmedAlready(): UploadReceiptError {
  return new UploadReceiptError('in-progress', 'this upload was confirmed already: one upload makes one ticket, which the first confirmation returned.');
}

function parseRecord(text: string): IntakeRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<IntakeRecord>;
    if (value.v !== 1 || !RECORD_STATES.has(value.state as string) || typeof value.maxBytes !== 'number' || typeof value.contentType !== 'string' || typeof value.suffix !== 'string') return undefined;
    return value as IntakeRecord;
  } catch {
    return undefined;
  }
}

function readTerms(own: Partial<PresignUploadOptions>, where: string): Terms {
  if (own.maxBytes === undefined) throw new InvalidOptionError('maxBytes', `${where} needs \`maxBytes\`: the most bytes the browser may upload, such as 20 * 1024 ** 2.`);
  const maxBytes = validateInteger(own.maxBytes, 'maxBytes', { where, min: 1, max: MAX_INTAKE_BYTES, unit: 'bytes', note: '(5 GiB, the most one CopyObject copies)' });
  const accept = own.accept === undefined ? undefined : parseAccept(own.accept);
  const contentType = own.contentType === undefined ? DEFAULT_TYPE : String(own.contentType).toLowerCase();
  if (typeof own.contentType !== 'undefined' && (typeof own.contentType !== 'string' || !MIME.test(contentType))) {
    throw new InvalidOptionError('contentType', `${where}: \`contentType\` must be a MIME type such as 'image/png', got ${describe(own.contentType)}.`);
  }
  if (accept && own.contentType !== undefined && !isAccepted(accept, { mime: contentType, ext: '' })) throw new TypeNotAcceptedError({ mime: contentType, ext: '' }, accept);
  const ttlMs = own.ttlMs === undefined ? DEFAULT_PRESIGN_MS : validateDuration(own.ttlMs, 'ttlMs', { min: 1000, max: MAX_PRESIGN_MS }, { where });
  const meta = own.meta === undefined ? undefined : checkMeta(own.meta);
  const suffix = own.suffix === undefined ? '' : validateNamePart(own.suffix, 'suffix');
  return { maxBytes, accept, contentType, ttlMs, meta, suffix };
}

function readPutTerms(own: Partial<PresignUploadOptions>, maxBytes: number): { size: number; checksumSha256: string | undefined } {
  if (own.size === undefined) throw new InvalidOptionError('size', "presignUpload(): a 'PUT' needs `size`, the body's exact length in bytes (the browser's file.size); or use 'POST', which binds only maxBytes.");
  if (typeof own.size === 'number' && Number.isSafeInteger(own.size) && own.size > maxBytes) throw new SizeLimitError(maxBytes);
  const size = validateInteger(own.size, 'size', { where: 'presignUpload()', min: 1, max: maxBytes, unit: 'bytes' });
  const checksum: unknown = own.checksumSha256;
  if (checksum !== undefined && (typeof checksum !== 'string' || !SHA256_BASE64.test(checksum))) {
    throw new InvalidOptionError('checksumSha256', `presignUpload(): \`checksumSha256\` must be a SHA-256 as base64 (44 characters), got ${describe(checksum)}.`);
  }
  return { size, checksumSha256: checksum };
}

function readParts(parts: unknown): { ETag: string; PartNumber: number }[] {
  if (!Array.isArray(parts) || parts.length === 0 || parts.length > MAX_PARTS) throw new UploadReceiptError('malformed', 'the parts must be a list of { PartNumber, ETag }, one for each part uploaded.');
  return parts.map((part: unknown) => {
    const { PartNumber, ETag } = (typeof part === 'object' && part !== null ? part : {}) as Partial<IntakePart>;
    if (typeof PartNumber !== 'number' || !Number.isSafeInteger(PartNumber) || PartNumber < 1 || PartNumber > MAX_PARTS || typeof ETag !== 'string' || ETag.length > 256) {
      throw new UploadReceiptError('malformed', `each part must be { PartNumber, ETag } as the bucket answered its upload; got ${describe(part)}.`);
    }
    return { ETag, PartNumber };
  });
}
