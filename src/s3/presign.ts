import type * as PresignerModule from '@aws-sdk/s3-request-presigner';
import type * as PostModule from '@aws-sdk/s3-presigned-post';
import type * as ClientModule from '@aws-sdk/client-s3';
import { loadPeer } from '../base/peer.js';
import type { StoreIo } from './io.js';

// The presigns a browser uploads with (intake.ts decides what they bind): signed with the
// caller's client, whose credentials are never read here. Each SDK package is loaded on first use.

let presigner: Promise<typeof PresignerModule> | undefined;
let post: Promise<typeof PostModule> | undefined;
let client: Promise<typeof ClientModule> | undefined;

const NEEDED_BY = "tempfile-manager/s3's presigned uploads";

function loadPresigner(): Promise<typeof PresignerModule> {
  return (presigner ??= loadPeer('@aws-sdk/s3-request-presigner', NEEDED_BY, () => import('@aws-sdk/s3-request-presigner')));
}

function loadPost(): Promise<typeof PostModule> {
  return (post ??= loadPeer('@aws-sdk/s3-presigned-post', NEEDED_BY, () => import('@aws-sdk/s3-presigned-post')));
}

function loadClient(): Promise<typeof ClientModule> {
  return (client ??= loadPeer('@aws-sdk/client-s3', NEEDED_BY, () => import('@aws-sdk/client-s3')));
}

/** A browser's form upload: the form's URL and the fields to send before the file. */
export interface SignedPost {
  readonly url: string;
  readonly fields: Record<string, string>;
}

/** A browser's PUT: its URL and the headers it must send as signed. */
export interface SignedPut {
  readonly url: string;
  readonly headers: Record<string, string>;
}

/**
 * A POST policy for exactly `key`: a body of 1 to `maxBytes` bytes (`content-length-range`, which
 * the bucket enforces) and the content type fixed.
 */
export async function signPost(io: StoreIo, key: string, terms: { maxBytes: number; contentType: string; expiresInS: number }): Promise<SignedPost> {
  const { createPresignedPost } = await loadPost();
  const signed = await createPresignedPost(io.signingClient, {
    Bucket: io.bucket,
    Key: key,
    Conditions: [['content-length-range', 1, terms.maxBytes], ['eq', '$Content-Type', terms.contentType]],
    Fields: { 'Content-Type': terms.contentType },
    Expires: terms.expiresInS,
  });
  return { url: signed.url, fields: signed.fields };
}

/**
 * A PUT of exactly `size` bytes to `key`, that only creates (`If-None-Match: *`): the length, the
 * content type, the condition and the checksum, if given, are signed headers, so a request
 * without them, or with others, is refused by the bucket.
 */
export async function signPut(io: StoreIo, key: string, terms: { size: number; contentType: string; checksumSha256: string | undefined; expiresInS: number }): Promise<SignedPut> {
  const [{ getSignedUrl }, { PutObjectCommand }] = await Promise.all([loadPresigner(), loadClient()]);
  const headers: Record<string, string> = { 'content-type': terms.contentType, 'if-none-match': '*' };
  if (terms.checksumSha256 !== undefined) headers['x-amz-checksum-sha256'] = terms.checksumSha256;
  const command = new PutObjectCommand({
    Bucket: io.bucket,
    Key: key,
    ContentLength: terms.size,
    ContentType: terms.contentType,
    IfNoneMatch: '*',
    ...(terms.checksumSha256 === undefined ? {} : { ChecksumSHA256: terms.checksumSha256 }),
  });
  const signable = new Set(['content-length', ...Object.keys(headers)]);
  const url = await getSignedUrl(io.signingClient, command, { expiresIn: terms.expiresInS, signableHeaders: signable, unhoistableHeaders: signable });
  return { url, headers };
}

/** A PUT of one part of a multipart upload; of exactly `size` bytes when given (a signed header). */
export async function signPart(io: StoreIo, key: string, terms: { uploadId: string; partNumber: number; size: number | undefined; expiresInS: number }): Promise<SignedPut> {
  const [{ getSignedUrl }, { UploadPartCommand }] = await Promise.all([loadPresigner(), loadClient()]);
  const command = new UploadPartCommand({ Bucket: io.bucket, Key: key, UploadId: terms.uploadId, PartNumber: terms.partNumber, ContentLength: terms.size });
  const signable = new Set(terms.size === undefined ? [] : ['content-length']);
  const url = await getSignedUrl(io.signingClient, command, { expiresIn: terms.expiresInS, signableHeaders: signable });
  return { url, headers: {} };
}
