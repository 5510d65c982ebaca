// What goes wrong, against a real S3 server (Ceph RGW): expired and left-over entries swept
// through the store, tickets forged or garbled, a store that does not answer, credentials
// refused, and credentials never shown.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { inspect } from 'node:util';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { TempFileManager, type HandoffTicket } from '../../src/index.js';
import { s3Store, type S3Store } from '../../src/s3/index.js';
import { bucketFor, clientFor, needsS3, separateHosts, server, type RgwState } from './server.js';

const { manager } = separateHosts('faults', 2000);

let state: RgwState;
let client: S3Client;
let bucket: string;
const prefix = `faults-${randomBytes(4).toString('hex')}/`;

beforeAll(async () => {
  const found = await server();
  if (!('state' in found)) return;
  state = found.state;
  client = clientFor(state);
  bucket = await bucketFor(client, 'tfm-faults');
});

async function keysUnder(p: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: p }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

async function handOff(store: S3Store, content: Buffer, ttlMs = 600_000): Promise<HandoffTicket> {
  const sender = manager();
  const ticket = await (await sender.write(content, { suffix: '.bin' })).handoff({ ttlMs, store });
  await sender.close();
  return JSON.parse(JSON.stringify(ticket)) as HandoffTicket;
}

describe('sweep through the store', () => {
  it('removes an expired ticket\'s objects, the data of a handoff that failed after its upload, and an incomplete multipart upload; leaves the rest', async (ctx) => {
    await needsS3(ctx);
    const p = `${prefix}sweep-${randomBytes(3).toString('hex')}/`;
    const store = s3Store({ client, bucket, prefix: p });
    const expired = await handOff(store, randomBytes(1000), 1);
    const live = await handOff(store, randomBytes(1000));
    // A handoff that failed after its upload (the data alone), and a multipart upload never completed.
    const past = Date.now() - 1000;
    const orphanId = randomBytes(16).toString('hex');
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${p}${orphanId}.${past}/data`, Body: 'half a file' }));
    const partial = `${p}${randomBytes(16).toString('hex')}.${past}/data`;
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: partial }));
    await client.send(new UploadPartCommand({ Bucket: bucket, Key: partial, UploadId, PartNumber: 1, Body: randomBytes(1024) }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${p}not-ours.txt`, Body: 'someone else' }));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const worker = manager([store]);
    await expect(worker.claim(expired)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_EXPIRED' });

    const report = await store.sweep();
    expect(report).toMatchObject({ removed: 2, uploadsAborted: 1, foreign: 1, held: 0, errors: [] });
    const left = await keysUnder(p);
    expect(left.filter((k) => k.includes(expired.id) || k.includes(orphanId))).toEqual([]);
    expect(left).toContain(`${p}not-ours.txt`);
    expect(left.filter((k) => k.includes(live.id))).toHaveLength(1); // its data: untouched
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: p }));
    expect(uploads.Uploads ?? []).toEqual([]);
    // The live one is still claimable.
    await worker.withClaim(live, () => {});
    await worker.close();
  });

  it('leaves an expired entry a live claimer holds; removes it once released', async (ctx) => {
    await needsS3(ctx);
    const p = `${prefix}held-${randomBytes(3).toString('hex')}/`;
    const store = s3Store({ client, bucket, prefix: p });
    const ticket = await handOff(store, randomBytes(100), 1500);
    const worker = manager([store]);
    const claimed = await worker.claim(ticket);
    await new Promise((resolve) => setTimeout(resolve, 1600)); // expired while held
    expect(await store.sweep()).toMatchObject({ removed: 0, held: 1 });
    expect(await keysUnder(p)).toHaveLength(2); // data and lease
    await claimed.release();
    expect(await store.sweep()).toMatchObject({ removed: 1, held: 0 });
    expect(await keysUnder(p)).toEqual([]);
    await worker.close();
  });

  it('mgr.sweep() sweeps its stores too, after its root, and reports each; a store it cannot list is reported, not thrown', async (ctx) => {
    await needsS3(ctx);
    const p = `${prefix}mgr-${randomBytes(3).toString('hex')}/`;
    const store = s3Store({ client, bucket, prefix: p });
    const unreachable = s3Store({ client: clientFor(state, { endpoint: 'http://127.0.0.1:9', maxAttempts: 1 }), bucket, prefix: p, timeoutMs: 1000 });
    const expired = await handOff(store, randomBytes(10), 1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const worker = manager([store, unreachable]);
    expect((await worker.sweep({ dryRun: true })).stores, 'a dry run leaves the stores alone').toBeUndefined();
    const report = await worker.sweep();
    expect(report.stores).toHaveLength(2);
    expect(report.stores![0]).toMatchObject({ location: { kind: 's3', bucket, prefix: p }, report: { removed: 1, errors: [] } });
    expect(report.stores![1]!.error).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'unreachable' });
    expect((await keysUnder(p)).filter((k) => k.includes(expired.id))).toEqual([]);
    await worker.close();
  });

  it("the background sweeper of a manager with stores sweeps them with its root: an expired ticket's objects go without a call", async (ctx) => {
    await needsS3(ctx);
    const p = `${prefix}bg-${randomBytes(3).toString('hex')}/`;
    const store = s3Store({ client, bucket, prefix: p });
    const expired = await handOff(store, randomBytes(10), 1);
    const live = await handOff(store, randomBytes(10));
    const ofEntry = async (id: string) => (await keysUnder(p)).filter((k) => k.includes(id));
    expect(await ofEntry(expired.id)).toHaveLength(1);
    const watcher = manager([store], { sweepOnStart: true, sweepIntervalMs: 1000 });
    const deadline = Date.now() + 10_000;
    while ((await ofEntry(expired.id)).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await ofEntry(expired.id), 'swept in the background').toEqual([]);
    expect(await ofEntry(live.id), 'a live ticket is left').toHaveLength(1);
    await watcher.close();
  });
});

describe('bad tickets are typed errors', () => {
  it('forged, tampered, garbled and foreign-bucket tickets', async (ctx) => {
    await needsS3(ctx);
    const store = s3Store({ client, bucket, prefix });
    const ticket = await handOff(store, Buffer.from('the real bytes'));
    const worker = manager([store]);
    const forged = { ...ticket, id: randomBytes(16).toString('hex') };
    await expect(worker.claim(forged)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    await expect(worker.claim({ ...ticket, size: ticket.size + 1 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_MISMATCH' });
    await expect(worker.claim({ ...ticket, digest: `sha256:${'0'.repeat(64)}` })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_MISMATCH' });
    await expect(worker.claim({ ...ticket, meta: { admin: true } })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_MISMATCH' });
    await expect(worker.claim(JSON.stringify(ticket).slice(0, -3))).rejects.toMatchObject({ code: 'ERR_TEMPFILE_BAD_TICKET' });
    await expect(worker.claim({ ...ticket, store: { kind: 's3', bucket: 'Not_A_Bucket', prefix } } as never)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_BAD_TICKET', field: 'store' });
    await expect(worker.claim({ ...ticket, store: { ...ticket.store!, prefix: '../' } })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_BAD_TICKET' });
    await expect(worker.claim({ ...ticket, store: { ...ticket.store!, endpoint: 'http://evil' } } as never)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_BAD_TICKET' });
    const foreign = await worker.claim({ ...ticket, store: { kind: 's3', bucket: 'someone-elses-bucket', prefix } }).catch((e: unknown) => e);
    expect(foreign).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'not-configured' });
    expect((foreign as Error).message).toContain('someone-elses-bucket');
    // None of them took the entry: the genuine ticket is claimed at once, and its bytes are intact.
    await worker.withClaim(ticket, (claimed) => expect(fs.readFileSync(claimed.path, 'utf8')).toBe('the real bytes'));
    await worker.close();
  });
});

describe('a store that does not answer, or refuses', () => {
  it('a refused connection is a StoreError naming the endpoint, at once', async (ctx) => {
    await needsS3(ctx);
    const dead = clientFor(state, { endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
    const store = s3Store({ client: dead, bucket, prefix, timeoutMs: 2000 });
    const sender = manager();
    const file = await sender.write(Buffer.from('x'), { suffix: '.bin' });
    const started = performance.now();
    const err = await file.handoff({ ttlMs: 60_000, store }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'unreachable', endpoint: 'http://127.0.0.1:9' });
    expect((err as Error).message).toContain('http://127.0.0.1:9');
    expect(performance.now() - started, 'refused at once, not retried for long: a busy machine may take seconds').toBeLessThan(20_000);
    expect(fs.existsSync(file.path), 'a failed handoff leaves the file with its handle').toBe(true);
    await sender.close();
  });

  it('a store that accepts and never answers is a StoreError within the caller\'s timeoutMs, not a hang', async (ctx) => {
    await needsS3(ctx);
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const store = s3Store({ client: clientFor(state, { endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1 }), bucket, prefix, timeoutMs: 800 });
      const worker = manager([store]);
      const ticket: HandoffTicket = { v: 1, id: randomBytes(16).toString('hex'), suffix: '.bin', size: 1, digest: `sha256:${'a'.repeat(64)}`, createdAt: Date.now(), expiresAt: Date.now() + 60_000, store: store.location };
      const started = performance.now();
      const err = await worker.claim(ticket).catch((e: unknown) => e);
      const took = performance.now() - started;
      expect(err).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'unreachable', endpoint: `http://127.0.0.1:${port}` });
      expect((err as Error).message).toMatch(/800 ms/);
      expect(took).toBeGreaterThanOrEqual(700);
      // Not a hang (the SDK sets no timeout of its own): the bound is far above timeoutMs, for a busy machine.
      expect(took).toBeLessThan(20_000);
      await expect(store.sweep()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'unreachable' });
      // Handoffs too: one PutObject for a small file, a multipart upload for one above 8 MiB.
      const sender = manager();
      for (const size of [1024, 9 * 1024 * 1024]) {
        const file = await sender.write(randomBytes(size), { suffix: '.bin' });
        const handing = performance.now();
        await expect(file.handoff({ ttlMs: 60_000, store }), `${size} bytes`).rejects.toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'unreachable' });
        expect(performance.now() - handing, `${size} bytes, not a hang`).toBeLessThan(20_000);
      }
      await sender.close();
      await worker.close();
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it('credentials refused: a StoreError; the secret and the access key appear in no ticket, message or error property', async (ctx) => {
    await needsS3(ctx);
    const secret = `wrong-${randomBytes(12).toString('hex')}`;
    const bad = new S3Client({
      endpoint: state.endpoint,
      region: state.region,
      forcePathStyle: true,
      credentials: { accessKeyId: 'TFMWRONGACCESSKEY001', secretAccessKey: secret },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      maxAttempts: 1,
    });
    const sender = manager();
    const file = await sender.write(Buffer.from('x'), { suffix: '.bin' });
    const err = await file.handoff({ ttlMs: 60_000, store: s3Store({ client: bad, bucket, prefix }) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'denied' });
    const good = s3Store({ client, bucket, prefix });
    const ticket = await file.handoff({ ttlMs: 60_000, store: good });
    const unreachable = await manager([s3Store({ client: clientFor(state, { endpoint: 'http://127.0.0.1:9', maxAttempts: 1 }), bucket, prefix })])
      .claim(ticket)
      .catch((e: unknown) => e);
    for (const shown of [JSON.stringify(ticket), inspect(err, { depth: 5 }), JSON.stringify(err), inspect(unreachable, { depth: 5 }), JSON.stringify(unreachable)]) {
      for (const credential of [secret, 'TFMWRONGACCESSKEY001', state.secretAccessKey, state.accessKeyId]) expect(shown).not.toContain(credential);
    }
    await manager([good]).withClaim(ticket, () => {});
    await sender.close();
  });
});

it('s3Store() options are checked at once, each error naming the option and the bad value', () => {
  const fake = { send: () => Promise.resolve({}), config: {} } as unknown as S3Client;
  expect(() => s3Store({ client: fake, bucket: 'Bad_Bucket' })).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'bucket', message: expect.stringContaining('"Bad_Bucket"') }));
  expect(() => s3Store({ client: fake, bucket: 'ok-bucket', prefix: 'no-slash' })).toThrow(expect.objectContaining({ option: 'prefix' }));
  expect(() => s3Store({ client: {} as S3Client, bucket: 'ok-bucket' })).toThrow(expect.objectContaining({ option: 'client' }));
  expect(() => s3Store({ client: fake, bucket: 'ok-bucket', timeoutMs: 5 })).toThrow(expect.objectContaining({ option: 'timeoutMs' }));
  expect(() => s3Store({ client: fake, bucket: 'ok-bucket', partSize: 1024 })).toThrow(expect.objectContaining({ option: 'partSize' }));
  expect(() => s3Store({ client: fake, bucket: 'ok-bucket', partSize: null as never })).toThrow(expect.objectContaining({ option: 'partSize', message: expect.stringContaining('got null') }));
  expect(() => s3Store({ client: fake, bucket: 'ok-bucket', region: 'x' } as never)).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_INVALID_OPTION' }));
  expect(() => new TempFileManager({ stores: [{}] as never })).toThrow(expect.objectContaining({ option: 'stores' }));
});
