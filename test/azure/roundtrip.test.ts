// The Azure store against a real Azure Blob Storage API (Azurite, test/azure/server.ts): a file
// handed off on one "host" (a manager with its own root) is claimed on another that shares no disk
// with it; a stream goes up with no local file; the sweep; the typed errors.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import { beforeAll, describe, expect, it } from 'vitest';
import { TempFileManager, type HandoffTicket } from '../../src/index.js';
import { azureStore, type AzureStore } from '../../src/azure/index.js';
import { azurite, blobsUnder, clientOf, containerFor, needsAzurite, separateHosts, type Azurite } from './server.js';

const MiB = 1024 * 1024;
const { manager } = separateHosts('rt', 2000);

let server: Azurite;
let client: ContainerClient;
const prefix = `rt-${randomBytes(4).toString('hex')}/`;

beforeAll(async () => {
  const found = await azurite();
  if (!('child' in found)) return;
  server = found;
  client = await containerFor(server, 'tfm-roundtrip');
});

async function handOff(content: Buffer, store: AzureStore, options: { hash?: 'sha256' } = {}): Promise<{ ticket: HandoffTicket; sender: TempFileManager }> {
  const sender = manager();
  const file = await sender.write(content, { suffix: '.bin', ...options });
  const local = file.path;
  const ticket = await file.handoff({ ttlMs: 600_000, store, meta: { job: 1 } });
  expect(fs.existsSync(local), 'the local file is gone once handed off').toBe(false);
  return { ticket, sender };
}

const names = async (p: string): Promise<string[]> => (await blobsUnder(client, p)).map((k) => k.slice(k.lastIndexOf('/') + 1));

describe('handoff through Azure Blob Storage, claimed where no disk is shared', () => {
  it('round trip: the claimer gets the bytes in its own scope, digest verified; consume() deletes the data, the sweep the consumed lease', async (ctx) => {
    await needsAzurite(ctx);
    const store = azureStore({ client, prefix });
    const content = randomBytes(300_000);
    const { ticket, sender } = await handOff(content, store);
    expect(ticket.store).toEqual({ kind: 'azure', account: 'devstoreaccount1', container: 'tfm-roundtrip', prefix });
    expect(ticket.digest).toBe(`sha256:${createHash('sha256').update(content).digest('hex')}`);
    const json = JSON.parse(JSON.stringify(ticket)) as HandoffTicket;
    const worker = manager([store]);
    const claimed = await worker.claim(json);
    expect(claimed.path.startsWith(worker.root)).toBe(true);
    expect(fs.readFileSync(claimed.path).equals(content)).toBe(true);
    expect(claimed.meta).toEqual({ job: 1 });
    expect(await names(prefix + ticket.id)).toEqual(['data', 'lease']);
    await claimed.consume();
    expect(claimed.disposed).toBe(true);
    expect(fs.existsSync(claimed.path)).toBe(false);
    expect(await names(prefix + ticket.id)).toEqual(['lease']);
    await expect(worker.claim(json), 'a redelivered ticket').rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    expect(await store.sweep()).toMatchObject({ removed: 1, objects: 1, errors: [] });
    expect(await names(prefix + ticket.id)).toEqual([]);
    await Promise.all([sender.close(), worker.close()]);
  });

  it("a 20 MiB file goes up streamed in one Put Blob and comes down whole (write()'s own digest carried); withClaim() consumes it", async (ctx) => {
    await needsAzurite(ctx);
    const store = azureStore({ client, prefix, blockSize: 4 * MiB });
    const content = randomBytes(20 * MiB);
    const { ticket, sender } = await handOff(content, store, { hash: 'sha256' });
    const worker = manager([store]);
    await worker.withClaim(ticket, (claimed) => {
      expect(fs.readFileSync(claimed.path).equals(content)).toBe(true);
    });
    expect(await names(prefix + ticket.id)).toEqual(['lease']);
    await store.sweep();
    expect(await names(prefix + ticket.id)).toEqual([]);
    await Promise.all([sender.close(), worker.close()]);
  });

  it('release() gives the entry back at once; a second claimer meanwhile is refused with retryAfterMs', async (ctx) => {
    await needsAzurite(ctx);
    const store = azureStore({ client, prefix });
    const { ticket, sender } = await handOff(Buffer.from('shared'), store);
    const [a, b] = [manager([store]), manager([store])];
    const first = await a.claim(ticket);
    const refused = await b.claim(ticket).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'ERR_TEMPFILE_ALREADY_CLAIMED' });
    expect((refused as { retryAfterMs: number }).retryAfterMs).toBeGreaterThanOrEqual(1000);
    await first.release();
    const second = await b.claim(ticket);
    expect(fs.readFileSync(second.path, 'utf8')).toBe('shared');
    await second.consume();
    await Promise.all([sender.close(), a.close(), b.close()]);
  });

  it('mgr.handoffStream(): a stream over several blocks goes up with no local file; one over maxBytes leaves nothing, not even uncommitted blocks', async (ctx) => {
    await needsAzurite(ctx);
    const p = `${prefix}stream-${randomBytes(3).toString('hex')}/`;
    const store = azureStore({ client, prefix: p, blockSize: MiB });
    const mgr = manager([store]);
    const content = randomBytes(5 * MiB + 123);
    const ticket = await mgr.handoffStream(Readable.from([content.subarray(0, 3 * MiB), content.subarray(3 * MiB)]), { store, ttlMs: 600_000 });
    expect(ticket.size).toBe(content.length);
    await mgr.withClaim(ticket, (claimed) => expect(fs.readFileSync(claimed.path).equals(content)).toBe(true));
    await store.sweep();
    await expect(mgr.handoffStream(Readable.from([content, content]), { store, ttlMs: 600_000, maxBytes: 8 * MiB })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_SIZE_LIMIT' });
    expect(await blobsUnder(client, p), 'no blob, no uncommitted blocks').toEqual([]);
    await mgr.close();
  });

  it('a forged or changed ticket is refused without touching the entry; a ticket of another container is not-configured', async (ctx) => {
    await needsAzurite(ctx);
    const store = azureStore({ client, prefix });
    const { ticket, sender } = await handOff(Buffer.from('the real bytes'), store);
    const worker = manager([store]);
    await expect(worker.claim({ ...ticket, id: randomBytes(16).toString('hex') })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    await expect(worker.claim({ ...ticket, size: ticket.size + 1 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_MISMATCH' });
    await expect(worker.claim({ ...ticket, meta: { admin: true } })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_MISMATCH' });
    await expect(worker.claim({ ...ticket, store: { ...ticket.store!, container: 'Not_A_Container' } })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_BAD_TICKET', field: 'store' });
    await expect(worker.claim({ ...ticket, store: { ...ticket.store!, prefix: '../' } })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_BAD_TICKET', field: 'store' });
    await expect(worker.claim({ ...ticket, store: { ...ticket.store!, endpoint: 'http://evil' } })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_BAD_TICKET', field: 'store' });
    await expect(worker.claim({ ...ticket, store: { ...ticket.store!, kind: 'gcs' } })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_BAD_TICKET', field: 'store' });
    const foreign = await worker.claim({ ...ticket, store: { ...ticket.store!, container: 'someone-elses' } }).catch((e: unknown) => e);
    expect(foreign).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'not-configured' });
    expect((foreign as Error).message).toContain('someone-elses');
    expect((foreign as Error).message).toContain('tempfile-manager/azure');
    await worker.withClaim(ticket, (claimed) => expect(fs.readFileSync(claimed.path, 'utf8')).toBe('the real bytes'));
    await Promise.all([sender.close(), worker.close()]);
  });
});

describe('typed errors', () => {
  it('azureStore() checks its options: each error names the option and shows the value', () => {
    const fake = clientOf({ endpoint: 'http://127.0.0.1:1/devstoreaccount1', account: 'devstoreaccount1', key: Buffer.from('k').toString('base64') }, 'tfm-options');
    expect(() => azureStore(undefined as never)).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'client' }));
    expect(() => azureStore({ client: {} as never })).toThrow(/`client` must be a ContainerClient/);
    expect(() => azureStore({ client: fake, prefix: 'no-slash' })).toThrow(expect.objectContaining({ option: 'prefix', message: expect.stringContaining('"no-slash"') }));
    expect(() => azureStore({ client: fake, timeoutMs: 5 })).toThrow(expect.objectContaining({ option: 'timeoutMs' }));
    expect(() => azureStore({ client: fake, blockSize: 1024 })).toThrow(expect.objectContaining({ option: 'blockSize' }));
    expect(() => azureStore({ client: fake, bucket: 'x' } as never)).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_INVALID_OPTION' }));
    expect(azureStore({ client: fake }).location).toEqual({ kind: 'azure', account: 'devstoreaccount1', container: 'tfm-options', prefix: 'tempfile-manager/' });
  });

  it('a refused connection, a missing container and a wrong key are StoreErrors that name the container, never the key', async (ctx) => {
    await needsAzurite(ctx);
    const sender = manager();
    const attempt = async (store: AzureStore): Promise<Error & { reason?: string }> => {
      const file = await sender.write(Buffer.from('x'));
      const err = (await file.handoff({ ttlMs: 60_000, store }).catch((e: unknown) => e)) as Error & { reason?: string };
      expect(fs.existsSync(file.path), 'a failed handoff leaves the file with its handle').toBe(true);
      await file.remove();
      return err;
    };
    const down = await attempt(azureStore({ client: clientOf({ ...server, endpoint: 'http://127.0.0.1:9/devstoreaccount1' }, 'tfm-roundtrip', { maxTries: 1 }) }));
    expect(down).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'unreachable', endpoint: 'http://127.0.0.1:9/devstoreaccount1/tfm-roundtrip' });
    expect(down.message).toContain('ECONNREFUSED');
    const missing = await attempt(azureStore({ client: clientOf(server, 'tfm-no-such-container', { maxTries: 1 }) }));
    expect(missing).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'no-bucket', httpStatus: 404, storeCode: 'ContainerNotFound', s3Code: undefined });
    const wrongKey = await attempt(azureStore({ client: clientOf({ ...server, key: Buffer.from('not the key').toString('base64') }, 'tfm-roundtrip', { maxTries: 1 }) }));
    expect(wrongKey).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'denied', httpStatus: 403, storeCode: 'AuthorizationFailure' });
    for (const err of [down, missing, wrongKey]) expect(err.message).not.toContain(server.key);
    const sweep = await azureStore({ client: clientOf(server, 'tfm-no-such-container', { maxTries: 1 }) }).sweep().catch((e: unknown) => e);
    expect(sweep).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'no-bucket' });
    await sender.close();
  });

  it('consumeSync() is refused before the store is asked (the store has no synchronous steps)', async (ctx) => {
    await needsAzurite(ctx);
    const store = azureStore({ client, prefix });
    const { ticket, sender } = await handOff(Buffer.from('sync'), store);
    const worker = manager([store]);
    const claimed = await worker.claim(ticket);
    expect(() => claimed.consumeSync()).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_STORE', reason: 'sync' }));
    await claimed.consume();
    await Promise.all([sender.close(), worker.close()]);
  });
});
