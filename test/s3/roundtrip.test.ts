// The store against a real S3 server (Ceph RGW, test/s3/server.ts): a file handed off on one
// "host" (a manager with its own root) is claimed on another that shares no disk with it.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { TempFileManager, type HandoffTicket } from '../../src/index.js';
import { s3Store, type S3Store } from '../../src/s3/index.js';
import { bucketFor, clientFor, needsS3, separateHosts, server } from './server.js';

const { manager, newRoot } = separateHosts('rt', 2000);

let client: S3Client;
let bucket: string;
const prefix = `rt-${randomBytes(4).toString('hex')}/`;

beforeAll(async () => {
  const found = await server();
  if (!('state' in found)) return;
  client = clientFor(found.state);
  bucket = await bucketFor(client, 'tfm-roundtrip');
});


async function keysUnder(p: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: p }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

async function handOff(content: Buffer, store: S3Store, options: { hash?: 'sha256' } = {}): Promise<{ ticket: HandoffTicket; sender: TempFileManager }> {
  const sender = manager();
  const file = await sender.write(content, { suffix: '.bin', ...options });
  const local = file.path;
  const ticket = await file.handoff({ ttlMs: 600_000, store, meta: { job: 1 } });
  expect(fs.existsSync(local), 'the local file is gone once handed off').toBe(false);
  return { ticket, sender };
}

describe('handoff through S3, claimed where no disk is shared', () => {
  it('round trip: the claimer gets the bytes in its own scope, digest verified; consume() deletes the data, the sweep the consumed lease', async (ctx) => {
    await needsS3(ctx);
    const store = s3Store({ client, bucket, prefix });
    const content = randomBytes(300_000);
    const { ticket, sender } = await handOff(content, store);
    expect(ticket.store).toEqual({ kind: 's3', bucket, prefix });
    expect(ticket.digest).toBe(`sha256:${createHash('sha256').update(content).digest('hex')}`);
    const json = JSON.parse(JSON.stringify(ticket)) as HandoffTicket;
    const worker = manager([store]);
    const claimed = await worker.claim(json);
    expect(claimed.path.startsWith(worker.root)).toBe(true);
    expect(fs.readFileSync(claimed.path).equals(content)).toBe(true);
    expect(claimed.meta).toEqual({ job: 1 });
    expect(await keysUnder(prefix + ticket.id)).toHaveLength(2); // data, lease
    await claimed.consume();
    expect(claimed.disposed).toBe(true);
    expect(fs.existsSync(claimed.path)).toBe(false);
    // The data goes with the call; the lease stays, saying consumed, until the store's sweep.
    expect((await keysUnder(prefix + ticket.id)).map((k) => k.slice(k.lastIndexOf('/') + 1))).toEqual(['lease']);
    await expect(worker.claim(json), 'a redelivered ticket').rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    expect(await store.sweep()).toMatchObject({ removed: 1, objects: 1, errors: [] });
    expect(await keysUnder(prefix + ticket.id)).toEqual([]);
    await expect(worker.claim(json)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    await Promise.all([sender.close(), worker.close()]);
  });

  it('a 24 MiB file goes up in parts and comes down whole (write()\'s own digest carried)', async (ctx) => {
    await needsS3(ctx);
    const store = s3Store({ client, bucket, prefix });
    const content = randomBytes(24 * 1024 * 1024);
    const { ticket, sender } = await handOff(content, store, { hash: 'sha256' });
    const worker = manager([store]);
    await worker.withClaim(ticket, (claimed) => {
      const got = fs.readFileSync(claimed.path);
      expect(got.length).toBe(content.length);
      expect(got.equals(content)).toBe(true);
    });
    await store.sweep(); // the consumed lease, a tombstone, goes with the sweep
    expect(await keysUnder(prefix + ticket.id)).toEqual([]);
    await Promise.all([sender.close(), worker.close()]);
  }, 120_000);

  it('release(), disposal and a throwing withClaim give the entry back at once; keep() moves the file out and consumes', async (ctx) => {
    await needsS3(ctx);
    const store = s3Store({ client, bucket, prefix });
    const content = Buffer.from('hello from another host');
    const { ticket, sender } = await handOff(content, store);
    const a = manager([store]);
    const b = manager([store]);
    const first = await a.claim(ticket);
    await expect(b.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_ALREADY_CLAIMED' });
    await first.release();
    expect(fs.existsSync(first.path)).toBe(false);
    {
      await using second = await b.claim(ticket);
      expect(fs.readFileSync(second.path, 'utf8')).toBe('hello from another host');
    } // released by disposal
    await expect(a.withClaim(ticket, () => Promise.reject(new Error('job failed')))).rejects.toThrow('job failed');
    const third = await a.claim(ticket);
    const dest = path.join(path.dirname(newRoot()), 'kept.bin');
    expect(await third.keep(dest)).toBe(dest);
    expect(fs.readFileSync(dest, 'utf8')).toBe('hello from another host');
    const leaseKey = `${prefix}${ticket.id}.${ticket.expiresAt}/lease`;
    expect(await keysUnder(prefix + ticket.id), 'the data gone, the lease left as a tombstone').toEqual([leaseKey]);
    await expect(a.claim(ticket), 'a redelivered ticket').rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    await expect(third.consume()).resolves.toBeUndefined(); // done: nothing more
    await store.sweep();
    expect(await keysUnder(prefix + ticket.id)).toEqual([]);
    await Promise.all([sender.close(), a.close(), b.close()]);
  });

  it('a claim whose manager closes under it stops beating: the next claimer gets the file once staleMs passed', async (ctx) => {
    await needsS3(ctx);
    const store = s3Store({ client, bucket, prefix });
    const { ticket, sender } = await handOff(Buffer.from('outlives its worker'), store);
    const first = manager([store]);
    const claimed = await first.claim(ticket);
    await first.close(); // the session, and the claim's local copy with it
    expect(fs.existsSync(claimed.path)).toBe(false);
    const next = manager([store]);
    const started = performance.now();
    const got = await (async () => {
      for (;;) {
        try {
          return await next.withClaim(ticket, (c) => fs.readFileSync(c.path, 'utf8'));
        } catch (err) {
          expect((err as { code?: string }).code).toBe('ERR_TEMPFILE_ALREADY_CLAIMED');
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    })();
    expect(got).toBe('outlives its worker');
    expect(performance.now() - started).toBeLessThan(15_000);
    await Promise.all([sender.close(), next.close()]);
  }, 30_000);

  it("a download held to the claimer's limits: maxLiveBytes and minFreeBytes refuse it, typed; nothing is left and the next claimer gets it at once", async (ctx) => {
    await needsS3(ctx);
    const store = s3Store({ client, bucket, prefix });
    const content = randomBytes(200_000);
    const { ticket, sender } = await handOff(content, store);
    const small = manager([store], { maxLiveBytes: 100_000 });
    await expect(small.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_QUOTA_EXCEEDED', limit: 100_000 });
    const full = manager([store], { minFreeBytes: Number.MAX_SAFE_INTEGER });
    await expect(full.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_NO_SPACE' });
    for (const refused of [small, full]) {
      expect(fs.existsSync(refused.sessionPath) ? fs.readdirSync(refused.sessionPath) : [], 'no partial download left').toEqual([]);
    }
    const next = manager([store]);
    await next.withClaim(ticket, (claimed) => expect(fs.readFileSync(claimed.path).equals(content)).toBe(true));
    await store.sweep(); // the consumed lease, a tombstone, goes with the sweep
    expect(await keysUnder(prefix + ticket.id)).toEqual([]);
    await Promise.all([sender.close(), small.close(), full.close(), next.close()]);
  });

  it('a store ticket on a manager without that store, and a sync step, are typed errors', async (ctx) => {
    await needsS3(ctx);
    const store = s3Store({ client, bucket, prefix });
    const { ticket, sender } = await handOff(Buffer.from('x'), store);
    const bare = manager();
    const err = await bare.claim(ticket).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'not-configured' });
    expect((err as Error).message).toContain(bucket);
    const worker = manager([store]);
    const claimed = await worker.claim(ticket);
    expect(() => claimed.consumeSync()).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_STORE', reason: 'sync' }));
    await claimed.consume();
    await Promise.all([sender.close(), worker.close(), bare.close()]);
  });
});
