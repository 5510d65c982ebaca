// Answers lost and claimers stalled, against a real S3 server (Ceph RGW): each client below can
// hold a request back or drop the answer of one that landed. A consumed entry stays consumed, a
// holder taken over deletes nothing the new holder uses, and no job is lost.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ClaimedFile, HandoffTicket, TempFileManager } from '../../src/index.js';
import { s3Store, type S3Store } from '../../src/s3/index.js';
import { bucketFor, clientFor, needsS3, separateHosts, server, type RgwState } from './server.js';

const STALE_MS = 2000;
const { manager } = separateHosts('lost', STALE_MS);

let state: RgwState;
let admin: S3Client;
let bucket: string;
const prefix = `lost-${randomBytes(4).toString('hex')}/`;

beforeAll(async () => {
  const found = await server();
  if (!('state' in found)) return;
  state = found.state;
  admin = clientFor(state);
  bucket = await bucketFor(admin, 'tfm-lost');
});

/** What a hook sees of a request; `send()` sends it and resolves with its answer. */
interface Request {
  readonly command: string;
  readonly key: string;
  readonly input: { IfMatch?: string; IfNoneMatch?: string; Body?: unknown };
  send(): Promise<unknown>;
}

/** A host: its own client (whose requests go through `hook` when one is set), store and manager. */
function host(storeOptions: { timeoutMs?: number } = {}): { hook: ((request: Request) => Promise<unknown>) | undefined; store: S3Store; mgr: TempFileManager } {
  const client = clientFor(state);
  const self = { hook: undefined as ((request: Request) => Promise<unknown>) | undefined, store: s3Store({ client, bucket, prefix, ...storeOptions }), mgr: undefined as unknown as TempFileManager };
  self.mgr = manager([self.store]);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Request['input'] & { Key?: string };
      const request = { command: String(context.commandName).replace(/Command$/, ''), key: input.Key ?? '', input, send: () => next(args) };
      return (self.hook ? self.hook(request) : request.send()) as ReturnType<typeof next>;
    },
    { step: 'initialize', name: 'lostAnswers' },
  );
  return self;
}

const isLeaseWrite = (r: Request, state: string): boolean => r.command === 'PutObject' && r.key.endsWith('/lease') && String(r.input.Body).includes(`"state":"${state}"`);
const lostAnswer = (): Error => Object.assign(new Error('socket hang up'), { name: 'Error', code: 'ECONNRESET' });

function gate(): { opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

async function handOff(store: S3Store): Promise<HandoffTicket> {
  const sender = manager();
  const file = await sender.write(randomBytes(4096), { suffix: '.bin' });
  const ticket = await file.handoff({ ttlMs: 600_000, store });
  await sender.close();
  return ticket;
}

async function leaseState(ticket: HandoffTicket): Promise<string> {
  const out = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}${ticket.id}.${ticket.expiresAt}/lease` }));
  return (JSON.parse(await out.Body!.transformToString()) as { state: string }).state;
}

async function keysOf(ticket: HandoffTicket): Promise<string[]> {
  const out = await admin.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}${ticket.id}.` }));
  return (out.Contents ?? []).map((o) => o.Key!.slice(o.Key!.lastIndexOf('/') + 1)).sort();
}

/** Claims until the lease is free or stale (AlreadyClaimedError meanwhile). */
async function claimWhenFree(mgr: TempFileManager, ticket: HandoffTicket): Promise<ClaimedFile> {
  for (;;) {
    try {
      return await mgr.claim(ticket);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_TEMPFILE_ALREADY_CLAIMED') throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

describe('answers lost and claimers stalled', () => {
  it('a claimer stalled past a takeover and a consume finds its data gone and leaves the tombstone; one that read the data ahead meanwhile gets HandoffNotFoundError', async (ctx) => {
    await needsS3(ctx);
    const [c, d, f] = [host(), host(), host()];
    const ticket = await handOff(c.store);
    // C takes the lease, then stalls: its GET of the data is held, its beats are lost.
    const cRead = gate();
    const cLeased = gate();
    c.hook = async (r) => {
      if (r.command === 'GetObject' && r.key.endsWith('/data')) await cRead.opened;
      if (r.command === 'PutObject' && r.input.IfMatch !== undefined) throw lostAnswer();
      const answer = await r.send();
      if (r.command === 'PutObject' && r.input.IfNoneMatch === '*') cLeased.open();
      return answer;
    };
    const cClaim = c.mgr.claim(ticket);
    cClaim.catch(() => {});
    await cLeased.opened; // C holds the lease before D tries
    // D takes C's stale lease over. Just before D's copy, F reads the data ahead of its lease,
    // whose create is held until C has come back.
    const fRead = gate();
    const fCreate = gate();
    f.hook = async (r) => {
      if (r.command === 'PutObject' && r.input.IfNoneMatch === '*' && r.key.endsWith('/lease')) await fCreate.opened;
      const answer = await r.send();
      if (r.command === 'GetObject' && r.key.endsWith('/data')) fRead.open();
      return answer;
    };
    let fClaim: Promise<ClaimedFile> | undefined;
    d.hook = async (r) => {
      if (r.command === 'CopyObject' && !fClaim) {
        fClaim = f.mgr.claim(ticket);
        fClaim.catch(() => {});
        await fRead.opened;
      }
      return r.send();
    };
    const held = await claimWhenFree(d.mgr, ticket);
    await held.consume();
    expect(await leaseState(ticket)).toBe('consumed');
    cRead.open(); // C's GET goes now: the data is gone
    await expect(cClaim).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    expect(await leaseState(ticket), 'C, taken over, removed nothing: the tombstone stands').toBe('consumed');
    fCreate.open();
    expect(fClaim, 'F started its claim during the takeover').toBeDefined();
    await expect(fClaim, 'a second holder of a consumed entry').rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    await d.store.sweep();
    expect(await keysOf(ticket)).toEqual([]);
    await Promise.all([c.mgr.close(), d.mgr.close(), f.mgr.close()]);
  }, 30_000);

  it('a release whose answer was lost, then consume(): the claimer that took over works on its own copy, and the job is done once, not lost', async (ctx) => {
    await needsS3(ctx);
    const [a, b, e] = [host(), host(), host()];
    const ticket = await handOff(a.store);
    const first = await a.mgr.claim(ticket);
    a.hook = async (r) => {
      const answer = await r.send();
      if (isLeaseWrite(r, 'released')) throw lostAnswer();
      return answer;
    };
    await expect(first.release()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_STORE' }); // it landed
    // The holder's next beat finds its own release there: it must not write the lease back to held.
    const readBack = gate();
    let beatsAfterReadBack = 0;
    a.hook = async (r) => {
      const answer = await r.send();
      if (r.command === 'GetObject' && r.key.endsWith('/lease')) readBack.open();
      else if (isLeaseWrite(r, 'held')) beatsAfterReadBack++;
      return answer;
    };
    await readBack.opened;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await leaseState(ticket), 'the released lease after its holder beat').toBe('released');
    expect(beatsAfterReadBack).toBe(0);
    a.hook = undefined;
    const second = await b.mgr.claim(ticket);
    await expect(first.consume(), 'the first holder, taken over').rejects.toMatchObject({ code: 'ERR_TEMPFILE_LEASE_LOST' });
    expect(fs.existsSync(second.path)).toBe(true);
    await second.release(); // the job failed: retried by the next claimer
    const third = await e.mgr.claim(ticket);
    await third.consume();
    await expect(e.mgr.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    await e.store.sweep();
    expect(await keysOf(ticket)).toEqual([]);
    await Promise.all([a.mgr.close(), b.mgr.close(), e.mgr.close()]);
  }, 30_000);

  it('a takeover whose answer was lost (it landed): the copy it names stays, and the next claimer gets the file once the lease is stale', async (ctx) => {
    await needsS3(ctx);
    const [a, b, c] = [host(), host(), host()];
    const ticket = await handOff(a.store);
    await (await a.mgr.claim(ticket)).release(); // the job failed: to be retried
    b.hook = async (r) => {
      const answer = await r.send();
      if (r.command === 'PutObject' && r.input.IfMatch !== undefined && r.key.endsWith('/lease')) {
        b.hook = async (next) => {
          if (next.command === 'GetObject' && next.key.endsWith('/lease')) throw lostAnswer(); // nor can it read the lease back
          return next.send();
        };
        throw lostAnswer();
      }
      return answer;
    };
    await expect(b.mgr.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_STORE' });
    b.hook = undefined;
    const claimed = await claimWhenFree(c.mgr, ticket);
    expect(fs.existsSync(claimed.path)).toBe(true);
    await claimed.consume();
    await c.store.sweep();
    expect(await keysOf(ticket)).toEqual([]);
    await Promise.all([a.mgr.close(), b.mgr.close(), c.mgr.close()]);
  }, 30_000);

  for (const after of ['answers again', 'answers no more'] as const) {
    it(`a keep() whose consumed landed unanswered and whose retry got no answer, the store then ${after}: the file stays at its destination`, async (ctx) => {
      await needsS3(ctx);
      const [a, e] = [host(), host()];
      const ticket = await handOff(a.store);
      const claimed = await a.mgr.claim(ticket);
      const content = fs.readFileSync(claimed.path);
      let consumedWrites = 0;
      a.hook = async (r) => {
        if (isLeaseWrite(r, 'consumed')) {
          if (++consumedWrites === 1) await r.send(); // it lands, its answer is lost
          throw lostAnswer(); // and the retry never arrives
        }
        if (after === 'answers no more' && consumedWrites > 0) throw lostAnswer();
        return r.send();
      };
      const destination = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-s3-kept-')), 'kept.bin');
      if (after === 'answers again') await expect(claimed.keep(destination), 'the store, asked, says the keep was recorded').resolves.toBe(destination);
      else await expect(claimed.keep(destination), 'nobody can tell whether it was recorded').rejects.toMatchObject({ code: 'ERR_TEMPFILE_STORE' });
      a.hook = undefined;
      expect(await leaseState(ticket)).toBe('consumed');
      expect(fs.readFileSync(destination).equals(content), 'the keep the store recorded has its file').toBe(true);
      await expect(claimed.consume(), 'the keep was recorded: a consume after it finds it so').resolves.toBeUndefined();
      await expect(e.mgr.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
      await e.store.sweep();
      expect(await keysOf(ticket)).toEqual([]);
      fs.rmSync(path.dirname(destination), { recursive: true, force: true });
      await Promise.all([a.mgr.close(), e.mgr.close()]);
    }, 30_000);
  }

  it('a holder taken over while cut off from the store: every later step is refused, none resolves silently', async (ctx) => {
    await needsS3(ctx);
    const [a, b] = [host(), host()];
    const ticket = await handOff(a.store);
    const claimed = await a.mgr.claim(ticket);
    a.hook = async () => {
      throw Object.assign(new Error('connect ECONNREFUSED'), { name: 'Error', code: 'ECONNREFUSED' });
    };
    const taken = await claimWhenFree(b.mgr, ticket);
    a.hook = undefined;
    await expect(claimed.consume()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_LEASE_LOST' });
    await expect(claimed.consume(), 'asked again').rejects.toMatchObject({ code: 'ERR_TEMPFILE_LEASE_LOST' });
    await expect(claimed.release()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_LEASE_LOST' });
    const destination = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-s3-kept-')), 'kept.bin');
    await expect(claimed.keep(destination)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_LEASE_LOST' });
    expect(fs.existsSync(destination)).toBe(false);
    expect(await leaseState(ticket), "the new holder's lease").toBe('held');
    await taken.consume();
    await b.store.sweep();
    expect(await keysOf(ticket)).toEqual([]);
    fs.rmSync(path.dirname(destination), { recursive: true, force: true });
    await Promise.all([a.mgr.close(), b.mgr.close()]);
  }, 30_000);

  it("a process's ETag probe left by a failure is not foreign, and the sweep removes it once its hour passed; keys the library never writes are left", async (ctx) => {
    await needsS3(ctx);
    const own = `${prefix}probe-${randomBytes(4).toString('hex')}/`;
    const client = clientFor(state);
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const key = (args.input as { Key?: string }).Key ?? '';
        if (context.commandName === 'DeleteObjectCommand' && key.includes('.if-match-probe-')) throw lostAnswer();
        return next(args);
      },
      { step: 'initialize', name: 'probeDeleteFails' },
    );
    const store = s3Store({ client, bucket, prefix: own });
    const sender = manager();
    const ticket = await (await sender.write(randomBytes(100))).handoff({ ttlMs: 600_000, store });
    const claimer = manager([store]);
    await (await claimer.claim(ticket)).release(); // its first conditional replace runs the probe
    const left = async (): Promise<string[]> => ((await admin.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${own}.` }))).Contents ?? []).map((o) => o.Key!);
    expect(await left()).toHaveLength(1);
    const sweeper = s3Store({ client: admin, bucket, prefix: own });
    expect(await sweeper.sweep(), 'within its hour: kept, and not counted foreign').toMatchObject({ foreign: 0, errors: [] });
    expect(await left()).toHaveLength(1);
    const expired = `${own}.if-match-probe-${Date.now() - 1000}-${randomBytes(16).toString('hex')}`;
    const notOurs = [`${own}.if-match-probe-0${Date.now() - 1000}-${randomBytes(16).toString('hex')}`, `${own}${randomBytes(16).toString('hex')}.0${Date.now() - 1000}/data`];
    for (const key of [expired, ...notOurs]) await admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x' }));
    expect(await sweeper.sweep()).toMatchObject({ foreign: notOurs.length, errors: [] });
    expect(await left(), 'the expired probe went, the other stays').not.toContain(expired);
    const all = ((await admin.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: own }))).Contents ?? []).map((o) => o.Key!);
    for (const key of notOurs) expect(all, 'a key the library never writes, though it parses to one').toContain(key);
    await sender.close();
    await claimer.close();
  }, 30_000);

  it("a lease create the store never answers: StoreError at once, not AlreadyClaimedError after retries; nothing left", async (ctx) => {
    await needsS3(ctx);
    const [a, b] = [host(), host()];
    const ticket = await handOff(a.store);
    let creates = 0;
    b.hook = async (r) => {
      if (r.command === 'PutObject' && r.input.IfNoneMatch === '*' && r.key.endsWith('/lease')) {
        creates++;
        throw lostAnswer();
      }
      return r.send();
    };
    await expect(b.mgr.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_STORE' });
    expect(creates, 'not retried as if another claimer held it').toBe(1);
    expect(fs.existsSync(b.mgr.sessionPath) ? fs.readdirSync(b.mgr.sessionPath) : []).toEqual([]);
    b.hook = undefined;
    await (await b.mgr.claim(ticket)).consume();
    await b.store.sweep();
    expect(await keysOf(ticket)).toEqual([]);
    await Promise.all([a.mgr.close(), b.mgr.close()]);
  }, 30_000);

  it('beats do not queue behind a store that stopped answering: a step waits for one beat at most, then for its own write', async (ctx) => {
    await needsS3(ctx);
    const [a] = [host()];
    const ticket = await handOff(a.store);
    const claimed = await a.mgr.claim(ticket);
    let outage = true;
    const WRITE_MS = 2000; // each write of the lease gets no answer for 2 s, beats come every second
    a.hook = async (r) => {
      if (outage && r.command === 'PutObject' && r.input.IfMatch !== undefined) {
        await new Promise((resolve) => setTimeout(resolve, WRITE_MS));
        throw lostAnswer();
      }
      return r.send();
    };
    await new Promise((resolve) => setTimeout(resolve, 6000));
    const started = performance.now();
    await expect(claimed.release()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_STORE' });
    const waited = performance.now() - started;
    expect(waited, 'one beat under way and its own write; beats queued behind would add 2 s each').toBeLessThan(2 * WRITE_MS + 1000);
    outage = false;
    await claimed.release();
    expect(await leaseState(ticket)).toBe('released');
    await (await a.mgr.claim(ticket)).consume();
    await a.store.sweep();
    await a.mgr.close();
  }, 40_000);

  it('a manager closed while a claim of a small file waits for its lease: ManagerClosedError, and the entry is given back at once', async (ctx) => {
    await needsS3(ctx);
    const [a, b, c] = [host(), host(), host()];
    const ticket = await handOff(a.store);
    const read = gate();
    b.hook = async (r) => {
      if (r.command === 'PutObject' && r.input.IfNoneMatch === '*' && r.key.endsWith('/lease')) {
        await read.opened; // the data is down before the lease is there
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      const answer = await r.send();
      if (r.command === 'GetObject' && r.key.endsWith('/data')) read.open();
      return answer;
    };
    const claiming = b.mgr.claim(ticket);
    claiming.catch(() => {});
    await read.opened;
    await new Promise((resolve) => setTimeout(resolve, 100));
    await b.mgr.close();
    await expect(claiming).rejects.toMatchObject({ code: 'ERR_TEMPFILE_MANAGER_CLOSED' });
    expect(await leaseState(ticket)).toBe('released');
    const started = performance.now();
    await (await c.mgr.claim(ticket)).consume();
    expect(performance.now() - started, 'not after staleMs').toBeLessThan(STALE_MS);
    await c.store.sweep();
    expect(await keysOf(ticket)).toEqual([]);
    await Promise.all([a.mgr.close(), c.mgr.close()]);
  }, 30_000);

  it('timeoutMs bounds each wait of a download, not the download: one that keeps moving for longer completes, one that stalls stops', async (ctx) => {
    await needsS3(ctx);
    const TIMEOUT_MS = 500;
    const [a, b] = [host(), host({ timeoutMs: TIMEOUT_MS })];
    const content = randomBytes(1024 * 1024);
    const sender = manager();
    const ticket = await (await sender.write(content, { suffix: '.bin' })).handoff({ ttlMs: 600_000, store: a.store });
    let stallAfter = Infinity;
    b.hook = async (r) => {
      const answer = (await r.send()) as { output: { Body?: AsyncIterable<Buffer> } };
      if (r.command === 'GetObject' && /\/data(\.[0-9a-f]{16})?$/.test(r.key) && answer.output.Body) {
        const source = answer.output.Body;
        answer.output.Body = Readable.from(
          (async function* () {
            let chunks = 0;
            for await (const chunk of source) {
              if (chunks++ >= stallAfter) await new Promise(() => {}); // no more bytes, ever
              await new Promise((resolve) => setTimeout(resolve, 100)); // slow, and moving
              yield chunk;
            }
          })(),
        );
      }
      return answer;
    };
    const started = performance.now();
    const claimed = await b.mgr.claim(ticket);
    const took = performance.now() - started;
    expect(took, 'the download lasted longer than timeoutMs').toBeGreaterThan(2 * TIMEOUT_MS);
    expect(fs.readFileSync(claimed.path).equals(content)).toBe(true);
    await claimed.release();
    stallAfter = 2;
    const stalled = performance.now();
    await expect(b.mgr.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'unreachable' });
    expect(performance.now() - stalled, 'stopped about timeoutMs after the last bytes').toBeLessThan(10 * TIMEOUT_MS);
    expect(fs.existsSync(b.mgr.sessionPath) ? fs.readdirSync(b.mgr.sessionPath) : []).toEqual([]);
    b.hook = undefined;
    await (await b.mgr.claim(ticket)).consume();
    await b.store.sweep();
    expect(await keysOf(ticket)).toEqual([]);
    await Promise.all([sender.close(), a.mgr.close(), b.mgr.close()]);
  }, 60_000);

  it('a consume whose answer was lost: the lease stays consumed through the next beats, and a redelivered ticket is HandoffNotFoundError', async (ctx) => {
    await needsS3(ctx);
    const [a, e] = [host(), host()];
    const ticket = await handOff(a.store);
    const claimed = await a.mgr.claim(ticket);
    a.hook = async (r) => {
      const answer = await r.send();
      if (isLeaseWrite(r, 'consumed')) {
        a.hook = undefined;
        throw lostAnswer();
      }
      return answer;
    };
    await expect(claimed.consume()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_STORE' }); // it landed
    await new Promise((resolve) => setTimeout(resolve, 2500)); // two beats
    expect(await leaseState(ticket)).toBe('consumed');
    await expect(e.mgr.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    await expect(claimed.consume(), 'asked again, the consume that landed is found').resolves.toBeUndefined();
    await e.store.sweep();
    expect(await keysOf(ticket)).toEqual([]);
    await Promise.all([a.mgr.close(), e.mgr.close()]);
  }, 30_000);
});
