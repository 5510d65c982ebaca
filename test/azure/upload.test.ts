// Express's upload({ field, store, ttlMs }) straight to an Azure container (Azurite), with no local
// file: the bytes go through the intake into the store's staged blocks; the ticket is claimed on
// another "host"; a body over maxBytes is 413 and leaves nothing, not even uncommitted blocks.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { ContainerClient } from '@azure/storage-blob';
import express from 'express';
import { beforeAll, describe, expect, it } from 'vitest';
import type { HandoffTicket } from '../../src/index.js';
import { upload } from '../../src/adapters/express.js';
import { azureStore } from '../../src/azure/index.js';
import { azurite, blobsUnder, containerFor, needsAzurite, separateHosts } from './server.js';

const MiB = 1024 * 1024;
const { manager } = separateHosts('upload', 2000);
let client: ContainerClient;

beforeAll(async () => {
  const found = await azurite();
  if (!('child' in found)) return;
  client = await containerFor(found, 'tfm-upload');
});

async function post(port: number, body: Buffer): Promise<{ status: number; json: { handedOff?: { ticket: HandoffTicket }[]; code?: string } }> {
  const form = new FormData();
  form.append('file', new Blob([body]), 'clip.bin');
  const res = await fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST', body: form });
  return { status: res.status, json: (await res.json()) as never };
}

describe("Express's upload({ store }) through Azure", () => {
  it('hands the file off with no local file; the ticket is claimed elsewhere; one over maxBytes is 413 and leaves nothing', async (ctx) => {
    await needsAzurite(ctx);
    const prefix = `up-${randomBytes(4).toString('hex')}/`;
    const store = azureStore({ client, prefix, blockSize: MiB });
    const api = manager();
    const app = express();
    app.post('/upload', upload({ field: 'file', store, ttlMs: 600_000, maxBytes: 6 * MiB, manager: api }), (req, res) => {
      res.json({ handedOff: (req as unknown as { handedOff: unknown }).handedOff });
    });
    app.use((err: { statusCode?: number; code?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(err.statusCode ?? 500).json({ code: err.code });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const content = randomBytes(3 * MiB + 5);
      const ok = await post(port, content);
      expect(ok.status).toBe(200);
      const ticket = ok.json.handedOff![0]!.ticket;
      expect(ticket.store).toMatchObject({ kind: 'azure', container: 'tfm-upload', prefix });
      expect(fs.existsSync(api.sessionPath) ? fs.readdirSync(api.sessionPath) : [], 'no local file on the API host').toEqual([]);
      const worker = manager([store]);
      await worker.withClaim(ticket, (claimed) => expect(fs.readFileSync(claimed.path).equals(content)).toBe(true));
      await store.sweep();
      const tooLarge = await post(port, randomBytes(8 * MiB));
      expect(tooLarge).toMatchObject({ status: 413, json: { code: 'ERR_TEMPFILE_SIZE_LIMIT' } });
      for (const deadline = Date.now() + 20_000; (await blobsUnder(client, prefix)).length > 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
      expect(await blobsUnder(client, prefix), 'nothing left, not even uncommitted blocks').toEqual([]);
      await worker.close();
    } finally {
      server.close();
      await api.close();
    }
  }, 60_000);
});
