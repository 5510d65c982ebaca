// Uploads handed straight to the store, with no local file, through Express, Fastify and
// handleUpload() (tempfile-manager/web, under @hono/node-server) in an API process of their own
// (test/fixtures/s3-direct-server.mjs), against the real gateway: a client
// gone mid-body, a type refused, a body over maxBytes each leave no object and no incomplete
// multipart upload; an API process SIGKILLed mid-upload leaves nothing once the store's sweep ran,
// while a live upload is never aborted by it; a worker claims what was handed off as any ticket.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HandoffTicket } from '../../src/index.js';
import { s3Store, type S3Store } from '../../src/s3/index.js';
import { nextJson, startChild, type Elsewhere, type RunningChild } from '../helpers/child.js';
import { needs, PID_NAMESPACE } from '../helpers/privileges.js';
import { bucketFor, clientFor, needsS3, separateHosts, server, type RgwState } from './server.js';

const MiB = 1024 * 1024;
const BOUNDARY = 'tfmDirectBoundary0123456789';
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64'); // 1x1

let state: RgwState;
let client: S3Client;
let bucket: string;
const { newRoot, manager } = separateHosts('direct', 2000);
const children: RunningChild[] = [];

beforeAll(async () => {
  const found = await server();
  if (!('state' in found)) return;
  state = found.state;
  client = clientFor(state);
  bucket = await bucketFor(client, 'tfm-direct');
});

afterAll(() => {
  for (const { child } of children) child.kill('SIGKILL');
});

/** An API process handing uploads to the store under `prefix`; resolves with its port. */
async function apiServer(adapter: string, prefix: string, where: Elsewhere = {}): Promise<{ port: number; running: RunningChild }> {
  const env = { TFM_S3: JSON.stringify({ state, bucket, prefix, root: newRoot(), adapter, ttlMs: 600_000, maxBytes: 14 * MiB }) };
  const running = startChild('s3-direct-server.mjs', [], env, where);
  children.push(running);
  const { port } = await nextJson<{ port: number }>(running);
  return { port, running };
}

/** What is left under `prefix`: objects and incomplete multipart uploads. */
async function leftUnder(prefix: string): Promise<{ objects: string[]; uploads: string[] }> {
  const objects = (await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? [];
  const uploads = (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))).Uploads ?? [];
  return { objects: objects.map((o) => o.Key!), uploads: uploads.map((u) => u.Key!) };
}

/** Polls until `check` holds: the server settles the request after the client is gone. */
async function eventually(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${ms / 1000} s: ${JSON.stringify(await leftUnder(''))}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const nothingLeft = (prefix: string) => async () => {
  const left = await leftUnder(prefix);
  return left.objects.length === 0 && left.uploads.length === 0;
};

/** A form upload of one file, sent as the test says: the body's bytes written piece by piece. */
function startUpload(port: number, path: string, fileBytes: number) {
  const head = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="clip.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
  const req = http.request({
    host: '127.0.0.1',
    port,
    path,
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': head.length + fileBytes + tail.length },
  });
  req.on('error', () => {}); // the aborted and killed ones
  const answer = new Promise<{ status: number; body: { handedOff?: { ticket: HandoffTicket; digest: string; size: number }[]; code?: string } }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || '{}') as never }));
      res.on('error', reject);
    });
  });
  answer.catch(() => {});
  req.write(head);
  return {
    // Resolves once the bytes are taken, or the server stopped reading (a refusal: its answer says).
    write: (bytes: Buffer) =>
      new Promise<void>((resolve) => {
        if (req.write(bytes)) return resolve();
        req.once('drain', resolve);
        req.once('close', resolve);
        void answer.then(() => resolve(), () => resolve());
      }),
    end: () => {
      req.end(tail);
      return answer;
    },
    destroy: () => req.destroy(),
    answer,
  };
}

/** Sends `bytes` of the file, then waits until the server's multipart upload for it is in the store. */
async function sendUntilUploading(upload: ReturnType<typeof startUpload>, prefix: string, bytes: Buffer): Promise<void> {
  await upload.write(bytes);
  await eventually(async () => (await leftUnder(prefix)).uploads.length === 1, 'a multipart upload under way');
}

describe.each(['express', 'fastify', 'web'])('%s: refusals of an upload straight to the store', (adapter) => {
  it('a client gone mid-body, a refused type and a body over maxBytes leave no object and no incomplete multipart upload', async (ctx) => {
    await needsS3(ctx);
    const prefix = `direct-${adapter}-refused-${randomBytes(4).toString('hex')}/`;
    const { port } = await apiServer(adapter, prefix);

    // The client goes away once a part is in the store: the upload is aborted, not left behind.
    const gone = startUpload(port, '/upload', 12 * MiB);
    // More than a part (8 MiB): a Web Request's body fills the first part before the upload begins.
    await sendUntilUploading(gone, prefix, randomBytes(10 * MiB));
    gone.destroy();
    await eventually(nothingLeft(prefix), 'nothing left after the client went away');

    // A type `accept` refuses: 415, nothing sent.
    const wrongType = startUpload(port, '/upload-png', 1 * MiB);
    await wrongType.write(randomBytes(1 * MiB));
    const refused = await wrongType.end();
    expect(refused).toMatchObject({ status: 415, body: { code: 'ERR_TEMPFILE_TYPE_NOT_ACCEPTED' } });

    // Over maxBytes (14 MiB) once parts are in the store: 413, and the upload aborted.
    const tooLarge = startUpload(port, '/upload', 20 * MiB);
    await sendUntilUploading(tooLarge, prefix, randomBytes(10 * MiB));
    await tooLarge.write(randomBytes(10 * MiB));
    expect(await tooLarge.answer).toMatchObject({ status: 413, body: { code: 'ERR_TEMPFILE_SIZE_LIMIT' } });
    tooLarge.destroy();
    await eventually(nothingLeft(prefix), 'nothing left after the refusals');
  }, 60_000);
});

describe.each(['express', 'fastify', 'web'])('%s: an upload straight to the store', (adapter) => {
  it("a live upload outlasts the store's sweep; its ticket is claimed as any other (content, digest, consume)", async (ctx) => {
    await needsS3(ctx);
    const prefix = `direct-${adapter}-claim-${randomBytes(4).toString('hex')}/`;
    const { port } = await apiServer(adapter, prefix);
    const store = s3Store({ client, bucket, prefix });
    const content = Buffer.concat([PNG, randomBytes(12 * MiB)]);
    const upload = startUpload(port, '/upload-png', content.length);
    await sendUntilUploading(upload, prefix, content.subarray(0, 6 * MiB));
    // Mid-upload, the uploader alive: the sweep aborts nothing of it.
    const report = await store.sweep({ staleMs: 2000 });
    expect(report.uploadsAborted).toBe(0);
    expect((await leftUnder(prefix)).uploads).toHaveLength(1);
    await upload.write(content.subarray(6 * MiB));
    const { status, body } = await upload.end();
    expect(status).toBe(200);
    const sent = body.handedOff![0]!;
    const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
    expect(sent).toMatchObject({ size: content.length, digest });
    expect(sent.ticket).toMatchObject({ suffix: '.png', size: content.length, digest, meta: { filename: 'clip.bin' } });
    expect((await leftUnder(prefix)).objects.filter((key) => key.endsWith('/uploading'))).toEqual([]);

    await using worker = manager([store]);
    await worker.withClaim(sent.ticket, async (claimed) => {
      const { readFile } = await import('node:fs/promises');
      expect((await readFile(claimed.path)).equals(content)).toBe(true);
    });
    await expect(worker.claim(sent.ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
  }, 60_000);

});

// The same for each adapter (the store's upload and its heartbeat are the intake's, not the adapter's): two of them.
describe.each(['express', 'fastify'])('%s: an upload straight to the store, its process killed', (adapter) => {
  it("the API process SIGKILLed mid-upload: nothing left once the store's sweep ran", async (ctx) => {
    await needsS3(ctx);
    const prefix = `direct-${adapter}-killed-${randomBytes(4).toString('hex')}/`;
    const { port, running } = await apiServer(adapter, prefix);
    const upload = startUpload(port, '/upload', 12 * MiB);
    await sendUntilUploading(upload, prefix, randomBytes(6 * MiB));
    running.child.kill('SIGKILL');
    await running.ended;
    upload.destroy();
    expect((await leftUnder(prefix)).uploads).toHaveLength(1); // what the crash left
    const report = await s3Store({ client, bucket, prefix }).sweep({ staleMs: 2000 });
    expect(report).toMatchObject({ uploadsAborted: 1, errors: [] });
    expect(await leftUnder(prefix)).toEqual({ objects: [], uploads: [] });
  }, 60_000);
});

it("an API process on another machine (a PID namespace of its own) SIGKILLed mid-upload: the sweep leaves its upload at the first look, and aborts it once its heartbeat stood still for staleMs", async (ctx) => {
  await needsS3(ctx);
  needs(ctx, PID_NAMESPACE);
  const prefix = `direct-elsewhere-${randomBytes(4).toString('hex')}/`;
  const { port, running } = await apiServer('express', prefix, { pidNamespace: true });
  const upload = startUpload(port, '/upload', 12 * MiB);
  await sendUntilUploading(upload, prefix, randomBytes(6 * MiB));
  running.child.kill('SIGKILL'); // unshare --kill-child: the server goes with it
  await running.ended;
  upload.destroy();
  const store = s3Store({ client, bucket, prefix });
  // Its process is not one this machine can see: judged by its heartbeat, first seen now.
  expect(await store.sweep({ staleMs: 2000 })).toMatchObject({ uploadsAborted: 0, errors: [] });
  expect((await leftUnder(prefix)).uploads).toHaveLength(1);
  await eventually(async () => (await store.sweep({ staleMs: 2000 })).uploadsAborted === 1, 'the dead uploader judged by its heartbeat');
  expect(await leftUnder(prefix)).toEqual({ objects: [], uploads: [] });
}, 60_000);

describe('mgr.handoffStream()', () => {
  let store: S3Store;
  let prefix: string;
  beforeAll(() => {
    prefix = `direct-stream-${randomBytes(4).toString('hex')}/`;
  });

  it('hands any stream to the store; over maxBytes it leaves nothing; a source that fails mid-way aborts the upload', async (ctx) => {
    await needsS3(ctx);
    store = s3Store({ client, bucket, prefix, partSize: 5 * MiB });
    await using mgr = manager([store]);
    const content = randomBytes(11 * MiB);
    const ticket = await mgr.handoffStream(Readable.from([content.subarray(0, 7 * MiB), content.subarray(7 * MiB)]), { store, ttlMs: 600_000 });
    expect(ticket).toMatchObject({ size: content.length, suffix: '', digest: `sha256:${createHash('sha256').update(content).digest('hex')}` });
    await mgr.withClaim(ticket, async (claimed) => expect(claimed.size).toBe(content.length));
    await store.sweep({ staleMs: 2000 }); // the consumed entry's lease goes

    await expect(mgr.handoffStream(Readable.from([content, content]), { store, ttlMs: 600_000, maxBytes: 16 * MiB })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_SIZE_LIMIT' });
    async function* failing(): AsyncGenerator<Buffer> {
      yield content;
      throw new Error('the source broke');
    }
    await expect(mgr.handoffStream(Readable.from(failing()), { store, ttlMs: 600_000 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_SOURCE', cause: { message: 'the source broke' } });
    expect(await leftUnder(prefix)).toEqual({ objects: [], uploads: [] });
    await expect(mgr.handoffStream(Readable.from([content]), { store, ttlMs: 0 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'ttlMs' });
  }, 60_000);
});
