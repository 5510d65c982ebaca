// One holder at a time, against a real S3 server (Ceph RGW): the lease lives in the store and is
// taken and kept with conditional writes only (src/s3/lease.ts). Claimers race for one ticket; a
// stopped holder is taken over and fenced; a killed one's file goes to the next claimer.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ClaimedFile, type HandoffTicket } from '../../src/index.js';
import { s3Store, type S3Store } from '../../src/s3/index.js';
import { nextJson, startChild } from '../helpers/child.js';
import { bucketFor, clientFor, needsS3, separateHosts, server, type RgwState } from './server.js';

const STALE_MS = 2000;
/** Rounds of the race: 60 by default (about 30 s here); CI runs 200 once (TEMPFILE_MANAGER_S3_ROUNDS=200), the count the lease promises to hold for. */
const ROUNDS = Number(process.env.TEMPFILE_MANAGER_S3_ROUNDS || 60);
const { manager, newRoot } = separateHosts('lease', STALE_MS);

let state: RgwState;
let client: S3Client;
let bucket: string;
const prefix = `lease-${randomBytes(4).toString('hex')}/`;

beforeAll(async () => {
  const found = await server();
  if (!('state' in found)) return;
  state = found.state;
  client = clientFor(state);
  bucket = await bucketFor(client, 'tfm-lease');
});

async function handOff(store: S3Store, content: Buffer): Promise<HandoffTicket> {
  const sender = manager();
  const file = await sender.write(content, { suffix: '.bin' });
  const ticket = await file.handoff({ ttlMs: 600_000, store });
  await sender.close();
  return JSON.parse(JSON.stringify(ticket)) as HandoffTicket;
}

async function leaseBody(ticket: HandoffTicket): Promise<{ holder: string; state: string; beat: number; data: string }> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}${ticket.id}.${ticket.expiresAt}/lease` }));
  return JSON.parse(await out.Body!.transformToString()) as { holder: string; state: string; beat: number; data: string };
}

async function keysOf(ticket: HandoffTicket): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}${ticket.id}.` }));
  return (out.Contents ?? []).map((o) => o.Key!.slice(o.Key!.lastIndexOf('/') + 1)).sort();
}

describe('the lease in the store', () => {
  it(`2 to 8 claimers race for one ticket, ${ROUNDS} rounds: exactly one holds it each round, the store refuses every other`, async (ctx) => {
    await needsS3(ctx);
    const store = s3Store({ client, bucket, prefix });
    const content = randomBytes(4096);
    const ticket = await handOff(store, content);
    const claimers = Array.from({ length: 8 }, () => manager([store]));
    const started = performance.now();
    const holders: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const racing = claimers.slice(0, 2 + (round % 7));
      const results = await Promise.allSettled(racing.map((mgr) => mgr.claim(ticket)));
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as { code?: string }] : []));
      expect(won, `round ${round}: holders`).toHaveLength(1);
      for (const err of refused) expect(err.code, `round ${round}: ${String(err)}`).toBe('ERR_TEMPFILE_ALREADY_CLAIMED');
      const holder = won[0]!;
      expect(fs.readFileSync(holder.path).equals(content)).toBe(true);
      // While it holds, every other claimer is still refused.
      const again = await Promise.allSettled(racing.map((mgr) => mgr.claim(ticket)));
      expect(again.every((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'ERR_TEMPFILE_ALREADY_CLAIMED'), `round ${round}: a second holder`).toBe(true);
      // The store's witness: the lease names one holder, and that holder's own conditional write succeeds.
      const lease = await leaseBody(ticket);
      expect(lease.state).toBe('held');
      holders.push(lease.holder);
      await holder.release();
      expect((await leaseBody(ticket)).state).toBe('released');
      // A claimer that lost the lease dropped what it had fetched meanwhile: no session keeps a file.
      for (const mgr of racing) expect(fs.existsSync(mgr.sessionPath) ? fs.readdirSync(mgr.sessionPath) : [], `round ${round}: a loser's download left`).toEqual([]);
    }
    expect(new Set(holders).size, 'a new lease (a new holder token) each round').toBe(ROUNDS);
    const last = await claimers[0]!.claim(ticket);
    await last.consume();
    await store.sweep(); // the consumed lease, a tombstone, goes with the sweep
    expect(await keysOf(ticket)).toEqual([]);
    console.log(`lease race: ${ROUNDS} rounds of 2 to 8 claimers in ${Math.round(performance.now() - started)} ms`);
    await Promise.all(claimers.map((mgr) => mgr.close()));
  }, Math.max(180_000, ROUNDS * 3000));

  // The race the multi-host bed once caught: a claimer reads the data, then another consumes the
  // entry and the sweep removes its lease, then the first claimer's lease is created. The client
  // below holds the lease's creation back (sent late) once the GET is answered.
  for (const heldBackMs of [300, 3000]) {
    it(`a claim whose lease is created ${heldBackMs} ms after its early read, the entry consumed and swept meanwhile: HandoffNotFoundError, the bytes never handed out`, async (ctx) => {
      await needsS3(ctx);
      const store = s3Store({ client, bucket, prefix });
      const content = randomBytes(64 * 1024);
      const ticket = await handOff(store, content);
      const first = manager([store]);
      const holder = await first.claim(ticket);
      const slow = clientFor(state);
      let read!: () => void;
      const dataRead = new Promise<void>((resolve) => (read = resolve));
      slow.middlewareStack.add(
        (next, context) => async (args) => {
          const input = args.input as { Key?: string; IfNoneMatch?: string };
          if (context.commandName === 'PutObjectCommand' && input.IfNoneMatch === '*' && input.Key?.endsWith('/lease')) {
            await dataRead;
            await new Promise((resolve) => setTimeout(resolve, heldBackMs));
          }
          const out = await next(args);
          if (context.commandName === 'GetObjectCommand') read();
          return out;
        },
        { step: 'initialize', name: 'holdLeaseBack' },
      );
      const late = manager([s3Store({ client: slow, bucket, prefix })]);
      const claiming = late.claim(ticket);
      claiming.catch(() => {});
      await dataRead;
      await holder.consume();
      const swept = await store.sweep(); // removes the tombstone, in time for the late create or not
      await expect(claiming, `swept ${JSON.stringify(swept)}`).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
      expect(fs.existsSync(late.sessionPath) ? fs.readdirSync(late.sessionPath) : [], 'no copy of the bytes read early').toEqual([]);
      await store.sweep();
      expect(await keysOf(ticket)).toEqual([]);
      await Promise.all([first.close(), late.close()]);
    }, 30_000);
  }

  it('a SIGSTOPped holder is taken over after staleMs and fenced after SIGCONT: LeaseLostError, the new holder\'s objects untouched', async (ctx) => {
    await needsS3(ctx);
    const store = s3Store({ client, bucket, prefix });
    const content = randomBytes(50_000);
    const ticket = await handOff(store, content);
    const first = startChild('s3-claimer.mjs', [], { TFM_S3: JSON.stringify({ state, bucket, prefix, root: newRoot(), ticket, staleMs: STALE_MS }) });
    try {
      expect(await nextJson<{ event: string }>(first)).toMatchObject({ event: 'held' });
      const before = await leaseBody(ticket);
      first.child.kill('SIGSTOP');
      const second = manager([store]);
      const waited = performance.now();
      let claimed: ClaimedFile | undefined;
      while (!claimed) {
        try {
          claimed = await second.claim(ticket);
        } catch (err) {
          expect((err as { code?: string }).code).toBe('ERR_TEMPFILE_ALREADY_CLAIMED');
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
      const tookOver = performance.now() - waited;
      expect(tookOver, 'taken over only once the heartbeat was seen unchanged for staleMs').toBeGreaterThanOrEqual(STALE_MS - 50);
      expect((await leaseBody(ticket)).holder).not.toBe(before.holder);
      first.child.kill('SIGCONT');
      first.child.stdin!.write('consume\n');
      const answer = await nextJson<{ event: string; code?: string }>(first);
      expect(answer).toMatchObject({ event: 'error', code: 'ERR_TEMPFILE_LEASE_LOST' });
      // The fenced holder deleted only its own data key: the new holder works on a copy, named by
      // its lease, which is still there and still its own.
      const after = await leaseBody(ticket);
      expect(after.state).toBe('held');
      expect(after.holder).not.toBe(before.holder);
      expect(await keysOf(ticket), 'the data the new holder works on').toContain(after.data);
      expect(await keysOf(ticket), 'nothing else: the old key went with the takeover').toEqual([after.data, 'lease']);
      expect(fs.readFileSync(claimed.path).equals(content)).toBe(true);
      await claimed.consume();
      await store.sweep(); // the consumed lease, a tombstone, goes with the sweep
      expect(await keysOf(ticket)).toEqual([]);
      await second.close();
      console.log(`SIGSTOP: taken over after ${Math.round(tookOver)} ms (staleMs ${STALE_MS})`);
    } finally {
      first.child.kill('SIGCONT');
      first.child.kill('SIGKILL');
      await first.ended;
    }
  }, 60_000);

  it('a claimer SIGKILLed mid-download (128 MiB): no half file is handed on; the next claimer gets the whole file once staleMs passed', async (ctx) => {
    await needsS3(ctx);
    const store = s3Store({ client, bucket, prefix });
    const content = randomBytes(128 * 1024 * 1024);
    const ticket = await handOff(store, content);
    const root = newRoot();
    const first = startChild('s3-claimer.mjs', [], { TFM_S3: JSON.stringify({ state, bucket, prefix, root, ticket, staleMs: STALE_MS }) });
    const leaseKey = `${prefix}${ticket.id}.${ticket.expiresAt}/lease`;
    for (const deadline = performance.now() + 30_000; ; ) {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: leaseKey }));
      if ((out.Contents ?? []).length > 0) break;
      if (performance.now() > deadline) throw new Error('the claimer took no lease');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    first.child.kill('SIGKILL');
    const { stderr } = await first.ended;
    // What the killed claimer had downloaded (its session is left for the sweep of its root).
    const partial = fs.existsSync(root)
      ? fs.readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.bin')).map((e) => fs.statSync(path.join(e.parentPath, e.name)).size)
      : [];
    const next = manager([store]);
    const waited = performance.now();
    const got = await (async () => {
      for (;;) {
        try {
          return await next.withClaim(ticket, (claimed) => fs.readFileSync(claimed.path));
        } catch (err) {
          expect((err as { code?: string }).code, stderr).toBe('ERR_TEMPFILE_ALREADY_CLAIMED');
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    })();
    expect(got.equals(content)).toBe(true);
    await store.sweep(); // the consumed lease, a tombstone, goes with the sweep
    expect(await keysOf(ticket)).toEqual([]);
    await next.close();
    console.log(`SIGKILL mid-download (killed with ${partial.join(', ') || 'no'} bytes on its disk): the next claimer had the whole file after ${Math.round(performance.now() - waited)} ms (staleMs ${STALE_MS})`);
  }, 90_000);

  it('a holder SIGKILLed mid-job: the next claimer gets the file once staleMs passed, at least once', async (ctx) => {
    await needsS3(ctx);
    const store = s3Store({ client, bucket, prefix });
    const content = randomBytes(200_000);
    const ticket = await handOff(store, content);
    const first = startChild('s3-claimer.mjs', [], { TFM_S3: JSON.stringify({ state, bucket, prefix, root: newRoot(), ticket, staleMs: STALE_MS }) });
    expect(await nextJson<{ event: string }>(first)).toMatchObject({ event: 'held' });
    first.child.kill('SIGKILL');
    await first.ended;
    const next = manager([store]);
    const waited = performance.now();
    const result = await (async () => {
      for (;;) {
        try {
          return await next.withClaim(ticket, (claimed) => fs.readFileSync(claimed.path));
        } catch (err) {
          expect((err as { code?: string }).code).toBe('ERR_TEMPFILE_ALREADY_CLAIMED');
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    })();
    const after = performance.now() - waited;
    expect(result.equals(content)).toBe(true);
    expect(after).toBeGreaterThanOrEqual(STALE_MS - 50);
    await store.sweep(); // the consumed lease, a tombstone, goes with the sweep
    expect(await keysOf(ticket)).toEqual([]);
    await next.close();
    console.log(`SIGKILL: the next claimer had the file after ${Math.round(after)} ms (staleMs ${STALE_MS})`);
  }, 60_000);
});
