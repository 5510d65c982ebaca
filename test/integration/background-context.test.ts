// Background work runs in no caller's async context. The library is imported here at the top of
// the file, as an app imports it at start-up, outside any request: a manager made inside a
// request's AsyncLocalStorage store sweeps its root outside it; through an object store, a
// claim's lease heartbeat, a stream upload's heartbeat and the later removal of what a failed
// request left are sent outside it; a tus store's timers (an upload created, one finished) are
// made outside it. docs/observability.md, "Bound stores and async context", says why and what a
// library imported lazily inside a request does instead.
import { AsyncLocalStorage } from 'node:async_hooks';
import dc from 'node:diagnostics_channel';
import http from 'node:http';
import { Readable } from 'node:stream';
import { Server } from '@tus/server';
import { afterEach, expect, it, vi } from 'vitest';
import { TRACING_CHANNELS } from '../../src/base/channels.js';
import { TempFileManager } from '../../src/index.js';
import { HEARTBEAT_MS } from '../../src/owner/liveness.js';
import { handOffStream } from '../../src/object-store/direct.js';
import { StoreIo } from '../../src/s3/io.js';
import { entryKeys } from '../../src/object-store/keys.js';
import { StoreLease } from '../../src/object-store/lease.js';
import { tusStore } from '../../src/tus/index.js';
import { fakeS3, type SentRequest } from '../helpers/fake-s3.js';
import { freshRoot, manager } from '../helpers/roots.js';
import { patchHeaders, tusRequest } from '../helpers/tus.js';

const als = new AsyncLocalStorage<{ readonly request: number }>();
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** What the request's store held where something ran: `none` outside any, else the request's number. */
const storeHere = (): string => String(als.getStore()?.request ?? 'none');

/** The request's store (as {@link storeHere} names it) each sweep of `root` started in. */
function sweepsSeenIn(root: string): string[] {
  const seen: string[] = [];
  const onSweep = (message: unknown) => {
    if ((message as { root?: string }).root === root) seen.push(storeHere());
  };
  dc.subscribe(`tracing:${TRACING_CHANNELS.sweep}:start`, onSweep);
  cleanups.push(() => void dc.unsubscribe(`tracing:${TRACING_CHANNELS.sweep}:start`, onSweep));
  return seen;
}

it('a manager made inside a request\'s store sweeps its root in the background outside it', async () => {
  const root = freshRoot();
  const seen = sweepsSeenIn(root);
  const mgr = als.run({ request: 1 }, () => new TempFileManager({ root, sweepOnStart: true, sweepIntervalMs: 0, exitHook: false }));
  cleanups.push(() => mgr.close());
  for (let waited = 0; seen.length === 0 && waited < 10_000; waited += 20) await sleep(20);
  expect(seen).toEqual(['none']);
});

/** A store's requests over a {@link fakeS3} client, each with the store it was sent in. */
function storeIo(): { io: StoreIo; sent: (SentRequest & { store: string })[]; failNext: (which: (request: SentRequest) => boolean) => void } {
  const sent: (SentRequest & { store: string })[] = [];
  const { client, failNext } = fakeS3((request) => sent.push({ ...request, store: storeHere() }));
  // Parts of 256 KiB: a stream of 300 KiB is a multipart upload, with its heartbeat.
  return { io: new StoreIo(client, 'bucket', 'p/', 5000, 256 * 1024), sent, failNext };
}

it('an object store\'s lease heartbeat, taken inside a request\'s store, beats outside it', async () => {
  const { io, sent } = storeIo();
  const keys = entryKeys('p/', 'e'.repeat(32), Date.now() + 60_000);
  const lease = await als.run({ request: 2 }, async () => {
    const taken = await StoreLease.take(io, keys, 'e'.repeat(32), { staleMs: 30_000, hostId: 'host' });
    taken.startHeartbeat();
    return taken;
  });
  cleanups.push(() => lease.stop());
  const taking = sent.length;
  expect(sent.map((request) => request.store)).toEqual(sent.map(() => '2')); // taking it is the request's work
  await sleep(HEARTBEAT_MS * 2.5);
  const beats = sent.slice(taking).filter((request) => request.name === 'PutObjectCommand' && request.key === keys.lease);
  expect(beats.length).toBeGreaterThanOrEqual(1);
  expect(beats.map((beat) => beat.store)).toEqual(beats.map(() => 'none'));
});

it('a stream handed to an object store inside a request\'s store beats, and removes what it left, outside it', async () => {
  const { io, sent, failNext } = storeIo();
  const location = { kind: 's3', bucket: 'bucket', prefix: 'p/' };
  // 300 KiB, a pause of two beats, then the end: the upload's heartbeat beats meanwhile.
  const source = Readable.from((async function* () {
    yield Buffer.alloc(300 * 1024, 1);
    await sleep(HEARTBEAT_MS * 2.5);
    yield Buffer.alloc(10, 2);
  })());
  const request = { ttlMs: 60_000, meta: undefined, maxBytes: 10 * 1024 * 1024, accept: undefined, hash: 'sha256', suffixOf: () => '' };
  const bind = (id: string, suffix: string, createdAt: number, expiresAt: number) => ({ bound: { v: 1 as const, id, suffix, createdAt, expiresAt, meta: undefined, store: location }, metadata: {} });
  const uploading = (request: SentRequest) => request.key.endsWith('/uploading');
  // The heartbeat's deletion once the upload is complete fails: it is tried again later, on a timer.
  failNext((request) => request.name === 'DeleteObjectCommand' && uploading(request));
  const handed = await als.run({ request: 3 }, () => handOffStream(io, location, source, request, bind));
  expect(handed.ticket.size).toBe(300 * 1024 + 10);
  for (let waited = 0; sent.filter((one) => one.name === 'DeleteObjectCommand' && uploading(one)).length < 2 && waited < 10_000; waited += 50) await sleep(50);
  const beats = sent.filter((one) => one.name === 'PutObjectCommand' && uploading(one));
  const deletions = sent.filter((one) => one.name === 'DeleteObjectCommand' && uploading(one));
  expect(beats.length).toBeGreaterThanOrEqual(2); // the first, made by the request, then one a second
  expect(beats.map((beat) => beat.store)).toEqual(['3', ...beats.slice(1).map(() => 'none')]);
  expect(deletions.map((deletion) => deletion.store)).toEqual(['3', 'none']); // failed in the request, done later outside it
});

it('a tus store\'s timers, made while a request\'s store is entered, are made outside it (its callbacks run there)', async () => {
  // A timer's callback runs in the async context the timer was made in, and that context lives as
  // long as the timer: where the store's two one-minute timers are made is where they run.
  const made: string[] = [];
  const real = globalThis.setTimeout;
  const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((callback: () => void, ms?: number) => {
    if (/[/\\]src[/\\]tus[/\\]store\.ts:/.test(new Error().stack ?? '')) made.push(`${ms} ms in ${storeHere()}`);
    return real(callback, ms);
  }) as unknown as typeof setTimeout);
  cleanups.push(() => spy.mockRestore());
  const mgr = manager();
  const { datastore, locker } = await tusStore({ manager: mgr });
  const tus = new Server({ path: '/files', datastore, locker });
  let requests = 0;
  const listener = http.createServer((req, res) => void als.run({ request: (requests += 1) }, () => tus.handle(req, res)));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    listener.closeAllConnections();
    listener.close(() => resolve());
  }));
  const url = `http://127.0.0.1:${(listener.address() as { port: number }).port}/files`;
  const created = await tusRequest(url, 'POST', { 'Upload-Length': '1000' });
  expect(created.status).toBe(201);
  const patched = await tusRequest(new URL(created.headers.location!, url).href, 'PATCH', patchHeaders(0, 1000), Buffer.alloc(1000, 7));
  expect(patched.status).toBe(204);
  expect(requests).toBe(2);
  // One when the upload was created, one when it finished: neither in its request's store.
  expect(made).toEqual(['60000 ms in none', '60000 ms in none']);
});

it('the documented limit: a copy of the library first loaded inside a request\'s store sweeps in that store', async () => {
  // What detached() runs in is the context the library was loaded in: a lazy import() inside a
  // request loads it there (docs/observability.md says to import it at start-up instead).
  const root = freshRoot();
  const seen = sweepsSeenIn(root);
  vi.resetModules();
  const mgr = await als.run({ request: 4 }, async () => {
    const lazy = await import('../../src/index.js');
    return new lazy.TempFileManager({ root, sweepOnStart: true, sweepIntervalMs: 0, exitHook: false });
  });
  cleanups.push(() => mgr.close());
  for (let waited = 0; seen.length === 0 && waited < 10_000; waited += 20) await sleep(20);
  expect(seen).toEqual(['4']);
});
