// The handoff contract (docs/backends.md), one suite run against each backend: the shared disk,
// S3 on a real Ceph RGW (test/s3/server.ts) and Azure Blob Storage on Azurite (test/azure/server.ts).
// Each test is one promise of the contract; docs/backends.md lists them, with the mutation of the
// code (one promise broken on purpose) that each test was seen to catch on each backend.
// A backend whose service cannot run here skips with a line saying why; under CI it fails.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, type TestContext } from 'vitest';
import { TempFileManager, type ClaimedFile, type HandoffStore, type HandoffTicket } from '../../src/index.js';
import { s3Store } from '../../src/s3/index.js';
import { azureStore } from '../../src/azure/index.js';
import { innerPid, nextJson, startChild, type Elsewhere } from '../helpers/child.js';
import { needs, PID_NAMESPACE } from '../helpers/privileges.js';
import { bucketFor, clientFor, needsS3 } from '../s3/server.js';
import { containerFor, needsAzurite } from '../azure/server.js';

const STALE_MS = 2000;
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});
const tempDir = (label: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tfm-contract-${label}-`));
  dirs.push(dir);
  return dir;
};

/** One backend as the suite sees it: managers on two "hosts", and what the child claimer needs. */
interface Backend {
  /** The store, or undefined for the shared disk. */
  readonly store: HandoffStore | undefined;
  /** A manager on a host of its own (for the disk: the shared root, a host id of its own). */
  host(label: string): TempFileManager;
  /** TFM_CONTRACT for test/fixtures/contract-claimer.mjs. */
  childConfig(ticket: HandoffTicket): Record<string, unknown>;
  /**
   * Where the child claimer runs: for the disk, in a PID namespace of its own, as on another
   * machine (a holder of this machine is judged by its process, and a stopped one is alive).
   */
  readonly elsewhere: Elsewhere;
  /**
   * Changes an entry's bytes where they rest, its ticket untouched (one byte appended), or
   * undefined where the suite has no hand on the bytes at rest.
   */
  readonly alterAtRest?: (ticket: HandoffTicket) => void;
}

type Setup = (ctx: TestContext) => Promise<Backend>;

const backends: Record<string, Setup> = {
  async disk() {
    const root = path.join(tempDir('disk'), 'r');
    return {
      store: undefined,
      host: (label) => new TempFileManager({ root, staleMs: STALE_MS, sweepOnStart: false, exitHook: false, hostId: `contract-${label}` }),
      childConfig: (ticket) => ({ backend: 'disk', root, ticket, staleMs: STALE_MS }),
      elsewhere: { pidNamespace: true },
      alterAtRest(ticket) {
        const handoff = path.join(root, 'handoff');
        const entry = fs.readdirSync(handoff).find((name) => name.startsWith(`entry_${ticket.id}_`));
        if (entry === undefined) throw new Error(`no entry of ${ticket.id} in ${handoff}`);
        fs.appendFileSync(path.join(handoff, entry, `data${ticket.suffix}`), 'x');
      },
    };
  },
  async s3(ctx) {
    const state = await needsS3(ctx);
    const client = clientFor(state);
    const bucket = await bucketFor(client, 'tfm-contract');
    const prefix = `c-${randomBytes(4).toString('hex')}/`;
    const store = s3Store({ client, bucket, prefix });
    return {
      store,
      host: () => new TempFileManager({ root: path.join(tempDir('s3'), 'r'), stores: [store], staleMs: STALE_MS, sweepOnStart: false, exitHook: false }),
      childConfig: (ticket) => ({ backend: 's3', root: path.join(tempDir('s3'), 'r'), ticket, staleMs: STALE_MS, state, bucket, prefix }),
      elsewhere: {},
    };
  },
  async azure(ctx) {
    const server = await needsAzurite(ctx);
    const container = 'tfm-contract';
    const client = await containerFor(server, container);
    const prefix = `c-${randomBytes(4).toString('hex')}/`;
    const store = azureStore({ client, prefix });
    const state = { endpoint: server.endpoint, account: server.account, key: server.key };
    return {
      store,
      host: () => new TempFileManager({ root: path.join(tempDir('az'), 'r'), stores: [store], staleMs: STALE_MS, sweepOnStart: false, exitHook: false }),
      childConfig: (ticket) => ({ backend: 'azure', root: path.join(tempDir('az'), 'r'), ticket, staleMs: STALE_MS, state, container, prefix }),
      elsewhere: {},
    };
  },
};

async function handOff(backend: Backend, content: Buffer, ttlMs = 600_000, meta?: HandoffTicket['meta']): Promise<HandoffTicket> {
  const sender = backend.host('sender');
  const file = await sender.write(content, { suffix: '.bin', hash: 'sha256' });
  const ticket = await file.handoff({ ttlMs, meta, ...(backend.store && { store: backend.store }) });
  expect(fs.existsSync(file.path), 'the file left its handle with the handoff').toBe(false);
  await sender.close();
  return JSON.parse(JSON.stringify(ticket)) as HandoffTicket;
}

const codeOf = (err: unknown): string | undefined => (err as { code?: string }).code;

async function claimWhenFree(mgr: TempFileManager, ticket: HandoffTicket, deadlineMs = 30_000): Promise<ClaimedFile> {
  for (const until = performance.now() + deadlineMs; ; ) {
    try {
      return await mgr.claim(ticket);
    } catch (err) {
      if (codeOf(err) !== 'ERR_TEMPFILE_ALREADY_CLAIMED' || performance.now() > until) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

describe.each(Object.keys(backends))('the handoff contract on %s', (name) => {
  const setup = backends[name]!;

  it('durable before the ticket: a claim on another host gets the whole file; consume() ends it for good (a redelivered ticket: HandoffNotFoundError)', async (ctx) => {
    const backend = await setup(ctx);
    const content = randomBytes(3 * 1024 * 1024 + 17);
    const ticket = await handOff(backend, content);
    const worker = backend.host('worker');
    const claimed = await worker.claim(ticket);
    expect(fs.readFileSync(claimed.path).equals(content)).toBe(true);
    await claimed.consume();
    expect(claimed.disposed).toBe(true);
    await expect(worker.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    await worker.close();
  });

  it('exclusive: of 2 to 6 racing claimers exactly one holds the lease, the others get AlreadyClaimedError (retryAfterMs ≥ 1000); release() gives it back at once', async (ctx) => {
    const backend = await setup(ctx);
    const ticket = await handOff(backend, randomBytes(10_000));
    const claimers = Array.from({ length: 6 }, (_, i) => backend.host(`racer${i}`));
    for (let round = 0; round < 5; round++) {
      const racing = claimers.slice(0, 2 + round);
      const results = await Promise.allSettled(racing.map((mgr) => mgr.claim(ticket)));
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      expect(won, `round ${round}: holders`).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') {
          expect(codeOf(r.reason), `round ${round}`).toBe('ERR_TEMPFILE_ALREADY_CLAIMED');
          expect((r.reason as { retryAfterMs: number }).retryAfterMs).toBeGreaterThanOrEqual(1000);
        }
      }
      await won[0]!.release();
    }
    const last = await claimers[0]!.claim(ticket); // released: claimable at once, no staleMs wait
    await last.consume();
    await Promise.all(claimers.map((mgr) => mgr.close()));
  });

  it('disposal without consume() releases: a job that throws is retried, never lost', async (ctx) => {
    const backend = await setup(ctx);
    const content = randomBytes(5000);
    const ticket = await handOff(backend, content);
    const worker = backend.host('worker');
    await expect(worker.withClaim(ticket, () => Promise.reject(new Error('the job failed')))).rejects.toThrow('the job failed');
    await worker.withClaim(ticket, (claimed) => expect(fs.readFileSync(claimed.path).equals(content)).toBe(true));
    await expect(worker.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    await worker.close();
  });

  it('takeover after staleMs, and fencing: a SIGSTOPped holder is taken over, and on SIGCONT its consume() is LeaseLostError and changes nothing', async (ctx) => {
    const backend = await setup(ctx);
    const content = randomBytes(40_000);
    const ticket = await handOff(backend, content);
    if (backend.elsewhere.pidNamespace) needs(ctx, PID_NAMESPACE);
    const first = startChild('contract-claimer.mjs', [], { TFM_CONTRACT: JSON.stringify(backend.childConfig(ticket)) }, backend.elsewhere);
    // The claimer's own process (inside the namespace's wrapper, when there is one).
    const signal = (name: NodeJS.Signals): void => {
      process.kill(backend.elsewhere.pidNamespace ? innerPid(first.child.pid!) : first.child.pid!, name);
    };
    try {
      expect(await nextJson<{ event: string }>(first)).toMatchObject({ event: 'held' });
      signal('SIGSTOP');
      const second = backend.host('taker');
      const waited = performance.now();
      const claimed = await claimWhenFree(second, ticket);
      expect(performance.now() - waited, 'not before its heartbeat was seen unchanged for staleMs').toBeGreaterThanOrEqual(STALE_MS - 50);
      signal('SIGCONT');
      first.child.stdin!.write('consume\n');
      expect(await nextJson<{ event: string; code?: string }>(first)).toMatchObject({ event: 'error', code: 'ERR_TEMPFILE_LEASE_LOST' });
      // The fenced consume changed nothing: the new holder's bytes are whole, and its consume works.
      expect(fs.readFileSync(claimed.path).equals(content)).toBe(true);
      const third = backend.host('third');
      await expect(third.claim(ticket), 'still held by the new holder').rejects.toMatchObject({ code: 'ERR_TEMPFILE_ALREADY_CLAIMED' });
      await claimed.consume();
      await expect(third.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
      await Promise.all([second.close(), third.close()]);
    } finally {
      try {
        signal('SIGCONT');
      } catch {
        // gone already
      }
      first.child.kill('SIGKILL');
      await first.ended;
    }
  }, 60_000);

  it('checked bytes: a ticket whose size or digest differs (or, on the disk, bytes grown at rest) is HandoffMismatchError, and the entry is given back, claimable at once', async (ctx) => {
    const backend = await setup(ctx);
    const content = randomBytes(20_000);
    const ticket = await handOff(backend, content);
    const worker = backend.host('worker');
    await expect(worker.claim({ ...ticket, size: ticket.size + 1 }, { verifyDigest: true })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_MISMATCH' });
    await expect(worker.claim({ ...ticket, digest: `sha256:${'0'.repeat(64)}` }, { verifyDigest: true })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_MISMATCH' });
    await worker.withClaim(ticket, (claimed) => expect(fs.readFileSync(claimed.path).equals(content)).toBe(true));
    if (backend.alterAtRest) {
      const altered = await handOff(backend, content);
      backend.alterAtRest(altered);
      await expect(worker.claim(altered, { verifyDigest: false }), 'bytes grown at rest').rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_MISMATCH' });
    }
    await worker.close();
  });

  it('bound: a ticket whose meta, createdAt or digest (its algorithm too) was edited is HandoffMismatchError, with verifyDigest or without; its own ticket, its keys in another order (as a queue may give it back), still claims the entry', async (ctx) => {
    const backend = await setup(ctx);
    const content = randomBytes(5_000);
    const ticket = await handOff(backend, content, 600_000, { user: 'alice', role: 'viewer', nested: { b: 1, a: 2 } });
    const worker = backend.host('worker');
    // An MD5 of the same bytes: a weaker digest the bytes would pass, the algorithm downgraded.
    const md5 = `md5:${createHash('md5').update(content).digest('hex')}`;
    const edits: Partial<HandoffTicket>[] = [{ meta: { user: 'admin' } }, { createdAt: ticket.createdAt - 1 }, { digest: `sha256:${'0'.repeat(64)}` }, { digest: md5 }];
    for (const edit of edits) {
      for (const verifyDigest of [false, true]) {
        await expect(worker.claim({ ...ticket, ...edit }, { verifyDigest }), `${JSON.stringify(edit)}, verifyDigest ${verifyDigest}`).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_MISMATCH' });
      }
    }
    const reversed = (value: unknown): unknown =>
      typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reversed(v)])) : value;
    const reordered = reversed(ticket) as HandoffTicket;
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(ticket));
    await worker.withClaim(reordered, (claimed) => {
      expect(claimed.meta).toEqual({ user: 'alice', role: 'viewer', nested: { b: 1, a: 2 } });
      expect(fs.readFileSync(claimed.path).equals(content)).toBe(true);
    });
    await worker.close();
  });

  it('expiry: a ticket past expiresAt is HandoffExpiredError before the backend is asked; the sweep removes the expired entry, never one under a live lease', async (ctx) => {
    const backend = await setup(ctx);
    const expiring = await handOff(backend, randomBytes(1000), 1500);
    const held = await handOff(backend, randomBytes(1000), 1500);
    const worker = backend.host('worker');
    const holder = await worker.claim(held);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    await expect(worker.claim(expiring)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_EXPIRED' });
    const sweeper = backend.host('sweeper');
    const report = await sweeper.sweep();
    if (backend.store) expect(report.stores?.[0]?.report).toMatchObject({ removed: 1, held: 1, errors: [] });
    else expect(report.handoffEntriesRemoved).toBe(1);
    await holder.consume(); // the live holder kept its entry through the sweep
    await Promise.all([worker.close(), sweeper.close()]);
  });
});
