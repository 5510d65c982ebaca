// The routes a user writes for a browser's upload straight to the bucket, over real HTTP, real
// Express and Fastify, against a real S3 server (Ceph RGW): the Companion-shaped endpoints
// `@uppy/aws-s3` calls (a POST policy, and a multipart upload's create, sign, list, complete and
// abort), the confirmation that makes a ticket a worker on another host claims, and every refusal
// mapped to the upload adapters' statuses with nothing left in the bucket.
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import express, { type NextFunction, type Request, type Response } from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HandoffTicket } from '../../src/index.js';
import { confirmUpload as expressConfirm, presignUploads as expressPresign } from '../../src/adapters/express.js';
import { confirmUpload as fastifyConfirm, presignUploads as fastifyPresign } from '../../src/adapters/fastify.js';
import { s3Store, type S3Store } from '../../src/s3/index.js';
import { png as pngImage } from '../helpers/magic.js';
import { bucketFor, clientFor, needsS3, separateHosts, server } from './server.js';

const { manager } = separateHosts('presign-routes', 2000);
const express4 = createRequire(import.meta.url)('express4') as typeof express;
const MiB = 1024 * 1024;

let client: S3Client;
let bucket: string;
const run = randomBytes(4).toString('hex');

beforeAll(async () => {
  const found = await server();
  if (!('state' in found)) return;
  client = clientFor(found.state);
  bucket = await bucketFor(client, 'tfm-presign-routes');
});

let stores = 0;
function freshStore(): S3Store {
  return s3Store({ client, bucket, prefix: `routes-${run}-${stores++}/`, timeoutMs: 5000 });
}

async function keysUnder(store: S3Store): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: store.prefix }));
  return (out.Contents ?? []).map((o) => o.Key!.slice(store.prefix.length)).sort();
}

async function uploadsUnder(store: S3Store): Promise<string[]> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: store.prefix }));
  return (out.Uploads ?? []).map((u) => u.Key!);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const png = (bytes: number) => {
  const image = pngImage();
  return Buffer.concat([image, randomBytes(bytes - image.length)]);
};

type Kind = 'express' | 'express4' | 'fastify';
interface Api {
  readonly url: string;
  close(): Promise<void>;
}
interface ApiOptions {
  readonly maxBytes: number;
  readonly accept?: readonly string[];
  readonly ttlMs?: number;
}

/**
 * The API as a user writes it: the presign routes under /uploads and three confirmation routes
 * (plain, a `verify` that refuses, a `verify` that throws), each answering the ticket.
 */
async function startApi(kind: Kind, store: S3Store, options: ApiOptions): Promise<Api> {
  const meta = (_req: unknown, file: { filename: string }) => ({ filename: file.filename });
  const refusing = { store, ttlMs: 60_000, verify: () => ({ reason: 'not a cat', statusCode: 422 }) };
  const failing = { store, ttlMs: 60_000, verify: (): boolean => { throw new Error('scanner down'); } };
  if (kind !== 'fastify') {
    const app = kind === 'express' ? express() : express4();
    if (kind === 'express4') app.use(express4.json()); // Express 4's parser sets req.body to {} on every request: the routes read it
    app.use('/uploads', expressPresign({ store, ...options, meta }));
    app.post('/uploads/confirm', expressConfirm({ store, ttlMs: 60_000 }), (req, res) => void res.status(202).json(req.ticket));
    app.post('/uploads/confirm-refusing', expressConfirm(refusing), (req, res) => void res.status(202).json(req.ticket));
    app.post('/uploads/confirm-failing', expressConfirm(failing), (req, res) => void res.status(202).json(req.ticket));
    // The app's own error handler: what next(err) gets (a 5xx), answered with its status.
    app.use((err: { statusCode?: number; code?: string }, _req: Request, res: Response, _next: NextFunction) => {
      res.status(err.statusCode ?? 500).json({ statusCode: err.statusCode, code: err.code, via: 'next' });
    });
    const listening = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => listening.once('listening', resolve));
    return {
      url: `http://127.0.0.1:${(listening.address() as AddressInfo).port}`,
      close: () => new Promise<void>((resolve) => {
        listening.closeAllConnections();
        listening.close(() => resolve());
      }),
    };
  }
  const app = Fastify();
  await app.register(fastifyPresign, { prefix: '/uploads', store, ...options, meta });
  app.post('/uploads/confirm', { preHandler: fastifyConfirm({ store, ttlMs: 60_000 }) }, async (request, reply) => reply.code(202).send(request.ticket));
  app.post('/uploads/confirm-refusing', { preHandler: fastifyConfirm(refusing) }, async (request, reply) => reply.code(202).send(request.ticket));
  app.post('/uploads/confirm-failing', { preHandler: fastifyConfirm(failing) }, async (request, reply) => reply.code(202).send(request.ticket));
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, close: () => app.close() };
}

const apis: Api[] = [];
afterAll(async () => {
  await Promise.all(apis.map((api) => api.close()));
});

async function api(kind: Kind, store: S3Store, options: ApiOptions): Promise<Api> {
  const started = await startApi(kind, store, options);
  apis.push(started);
  return started;
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown> & { statusCode?: number; code?: string };
  readonly headers: Headers;
}

async function call(url: string, init: { method?: string; json?: unknown; body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers };
  let body = init.body;
  if (init.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(init.json);
  }
  const response = await fetch(url, { method: init.method ?? 'GET', headers, body });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Answer['body']), headers: response.headers };
}

/** What `@uppy/aws-s3` does for a small file: GET /s3/params, then the form POST to the bucket. */
async function uploadWithParams(base: string, body: Buffer, name: string, type: string): Promise<{ key: string; status: number }> {
  const params = await call(`${base}/uploads/s3/params?${new URLSearchParams({ filename: name, type, 'metadata[name]': name })}`);
  expect(params.status, JSON.stringify(params.body)).toBe(200);
  expect(params.headers.get('cache-control')).toBe('no-store');
  const { url, fields, method } = params.body as { url: string; fields: Record<string, string>; method: string };
  expect(method).toBe('POST');
  const form = new FormData();
  for (const [field, value] of Object.entries(fields)) form.append(field, value);
  form.append('file', new Blob([body], { type }), name);
  const sent = await fetch(url, { method: 'POST', body: form });
  await sent.arrayBuffer();
  return { key: fields.key!, status: sent.status };
}

/** What `@uppy/aws-s3` does for a multipart upload: create, then each part signed and PUT; the parts as it keeps them. */
async function uploadParts(base: string, parts: readonly Buffer[], type = 'application/octet-stream'): Promise<{ key: string; uploadId: string; parts: { PartNumber: number; ETag: string }[] }> {
  const created = await call(`${base}/uploads/s3/multipart`, { method: 'POST', json: { filename: 'big.bin', type, metadata: { name: 'big.bin' } } });
  expect(created.status, JSON.stringify(created.body)).toBe(200);
  const { key, uploadId } = created.body as { key: string; uploadId: string };
  const sent: { PartNumber: number; ETag: string }[] = [];
  for (const [index, bytes] of parts.entries()) {
    const signed = await call(`${base}/uploads/s3/multipart/${encodeURIComponent(uploadId)}/${index + 1}?${new URLSearchParams({ key })}`);
    expect(signed.status, JSON.stringify(signed.body)).toBe(200);
    expect(signed.body.expires).toBeGreaterThan(0);
    const put = await fetch(signed.body.url as string, { method: 'PUT', body: bytes });
    await put.arrayBuffer();
    expect(put.status).toBe(200);
    sent.push({ PartNumber: index + 1, ETag: put.headers.get('etag')! });
  }
  return { key, uploadId, parts: sent };
}

const uploadPath = (uploadId: string, key: string, tail = '') => `/uploads/s3/multipart/${encodeURIComponent(uploadId)}${tail}?${new URLSearchParams({ key })}`;

async function claimBytes(store: S3Store, ticket: HandoffTicket): Promise<Buffer> {
  const worker = manager([store]);
  try {
    return await worker.withClaim(ticket, async (claimed) => {
      const read = await readFile(claimed.path);
      await claimed.consume();
      return read;
    });
  } finally {
    await worker.close();
  }
}

const KINDS = ['express', 'fastify'] as const;
/** The end-to-end flows run on Express 4 too, behind its JSON parser. */
const ALL_KINDS = ['express', 'express4', 'fastify'] as const;

describe('the Uppy-shaped routes, end to end', () => {
  it.for(ALL_KINDS)('%s: GET /s3/params, the form POSTed to the bucket, POST /confirm: a worker on another host claims the same bytes', async (kind, ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const { url } = await api(kind, store, { maxBytes: 1_000_000, accept: ['image/png'] });
    const body = png(300_000);
    const { key, status } = await uploadWithParams(url, body, 'cat.png', 'image/png');
    expect(status).toBe(204);
    const confirmed = await call(`${url}/uploads/confirm`, { method: 'POST', json: { key } });
    expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(202);
    const ticket = confirmed.body as unknown as HandoffTicket;
    expect(ticket).toMatchObject({ size: body.length, digest: `sha256:${sha256(body)}`, meta: { filename: 'cat.png' } });
    // Only the record stays, saying confirmed, until the presign expires.
    expect((await keysUnder(store)).filter((k) => k.startsWith('.intake/'))).toEqual([`${key.slice(store.prefix.length, -'upload'.length)}record`]);
    expect(sha256(await claimBytes(store, ticket))).toBe(sha256(body));
  });

  it.for(ALL_KINDS)('%s: a multipart upload (create, sign, PUT each part, list, complete, confirm) is claimed whole by a worker', async (kind, ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const { url } = await api(kind, store, { maxBytes: 16 * MiB });
    const parts = [randomBytes(5 * MiB), randomBytes(MiB + 7)];
    const upload = await uploadParts(url, parts);
    const listed = await call(`${url}${uploadPath(upload.uploadId, upload.key)}`);
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual([
      { PartNumber: 1, ETag: upload.parts[0]!.ETag, Size: 5 * MiB },
      { PartNumber: 2, ETag: upload.parts[1]!.ETag, Size: MiB + 7 },
    ]);
    const completed = await call(`${url}${uploadPath(upload.uploadId, upload.key, '/complete')}`, { method: 'POST', json: { parts: upload.parts } });
    expect(completed.status, JSON.stringify(completed.body)).toBe(200);
    expect(completed.body).toEqual({ location: upload.key, key: upload.key });
    const confirmed = await call(`${url}/uploads/confirm`, { method: 'POST', json: { key: completed.body.key } });
    expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(202);
    const whole = Buffer.concat(parts);
    expect(confirmed.body).toMatchObject({ size: whole.length, digest: `sha256:${sha256(whole)}`, meta: { filename: 'big.bin' } });
    expect(await uploadsUnder(store)).toEqual([]);
    expect(sha256(await claimBytes(store, confirmed.body as unknown as HandoffTicket))).toBe(sha256(whole));
  });
});

describe('refusals: the upload adapters\' statuses, nothing left in the bucket', () => {
  it.for(KINDS)('%s: bad client input is 400 with the JSON error body, and touches nothing', async (kind, ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const { url } = await api(kind, store, { maxBytes: 16 * MiB });
    const upload = await uploadParts(url, []);
    const before = await keysUnder(store);
    const bad: [string, Parameters<typeof call>[1]][] = [
      [`/uploads/s3/params?type=${encodeURIComponent('not a type')}`, {}],
      [`/uploads/s3/params?filename=${'x'.repeat(2000)}`, {}],
      ['/uploads/s3/params', { method: 'POST', json: { filename: 'a.png', type: 'image/png/x' } }],
      [`/uploads/s3/multipart`, { method: 'POST', json: { filename: 'a', type: 'image/png/x' } }],
      [uploadPath(upload.uploadId, upload.key, '/0'), {}],
      [uploadPath(upload.uploadId, upload.key, '/10001'), {}],
      [uploadPath(upload.uploadId, upload.key, '/two'), {}],
      [`/uploads/s3/multipart/${encodeURIComponent(upload.uploadId)}/1`, {}], // no ?key=
      [uploadPath(upload.uploadId, upload.key, '/complete'), { method: 'POST', json: { parts: 'all of them' } }],
      [uploadPath(upload.uploadId, upload.key, '/complete'), { method: 'POST', json: { parts: [{ PartNumber: 1 }] } }],
      [uploadPath(upload.uploadId, upload.key, '/complete'), { method: 'POST', json: { parts: [] } }],
      ['/uploads/confirm', { method: 'POST', json: { key: 42 } }],
      ['/uploads/confirm', { method: 'POST', json: ['x'] }],
      ['/uploads/confirm', { method: 'POST', json: { key: `${store.prefix}.intake/${randomBytes(16).toString('hex')}.${Date.now() + 60_000}/upload` } }],
      ['/uploads/confirm', { method: 'POST', json: { key: upload.key.replace('/upload', '/record') } }],
      ['/uploads/confirm', { method: 'POST', body: '{ not json', headers: { 'content-type': 'application/json' } }],
    ];
    for (const [path, init] of bad) {
      const answer = await call(`${url}${path}`, init);
      expect(answer.status, `${path}: ${JSON.stringify(answer.body)}`).toBe(400);
      expect(answer.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(String(answer.body.code), path).toMatch(/^(ERR_TEMPFILE_|FST_ERR_CTP_)/);
      expect(typeof answer.body.message).toBe('string');
    }
    expect(await keysUnder(store)).toEqual(before);
    expect(await uploadsUnder(store)).toEqual([upload.key]);
  });

  it.for(KINDS)('%s: a part signed, listed, completed or aborted for a key or upload id the store did not begin is 400, and touches nothing', async (kind, ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const other = freshStore();
    const { url } = await api(kind, store, { maxBytes: 16 * MiB });
    const mine = await uploadParts(url, [randomBytes(1000)]);
    const theirs = await other.presignMultipart({ maxBytes: 16 * MiB });
    const before = [await keysUnder(store), await keysUnder(other)];
    const forgedKey = mine.key.replace(/\.intake\/[0-9a-f]{32}/, `.intake/${randomBytes(16).toString('hex')}`);
    const pairs: [string, string][] = [
      [randomBytes(12).toString('hex'), mine.key], // an upload id the store never gave
      [theirs.uploadId, mine.key], // another store's upload id
      [mine.uploadId, forgedKey],
      [mine.uploadId, theirs.key],
      [theirs.uploadId, theirs.key], // another store's upload, whole
    ];
    for (const [uploadId, key] of pairs) {
      for (const [tail, init] of [['/1', {}], ['', {}], ['/complete', { method: 'POST', json: { parts: mine.parts } }], ['', { method: 'DELETE' }]] as const) {
        const answer = await call(`${url}${uploadPath(uploadId, key, tail)}`, init);
        expect(answer.status, `${tail} ${JSON.stringify(answer.body)}`).toBe(400);
        expect(answer.body).toMatchObject({ statusCode: 400, code: 'ERR_TEMPFILE_BAD_RECEIPT' });
      }
    }
    expect([await keysUnder(store), await keysUnder(other)]).toEqual(before);
    expect((await uploadsUnder(store)).length + (await uploadsUnder(other)).length).toBe(2);
  });

  it.for(KINDS)("%s: parts the bucket rejects at complete (a wrong ETag, a part never sent) are the client's 400, the store's endpoint unsaid; the right parts then complete it", async (kind, ctx) => {
    const state = await needsS3(ctx);
    const store = freshStore();
    const { url } = await api(kind, store, { maxBytes: 16 * MiB });
    const content = randomBytes(1000);
    const upload = await uploadParts(url, [content]);
    const wrong: { PartNumber: number; ETag: string }[][] = [
      [{ PartNumber: 1, ETag: `"${'0'.repeat(32)}"` }],
      [...upload.parts, { PartNumber: 2, ETag: `"${'1'.repeat(32)}"` }],
    ];
    for (const parts of wrong) {
      const answer = await call(`${url}${uploadPath(upload.uploadId, upload.key, '/complete')}`, { method: 'POST', json: { parts } });
      const said = JSON.stringify(answer.body);
      expect(answer.status, said).toBe(400);
      expect(answer.body).toMatchObject({ statusCode: 400, code: 'ERR_TEMPFILE_BAD_RECEIPT', message: expect.stringMatching(/parts/) });
      expect(said).not.toContain(new URL(state.endpoint).host);
      expect(said).not.toContain(bucket);
    }
    const completed = await call(`${url}${uploadPath(upload.uploadId, upload.key, '/complete')}`, { method: 'POST', json: { parts: upload.parts } });
    expect(completed.status, JSON.stringify(completed.body)).toBe(200);
    const confirmed = await call(`${url}/uploads/confirm`, { method: 'POST', json: { key: upload.key } });
    expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(202);
    expect((await claimBytes(store, confirmed.body as unknown as HandoffTicket)).equals(content)).toBe(true);
  });

  it.for(KINDS)('%s: a multipart upload whose parts pass maxBytes is 413 at complete, aborted, nothing left', async (kind, ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const { url } = await api(kind, store, { maxBytes: 6 * MiB });
    const upload = await uploadParts(url, [randomBytes(5 * MiB), randomBytes(2 * MiB)]);
    const completed = await call(`${url}${uploadPath(upload.uploadId, upload.key, '/complete')}`, { method: 'POST', json: { parts: upload.parts } });
    expect(completed.status).toBe(413);
    expect(completed.body).toMatchObject({ statusCode: 413, code: 'ERR_TEMPFILE_SIZE_LIMIT', error: 'Payload Too Large' });
    expect(await uploadsUnder(store)).toEqual([]);
    expect(await keysUnder(store)).toEqual([]);
    const confirmed = await call(`${url}/uploads/confirm`, { method: 'POST', json: { key: upload.key } });
    expect(confirmed.status).toBe(400);
  });

  it.for(KINDS)('%s: a declared type accept refuses is 415 at the presign; bytes of another type are 415 at confirmation, removed', async (kind, ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const { url } = await api(kind, store, { maxBytes: 100_000, accept: ['image/*'] });
    const declared = await call(`${url}/uploads/s3/params?filename=a.pdf&type=application/pdf`);
    expect(declared.status).toBe(415);
    const posted = await call(`${url}/uploads/s3/params`, { method: 'POST', json: { filename: 'a.pdf', type: 'application/pdf' } });
    expect(posted.status).toBe(415);
    expect(declared.body).toMatchObject({ statusCode: 415, code: 'ERR_TEMPFILE_TYPE_NOT_ACCEPTED' });
    const created = await call(`${url}/uploads/s3/multipart`, { method: 'POST', json: { filename: 'a.pdf', type: 'application/pdf' } });
    expect(created.status).toBe(415);
    expect(await keysUnder(store)).toEqual([]);
    // A PDF declared as a PNG: the bucket takes it (the declared type is signed), the confirmation sniffs it.
    const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(5000)]);
    const { key, status } = await uploadWithParams(url, pdf, 'cat.png', 'image/png');
    expect(status).toBe(204);
    const confirmed = await call(`${url}/uploads/confirm`, { method: 'POST', json: { key } });
    expect(confirmed.status).toBe(415);
    expect(confirmed.body).toMatchObject({ statusCode: 415, code: 'ERR_TEMPFILE_TYPE_NOT_ACCEPTED', error: 'Unsupported Media Type' });
    expect(await keysUnder(store)).toEqual([]);
  });

  it.for(KINDS)('%s: a verify refusal is 422, a verify that throws 503; a second confirmation 409, an expired one 410; each refused object removed', async (kind, ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const { url } = await api(kind, store, { maxBytes: 100_000 });
    const refused = await uploadWithParams(url, randomBytes(2000), 'a.bin', 'application/octet-stream');
    const answer = await call(`${url}/uploads/confirm-refusing`, { method: 'POST', json: { key: refused.key } });
    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ statusCode: 422, code: 'ERR_TEMPFILE_VERIFY_REFUSED' });
    expect(String(answer.body.message)).toMatch(/not a cat/);
    const failed = await uploadWithParams(url, randomBytes(2000), 'c.bin', '');
    const unavailable = await call(`${url}/uploads/confirm-failing`, { method: 'POST', json: { key: failed.key } });
    expect(unavailable.status).toBe(503);
    expect(unavailable.body).toMatchObject({ statusCode: 503, code: 'ERR_TEMPFILE_VERIFY_FAILED' });
    expect(await keysUnder(store)).toEqual([]);

    const twice = await uploadWithParams(url, randomBytes(2000), 'd.bin', '');
    const results = await Promise.all([0, 1].map(() => call(`${url}/uploads/confirm`, { method: 'POST', json: { key: twice.key } })));
    expect(results.map((r) => r.status).sort()).toEqual([202, 409]);
    expect(results.find((r) => r.status === 409)?.body).toMatchObject({ statusCode: 409, code: 'ERR_TEMPFILE_BAD_RECEIPT' });
    await claimBytes(store, results.find((r) => r.status === 202)!.body as unknown as HandoffTicket);
    // Sent again after the first confirmation's answer (a browser that lost it): 409, confirmed
    // already, never "no presign made that key".
    const again = await call(`${url}/uploads/confirm`, { method: 'POST', json: { key: twice.key } });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ statusCode: 409, code: 'ERR_TEMPFILE_BAD_RECEIPT', message: expect.stringMatching(/confirmed already/) });
    // Its record, saying so, is all that stays of it, until its presign expires.
    expect(twice.key.startsWith(store.prefix)).toBe(true);
    const confirmedRecord = `${twice.key.slice(store.prefix.length, -'upload'.length)}record`;
    expect((await keysUnder(store)).filter((k) => k.includes('.intake/'))).toEqual([confirmedRecord]);

    // A presign of one second: its upload reaches the bucket in time or is refused there; either
    // way its confirmation comes too late.
    const short = await api(kind, store, { maxBytes: 100_000, ttlMs: 1000 });
    const late = await uploadWithParams(short.url, randomBytes(2000), 'e.bin', '');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const expired = await call(`${short.url}/uploads/confirm`, { method: 'POST', json: { key: late.key } });
    expect(expired.status).toBe(410);
    expect(expired.body).toMatchObject({ statusCode: 410, code: 'ERR_TEMPFILE_BAD_RECEIPT' });
    await store.sweep();
    expect((await keysUnder(store)).filter((k) => !k.endsWith('/lease'))).toEqual([confirmedRecord]);
  });

  it.for(KINDS)('%s: a store that does not answer is 503, never a hang', async (kind, ctx) => {
    const state = await needsS3(ctx);
    const net = await import('node:net');
    const sockets = new Set<import('node:net').Socket>();
    const silent = net.createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const dead = s3Store({ client: clientFor(state, { endpoint: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, maxAttempts: 1 }), bucket, prefix: `routes-${run}-dead/`, timeoutMs: 300 });
      const { url } = await api(kind, dead, { maxBytes: 1000 });
      for (const answer of [await call(`${url}/uploads/s3/params?filename=a`), await call(`${url}/uploads/s3/multipart`, { method: 'POST', json: {} })]) {
        expect(answer.status).toBe(503);
        expect(answer.body).toMatchObject({ statusCode: 503, code: 'ERR_TEMPFILE_STORE' });
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });
});

describe('an aborted or abandoned multipart upload is left to nobody', () => {
  it.for(KINDS)('%s: DELETE aborts it (ListMultipartUploads empty, its record gone); one never completed goes with the sweep once expired', async (kind, ctx) => {
    await needsS3(ctx);
    const store = freshStore();
    const { url } = await api(kind, store, { maxBytes: 16 * MiB });
    const aborted = await uploadParts(url, [randomBytes(5 * MiB)]);
    const answer = await call(`${url}${uploadPath(aborted.uploadId, aborted.key)}`, { method: 'DELETE' });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({});
    expect(await uploadsUnder(store)).toEqual([]);
    expect(await keysUnder(store)).toEqual([]);
    const again = await call(`${url}${uploadPath(aborted.uploadId, aborted.key, '/2')}`);
    expect(again.status).toBe(400);

    // Presigns of three seconds: one part goes up, then the page is gone.
    const short = await api(kind, store, { maxBytes: 16 * MiB, ttlMs: 3000 });
    const abandoned = await uploadParts(short.url, [randomBytes(MiB)]);
    expect(await uploadsUnder(store)).toEqual([abandoned.key]);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(abandoned.key.split('.').at(-1)!.split('/')[0]) - Date.now()) + 100));
    const late = await call(`${short.url}${uploadPath(abandoned.uploadId, abandoned.key, '/2')}`);
    expect(late.status).toBe(410);
    await store.sweep();
    expect(await uploadsUnder(store)).toEqual([]);
    expect(await keysUnder(store)).toEqual([]);
  });
});
