// Two tus server processes on one root (tempfile-manager/tus), from the clients' side: one
// SIGKILLed mid-PATCH, the other taking the upload over and tus-js-client finishing it with every
// byte right; two clients PATCHing one upload through two processes, never interleaving. Needs
// `npm run build` (the servers run dist/).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nextJson, startChild, type RunningChild } from '../helpers/child.js';
import { freshRoot, manager, scratchDir } from '../helpers/roots.js';
import { until } from '../helpers/wait.js';
import { clientUpload, createUpload, openTusRequest, patchHeaders, tusRequest, uploadDirOf } from '../helpers/tus.js';

interface Event {
  readonly event: string;
  readonly port?: number;
  readonly id?: string;
  readonly size?: number;
  readonly kept?: string;
}

interface TusChild {
  readonly running: RunningChild;
  readonly url: string;
  /** Every event the child printed after it listened, as they come. */
  readonly events: Event[];
}

const children: RunningChild[] = [];
afterEach(async () => {
  for (const running of children.splice(0)) {
    if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
    await running.ended;
  }
});

async function startServer(root: string, dest: string, store: Record<string, unknown> = {}, manager: Record<string, unknown> = {}): Promise<TusChild> {
  const running = startChild('tus-server.mjs', [], { TFM_TUS: JSON.stringify({ root, dest, store, manager }) });
  children.push(running);
  const listening = await nextJson<Event>(running);
  expect(listening.event).toBe('listening');
  const events: Event[] = [];
  void (async () => {
    for (let line = await running.lines.next(); !line.done; line = await running.lines.next()) events.push(JSON.parse(line.value) as Event);
  })();
  return { running, url: `http://127.0.0.1:${listening.port}/files`, events };
}

function dataFileOf(dir: string): string | undefined {
  return fs.readdirSync(dir).find((name) => name === 'data' || name.startsWith('held_'));
}

describe('tempfile-manager/tus across server processes', () => {
  it('a server SIGKILLed mid-PATCH: another process on the root takes the upload over, and the client resumes it to every byte right', async () => {
    const root = freshRoot();
    const dest = scratchDir();
    const data = randomBytes(4 * 1024 * 1024);
    const first = await startServer(root, dest);
    const upload = await createUpload(first.url, data.length);
    const dir = uploadDirOf(root, upload);
    const { request, answer } = openTusRequest(upload, 'PATCH', patchHeaders(0, data.length));
    answer.catch(() => {});
    request.write(data.subarray(0, 1024 * 1024));
    await until(() => (dataFileOf(dir)?.startsWith('held_') ?? false) && fs.statSync(path.join(dir, dataFileOf(dir)!)).size > 0, 60_000, 'the first bytes on disk under the lock');
    first.running.child.kill('SIGKILL');
    await first.running.ended;
    request.destroy();
    // The dead server's lock is still on disk: its request never gave the upload back.
    expect(dataFileOf(dir)).toMatch(/^held_/);
    const onDisk = fs.statSync(path.join(dir, dataFileOf(dir)!)).size;
    expect(fs.readFileSync(path.join(dir, dataFileOf(dir)!)).equals(data.subarray(0, onDisk))).toBe(true);

    // The crash sweep removes the dead server's session, never the upload: it is nobody's session's.
    const sweeper = manager({ root });
    const report = await sweeper.sweep();
    expect(report.sessionsRemoved).toBeGreaterThan(0);
    expect(dataFileOf(dir)).toMatch(/^held_/);

    const second = await startServer(root, dest);
    const resumed = upload.replace(first.url, second.url);
    const head = await tusRequest(resumed, 'HEAD', {});
    expect(head.status).toBe(200);
    expect(Number(head.headers['upload-offset'])).toBe(onDisk);
    await clientUpload(data, { uploadUrl: resumed, chunkSize: 512 * 1024 });
    await until(() => second.events.some((e) => e.event === 'finished'), 60_000, 'the finish hook');
    const finished = second.events.find((e) => e.event === 'finished')!;
    expect(finished.size).toBe(data.length);
    expect(fs.readFileSync(finished.kept!).equals(data)).toBe(true);
    expect(fs.readdirSync(path.join(root, 'tus'))).toEqual([]);
  });

  // As a handoff claim's lease (test/process/handoff.test.ts): a server of another host judges a
  // holder by its heartbeat, so without the give-back it would wait staleMs (60 s) to take over.
  it.for([
    ['ends by process.exit()', 'exit'],
    ['is ended by SIGTERM', 'SIGTERM'],
  ] as const)('a server that %s mid-PATCH gives the upload back: a server of another host takes it at once', async ([_label, how]) => {
    const root = freshRoot();
    const dest = scratchDir();
    const data = randomBytes(1024 * 1024);
    const first = await startServer(root, dest, {}, { hostId: 'host-a', staleMs: 60_000 });
    const upload = await createUpload(first.url, data.length);
    const dir = uploadDirOf(root, upload);
    const { request, answer } = openTusRequest(upload, 'PATCH', patchHeaders(0, data.length));
    answer.catch(() => {});
    request.write(data.subarray(0, 256 * 1024));
    await until(() => (dataFileOf(dir)?.startsWith('held_') ?? false) && fs.statSync(path.join(dir, dataFileOf(dir)!)).size > 0, 60_000, 'the first bytes on disk under the lock');
    if (how === 'exit') first.running.child.stdin!.write('exit\n');
    else first.running.child.kill('SIGTERM');
    expect(await first.running.ended).toMatchObject(how === 'exit' ? { code: 0 } : { signal: 'SIGTERM' });
    request.destroy();
    expect(dataFileOf(dir)).toBe('data');

    const second = await startServer(root, dest, { lockTimeoutMs: 5000 }, { hostId: 'host-b', staleMs: 60_000 });
    await clientUpload(data, { uploadUrl: upload.replace(first.url, second.url), chunkSize: 512 * 1024 });
    await until(() => second.events.some((e) => e.event === 'finished'), 60_000, 'the finish hook');
    const finished = second.events.find((e) => e.event === 'finished')!;
    expect(fs.readFileSync(finished.kept!).equals(data)).toBe(true);
  });

  it('two clients PATCH one upload through two processes: the second waits for the first, is answered 409, and no byte of it lands', async () => {
    const root = freshRoot();
    const dest = scratchDir();
    const half = 256 * 1024;
    const one = await startServer(root, dest);
    const two = await startServer(root, dest);
    const upload = await createUpload(one.url, 2 * half);
    const dir = uploadDirOf(root, upload);
    // A's request holds the upload before any of its body is sent.
    const a = openTusRequest(upload, 'PATCH', patchHeaders(0, half));
    await until(() => dataFileOf(dir)?.startsWith('held_') ?? false, 60_000, "A's lock on disk");
    // B, through the other process, at the same offset: it must wait for A's lock.
    const b = openTusRequest(upload.replace(one.url, two.url), 'PATCH', patchHeaders(0, half));
    b.request.end(Buffer.alloc(half, 'B'));
    await until(() => two.events.some((e) => e.event === 'lock'), 60_000, "B's request at the lock");
    // Some time for a B that was not held back to write; a B held back waits however long this is.
    await new Promise((resolve) => setTimeout(resolve, 300));
    a.request.end(Buffer.alloc(half, 'A'));
    const [answerA, answerB] = await Promise.all([a.answer, b.answer]);
    expect(answerA.status, answerA.body).toBe(204);
    expect(answerA.headers['upload-offset']).toBe(String(half));
    expect(answerB.status, answerB.body).toBe(409);
    expect(dataFileOf(dir)).toBe('data');
    expect(fs.readFileSync(path.join(dir, 'data')).equals(Buffer.alloc(half, 'A'))).toBe(true);
  });
});
