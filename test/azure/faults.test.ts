// The Azure store's faults against Azurite (test/azure/server.ts): the service stopped and started
// again mid-upload and mid-claim, a consume whose answer is lost, blobs deleted by hand. A holder
// SIGSTOPped past staleMs, taken over and fenced is the contract suite's (test/contract/).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import type { BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ClaimedFile, type HandoffTicket, type TempFileManager } from '../../src/index.js';
import { azureStore, type AzureStore } from '../../src/azure/index.js';
import { azurite, blobsUnder, clientOf, containerFor, needsAzurite, restartAzurite, separateHosts, type Azurite } from './server.js';

const MiB = 1024 * 1024;
const STALE_MS = 2000;
const { manager } = separateHosts('faults', STALE_MS);

let server: Azurite;
let client: ContainerClient;
const container = 'tfm-faults';

beforeAll(async () => {
  const found = await azurite();
  if (!('child' in found)) return;
  server = found;
  client = await containerFor(server, container);
});

const newPrefix = (label: string): string => `${label}-${randomBytes(4).toString('hex')}/`;
const names = async (prefix: string): Promise<string[]> => (await blobsUnder(client, prefix)).map((k) => k.slice(k.lastIndexOf('/') + 1));

async function handOff(store: AzureStore, content: Buffer): Promise<HandoffTicket> {
  const sender = manager();
  const file = await sender.write(content, { suffix: '.bin' });
  const ticket = await file.handoff({ ttlMs: 600_000, store });
  await sender.close();
  return JSON.parse(JSON.stringify(ticket)) as HandoffTicket;
}

async function claimWhenFree(mgr: TempFileManager, ticket: HandoffTicket): Promise<ClaimedFile> {
  for (const until = performance.now() + 30_000; ; ) {
    try {
      return await mgr.claim(ticket);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code !== 'ERR_TEMPFILE_ALREADY_CLAIMED' && code !== 'ERR_TEMPFILE_STORE') || performance.now() > until) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Waits until `check` holds, polling. */
async function until(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  for (const deadline = performance.now() + ms; !(await check()); ) {
    if (performance.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('Azurite stopped and started again', () => {
  it('mid-upload (one Put Blob of a 48 MiB file): the handoff is a StoreError (unreachable) and the file stays with its handle; once Azurite is back a retry hands it off whole', async (ctx) => {
    await needsAzurite(ctx);
    const prefix = newPrefix('upload');
    const slow = slowedUploads(clientOf(server, container, { maxTries: 1 }));
    const store = azureStore({ client: slow.client, prefix, timeoutMs: 3000 });
    const sender = manager();
    const content = randomBytes(48 * MiB);
    const file = await sender.write(content, { suffix: '.bin' });
    const handing = file.handoff({ ttlMs: 600_000, store });
    handing.catch(() => {});
    await slow.sending; // bytes on the wire: mid-upload
    const restarted = restartAzurite(server);
    await expect(handing).rejects.toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'unreachable' });
    expect(fs.existsSync(file.path), 'the file stays with its handle').toBe(true);
    await restarted;
    const ticket = await file.handoff({ ttlMs: 600_000, store: azureStore({ client, prefix }) });
    const worker = manager([store]);
    await worker.withClaim(ticket, (claimed) => expect(fs.readFileSync(claimed.path).equals(content)).toBe(true));
    await Promise.all([sender.close(), worker.close()]);
  }, 120_000);

  it('mid-stream (staged blocks of a stream with no local file): the call is a StoreError; once Azurite is back a new stream goes through', async (ctx) => {
    await needsAzurite(ctx);
    const prefix = newPrefix('stream');
    const store = azureStore({ client: clientOf(server, container, { maxTries: 1 }), prefix, blockSize: MiB, timeoutMs: 3000 });
    const mgr = manager([store]);
    async function* slowly(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 64; i++) {
        yield randomBytes(256 * 1024);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    const streaming = mgr.handoffStream(Readable.from(slowly()), { store, ttlMs: 600_000 });
    streaming.catch(() => {});
    await until(async () => (await blobsUnder(client, prefix)).some((name) => name.endsWith('/data')), 'a staged block');
    await restartAzurite(server);
    await expect(streaming).rejects.toMatchObject({ code: 'ERR_TEMPFILE_STORE' });
    const content = randomBytes(3 * MiB);
    const ticket = await mgr.handoffStream(Readable.from([content]), { store, ttlMs: 600_000 });
    await mgr.withClaim(ticket, (claimed) => expect(fs.readFileSync(claimed.path).equals(content)).toBe(true));
    await mgr.close();
  }, 120_000);

  it('mid-claim (a 48 MiB download): the claim is a StoreError, no partial file stays; after the restart the next claimer gets the whole file once the lease is stale', async (ctx) => {
    await needsAzurite(ctx);
    const prefix = newPrefix('claim');
    const store = azureStore({ client: clientOf(server, container, { maxTries: 1 }), prefix, timeoutMs: 3000 });
    const content = randomBytes(48 * MiB);
    const ticket = await handOff(store, content);
    const first = manager([store]);
    const claiming = first.claim(ticket);
    claiming.catch(() => {});
    await until(async () => (await names(prefix)).includes('lease'), 'the lease taken');
    await restartAzurite(server);
    await expect(claiming).rejects.toMatchObject({ code: 'ERR_TEMPFILE_STORE' });
    expect(fs.existsSync(first.sessionPath) ? fs.readdirSync(first.sessionPath) : [], 'no partial download left').toEqual([]);
    const next = manager([store]);
    const claimed = await claimWhenFree(next, ticket);
    expect(fs.readFileSync(claimed.path).equals(content)).toBe(true);
    await claimed.consume();
    await Promise.all([first.close(), next.close()]);
  }, 120_000);
});

/**
 * A client whose Put Blob bodies go out slowly (a chunk each 20 ms); `sending` resolves once the
 * first bytes are on their way.
 */
function slowedUploads(base: ContainerClient): { client: ContainerClient; sending: Promise<void> } {
  let started!: () => void;
  const sending = new Promise<void>((resolve) => (started = resolve));
  const blobProxy = (blob: BlockBlobClient): BlockBlobClient =>
    new Proxy(blob, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (property !== 'upload' || typeof value !== 'function') return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        return (body: unknown, ...rest: unknown[]) => {
          if (!(body instanceof Readable)) return (value as (...a: unknown[]) => unknown).call(target, body, ...rest);
          const slowed = new PassThrough({ highWaterMark: 64 * 1024 });
          void (async () => {
            try {
              for await (const chunk of body) {
                started();
                if (!slowed.write(chunk)) await new Promise((resolve) => slowed.once('drain', resolve));
                await new Promise((resolve) => setTimeout(resolve, 20));
              }
              slowed.end();
            } catch (err) {
              slowed.destroy(err as Error);
            }
          })();
          return (value as (...a: unknown[]) => unknown).call(target, slowed, ...rest);
        };
      },
    });
  const client = new Proxy(base, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (property === 'getBlockBlobClient') return (name: string) => blobProxy(target.getBlockBlobClient(name));
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { client, sending };
}

/**
 * A client whose blob clients drop the answer of the lease write whose body says `state` (once):
 * the write lands, the caller gets a connection reset.
 */
function losingAnswer(base: ContainerClient, state: string): { client: ContainerClient; lost: () => number } {
  let lost = 0;
  const blobProxy = (blob: BlockBlobClient): BlockBlobClient =>
    new Proxy(blob, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (property !== 'upload' || typeof value !== 'function') return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        return async (body: unknown, ...rest: unknown[]) => {
          const out: unknown = await (value as (...a: unknown[]) => Promise<unknown>).call(target, body, ...rest);
          if (lost === 0 && typeof body === 'string' && body.includes(`"state":"${state}"`)) {
            lost++;
            throw Object.assign(new Error('read ECONNRESET'), { name: 'RestError', code: 'ECONNRESET' });
          }
          return out;
        };
      },
    });
  const client = new Proxy(base, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (property === 'getBlockBlobClient') return (name: string) => blobProxy(target.getBlockBlobClient(name));
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { client, lost: () => lost };
}

describe('answers lost, blobs deleted by hand', () => {
  it("a consume whose answer is lost: consume() is a StoreError, the claim stays held; asked again, it finds its own `consumed` landed and resolves; the entry is gone for good", async (ctx) => {
    await needsAzurite(ctx);
    const prefix = newPrefix('lost');
    const store = azureStore({ client, prefix });
    const ticket = await handOff(store, randomBytes(10_000));
    const faulty = losingAnswer(client, 'consumed');
    const worker = manager([azureStore({ client: faulty.client, prefix })]);
    const claimed = await worker.claim(ticket);
    await expect(claimed.consume()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'unreachable' });
    expect(faulty.lost()).toBe(1);
    expect(claimed.disposed, 'held: the step is to be tried again').toBe(false);
    await claimed.consume();
    expect(claimed.disposed).toBe(true);
    await expect(manager([store]).claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    expect(await names(prefix + ticket.id)).toEqual(['lease']);
    await worker.close();
  });

  it('the data blob deleted by hand before the claim: HandoffNotFoundError, the lease left saying swept, and the sweep removes it', async (ctx) => {
    await needsAzurite(ctx);
    const prefix = newPrefix('deleted');
    const store = azureStore({ client, prefix });
    const ticket = await handOff(store, randomBytes(10_000));
    await client.getBlockBlobClient(`${prefix}${ticket.id}.${ticket.expiresAt}/data`).delete();
    const worker = manager([store]);
    await expect(worker.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    await expect(worker.claim(ticket), 'asked again').rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    expect(await store.sweep()).toMatchObject({ removed: 1, errors: [] });
    expect(await names(prefix)).toEqual([]);
    await worker.close();
  });

  it("the lease blob deleted by hand under a holder: the holder's next step is refused (LeaseLostError) and changes nothing; the entry goes to the next claimer", async (ctx) => {
    await needsAzurite(ctx);
    const prefix = newPrefix('nolease');
    const store = azureStore({ client, prefix });
    const content = randomBytes(10_000);
    const ticket = await handOff(store, content);
    const holder = manager([store]);
    const claimed = await holder.claim(ticket);
    await client.getBlockBlobClient(`${prefix}${ticket.id}.${ticket.expiresAt}/lease`).delete();
    const next = manager([store]);
    const taken = await next.claim(ticket); // no lease: created anew
    await expect(claimed.consume()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_LEASE_LOST' });
    expect(fs.readFileSync(taken.path).equals(content)).toBe(true);
    await taken.consume();
    await Promise.all([holder.close(), next.close()]);
  });
});
