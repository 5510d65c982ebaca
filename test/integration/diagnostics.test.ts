// The channels of tempfile-manager/diagnostics, from a subscriber's side: every event of a file's
// life is told, no message carries the file's bytes or what a claimer needs of its ticket, a
// subscriber that throws never breaks the operation it watches, the exit hook and two copies of
// the library in one process are heard, and with no subscriber no message is even built.
import { randomBytes } from 'node:crypto';
import dc from 'node:diagnostics_channel';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, expect, it } from 'vitest';
import { tempScope, upload } from '../../src/adapters/express.js';
import tempFiles from '../../src/adapters/fastify.js';
import { CHANNELS, handoffKey, publish, traced, TRACING_CHANNELS } from '../../src/base/channels.js';
import { formatOwnerToken, handoffDirOf, heldName } from '../../src/base/layout.js';
import { machineId, hostId } from '../../src/owner/process-identity.js';
import type { ClaimTrace, HandoffTrace, RequestTrace, WriteTrace } from '../../src/diagnostics.js';
import { fixture, runToEnd } from '../helpers/child.js';
import { BOUNDARY, bigFileForm, listenClosing, MiB } from '../helpers/http-clients.js';
import { freshRoot, manager, scratchDir } from '../helpers/roots.js';
import { until } from '../helpers/wait.js';

interface Heard {
  readonly channel: string;
  readonly message: unknown;
}

const unsubscribers: (() => void)[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const unsubscribe of unsubscribers.splice(0)) unsubscribe();
  for (const close of closers.splice(0)) await close();
});

const EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const;

/** Subscribes to every plain channel and every event of every tracing channel; returns what they hear. */
function listenToAll(): Heard[] {
  const heard: Heard[] = [];
  for (const name of Object.values(CHANNELS)) {
    const listener = (message: unknown) => heard.push({ channel: name, message });
    dc.subscribe(name, listener);
    unsubscribers.push(() => dc.unsubscribe(name, listener));
  }
  for (const name of Object.values(TRACING_CHANNELS)) {
    for (const event of EVENTS) {
      const channel = `tracing:${name}:${event}`;
      const listener = (message: unknown) => heard.push({ channel, message });
      dc.subscribe(channel, listener);
      unsubscribers.push(() => dc.unsubscribe(channel, listener));
    }
  }
  return heard;
}

/** Every string a message holds, however deep: own properties (enumerable or not), errors' stacks, bytes in latin1 and hex. */
function textOf(value: unknown, seen = new WeakSet<object>()): string {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return String(value);
  if (seen.has(value)) return '';
  seen.add(value);
  if (ArrayBuffer.isView(value)) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return `${bytes.toString('latin1')} ${bytes.toString('hex')}`;
  }
  return Object.getOwnPropertyNames(value)
    .map((key) => `${key}=${textOf((value as Record<string, unknown>)[key], seen)}`)
    .join(' ');
}

const on = (heard: Heard[], channel: string) => heard.filter((h) => h.channel === channel).map((h) => h.message);
const last = <T>(heard: Heard[], channel: string) => on(heard, channel).at(-1) as T;

/** Renames an entry's free data file to a held name of a holder that is dead (a pid above any real one, on this machine). */
function deadHolderTakes(root: string, ticketId: string, suffix: string): void {
  const dir = handoffDirOf(root);
  const entry = fs.readdirSync(dir).find((name) => name.includes(ticketId))!;
  const owner = formatOwnerToken({ host: hostId(), pid: 4_194_303, thread: 4_194_303, start: `${machineId() ?? '0.0'}.1`, created: Date.now(), random: '0123456789abcdef' });
  fs.renameSync(path.join(dir, entry, `data${suffix}`), path.join(dir, entry, heldName(owner, suffix)));
}

it('tells a file\'s whole life, and no message carries its bytes, its ticket or its ticket\'s id', async () => {
  const heard = listenToAll();
  const mgr = manager();
  const marker = `content-${randomBytes(24).toString('hex')}`;
  const content = Buffer.from(marker.repeat(40));

  await mgr.file('.txt').remove();
  mgr.dir().removeSync();
  const written = await mgr.write(content, { suffix: '.bin', hash: 'sha256' });
  const ticket = await written.handoff({ ttlMs: 60_000, meta: { job: 'diagnostics' } });
  await (await mgr.claim(ticket)).release();
  deadHolderTakes(mgr.root, ticket.id, '.bin');
  const claimed = await mgr.claim(JSON.stringify(ticket));
  await claimed.consume();

  await (await mgr.write(content)).keep(path.join(scratchDir(), 'kept.bin'));
  const expiring = await (await mgr.write(content)).handoff({ ttlMs: 1 });
  await until(() => Date.now() > expiring.expiresAt, 5_000, 'the ticket\'s expiry');
  await mgr.sweep();
  await expect(mgr.write(content, { maxBytes: 10 })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_SIZE_LIMIT' });

  const app = express();
  app.use(tempScope(mgr));
  app.post('/upload', upload({ field: 'file' }), (req, res) => void res.json({ size: req.file?.size }));
  app.post('/small', upload({ field: 'file', maxBytes: 10 }), (req, res) => void res.json({ size: req.file?.size }));
  const url = await listenClosing(app, closers);
  const form = new FormData();
  form.append('file', new Blob([content]), 'upload.bin');
  const answer = await fetch(`${url}/upload`, { method: 'POST', body: form });
  expect(await answer.json()).toEqual({ size: content.length });
  const refusedForm = new FormData();
  refusedForm.append('file', new Blob([content]), 'upload.bin');
  expect((await fetch(`${url}/small`, { method: 'POST', body: refusedForm })).status).toBe(413);
  await until(() => on(heard, `tracing:${TRACING_CHANNELS.request}:asyncEnd`).length === 2, 10_000, 'the end of the requests\' spans');

  const swapped = manager();
  fs.renameSync(swapped.root, `${swapped.root}.away`);
  fs.mkdirSync(swapped.root);
  await new Promise((resolve) => setImmediate(resolve)); // the root is looked at again once per run of JavaScript
  expect(() => swapped.file()).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_ROOT_CHANGED' }));

  // Every channel but the exit hook's (a process's end: the child test below) and a failed
  // heartbeat's (test/integration/heartbeat-failures.test.ts) was heard.
  const plainHeard = new Set(heard.filter((h) => !h.channel.startsWith('tracing:')).map((h) => h.channel));
  const unheard: string[] = [CHANNELS.exitHook, CHANNELS.heartbeatFail];
  expect([...plainHeard].sort()).toEqual(Object.values(CHANNELS).filter((name) => !unheard.includes(name)).sort());
  for (const name of Object.values(TRACING_CHANNELS)) {
    expect(on(heard, `tracing:${name}:start`).length, name).toBeGreaterThan(0);
    expect(on(heard, `tracing:${name}:asyncEnd`).length, name).toBe(on(heard, `tracing:${name}:start`).length);
  }

  const key = handoffKey(ticket.id);
  expect(last<HandoffTrace>(heard, `tracing:${TRACING_CHANNELS.handoff}:start`)).toMatchObject({ root: mgr.root, store: false });
  expect(on(heard, `tracing:${TRACING_CHANNELS.handoff}:asyncEnd`)[0]).toMatchObject({ result: { handoff: key, expiresAt: ticket.expiresAt } });
  expect(last<ClaimTrace>(heard, `tracing:${TRACING_CHANNELS.claim}:asyncEnd`)).toMatchObject({ handoff: key, result: { size: content.length } });
  expect(on(heard, CHANNELS.claimRelease)).toEqual([{ handoff: key, size: content.length }]);
  expect(on(heard, CHANNELS.claimTakeover)).toEqual([{ handoff: key }]);
  expect(on(heard, CHANNELS.claimConsume)).toEqual([{ handoff: key, size: content.length }]);
  expect(on(heard, CHANNELS.handoffExpire)).toEqual([{ handoff: handoffKey(expiring.id) }]);
  expect(on(heard, `tracing:${TRACING_CHANNELS.write}:asyncEnd`)[0]).toMatchObject({ result: { path: written.path, size: content.length } });
  const refused = on(heard, `tracing:${TRACING_CHANNELS.write}:error`) as WriteTrace[];
  expect(refused.map((ctx) => (ctx.error as { code: string }).code)).toEqual(['ERR_TEMPFILE_SIZE_LIMIT', 'ERR_TEMPFILE_SIZE_LIMIT']);
  expect(refused[0]).toMatchObject({ maxBytes: 10 });
  expect(on(heard, `tracing:${TRACING_CHANNELS.request}:asyncEnd`)).toEqual([
    expect.objectContaining({ framework: 'express', method: 'POST', result: { status: 200, files: 1, bytes: content.length, clientGone: false } }),
    expect.objectContaining({ result: { status: 413, files: 0, bytes: 0, refused: 'ERR_TEMPFILE_SIZE_LIMIT', clientGone: false } }),
  ]);
  expect(on(heard, CHANNELS.rootChange)).toEqual([{ root: swapped.root, change: 'replaced', session: false }]);

  const everything = heard.map((h) => `${h.channel}: ${textOf(h.message)}`).join('\n');
  expect(everything).not.toContain(marker);
  expect(everything).not.toContain(Buffer.from(marker).toString('hex'));
  for (const id of [ticket.id, expiring.id]) expect(everything).not.toContain(id);
  expect(everything).not.toContain(JSON.stringify(ticket));
});

it('a Fastify upload whose client leaves mid-file ends its request span as the client gone', async () => {
  const heard = listenToAll();
  const mgr = manager();
  const app = Fastify();
  closers.push(() => app.close());
  await app.register(tempFiles, { manager: mgr });
  app.post('/upload', async (request) => (await request.saveUploads({ field: 'file' })).file.size);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const form = bigFileForm(4 * MiB);
  const socket = net.connect((app.server.address() as net.AddressInfo).port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${form.length}\r\n\r\n`);
  socket.write(Buffer.concat([form.head, Buffer.alloc(64 * 1024)]));
  await until(() => on(heard, CHANNELS.fileCreate).length > 0, 10_000, 'the upload\'s file');
  socket.destroy();
  await until(() => on(heard, `tracing:${TRACING_CHANNELS.request}:asyncEnd`).length > 0, 10_000, 'the end of the request\'s span');
  expect(last<RequestTrace>(heard, `tracing:${TRACING_CHANNELS.request}:asyncEnd`)).toMatchObject({
    framework: 'fastify',
    method: 'POST',
    result: { files: 0, bytes: 0, clientGone: true },
  });
});

it('builds no message and adds no step while nobody listens', async () => {
  let built = 0;
  publish(CHANNELS.fileCreate, () => {
    built += 1;
    return { root: '/r', path: '/r/f', kind: 'file', by: 'create' };
  });
  const running = Promise.resolve(7);
  const span = traced(TRACING_CHANNELS.write, () => {
    built += 1;
    return { root: '/r', maxBytes: 1 };
  }, () => running, () => ({ path: '/r/f', size: 7 }));
  expect(span).toBe(running); // the operation's own promise, not one wrapped around it
  expect(await span).toBe(7);
  expect(built).toBe(0);
});

it('while someone listens, bad options still reject the call (never a synchronous throw), before any span starts', async () => {
  const heard = listenToAll();
  const mgr = manager();
  let returned: Promise<unknown> | undefined;
  expect(() => {
    returned = mgr.write(Buffer.alloc(1), { maxBytes: -1 });
  }).not.toThrow();
  await expect(returned).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'maxBytes' });
  expect(on(heard, `tracing:${TRACING_CHANNELS.write}:start`)).toHaveLength(0);
  await mgr.close();
});

it('a subscriber that throws breaks nothing; the exit hook and both builds in one process are heard', async () => {
  const root = freshRoot();
  const { stdout } = await runToEnd(process.execPath, [fixture('diagnostics-child.mjs'), root], { timeoutMs: 60_000, what: 'the diagnostics child' });
  const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  const report = lines.find((line) => 'creates' in line) as { creates: string[]; files: string[]; written: string; consumed: boolean; thrown: string[] };
  expect(report.consumed).toBe(true);
  // The ESM and the CommonJS build are two copies of the library: one subscriber hears both.
  expect(report.creates).toEqual(expect.arrayContaining([...report.files, report.written]));
  // Each throwing subscriber's error reached 'uncaughtException', once per message, after the operation went on.
  expect(report.thrown.sort()).toEqual(
    ['claim asyncEnd', 'consume', 'create', 'create', 'create', 'handoff start', 'write asyncEnd', 'write start'].sort(),
  );
  const exit = lines.find((line) => 'exitHook' in line) as { exitHook: { reason: string; tasks: number; durationMs: number } } | undefined;
  expect(exit?.exitHook).toMatchObject({ reason: 'exit' });
  expect(exit?.exitHook.tasks).toBeGreaterThanOrEqual(2); // a session of each build
  for (const file of report.files) expect(fs.existsSync(file), file).toBe(false); // the exit hook still removed them
});

it("the README's subscription, run as written against the built package, logs the file made", async () => {
  const { stdout } = await runToEnd(process.execPath, [fixture('readme-diagnostics.mjs'), freshRoot()], { timeoutMs: 60_000, what: "the README's diagnostics snippet" });
  const made = /^path (.+)$/m.exec(stdout)?.[1];
  expect(made).toBeDefined();
  expect(stdout).toContain('created {');
  expect(stdout).toContain(made);
});
