// The bytes of tus uploads a process counts against its manager's maxLiveBytes are counted while
// they are on disk, and only then: whichever way an upload ends (finished here or by another
// server process on the root, terminated, expired, swept by this process or by the CLI), the
// process that wrote its bytes reads stats() back to 0, and its quota takes new uploads again.
// A real @tus/server in this process and another in a child process (test/fixtures/tus-server.mjs,
// which runs dist/: `npm run build` first), on one root.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { nextJson, startChild, type RunningChild } from '../helpers/child.js';
import { manager, scratchDir } from '../helpers/roots.js';
import { createUpload, patchHeaders, tusRequest, tusServers, untilExpired, uploadDirOf } from '../helpers/tus.js';

const cli = path.join(import.meta.dirname, '../../dist/cli.js');
const serve = tusServers();

const children: RunningChild[] = [];
afterEach(async () => {
  for (const running of children.splice(0)) {
    if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
    await running.ended;
  }
});

/** A tus server in another process on `root`; its base URL and the events it prints. */
async function otherProcess(root: string, dest: string): Promise<{ url: string; events: { event: string; id?: string }[] }> {
  const running = startChild('tus-server.mjs', [], { TFM_TUS: JSON.stringify({ root, dest, store: {} }) });
  children.push(running);
  const listening = await nextJson<{ event: string; port: number }>(running);
  expect(listening.event).toBe('listening');
  const events: { event: string; id?: string }[] = [];
  void (async () => {
    for (let line = await running.lines.next(); !line.done; line = await running.lines.next()) events.push(JSON.parse(line.value) as { event: string });
  })();
  return { url: `http://127.0.0.1:${listening.port}/files`, events };
}

const idOf = (url: string): string => url.slice(url.lastIndexOf('/') + 1);

/** An upload of `length` bytes made through `url`, its first `written` bytes PATCHed there. */
async function started(url: string, length: number, written: number): Promise<string> {
  const upload = await createUpload(url, length);
  const answer = await tusRequest(upload, 'PATCH', patchHeaders(0, written), randomBytes(written));
  expect(answer.status, answer.body).toBe(204);
  return upload;
}

describe("the tus store's bytes in maxLiveBytes: counted while on disk, and only then", () => {
  it('finished here: back to 0', async () => {
    const mgr = manager();
    const { url } = await serve(mgr, { onUploadFinish: (file) => file.keep(path.join(scratchDir(), 'kept')) });
    const upload = await started(url, 200_000, 100_000);
    expect(mgr.stats().liveBytes).toBe(100_000);
    expect((await tusRequest(upload, 'PATCH', patchHeaders(100_000, 100_000), randomBytes(100_000))).status).toBe(204);
    expect(mgr.stats().liveBytes).toBe(0);
  });

  it('finished by another server process on the root: back to 0 here, and the quota takes a new upload', async () => {
    const mgr = manager({ maxLiveBytes: 150_000 });
    const dest = scratchDir();
    const { url } = await serve(mgr);
    const other = await otherProcess(mgr.root, dest);
    const upload = await started(url, 200_000, 100_000);
    expect(mgr.stats().liveBytes).toBe(100_000);
    const there = `${other.url}/${idOf(upload)}`;
    const answer = await tusRequest(there, 'PATCH', patchHeaders(100_000, 100_000), randomBytes(100_000));
    expect(answer.status, answer.body).toBe(204);
    expect(other.events.some((e) => e.event === 'finished' && e.id === idOf(upload))).toBe(true);
    // The next upload first: the quota reconciles before it refuses, not only when stats() reads it.
    const next = await createUpload(url, 200_000);
    expect((await tusRequest(next, 'PATCH', patchHeaders(0, 140_000), randomBytes(140_000))).status).toBe(204);
    expect(mgr.stats().liveBytes).toBe(140_000);
    expect((await tusRequest(next, 'DELETE', {})).status).toBe(204);
    expect(mgr.stats().liveBytes).toBe(0);
  });

  it('terminated, here or by another server process: back to 0', async () => {
    const mgr = manager();
    const { url } = await serve(mgr);
    const other = await otherProcess(mgr.root, scratchDir());
    const here = await started(url, 200_000, 100_000);
    const there = await started(url, 200_000, 50_000);
    expect(mgr.stats().liveBytes).toBe(150_000);
    expect((await tusRequest(here, 'DELETE', {})).status).toBe(204);
    expect(mgr.stats().liveBytes).toBe(50_000);
    expect((await tusRequest(`${other.url}/${idOf(there)}`, 'DELETE', {})).status).toBe(204);
    expect(mgr.stats().liveBytes).toBe(0);
  });

  it("expired and removed by deleteExpired(), this store's or another's on the root: back to 0", async () => {
    const mgr = manager();
    const { url, server } = await serve(mgr, { expirationMs: 1000 });
    const first = await started(url, 200_000, 100_000);
    await untilExpired(uploadDirOf(mgr.root, first));
    expect(await server.cleanUpExpiredUploads()).toBe(1);
    expect(mgr.stats().liveBytes).toBe(0);

    const second = await started(url, 200_000, 70_000);
    const elsewhere = await serve(manager({ root: mgr.root }), { expirationMs: 1000 });
    await untilExpired(uploadDirOf(mgr.root, second));
    expect(await elsewhere.server.cleanUpExpiredUploads()).toBe(1);
    expect(mgr.stats().liveBytes).toBe(0);
  });

  it("swept by mgr.sweep(): back to 0, and every later upload is taken again, not a 507", async () => {
    const mgr = manager({ maxLiveBytes: 1024 * 1024 });
    const short = await serve(mgr, { expirationMs: 1000 });
    const long = await serve(mgr);
    const abandoned = await started(short.url, 1024 * 1024, 1_000_000);
    expect(mgr.stats().liveBytes).toBe(1_000_000);
    await untilExpired(uploadDirOf(mgr.root, abandoned));
    expect(await mgr.sweep()).toMatchObject({ tusUploadsRemoved: 1, errors: [] });
    // No stats() first: the refusal itself looks at the disk.
    const next = await createUpload(long.url, 1_000_000);
    const answer = await tusRequest(next, 'PATCH', patchHeaders(0, 1_000_000), randomBytes(1_000_000));
    expect(answer.status, answer.body).toBe(204);
    expect(mgr.stats().liveBytes).toBe(0);
  });

  it('swept by the CLI in another process: back to 0', async () => {
    const mgr = manager();
    const { url } = await serve(mgr, { expirationMs: 1000 });
    const abandoned = await started(url, 200_000, 120_000);
    expect(mgr.stats().liveBytes).toBe(120_000);
    await untilExpired(uploadDirOf(mgr.root, abandoned));
    const { stdout } = await promisify(execFile)(process.execPath, [cli, 'sweep', '--root', mgr.root, '--json']);
    expect(JSON.parse(stdout)).toMatchObject({ tusUploadsRemoved: 1, errors: [] });
    expect(mgr.stats().liveBytes).toBe(0);
  });

  it('an upload still on disk stays counted through every look: the quota is not freed by a sweep that left it', async () => {
    const mgr = manager({ maxLiveBytes: 150_000 });
    const { url } = await serve(mgr);
    await started(url, 200_000, 100_000);
    expect(await mgr.sweep()).toMatchObject({ tusUploadsRemoved: 0, errors: [] });
    expect(mgr.stats().liveBytes).toBe(100_000);
    const next = await createUpload(url, 100_000);
    expect((await tusRequest(next, 'PATCH', patchHeaders(0, 100_000), randomBytes(100_000))).status).toBe(507);
    expect(mgr.stats().liveBytes).toBeLessThanOrEqual(150_000);
  });
});
