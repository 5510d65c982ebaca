// Browser straight to the bucket, against a real S3 server (Ceph RGW): presigned POSTs and PUTs
// sent as a browser sends them (fetch, FormData), confirmed into a ticket that a worker on a host
// with no shared disk claims; and every attack the issue names, from the uploader's side.
import { createHash, randomBytes } from 'node:crypto';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTempFileError, type HandoffTicket } from '../../src/index.js';
import { s3Store, type PresignedUpload, type PresignUploadOptions, type S3Store } from '../../src/s3/index.js';
import { CLAMD, EICAR, scanStream, startClamd, type Clamd } from '../helpers/clamd.js';
import { itNeeds } from '../helpers/privileges.js';
import { png as pngImage } from '../helpers/magic.js';
import { bucketFor, clientFor, needsS3, separateHosts, server } from './server.js';

const { manager } = separateHosts('presign', 2000);

let client: S3Client;
let bucket: string;
const run = randomBytes(4).toString('hex');

beforeAll(async () => {
  const found = await server();
  if (!('state' in found)) return;
  client = clientFor(found.state);
  bucket = await bucketFor(client, 'tfm-presign');
});

let stores = 0;
/** A store under a prefix of its own, so that each test reads only its own keys. */
function freshStore(): S3Store {
  return s3Store({ client, bucket, prefix: `presign-${run}-${stores++}/`, timeoutMs: 5000 });
}

async function keysUnder(store: S3Store): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: store.prefix }));
  return (out.Contents ?? []).map((o) => o.Key!.slice(store.prefix.length)).sort();
}

async function uploadsUnder(store: S3Store): Promise<string[]> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: store.prefix }));
  return (out.Uploads ?? []).map((u) => u.Key!);
}

/** What a browser does with a presign: a form POST (fields, then the file) or a PUT with the signed headers. */
async function send(presigned: PresignedUpload, body: Buffer, type = 'application/octet-stream', headers: Record<string, string> = {}): Promise<number> {
  if (presigned.method === 'PUT') {
    const response = await fetch(presigned.url, { method: 'PUT', body, headers: { ...presigned.headers, ...headers } });
    await response.arrayBuffer();
    return response.status;
  }
  const form = new FormData();
  for (const [name, value] of Object.entries(presigned.fields)) form.append(name, value);
  form.append('file', new Blob([body], { type }));
  const response = await fetch(presigned.url, { method: 'POST', body: form });
  await response.arrayBuffer();
  return response.status;
}

async function claimBytes(store: S3Store, ticket: HandoffTicket): Promise<Buffer> {
  const worker = manager([store]);
  const bytes = await worker.withClaim(JSON.parse(JSON.stringify(ticket)) as HandoffTicket, async (claimed) => {
    const { readFile } = await import('node:fs/promises');
    const read = await readFile(claimed.path);
    await claimed.consume();
    return read;
  });
  await worker.close();
  return bytes;
}

async function refusal(promise: Promise<unknown>): Promise<{ code: string; statusCode: number; reason?: string; message: string }> {
  const err = await promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: unknown) => e,
  );
  if (!isTempFileError(err)) throw err;
  return err as unknown as { code: string; statusCode: number; reason?: string; message: string };
}

const png = (bytes: number) => {
  const image = pngImage();
  return Buffer.concat([image, randomBytes(bytes - image.length)]);
};
/** The key, under the store's prefix, of the record that stays after an upload was confirmed (until its presign expires). */
const recordOf = (store: S3Store, key: string) => `${key.slice(store.prefix.length, -'upload'.length)}record`;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('browser to bucket: presign, upload, confirm, claim', () => {
  it.for(['POST', 'PUT'] as const)('%s: the bytes a browser sent are what a worker claims, with their digest; only the record, saying confirmed, stays under the intake', async (method, ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const body = png(200_000);
    const options: PresignUploadOptions = { maxBytes: 1_000_000, accept: ['image/png'], contentType: 'image/png', meta: { user: 7 }, suffix: '.png', method, ...(method === 'PUT' && { size: body.length }) };
    const presigned = await store.presignUpload(options);
    expect(presigned.key.startsWith(`${store.prefix}.intake/`)).toBe(true);
    expect(await send(presigned, body, 'image/png')).toBeLessThan(300);
    const ticket = await store.confirmUpload({ key: presigned.key }, { ttlMs: 600_000 });
    expect(ticket).toMatchObject({ size: body.length, digest: `sha256:${sha256(body)}`, meta: { user: 7 }, suffix: '.png', store: store.location });
    expect((await keysUnder(store)).filter((k) => k.startsWith('.intake/'))).toEqual([recordOf(store, presigned.key)]);
    const record = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${store.prefix}${recordOf(store, presigned.key)}` }));
    expect(JSON.parse(await record.Body!.transformToString())).toMatchObject({ state: 'confirmed' });
    expect(sha256(await claimBytes(store, ticket))).toBe(sha256(body));
  });

  it('a PUT binds its checksum: bytes of another checksum are refused, by the bucket or at confirmation (422, removed), and the signed bytes are confirmed', async (ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const body = randomBytes(5000);
    const checksumSha256 = createHash('sha256').update(body).digest('base64');
    const lying = await store.presignUpload({ maxBytes: 10_000, method: 'PUT', size: body.length, checksumSha256 });
    // AWS S3 refuses a body whose x-amz-checksum-sha256 differs; Ceph RGW 16 takes it unchecked,
    // and the confirmation's own digest refuses it.
    if ((await send(lying, randomBytes(5000))) === 200) {
      expect(await refusal(store.confirmUpload(lying.key, { ttlMs: 60_000 }))).toMatchObject({ code: 'ERR_TEMPFILE_BAD_RECEIPT', reason: 'checksum', statusCode: 422 });
    }
    expect(await keysUnder(store)).toEqual([]);
    const honest = await store.presignUpload({ maxBytes: 10_000, method: 'PUT', size: body.length, checksumSha256 });
    expect(await send(honest, body)).toBe(200);
    const ticket = await store.confirmUpload(honest.key, { ttlMs: 60_000 });
    expect(ticket.digest).toBe(`sha256:${sha256(body)}`);
  });
});

describe('what the uploader cannot do', () => {
  it.for(['POST', 'PUT'] as const)('%s: a body over maxBytes is refused by the bucket; nothing is confirmed, and the sweep leaves nothing after the presign', async (method, ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const presigned = await store.presignUpload({ maxBytes: 1000, ttlMs: 3000, method, ...(method === 'PUT' && { size: 1000 }) });
    expect(await send(presigned, randomBytes(1001))).toBeGreaterThanOrEqual(400);
    const early = await refusal(store.confirmUpload(presigned.key, { ttlMs: 60_000 }));
    // Before the presign's expiry (unless the machine's load made this late): not uploaded yet.
    expect(early).toMatchObject({ code: 'ERR_TEMPFILE_BAD_RECEIPT', reason: Date.now() < presigned.expiresAt ? 'not-uploaded' : early.reason });
    expect(['not-uploaded', 'expired']).toContain(early.reason);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, presigned.expiresAt + 100 - Date.now())));
    expect(await refusal(store.confirmUpload(presigned.key, { ttlMs: 60_000 }))).toMatchObject({ reason: 'expired', statusCode: 410 });
    await store.sweep();
    expect(await keysUnder(store)).toEqual([]);
  });

  it('a PUT presign cannot be stretched: a size over maxBytes is refused when it is asked for (413)', async (ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    expect(await refusal(store.presignUpload({ maxBytes: 1000, method: 'PUT', size: 1001 }))).toMatchObject({ code: 'ERR_TEMPFILE_SIZE_LIMIT', statusCode: 413 });
    expect(await keysUnder(store)).toEqual([]);
  });

  it('a lying Content-Type (a PDF sent as image/png) is refused (415) and removed', async (ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const presigned = await store.presignUpload({ maxBytes: 100_000, contentType: 'image/png' });
    const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(5000)]);
    expect(await send(presigned, pdf, 'image/png')).toBe(204);
    const refused = await refusal(store.confirmUpload(presigned.key, { ttlMs: 60_000 }));
    expect(refused).toMatchObject({ code: 'ERR_TEMPFILE_TYPE_NOT_ACCEPTED', statusCode: 415, declaredType: 'image/png' });
    expect(refused.message).toMatch(/the bytes are application\/pdf, not the declared image\/png/);
    expect(await keysUnder(store)).toEqual([]);
  });

  it('bytes of a type accept does not list are refused (415) and removed, whatever was declared', async (ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const presigned = await store.presignUpload({ maxBytes: 100_000, accept: ['image/*'] });
    expect(await send(presigned, randomBytes(3000))).toBe(204);
    expect(await refusal(store.confirmUpload(presigned.key, { ttlMs: 60_000 }))).toMatchObject({ statusCode: 415 });
    expect(await keysUnder(store)).toEqual([]);
  });

  it('an empty body is refused by the bucket, POST and PUT alike', async (ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const post = await store.presignUpload({ maxBytes: 1000 });
    expect(await send(post, Buffer.alloc(0))).toBeGreaterThanOrEqual(400);
    const put = await store.presignUpload({ maxBytes: 1000, method: 'PUT', size: 10 });
    expect(await send(put, Buffer.alloc(0))).toBeGreaterThanOrEqual(400);
    for (const key of [post.key, put.key]) expect(await refusal(store.confirmUpload(key, { ttlMs: 60_000 }))).toMatchObject({ reason: 'not-uploaded' });
    expect(await uploadsUnder(store)).toEqual([]);
  });

  it('a second PUT with the same presign is refused before the confirmation, and after it changes nothing a worker claims', async (ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const first = randomBytes(4000);
    const presigned = await store.presignUpload({ maxBytes: 10_000, method: 'PUT', size: 4000 });
    expect(await send(presigned, first)).toBe(200);
    expect(await send(presigned, randomBytes(4000))).toBe(412);
    const ticket = await store.confirmUpload(presigned.key, { ttlMs: 60_000 });
    expect(await send(presigned, randomBytes(4000))).toBe(200); // the intake key is free again: a new object, which nobody confirms
    expect(await refusal(store.confirmUpload(presigned.key, { ttlMs: 60_000 }))).toMatchObject({ statusCode: 409, reason: 'in-progress', message: expect.stringMatching(/confirmed already/) });
    expect(sha256(await claimBytes(store, ticket))).toBe(sha256(first));
  });

  it('a signal that gives the confirmation up, before the call, at 0 or 20 ms, with verify or without: AbortedError (499), never a ticket or a store outage; the upload stays, confirmed again whole', async (ctx) => {
    await needsS3(ctx);
    const outcomes: string[] = [];
    const waitsForAbort = (_object: unknown, signal: AbortSignal) => new Promise<boolean>((resolve) => signal.addEventListener('abort', () => resolve(true)));
    for (const when of ['before', 0, 20] as const) {
      for (const verify of [undefined, waitsForAbort]) {
        const store = freshStore();
        const content = randomBytes(300_000);
        const presigned = await store.presignUpload({ maxBytes: 1_000_000 });
        expect(await send(presigned, content)).toBe(204);
        const controller = new AbortController();
        if (when === 'before') controller.abort();
        else setTimeout(() => controller.abort(), when);
        const result = await store.confirmUpload(presigned.key, { ttlMs: 60_000, signal: controller.signal, ...(verify && { verify }) }).catch((err: unknown) => err);
        const label = `aborted ${when === 'before' ? 'before the call' : `at ${when} ms`}, ${verify ? 'a verify waiting' : 'no verify'}`;
        if (!isTempFileError(result)) {
          // Done before the abort came: only possible without a verify, and only after the call began.
          expect(verify === undefined && when !== 'before', label).toBe(true);
          expect(sha256(await claimBytes(store, result as HandoffTicket))).toBe(sha256(content));
          outcomes.push(`${label}: a ticket`);
          continue;
        }
        expect(result, label).toMatchObject({ code: 'ERR_TEMPFILE_ABORTED', statusCode: 499, message: expect.stringMatching(/^the confirmation was aborted .*confirm it again/) });
        expect((await keysUnder(store)).filter((k) => !k.startsWith('.intake/')), `${label}: no entry left`).toEqual([]);
        const ticket = await store.confirmUpload(presigned.key, { ttlMs: 60_000 });
        expect(sha256(await claimBytes(store, ticket)), label).toBe(sha256(content));
        outcomes.push(`${label}: AbortedError`);
      }
    }
    console.log(outcomes.join('\n'));
  });

  it('a POST replayed while its confirmation judges the bytes, and after, changes nothing a worker claims: the ticket names the first bytes, or the confirmation is refused (409) and leaves nothing', async (ctx) => {
    await needsS3(ctx);
    const outcomes = new Set<string>();
    for (let round = 0; round < 4; round++) {
      const store = freshStore();
      const first = randomBytes(4000);
      const presigned = await store.presignUpload({ maxBytes: 10_000 });
      expect(await send(presigned, first)).toBe(204);
      const replayed = randomBytes(4000);
      let scanned: Buffer | undefined;
      const confirming = store.confirmUpload(presigned.key, {
        ttlMs: 60_000,
        verify: async (object) => {
          expect(await send(presigned, replayed)).toBe(204); // between the check and the ticket
          const chunks: Buffer[] = [];
          for await (const chunk of object.open()) chunks.push(chunk as Buffer);
          scanned = Buffer.concat(chunks);
          return true;
        },
      });
      const ticket = await confirming.catch((err: unknown) => err);
      if (isTempFileError(ticket)) {
        expect(ticket).toMatchObject({ statusCode: 409, reason: 'changed' });
        expect((await keysUnder(store)).filter((k) => !k.startsWith('.intake/'))).toEqual([]);
        outcomes.add('refused');
        continue;
      }
      const claimed = ticket as HandoffTicket;
      expect(claimed.digest).toBe(`sha256:${sha256(first)}`);
      expect(sha256(scanned!)).toBe(sha256(first)); // verify read the bytes the ticket names
      expect(await send(presigned, randomBytes(4000))).toBe(204);
      expect(sha256(await claimBytes(store, claimed))).toBe(sha256(first));
      outcomes.add('first bytes');
    }
    console.log(`a POST replayed during its confirmation: ${[...outcomes].join(', ')}`);
  });

  it('a POST replayed before its copy is made (the copy held back) is refused: 409, nothing kept, nothing a worker could claim', async (ctx) => {
    const state = await needsS3(ctx);
    const slowCopies = clientFor(state);
    // Fault injection: the store's CopyObject waits 800 ms before it is sent.
    slowCopies.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'CopyObjectCommand') await new Promise((resolve) => setTimeout(resolve, 800));
        return next(args);
      },
      { step: 'initialize', name: 'holdCopies' },
    );
    const store = freshStore();
    const slow = s3Store({ client: slowCopies, bucket, prefix: store.prefix });
    const presigned = await store.presignUpload({ maxBytes: 10_000 });
    expect(await send(presigned, randomBytes(4000))).toBe(204);
    const err = await refusal(
      slow.confirmUpload(presigned.key, {
        ttlMs: 60_000,
        verify: async () => {
          expect(await send(presigned, randomBytes(4000))).toBe(204);
          return true;
        },
      }),
    );
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_BAD_RECEIPT', statusCode: 409, reason: 'changed' });
    expect(await keysUnder(store)).toEqual([]);
  });

  it('receipts the store did not make are 400 and touch nothing: a forged key, another prefix, another store, garbage', async (ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const other = freshStore();
    const mine = await store.presignUpload({ maxBytes: 1000 });
    const theirs = await other.presignUpload({ maxBytes: 1000 });
    await send(mine, randomBytes(100));
    await send(theirs, randomBytes(100));
    const before = [await keysUnder(store), await keysUnder(other)];
    const forged = mine.key.replace(/\.intake\/[0-9a-f]{32}/, `.intake/${randomBytes(16).toString('hex')}`);
    const receipts: unknown[] = [forged, { key: theirs.key }, mine.key.replace('/upload', '/record'), `${store.prefix}x/upload`, 'x'.repeat(5000), { key: 42 }, null, [mine.key], { key: `${mine.key}/../record` }];
    for (const receipt of receipts) {
      const err = await refusal(store.confirmUpload(receipt as string, { ttlMs: 60_000 }));
      expect(err, JSON.stringify(receipt)?.slice(0, 80)).toMatchObject({ code: 'ERR_TEMPFILE_BAD_RECEIPT', statusCode: 400 });
    }
    expect([await keysUnder(store), await keysUnder(other)]).toEqual(before);
  });

  it('two confirmations of one upload at once make one ticket; the other is 409', async (ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const presigned = await store.presignUpload({ maxBytes: 100_000 });
    await send(presigned, randomBytes(50_000));
    const results = await Promise.allSettled([store.confirmUpload(presigned.key, { ttlMs: 60_000 }), store.confirmUpload(presigned.key, { ttlMs: 60_000 })]);
    const tickets = results.filter((r) => r.status === 'fulfilled');
    expect(tickets).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected');
    expect(refused?.reason).toMatchObject({ statusCode: 409, reason: 'in-progress' });
    expect((await keysUnder(store)).filter((k) => k.endsWith('/data'))).toHaveLength(1);
  });

  it('a confirmation whose store stops answering mid-way is a StoreError within timeoutMs x attempts, never a hang; what it made goes with the sweep', async (ctx) => {
    const state = await needsS3(ctx);
    const net = await import('node:net');
    // A proxy to the gateway that, once cut, drops every connection and answers nothing more.
    const target = new URL(state.endpoint);
    const sockets = new Set<import('node:net').Socket>();
    let cut = false;
    const proxy = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      if (cut) return;
      const upstream = net.connect(Number(target.port), target.hostname);
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const store = freshStore();
    const through = s3Store({ client: clientFor(state, { endpoint: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`, maxAttempts: 2 }), bucket, prefix: store.prefix, timeoutMs: 500 });
    const presigned = await store.presignUpload({ maxBytes: 64 * 1024 * 1024, ttlMs: 15_000 });
    await send(presigned, randomBytes(48 * 1024 * 1024));
    let started = 0;
    const err = await refusal(
      through.confirmUpload(presigned.key, {
        ttlMs: 1000,
        verify: () => {
          cut = true;
          for (const socket of sockets) socket.destroy();
          started = performance.now();
          return new Promise<boolean>(() => {}); // the read, not the hook, meets the cut
        },
      }),
    );
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_STORE' });
    expect(performance.now() - started).toBeLessThan(15_000); // never a hang: each of 2 attempts is bounded by 500 ms; the rest is room for the backoff and a loaded machine
    proxy.close();
    await new Promise((resolve) => setTimeout(resolve, Math.max(1100, presigned.expiresAt + 100 - Date.now())));
    expect((await store.sweep()).errors).toEqual([]);
    // A store's first conditional write probes how the gateway compares ETags (io.ts); one cut off
    // mid-way leaves its probe, which the sweep removes an hour later.
    expect((await keysUnder(store)).filter((k) => !k.startsWith('.if-match-probe-'))).toEqual([]);
  }, 60_000);

  it('a confirmation whose store never answers is a StoreError within timeoutMs x attempts, never a hang', async (ctx) => {
    const state = await needsS3(ctx);
    const net = await import('node:net');
    // A gateway that accepts and never answers: the store's requests time out.
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const store = freshStore();
    const presigned = await store.presignUpload({ maxBytes: 1000 });
    await send(presigned, randomBytes(100));
    const dead = s3Store({ client: clientFor(state, { endpoint: `http://127.0.0.1:${port}`, maxAttempts: 2 }), bucket, prefix: store.prefix, timeoutMs: 500 });
    const started = performance.now();
    expect(await refusal(dead.confirmUpload(presigned.key, { ttlMs: 60_000 }))).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'unreachable' });
    expect(performance.now() - started).toBeLessThan(15_000); // never a hang: each of 2 attempts is bounded by 500 ms; the rest is room for the backoff and a loaded machine
    silent.close();
  });
});

describe('a real virus scanner over the object, streamed from the bucket', () => {
  let clamd: Clamd | undefined;
  afterAll(() => clamd?.stop());
  const withClamd = itNeeds(CLAMD);

  withClamd('EICAR is refused (422) and removed; a clean file becomes a ticket; clamd gone is a 503 and removed', async (ctx) => {
    await needsS3(ctx);
    clamd ??= await startClamd();
    const socket = clamd.socket;
    const store = freshStore();
    const verify = async (object: { open(): NodeJS.ReadableStream }, signal: AbortSignal) => {
      const found = await scanStream(socket, object.open(), signal);
      return found === undefined || { reason: `a virus was found (${found})` };
    };
    const infected = await store.presignUpload({ maxBytes: 1000 });
    await send(infected, EICAR);
    expect(await refusal(store.confirmUpload(infected.key, { ttlMs: 60_000, verify }))).toMatchObject({ code: 'ERR_TEMPFILE_VERIFY_REFUSED', statusCode: 422 });
    expect(await keysUnder(store)).toEqual([]);
    const clean = await store.presignUpload({ maxBytes: 1000 });
    await send(clean, Buffer.from('a clean file'));
    const ticket = await store.confirmUpload(clean.key, { ttlMs: 60_000, verify });
    expect(sha256(await claimBytes(store, ticket))).toBe(sha256(Buffer.from('a clean file')));
    await clamd.crash();
    const later = await store.presignUpload({ maxBytes: 1000 });
    await send(later, Buffer.from('another clean file'));
    expect(await refusal(store.confirmUpload(later.key, { ttlMs: 60_000, verify }))).toMatchObject({ code: 'ERR_TEMPFILE_VERIFY_FAILED', statusCode: 503 });
    expect((await keysUnder(store)).filter((k) => !k.endsWith('/lease'))).toEqual([recordOf(store, clean.key)]);
    clamd = undefined;
  });
});

describe('large files: presigned multipart parts', () => {
  it('parts PUT to their presigned URLs, completed and confirmed, are claimed whole; an aborted upload is left to nobody', async (ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const body = randomBytes(11 * 1024 * 1024);
    const begun = await store.presignMultipart({ maxBytes: 12 * 1024 * 1024, meta: { big: true } });
    const parts = [];
    for (const [index, start] of [0, 6 * 1024 * 1024].entries()) {
      const bytes = body.subarray(start, Math.min(body.length, start + 6 * 1024 * 1024));
      const signed = await store.signPart({ key: begun.key, uploadId: begun.uploadId, partNumber: index + 1, size: bytes.length });
      const response = await fetch(signed.url, { method: 'PUT', body: bytes, headers: signed.headers });
      expect(response.status).toBe(200);
      parts.push({ PartNumber: index + 1, ETag: response.headers.get('etag')! });
    }
    expect((await store.listParts(begun)).map((p) => p.PartNumber)).toEqual([1, 2]);
    expect(await refusal(store.confirmUpload(begun.key, { ttlMs: 60_000 }))).toMatchObject({ reason: 'not-uploaded', statusCode: 409 });
    await store.completeMultipart({ ...begun, parts });
    const ticket = await store.confirmUpload(begun.key, { ttlMs: 60_000 });
    expect(ticket).toMatchObject({ size: body.length, digest: `sha256:${sha256(body)}`, meta: { big: true } });
    expect(sha256(await claimBytes(store, ticket))).toBe(sha256(body));

    const aborted = await store.presignMultipart({ maxBytes: 12 * 1024 * 1024 });
    const signed = await store.signPart({ key: aborted.key, uploadId: aborted.uploadId, partNumber: 1 });
    expect((await fetch(signed.url, { method: 'PUT', body: randomBytes(1000) })).status).toBe(200);
    await store.abortMultipart(aborted);
    expect(await uploadsUnder(store)).toEqual([]);
    expect(await refusal(store.signPart({ key: aborted.key, uploadId: aborted.uploadId, partNumber: 2 }))).toMatchObject({ statusCode: 400 });
  });

  it('parts past maxBytes are refused at completion (413) and the upload aborted; a part signed for an upload the store did not begin is 400', async (ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const begun = await store.presignMultipart({ maxBytes: 6 * 1024 * 1024 });
    const parts = [];
    for (const partNumber of [1, 2]) {
      const signed = await store.signPart({ key: begun.key, uploadId: begun.uploadId, partNumber });
      const bytes = randomBytes(partNumber === 1 ? 5 * 1024 * 1024 : 2 * 1024 * 1024);
      const response = await fetch(signed.url, { method: 'PUT', body: bytes });
      parts.push({ PartNumber: partNumber, ETag: response.headers.get('etag')! });
    }
    expect(await refusal(store.completeMultipart({ ...begun, parts }))).toMatchObject({ code: 'ERR_TEMPFILE_SIZE_LIMIT', statusCode: 413 });
    expect(await uploadsUnder(store)).toEqual([]);
    expect(await keysUnder(store)).toEqual([]);
    const other = await store.presignMultipart({ maxBytes: 6 * 1024 * 1024 });
    expect(await refusal(store.signPart({ key: other.key, uploadId: begun.uploadId, partNumber: 1 }))).toMatchObject({ statusCode: 400 });
    expect(await refusal(store.signPart({ key: other.key.replace(/[0-9a-f]{32}/, randomBytes(16).toString('hex')), uploadId: other.uploadId, partNumber: 1 }))).toMatchObject({ statusCode: 400 });
    await store.abortMultipart(other);
  });

  it('the sweep removes what was never confirmed once its presign expired: an object, an incomplete multipart upload, a record alone; it leaves a live one', async (ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const uploaded = await store.presignUpload({ maxBytes: 1000, ttlMs: 3000 });
    await send(uploaded, randomBytes(500));
    const unsent = await store.presignUpload({ maxBytes: 1000, ttlMs: 3000 });
    const multipart = await store.presignMultipart({ maxBytes: 12 * 1024 * 1024, ttlMs: 3000 });
    const part = await store.signPart({ key: multipart.key, uploadId: multipart.uploadId, partNumber: 1 });
    await fetch(part.url, { method: 'PUT', body: randomBytes(1000) });
    const live = await store.presignUpload({ maxBytes: 1000, ttlMs: 600_000 });
    await send(live, randomBytes(500));
    const early = await store.sweep();
    const keysBefore = await keysUnder(store);
    if (Date.now() < uploaded.expiresAt) {
      // Nothing had expired by the end of that sweep (unless the machine's load made it late).
      expect(early.uploadsAborted).toBe(0);
      expect(keysBefore.length).toBe(6); // 4 records, 2 uploads
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, multipart.expiresAt + 100 - Date.now())));
    const report = await store.sweep();
    expect(report).toMatchObject({ foreign: 0, errors: [] });
    expect(early.uploadsAborted + report.uploadsAborted).toBe(1); // the multipart upload, by one sweep or the other
    expect(await uploadsUnder(store)).toEqual([]);
    expect(await keysUnder(store)).toEqual([live.key, live.key.replace(/upload$/, 'record')].map((k) => k.slice(store.prefix.length)).sort());
    expect(unsent.key).not.toBe(live.key);
    await store.confirmUpload(live.key, { ttlMs: 60_000 });
  });
});

describe('a sweep meets a confirmation', () => {
  it('a sweep run while a confirmation judges an upload, after its presign expired: the ticket is claimed whole, and nothing is left after', async (ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const body = randomBytes(200_000);
    const presigned = await store.presignUpload({ maxBytes: body.length, ttlMs: 5000 });
    await send(presigned, body);
    let swept: Awaited<ReturnType<S3Store['sweep']>> | undefined;
    const ticket = await store.confirmUpload(presigned.key, {
      ttlMs: 60_000,
      verify: async (object) => {
        for await (const _chunk of object.open()); // the copy is made (open() waits for it), whatever the machine's load
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, presigned.expiresAt + 100 - Date.now())));
        swept = await store.sweep(); // the intake has expired: its record goes under the confirmation
        return true;
      },
    });
    expect(swept?.errors).toEqual([]);
    expect(sha256(await claimBytes(store, ticket))).toBe(sha256(body));
    await store.sweep();
    expect(await keysUnder(store)).toEqual([]);
  });

  it('a sweep before the presign expired leaves a confirmation under way, and the upload it judges, alone', async (ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const body = randomBytes(100_000);
    const presigned = await store.presignUpload({ maxBytes: body.length });
    await send(presigned, body);
    const ticket = await store.confirmUpload(presigned.key, {
      ttlMs: 60_000,
      verify: async () => {
        const report = await store.sweep();
        expect(report).toMatchObject({ removed: 0, objects: 0, uploadsAborted: 0, errors: [] });
        return true;
      },
    });
    expect(sha256(await claimBytes(store, ticket))).toBe(sha256(body));
  });
});

describe('the API killed mid-confirmation', () => {
  it('SIGKILLed at instants through the confirmation: a ticket it printed is claimed whole; after the expiries the sweep leaves nothing; never both, never neither', async (ctx) => {
    const state = await needsS3(ctx);
    const { startChild } = await import('../helpers/child.js');
    const store = freshStore();
    const ttlMs = 3000;
    const body = randomBytes(3 * 1024 * 1024);
    const delays = [0, 40, 80, 130, 200, 300, 450, 700];
    const rounds = await Promise.all(
      delays.map(async (delay) => {
        const presigned = await store.presignUpload({ maxBytes: body.length, ttlMs: 2000 });
        await send(presigned, body);
        const child = startChild('s3-confirmer.mjs', [], { TFM_S3: JSON.stringify({ state, bucket, prefix: store.prefix, key: presigned.key, ttlMs }) });
        const first = await child.lines.next();
        expect(JSON.parse(first.value as string)).toMatchObject({ event: 'confirming' });
        await new Promise((resolve) => setTimeout(resolve, delay));
        child.child.kill('SIGKILL');
        await child.ended;
        const rest = await child.lines.next();
        return rest.done ? undefined : (JSON.parse(rest.value) as { ticket: HandoffTicket }).ticket;
      }),
    );
    const lastAt = Date.now();
    const tickets = rounds.filter((t): t is HandoffTicket => t !== undefined);
    for (const ticket of tickets) expect(sha256(await claimBytes(store, ticket))).toBe(sha256(body));
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, lastAt + ttlMs + 200 - Date.now())));
    expect((await store.sweep()).errors).toEqual([]);
    // A process's first conditional write probes how the gateway compares ETags (io.ts): one killed
    // mid-probe leaves it, and the sweep removes it an hour later.
    expect((await keysUnder(store)).filter((k) => !k.startsWith('.if-match-probe-'))).toEqual([]);
    expect(await uploadsUnder(store)).toEqual([]);
    console.log(`confirmations killed: ${delays.length}, of which ${tickets.length} had made their ticket`);
  }, 60_000);
});
