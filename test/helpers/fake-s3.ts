import type { S3Client } from '@aws-sdk/client-s3';

/** One request a {@link fakeS3} client was sent. */
export interface SentRequest {
  /** The command's class name: `PutObjectCommand`, `UploadPartCommand`... */
  readonly name: string;
  readonly key: string;
  readonly input: Record<string, unknown>;
}

/**
 * An S3 client that keeps objects in memory, honours `If-None-Match: *` and `If-Match` (ETags
 * compared quoted, as AWS does) and takes multipart uploads: enough for the store's leases and a
 * stream's upload, without a gateway. `onSend` sees each request as it is sent, in the async
 * context of the code that sends it; `failNext(which)` makes the next request `which` accepts
 * fail as an unreachable store does.
 */
export function fakeS3(onSend: (request: SentRequest) => void = () => {}): { client: S3Client; failNext: (which: (request: SentRequest) => boolean) => void } {
  const objects = new Map<string, { body: string; etag: string }>();
  const failing: ((request: SentRequest) => boolean)[] = [];
  let version = 0;
  const failure = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
  const send = async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
    const request: SentRequest = { name: command.constructor.name, key: String(command.input['Key']), input: command.input };
    onSend(request);
    const planned = failing.findIndex((which) => which(request));
    if (planned >= 0) {
      failing.splice(planned, 1);
      throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    }
    const current = objects.get(request.key);
    const etag = () => `"e${++version}"`;
    switch (request.name) {
      case 'PutObjectCommand': {
        if (request.input['IfNoneMatch'] === '*' && current) throw failure('PreconditionFailed', 412);
        if (request.input['IfMatch'] !== undefined && request.input['IfMatch'] !== current?.etag) throw failure('PreconditionFailed', 412);
        const tag = etag();
        objects.set(request.key, { body: String(request.input['Body']), etag: tag });
        return { ETag: tag };
      }
      case 'GetObjectCommand':
        if (!current) throw failure('NoSuchKey', 404);
        return { ETag: current.etag, Body: { transformToString: async () => current.body } };
      case 'DeleteObjectCommand':
        objects.delete(request.key);
        return {};
      case 'CreateMultipartUploadCommand':
        return { UploadId: `upload-${++version}` };
      case 'UploadPartCommand':
        return { ETag: etag() };
      case 'CompleteMultipartUploadCommand': {
        const tag = etag();
        objects.set(request.key, { body: '(parts)', etag: tag });
        return { ETag: tag };
      }
      case 'AbortMultipartUploadCommand':
        return {};
      default:
        throw new Error(`fakeS3: unexpected ${request.name}`);
    }
  };
  const config = { endpoint: async () => ({ protocol: 'http:', hostname: 'store.example', port: 9000, path: '/' }), region: async () => 'us-east-1' };
  return { client: { send, config } as unknown as S3Client, failNext: (which) => void failing.push(which) };
}
