// What a subscriber may do to the objects the library hands it, and what it may not change:
// subscribers that freeze, overwrite, keep, trap or throw on every context and message change no
// outcome (no value, no file, no lease, no ticket, no stats()) of a manager's life, a tus store's
// or spool()'s; an AsyncLocalStorage bound to a tracing channel's start is entered by the work it
// traces (the request's included); no error of the claim path (the disk's refusals and failures
// injected), nor its causes, nor any message or span, holds the ticket's id, with /proc or
// without; and, in a child run with --expose-gc, kept contexts pin no chunk of a file
// (written, spooled or uploaded through tus) and the background sweep runs in no request's store.
import { AsyncLocalStorage } from 'node:async_hooks';
import dc from 'node:diagnostics_channel';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, expect, it, vi } from 'vitest';
import { tempScope, upload } from '../../src/adapters/express.js';
import tempFiles from '../../src/adapters/fastify.js';
import { CHANNELS, handoffKey, TRACING_CHANNELS } from '../../src/base/channels.js';
import { formatOwnerToken, handoffDirOf, heldName } from '../../src/base/layout.js';
import { machineId, hostId } from '../../src/owner/process-identity.js';
import { TempFileManager, type HandoffTicket, type TempFile } from '../../src/index.js';
import { fixture, runToEnd } from '../helpers/child.js';
import { systemError } from '../helpers/faulty-fs.js';
import { realFs, type FsLayer } from '../helpers/fs-layer.js';
import { listenClosing } from '../helpers/http-clients.js';
import { freshRoot, layOver, manager, scratchDir } from '../helpers/roots.js';
import { clientUpload, createUpload, patchHeaders, startTusServer, tusRequest } from '../helpers/tus.js';

const unsubscribers: (() => void)[] = [];
const closers: (() => Promise<void>)[] = [];
/** Where Node throws again what a subscriber threw (on the next tick): heard while a test listens. */
let rethrown: ((error: unknown) => void) | undefined;
afterEach(async () => {
  for (const unsubscribe of unsubscribers.splice(0)) unsubscribe();
  for (const close of closers.splice(0)) await close();
  if (rethrown === undefined) return;
  await new Promise((resolve) => setImmediate(resolve)); // the last ones thrown again first
  process.off('uncaughtException', rethrown);
  rethrown = undefined;
});

const EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const;
const ID = /[0-9a-f]{32}/;

/** Subscribes `listener` to every plain channel and every event of every tracing channel. */
function onEverything(listener: (message: unknown, channel: string) => void): void {
  const names = [...Object.values(CHANNELS), ...Object.values(TRACING_CHANNELS).flatMap((name) => EVENTS.map((event) => `tracing:${name}:${event}`))];
  for (const name of names) {
    const bound = (message: unknown) => listener(message, name);
    dc.subscribe(name, bound);
    unsubscribers.push(() => dc.unsubscribe(name, bound));
  }
}

const kept: unknown[] = [];
const THROWN = new Error('thrown by a subscriber');
const SUBSCRIBERS = {
  none: undefined,
  freeze: (message: unknown) => Object.freeze(message),
  mutate: (message: unknown) => {
    const target = message as Record<string, unknown>;
    for (const key of ['result', 'error', 'durationMs', 'root', 'path', 'size', 'handoff']) {
      try {
        target[key] = 'changed by a subscriber';
      } catch {
        // a field the library made read-only
      }
    }
  },
  keep: (message: unknown) => void kept.push(message),
  // A setter that throws on every field the library or Node sets later.
  trap: (message: unknown) => {
    for (const key of ['result', 'error', 'durationMs']) {
      const own = Object.getOwnPropertyDescriptor(message, key);
      if (Object.isExtensible(message) && own?.configurable !== false) Object.defineProperty(message, key, { set: () => { throw new Error('a trap'); }, configurable: false });
    }
  },
  throw: () => {
    throw THROWN;
  },
} as const;
type Hostile = Exclude<keyof typeof SUBSCRIBERS, 'none'>;
const HOSTILE = Object.keys(SUBSCRIBERS).filter((name): name is Hostile => name !== 'none');

/**
 * Subscribes the hostile subscriber `kind` to every channel. Node throws what a subscriber threw
 * again on the next tick, to 'uncaughtException': each is counted there, with every message
 * published, so that a test can tell that the operation went on past every one.
 */
function subscribeHostile(kind: Hostile): { published: number; thrown: unknown[] } {
  const seen = { published: 0, thrown: [] as unknown[] };
  onEverything(SUBSCRIBERS[kind]);
  if (kind !== 'throw') return seen;
  onEverything(() => void (seen.published += 1));
  rethrown = (error) => void seen.thrown.push(error);
  process.on('uncaughtException', rethrown);
  return seen;
}

/**
 * A manager with its exit hook, as an app runs one: a subscriber's error thrown again is an
 * uncaught error, which must not pass for one that ends the process (its files removed).
 */
const withExitHook = (): TempFileManager => manager({ exitHook: true });

/** Runs `life` alone, then under the subscriber `kind`: both runs' outcomes. */
async function aloneAndWatched<T>(kind: Hostile, life: () => Promise<T>): Promise<{ alone: T; watched: T }> {
  const alone = await life();
  const seen = subscribeHostile(kind);
  const watched = await life();
  await new Promise((resolve) => setImmediate(resolve)); // what was thrown is thrown again
  kept.length = 0;
  if (kind === 'throw') {
    expect(seen.thrown.length).toBeGreaterThan(0);
    expect(seen.thrown, 'every message thrown on, and only the subscriber\'s errors').toEqual(Array.from({ length: seen.published }, () => THROWN));
  }
  return { alone, watched };
}

/** Renames an entry's free data file to a held name of a holder that is dead (a pid above any real one, on this machine). */
function deadHolderTakes(root: string, ticketId: string, suffix: string): void {
  const dir = handoffDirOf(root);
  const entry = fs.readdirSync(dir).find((name) => name.includes(ticketId))!;
  const owner = formatOwnerToken({ host: hostId(), pid: 4_194_303, thread: 4_194_303, start: `${machineId() ?? '0.0'}.1`, created: Date.now(), random: '0123456789abcdef' });
  fs.renameSync(path.join(dir, entry, `data${suffix}`), path.join(dir, entry, heldName(owner, suffix)));
}

/** What the handoff directory holds, with ids and owners left out: `data` (free) or `held` (a lease) per entry. */
function leases(root: string): string[] {
  const dir = handoffDirOf(root);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).flatMap((entry) => fs.readdirSync(path.join(dir, entry)).map((name) => name.replace(/^held_.*?(\.[a-z]+)?$/, 'held$1'))).sort();
}

const settle = async <T>(work: Promise<T>): Promise<string | T> => work.catch((error: { code?: string; constructor: { name: string } }) => `rejected ${error.code ?? error.constructor.name}`);

/** One life through every traced operation; returns every outcome, with paths and ids left out. */
async function life(mgr: TempFileManager): Promise<unknown> {
  const out: Record<string, unknown> = {};
  const written = await mgr.write(Buffer.from('x'.repeat(5000)), { suffix: '.bin' });
  out.written = written.size;
  out.refused = await settle(mgr.write(Buffer.alloc(100_000), { maxBytes: 10 }));
  out.sessionAfterRefusal = fs.readdirSync(mgr.sessionPath).length;

  const ticket = await written.handoff({ ttlMs: 60_000 });
  out.ticket = ticket.size;
  const claimed = await mgr.claim(ticket);
  out.busy = await settle(mgr.claim(ticket));
  out.held = leases(mgr.root);
  await claimed.release();
  out.released = leases(mgr.root);
  out.withClaim = await settle(mgr.withClaim(ticket, (file) => file.size));
  out.consumed = await settle(mgr.claim(ticket));

  const second = await (await mgr.write(Buffer.from('second'), { suffix: '.txt' })).handoff({ ttlMs: 60_000 });
  deadHolderTakes(mgr.root, second.id, '.txt');
  const taken = await mgr.claim(second);
  await taken.keep(path.join(scratchDir(), 'kept.txt'));
  out.taken = leases(mgr.root);

  const app = express();
  app.use(tempScope(mgr));
  app.post('/upload', upload({ array: 'file', maxCount: 5 }), (req, res) => void res.json({ files: (req.files as unknown[] | undefined)?.length ?? 0 }));
  const url = await listenClosing(app, closers);
  const form = new FormData();
  for (let i = 0; i < 5; i += 1) form.append('file', new Blob([Buffer.alloc(1000, i)]), `f${i}.bin`);
  const answer = await fetch(`${url}/upload`, { method: 'POST', body: form });
  out.express = [answer.status, await answer.json()];

  const fastify = Fastify();
  closers.push(() => fastify.close());
  await fastify.register(tempFiles, { manager: mgr });
  fastify.post('/upload', async (request) => (await request.saveUploads({ field: 'file' })).file.size);
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  const single = new FormData();
  single.append('file', new Blob([Buffer.alloc(2000)]), 'g.bin');
  const fastAnswer = await fetch(`http://127.0.0.1:${(fastify.server.address() as { port: number }).port}/upload`, { method: 'POST', body: single });
  out.fastify = [fastAnswer.status, await fastAnswer.text()];
  // Both exchanges are over once their scopes are removed: the session is empty (the first write was handed off).
  for (let i = 0; i < 100 && fs.readdirSync(mgr.sessionPath).length > 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
  out.session = fs.readdirSync(mgr.sessionPath).length;
  const { liveBytes, liveFiles, quotaLeft } = mgr.stats();
  out.stats = { liveBytes, liveFiles, quotaLeft };
  const report = await mgr.sweep();
  out.sweep = report.errors.length;
  return out;
}

it.each(HOSTILE)('a subscriber that does "%s" on every context and message changes no outcome', async (kind) => {
  const { alone, watched } = await aloneAndWatched(kind, () => life(withExitHook()));
  expect(watched).toEqual(alone);
  expect(alone).toMatchObject({ written: 5000, refused: 'rejected ERR_TEMPFILE_SIZE_LIMIT', sessionAfterRefusal: 1, busy: 'rejected ERR_TEMPFILE_ALREADY_CLAIMED', withClaim: 5000, consumed: 'rejected ERR_TEMPFILE_HANDOFF_NOT_FOUND', express: [200, { files: 5 }], fastify: [200, '2000'], session: 0, stats: { liveBytes: 0, liveFiles: 0 } });
});

/** Every name under `<root>/tus`, ids left out: `upload/info.json`, `upload/data` (free) or `upload/held` (a request's lease). */
function tusOnDisk(root: string): string[] {
  const dir = path.join(root, 'tus');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).flatMap((upload) => fs.readdirSync(path.join(dir, upload)).map((name) => `upload/${name.replace(/^held_.*$/, 'held')}`)).sort();
}

/** What a finished tus upload's hook does with its file, told by the upload's metadata. */
function finishByMetadata(dest: string, tickets: HandoffTicket[]) {
  return async (file: TempFile, upload: { metadata?: Record<string, string | null> }): Promise<void> => {
    const then = upload.metadata?.['then'];
    if (then === 'keep') await file.keep(path.join(dest, `${upload.metadata?.['name'] ?? 'kept'}.bin`));
    if (then === 'handoff') tickets.push(await file.handoff({ ttlMs: 60_000 }));
  };
}

const REFUSED_SIZE = 7777;

/**
 * One life of a tus store on `mgr`, through a real @tus/server, tus-js-client and raw requests:
 * uploads kept, handed off and claimed, left to the store, refused by `verify` and by `maxBytes`,
 * resumed, terminated and left unfinished. Every outcome, with ids left out.
 */
async function tusLife(mgr: TempFileManager): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const dest = scratchDir();
  const tickets: HandoffTicket[] = [];
  const data = (size: number, seed: number) => Buffer.alloc(size, seed);
  const server = await startTusServer(mgr, { maxBytes: 1_000_000, verify: (file) => file.size !== REFUSED_SIZE, onUploadFinish: finishByMetadata(dest, tickets) });
  closers.push(() => server.close());
  const { url } = server;
  await clientUpload(data(300_000, 1), { endpoint: url, chunkSize: 64 * 1024, metadata: { then: 'keep', name: 'a' } });
  out.kept = fs.readFileSync(path.join(dest, 'a.bin')).equals(data(300_000, 1));
  await clientUpload(data(70_000, 2), { endpoint: url, metadata: { then: 'handoff' } });
  await clientUpload(data(1000, 3), { endpoint: url, metadata: { then: 'drop' } });
  out.handoff = await mgr.withClaim(tickets[0]!, (claimed) => fs.readFileSync(claimed.path).equals(data(70_000, 2)));
  out.handoffEntries = leases(mgr.root);

  const refused = await createUpload(url, REFUSED_SIZE);
  out.refused = (await tusRequest(refused, 'PATCH', patchHeaders(0, REFUSED_SIZE), data(REFUSED_SIZE, 4))).status;
  out.refusedAfter = (await tusRequest(refused, 'HEAD', {})).status;
  out.tooLarge = (await tusRequest(url, 'POST', { 'Upload-Length': String(2_000_000) })).status;

  const resumed = await createUpload(url, 200_000, { then: 'keep', name: 'resumed' });
  out.firstHalf = (await tusRequest(resumed, 'PATCH', patchHeaders(0, 100_000), data(200_000, 5).subarray(0, 100_000))).headers['upload-offset'];
  await clientUpload(data(200_000, 5), { uploadUrl: resumed });
  out.resumed = fs.readFileSync(path.join(dest, 'resumed.bin')).equals(data(200_000, 5));

  const terminated = await createUpload(url, 50_000);
  await tusRequest(terminated, 'PATCH', patchHeaders(0, 10_000), data(10_000, 6));
  out.terminated = [(await tusRequest(terminated, 'DELETE', {})).status, (await tusRequest(terminated, 'HEAD', {})).status];

  const unfinished = await createUpload(url, 50_000);
  await tusRequest(unfinished, 'PATCH', patchHeaders(0, 20_000), data(20_000, 7));
  out.unfinished = (await tusRequest(unfinished, 'HEAD', {})).headers['upload-offset'];
  out.onDisk = tusOnDisk(mgr.root);
  out.session = fs.existsSync(mgr.sessionPath) ? fs.readdirSync(mgr.sessionPath).length : 0;
  const { liveBytes, liveFiles, quotaLeft } = mgr.stats();
  out.stats = { liveBytes, liveFiles, quotaLeft };
  out.sweep = (await mgr.sweep()).errors.length;
  return out;
}

it.each(HOSTILE)('a subscriber that does "%s" on every context and message changes no outcome of a tus store', async (kind) => {
  const { alone, watched } = await aloneAndWatched(kind, () => tusLife(withExitHook()));
  expect(watched).toEqual(alone);
  expect(alone).toEqual({
    kept: true,
    handoff: true,
    handoffEntries: [],
    refused: 422,
    refusedAfter: 404,
    tooLarge: 413,
    firstHalf: '100000',
    resumed: true,
    terminated: [204, 404],
    unfinished: '20000',
    onDisk: ['upload/data', 'upload/info.json'],
    session: 0,
    stats: { liveBytes: 20_000, liveFiles: 0, quotaLeft: expect.any(Number) },
    sweep: 0,
  });
});

/** A stream of `count` chunks of 64 KiB. */
function chunks(count: number): Readable {
  return Readable.from((function* () {
    for (let i = 0; i < count; i += 1) yield Buffer.alloc(64 * 1024, i + 1);
  })());
}

const read = (file: TempFile): Promise<Buffer> => Readable.from(file.createReadStream()).toArray().then((parts: Buffer[]) => Buffer.concat(parts));

/**
 * One life of `spool()`: files kept in memory, spilled to the disk past `maxMemory`, refused in
 * memory and once spilled, refused by `accept`, written out, handed off and claimed, kept,
 * removed. Every outcome, with paths left out.
 */
async function spoolLife(mgr: TempFileManager): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const small = await mgr.spool(Buffer.from('small'), { hash: 'sha256' });
  out.small = [small.size, small.digest, (await read(small)).toString()];
  const spilled = await mgr.spool(chunks(4), { maxMemory: 100_000, hash: 'sha256' });
  out.spilled = [spilled.size, spilled.digest, (await read(spilled)).equals(Buffer.concat([1, 2, 3, 4].map((i) => Buffer.alloc(64 * 1024, i))))];
  out.refusedInMemory = await settle(mgr.spool(Buffer.alloc(5000), { maxBytes: 100 }));
  out.refusedSpilled = await settle(mgr.spool(chunks(4), { maxMemory: 64 * 1024, maxBytes: 150_000 }));
  out.typeRefused = await settle(mgr.spool(Buffer.from('plain text'), { accept: ['image/png'] }));
  out.session = fs.readdirSync(mgr.sessionPath).length;
  const { liveBytes, liveFiles } = mgr.stats();
  out.held = { liveBytes, liveFiles };

  const written = await mgr.spool(Buffer.from('written out'), { suffix: '.txt' });
  out.writtenOut = fs.readFileSync(written.path, 'utf8');
  const handed = await mgr.spool(Buffer.from('x'.repeat(3000)), { suffix: '.txt' });
  const ticket = await handed.handoff({ ttlMs: 60_000 });
  out.claimed = await mgr.withClaim(ticket, (claimed) => fs.readFileSync(claimed.path, 'utf8').length);
  const kept = await mgr.spool(Buffer.from('keep me'));
  const destination = path.join(scratchDir(), 'kept.txt');
  await kept.keep(destination);
  out.kept = fs.readFileSync(destination, 'utf8');
  for (const file of [small, spilled, written]) await file.remove();
  out.sessionAfter = fs.readdirSync(mgr.sessionPath).length;
  out.handoffEntries = leases(mgr.root);
  const after = mgr.stats();
  out.stats = { liveBytes: after.liveBytes, liveFiles: after.liveFiles, quotaLeft: after.quotaLeft };
  return out;
}

it.each(HOSTILE)('a subscriber that does "%s" on every context and message changes no outcome of spool()', async (kind) => {
  const { alone, watched } = await aloneAndWatched(kind, () => spoolLife(withExitHook()));
  expect(watched).toEqual(alone);
  expect(alone).toMatchObject({
    small: [5, expect.stringMatching(/^sha256:/), 'small'],
    spilled: [4 * 64 * 1024, expect.stringMatching(/^sha256:/), true],
    refusedInMemory: 'rejected ERR_TEMPFILE_SIZE_LIMIT',
    refusedSpilled: 'rejected ERR_TEMPFILE_SIZE_LIMIT',
    typeRefused: 'rejected ERR_TEMPFILE_TYPE_NOT_ACCEPTED',
    session: 1,
    held: { liveBytes: 5 + 4 * 64 * 1024, liveFiles: 2 },
    writtenOut: 'written out',
    claimed: 3000,
    kept: 'keep me',
    sessionAfter: 0,
    handoffEntries: [],
    stats: { liveBytes: 0, liveFiles: 0 },
  });
});

it('an AsyncLocalStorage bound to each tracing channel\'s start is entered by the work it traces, a request\'s uploads included', async () => {
  const stores = new Map<string, AsyncLocalStorage<object>>();
  for (const name of Object.values(TRACING_CHANNELS)) {
    const als = new AsyncLocalStorage<object>();
    const start = dc.tracingChannel(name).start;
    start.bindStore(als, (ctx) => ctx as object);
    unsubscribers.push(() => void start.unbindStore(als));
    stores.set(name, als);
  }
  const seen: Record<string, unknown[]> = {};
  const look = (what: string, name: string) => (seen[what] ??= []).push(stores.get(name)!.getStore());
  const plain = (channel: string, fn: () => void) => {
    dc.subscribe(channel, fn);
    unsubscribers.push(() => dc.unsubscribe(channel, fn));
  };
  plain(CHANNELS.fileCreate, () => look('write', TRACING_CHANNELS.write));
  plain(CHANNELS.claimTakeover, () => look('claim', TRACING_CHANNELS.claim));
  plain(CHANNELS.handoffExpire, () => look('sweep', TRACING_CHANNELS.sweep));
  // The write of an upload runs inside its request's span.
  plain(`tracing:${TRACING_CHANNELS.write}:start`, () => look('request', TRACING_CHANNELS.request));
  // A handoff publishes no message of its own while it works: its rename of the entry into
  // <root>/handoff is seen from the file system below it.
  layOver({
    ...realFs,
    renameSync: ((from: fs.PathLike, to: fs.PathLike) => {
      if (/\/entry_[^/]+$/.test(String(to))) look('handoff', TRACING_CHANNELS.handoff);
      realFs.renameSync(from, to);
    }) as FsLayer['renameSync'],
  });

  const mgr = manager();
  await mgr.write(Buffer.from('traced'));
  const ticket = await (await mgr.write(Buffer.from('taken'), { suffix: '.txt' })).handoff({ ttlMs: 60_000 });
  deadHolderTakes(mgr.root, ticket.id, '.txt');
  await (await mgr.claim(ticket)).release();
  const expiring = await (await mgr.write(Buffer.from('expiring'))).handoff({ ttlMs: 1 });
  while (Date.now() <= expiring.expiresAt) await new Promise((resolve) => setTimeout(resolve, 5));
  await mgr.sweep();
  expect(seen.write?.length).toBe(3);
  expect(seen.handoff?.length).toBe(2);
  for (const what of ['write', 'handoff', 'claim', 'sweep']) expect(seen[what]?.every((store) => store !== undefined), what).toBe(true);
  seen.request = [];

  const app = express();
  app.use(tempScope(mgr));
  app.post('/upload', upload({ field: 'file' }), (req, res) => void res.json({ size: req.file?.size }));
  const url = await listenClosing(app, closers);
  const fastify = Fastify();
  closers.push(() => fastify.close());
  await fastify.register(tempFiles, { manager: mgr });
  fastify.post('/upload', async (request) => (await request.saveUploads({ field: 'file' })).file.size);
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  for (const target of [`${url}/upload`, `http://127.0.0.1:${(fastify.server.address() as { port: number }).port}/upload`]) {
    const form = new FormData();
    form.append('file', new Blob([Buffer.from('uploaded')]), 'u.bin');
    expect((await fetch(target, { method: 'POST', body: form })).status).toBe(200);
  }
  expect(seen.request).toHaveLength(2);
  expect(seen.request).toEqual([expect.objectContaining({ framework: 'express' }), expect.objectContaining({ framework: 'fastify' })]);
});

/**
 * Every string an error holds, its causes' included: message, stack (read through its accessor
 * where Node makes it one), path and every other own field, an error in a field (`cause`,
 * `releaseError`) followed.
 */
function errorText(error: unknown, depth = 0): string {
  if (depth > 6 || typeof error !== 'object' || error === null) return String(error);
  return Object.getOwnPropertyNames(error)
    .map((key) => {
      const value = (error as Record<string, unknown>)[key];
      return typeof value === 'object' && value !== null ? `${key}=(${errorText(value, depth + 1)})` : `${key}=${String(value)}`;
    })
    .join(' ');
}

/** A fault of the layer below: the next call of `method` on a path `when` accepts fails with `code`, as Node fails it. */
interface Fault {
  readonly method: 'openSync' | 'renameSync' | 'lstatSync' | 'unlinkSync' | 'unlink' | 'link';
  readonly code: string;
  readonly when: (file: string) => boolean;
}

/**
 * A layer over the real file system whose armed faults each fail the next matching call, once, as
 * a refused or failing disk would (as root, a chmod 000 refuses nothing): `arm()` sets the faults
 * (those not met are dropped at the next `arm()`), `hits` are the paths the library called with
 * when one failed (what its system error names).
 */
function faultLayer(): { layer: FsLayer; arm: (...faults: Fault[]) => void; hits: string[] } {
  let armed: Fault[] = [];
  const hits: string[] = [];
  const check = (method: Fault['method'], file: unknown, syscall: string): void => {
    const at = String(file);
    const fault = armed.find((one) => one.method === method && one.when(at));
    if (fault === undefined) return;
    armed = armed.filter((one) => one !== fault);
    hits.push(at);
    throw systemError(fault.code, syscall, at);
  };
  const sync = <K extends 'openSync' | 'renameSync' | 'lstatSync' | 'unlinkSync'>(method: K, syscall: string): FsLayer[K] =>
    ((...args: unknown[]) => {
      check(method, args[0], syscall);
      return (realFs[method] as (...a: unknown[]) => unknown)(...args);
    }) as FsLayer[K];
  const layer: FsLayer = {
    ...realFs,
    openSync: sync('openSync', 'open'),
    renameSync: sync('renameSync', 'rename'),
    lstatSync: sync('lstatSync', 'lstat'),
    unlinkSync: sync('unlinkSync', 'unlink'),
    promises: {
      ...realFs.promises,
      unlink: async (file) => {
        check('unlink', file, 'unlink');
        return realFs.promises.unlink(file);
      },
      link: async (from, to) => {
        check('link', from, 'link');
        return realFs.promises.link(from, to);
      },
    },
  };
  return { layer, arm: (...faults) => void (armed = faults), hits };
}

const entryDirOpen = (file: string) => /\/entry_[^/]+$/.test(file);
const heldFile = (file: string) => /\/held_[^/]+$/.test(file);

it.each([
  ['with /proc', false],
  ['without /proc (TEMPFILE_MANAGER_NO_PROC=1)', true],
])('no error the claim path raises, nor its causes, nor any message or span, holds the ticket\'s id or its entry\'s name: %s', async (_, noProc) => {
  // Without /proc: a fresh copy of the library, which reads the switch on its first use.
  let lib: { TempFileManager: typeof TempFileManager } = { TempFileManager };
  const before = process.env['TEMPFILE_MANAGER_NO_PROC'];
  if (noProc) {
    process.env['TEMPFILE_MANAGER_NO_PROC'] = '1';
    vi.resetModules();
    lib = await import('../../src/index.js');
  }
  const managers: TempFileManager[] = [];
  const make = (root: string) => {
    const made = new lib.TempFileManager({ root, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    managers.push(made);
    return made;
  };
  try {
    const published: string[] = [];
    onEverything((message, channel) => published.push(`${channel} ${JSON.stringify(message)} ${errorText((message as { error?: unknown }).error)}`));
    const faults = faultLayer();
    layOver(faults.layer);
    const errors: unknown[] = [];
    const caught = async (work: Promise<unknown> | (() => unknown)) => {
      try {
        await (typeof work === 'function' ? work() : work);
      } catch (error) {
        errors.push(error);
        return error as { code: string };
      }
      throw new Error('expected a refusal');
    };
    const mgr = make(freshRoot());
    const ticket = await (await mgr.write(Buffer.from('claimed'), { suffix: '.bin', hash: 'sha256' })).handoff({ ttlMs: 60_000 });
    const entryName = fs.readdirSync(handoffDirOf(mgr.root)).find((name) => name.includes(ticket.id))!;
    const entryDir = path.join(handoffDirOf(mgr.root), entryName);
    const dataFile = path.join(entryDir, 'data.bin');
    const outside = path.join(scratchDir(), 'outside');
    const fifo = (at: string) => execFileSync('mkfifo', ['-m', '600', at]);
    // A hard link to a file outside, then a FIFO, planted at `at` while `attempt` runs; put back after.
    const planted = async (at: string, attempt: () => Promise<unknown>): Promise<void> => {
      fs.linkSync(at, outside);
      await caught(attempt());
      fs.unlinkSync(outside);
      fs.renameSync(at, outside);
      fifo(at);
      await caught(attempt());
      fs.unlinkSync(at);
      fs.renameSync(outside, at);
    };
    const held = await mgr.claim(ticket);
    await caught(mgr.claim(ticket)); // ERR_TEMPFILE_ALREADY_CLAIMED
    await held.release();
    // The lease taken over while held: consume finds it lost.
    const lost = await mgr.claim(ticket);
    const heldName = fs.readdirSync(entryDir).find((name) => name.startsWith('held_'))!;
    fs.renameSync(path.join(entryDir, heldName), dataFile);
    await caught(lost.consume()); // ERR_TEMPFILE_LEASE_LOST
    // The entry's bytes changed: a size and a digest mismatch.
    fs.appendFileSync(dataFile, 'more');
    await caught(mgr.claim(ticket)); // ERR_TEMPFILE_HANDOFF_MISMATCH (size)
    fs.writeFileSync(dataFile, 'CLAIMED');
    await caught(mgr.claim(ticket, { verifyDigest: true })); // ERR_TEMPFILE_HANDOFF_MISMATCH (digest)
    // A hard link, then a FIFO, planted as the data file: not the file handed off.
    await planted(dataFile, () => mgr.claim(ticket)); // ERR_TEMPFILE_HANDOFF_MISMATCH (a hard link, a FIFO)

    // The disk refuses or fails each step of a claim (ERR_TEMPFILE_IO): the entry's directory
    // (found by its name, which holds the id), the lease's rename, the held file's check.
    if (process.getuid?.() !== 0) {
      fs.chmodSync(entryDir, 0o000); // a real EACCES where a chmod refuses (not as root)
      await caught(mgr.claim(ticket));
      fs.chmodSync(entryDir, 0o700);
    }
    faults.arm({ method: 'openSync', code: 'EACCES', when: entryDirOpen });
    await caught(mgr.claim(ticket));
    faults.arm({ method: 'renameSync', code: 'EACCES', when: (file) => file.endsWith('/data.bin') });
    await caught(mgr.claim(ticket));
    faults.arm({ method: 'lstatSync', code: 'EIO', when: heldFile });
    await caught(mgr.claim(ticket));
    // A manager that only claims probes its root's file system in the entry it finds by name.
    faults.arm({ method: 'openSync', code: 'EACCES', when: entryDirOpen });
    await caught(make(mgr.root).claim(ticket));

    // A claim's steps: consume and release failing, keep() refused every way it can be.
    const claimed = await mgr.claim(ticket);
    const heldPath = path.join(entryDir, fs.readdirSync(entryDir).find((name) => name.startsWith('held_'))!);
    // A small file on the local disk is unlinked inline, a larger one off the event loop.
    faults.arm({ method: 'unlinkSync', code: 'EIO', when: heldFile }, { method: 'unlink', code: 'EIO', when: heldFile });
    await caught(claimed.consume()); // ERR_TEMPFILE_IO, still held
    faults.arm({ method: 'renameSync', code: 'EIO', when: heldFile });
    await caught(claimed.release()); // ERR_TEMPFILE_IO, still held
    const destination = path.join(scratchDir(), 'kept.bin');
    fs.writeFileSync(destination, 'there');
    await caught(claimed.keep(destination)); // ERR_TEMPFILE_DESTINATION_EXISTS
    fs.unlinkSync(destination);
    faults.arm({ method: 'link', code: 'EIO', when: heldFile });
    await caught(claimed.keep(destination)); // ERR_TEMPFILE_IO
    await caught(claimed.keep('')); // ERR_TEMPFILE_INVALID_OPTION
    await planted(heldPath, () => claimed.keep(destination)); // ERR_TEMPFILE_REPLACED (a hard link, a FIFO)
    await claimed.consume();
    await caught(claimed.keep(destination)); // ERR_TEMPFILE_DISPOSED
    await caught(mgr.claim(ticket)); // ERR_TEMPFILE_HANDOFF_NOT_FOUND
    await caught(mgr.withClaim(ticket, () => 1)); // ERR_TEMPFILE_HANDOFF_NOT_FOUND
    await caught(mgr.claim({ ...ticket, expiresAt: ticket.createdAt })); // ERR_TEMPFILE_HANDOFF_EXPIRED
    await caught(mgr.claim({ ...ticket, size: -1 })); // ERR_TEMPFILE_BAD_TICKET
    await caught(make(freshRoot()).claim(ticket)); // ERR_TEMPFILE_HANDOFF_NOT_FOUND: no handoff directory there
    await mgr.close();
    await caught(mgr.claim(ticket)); // ERR_TEMPFILE_MANAGER_CLOSED

    // Each fault was met, at the path that names the entry where it has one: through the handoff
    // directory's descriptor under /proc, or by its path without /proc.
    expect(faults.hits).toHaveLength(7);
    for (const hit of [faults.hits[0]!, faults.hits[3]!]) {
      expect(hit).toContain(entryName);
      expect(hit.startsWith('/proc/')).toBe(!noProc);
    }
    const codes = errors.map((error) => (error as { code: string }).code);
    expect(new Set(codes)).toEqual(new Set([
      'ERR_TEMPFILE_ALREADY_CLAIMED', 'ERR_TEMPFILE_LEASE_LOST', 'ERR_TEMPFILE_HANDOFF_MISMATCH', 'ERR_TEMPFILE_HANDOFF_NOT_FOUND',
      'ERR_TEMPFILE_HANDOFF_EXPIRED', 'ERR_TEMPFILE_BAD_TICKET', 'ERR_TEMPFILE_IO', 'ERR_TEMPFILE_REPLACED', 'ERR_TEMPFILE_DESTINATION_EXISTS',
      'ERR_TEMPFILE_INVALID_OPTION', 'ERR_TEMPFILE_DISPOSED', 'ERR_TEMPFILE_MANAGER_CLOSED',
    ]));
    expect(codes.filter((code) => code === 'ERR_TEMPFILE_IO')).toHaveLength(process.getuid?.() === 0 ? 7 : 8);
    expect(codes.filter((code) => code === 'ERR_TEMPFILE_REPLACED')).toHaveLength(2);
    for (const error of errors) {
      const text = errorText(error);
      expect(text, text).not.toContain(ticket.id);
      expect(text, text).not.toContain(entryName);
    }
    // The system errors are kept, as their code, errno and syscall, under the digest's name of the entry.
    const io = errors.filter((error) => (error as { code: string }).code === 'ERR_TEMPFILE_IO') as { cause: NodeJS.ErrnoException; message: string }[];
    for (const error of io) expect([error.cause.code, error.cause.syscall], error.message).toEqual([expect.stringMatching(/^E[A-Z]+$/), expect.any(String)]);
    expect(io.some((error) => String(error.cause.path).includes(`<entry of handoff ${handoffKey(ticket.id)}>`))).toBe(true);
    const messages = published.join('\n');
    expect(published.some((line) => line.startsWith('tracing:'))).toBe(true);
    expect(messages).not.toContain(ticket.id);
    expect(messages).not.toContain(entryName);
    expect(messages).not.toMatch(new RegExp(`entry_${ID.source}`));
    expect(messages).toContain(handoffKey(ticket.id)); // the digest names it
  } finally {
    for (const made of managers) await made.close();
    if (before === undefined) delete process.env['TEMPFILE_MANAGER_NO_PROC'];
    else process.env['TEMPFILE_MANAGER_NO_PROC'] = before;
  }
});

it('contexts a subscriber keeps pin no chunk of a file (writes, spools, tus uploads), and the shared manager\'s background sweep runs in no request\'s store, nor keeps it', async () => {
  const { stdout } = await runToEnd(process.execPath, ['--expose-gc', fixture('observer-memory.mjs'), freshRoot()], { timeoutMs: 120_000, what: 'the observer memory child' });
  const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    refused: number;
    keptBytes: number;
    spoolsRefused: number;
    spoolKeptBytes: number;
    tusStatuses: Record<string, number>;
    tusKeptBytes: number;
    size: number;
    storeFreed: boolean;
    sweepStores: string[];
  };
  expect(report.refused).toBe(500);
  expect(report.size).toBe(5);
  // 500 chunks of 64 KiB would be 32 MiB; what 500 contexts and their errors hold is far less.
  expect(report.keptBytes).toBeLessThan(8 * 1024 * 1024);
  // The same of 500 spools refused once past maxMemory, every message and context kept.
  expect(report.spoolsRefused).toBe(500);
  expect(report.spoolKeptBytes).toBeLessThan(8 * 1024 * 1024);
  // 60 tus uploads of 256 KiB (15 MiB; a 64 KiB chunk each would be 3.75 MiB), every message kept.
  expect(report.tusStatuses).toEqual({ 204: 30, 422: 30 });
  expect(report.tusKeptBytes).toBeLessThan(2 * 1024 * 1024);
  expect(report.sweepStores.length).toBeGreaterThan(0);
  expect(report.sweepStores.every((store) => store === 'none')).toBe(true);
  // The request's 16 MiB store is collectable once the request is over: nothing the library keeps
  // (the shared manager's timers, the type sniffer's module and its pooled parsers) holds it.
  expect(report.storeFreed).toBe(true);
});
