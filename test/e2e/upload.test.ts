// The upload examples end to end: each server runs in a child process of its own (its memory and
// file descriptors are then its own) and is driven over real HTTP.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  finishedJob,
  GeneratedUpload,
  getJson,
  leftovers,
  MiB,
  openFds,
  post,
  rawBody,
  settledFds,
  startExample,
  until,
  type ExampleServer,
  type PostOptions,
} from './upload-helpers.js';

type Example = 'express-upload' | 'fastify-upload';
const B = 'AaB03x';

/** A file part, written out by hand (`rawBody` turns the \n into CRLF). */
const filePart = (name: string, filename: string, data = 'data') =>
  `--${B}\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\nContent-Type: application/octet-stream\n\n${data}\n`;

// The inputs behind multer's 2025-2026 advisories (crashes on malformed bodies, empty field
// names, a truncated body after filename="", leaks on dropped connections, many parts), and the
// status each example answers. Where the two differ, it is their parsers that do.
const hostile: { name: string; request: (server: ExampleServer) => PostOptions; status: Record<Example, number> }[] = [
  {
    // busboy refuses the part (both adapters read forms with it).
    name: 'a part header without a colon',
    request: () => rawBody(B, `--${B}\nContent-Disposition: form-data; name="file"; filename="a.txt"\nnot a header\n\ndata\n--${B}--\n`),
    status: { 'express-upload': 400, 'fastify-upload': 400 },
  },
  {
    name: 'a body that is not multipart at all',
    request: () => rawBody(B, 'x'.repeat(1000)),
    status: { 'express-upload': 400, 'fastify-upload': 400 },
  },
  {
    name: 'a multipart content type without a boundary',
    request: () => ({ ...rawBody(B, `--${B}--\n`), headers: { 'content-type': 'multipart/form-data', 'content-length': 10 } }),
    status: { 'express-upload': 400, 'fastify-upload': 400 },
  },
  {
    name: 'an empty field name',
    request: () => rawBody(B, `${filePart('', 'a.txt')}--${B}--\n`),
    status: { 'express-upload': 400, 'fastify-upload': 400 },
  },
  {
    name: 'filename="" and a truncated closing boundary',
    request: () => rawBody(B, `${filePart('file', '', 'some bytes')}--${B}`),
    status: { 'express-upload': 400, 'fastify-upload': 400 },
  },
  {
    name: 'a __proto__ field and a __proto__ file',
    request: () => rawBody(B, `--${B}\nContent-Disposition: form-data; name="__proto__"\n\n{"polluted":1}\n${filePart('__proto__', 'a.txt')}--${B}--\n`),
    status: { 'express-upload': 400, 'fastify-upload': 400 },
  },
  {
    // Both adapters keep fields in a null-prototype object: the name is a plain field.
    name: 'a __proto__ field beside the file',
    request: () => rawBody(B, `--${B}\nContent-Disposition: form-data; name="__proto__"\n\n{"polluted":1}\n${filePart('file', 'a.txt')}--${B}--\n`),
    status: { 'express-upload': 202, 'fastify-upload': 202 },
  },
  {
    name: 'a connection dropped mid-file',
    request: (server) => {
      const upload = new GeneratedUpload(6 * MiB);
      const partial = () => until(() => leftovers(server.root).length > 0, 'the partial file');
      return { headers: upload.headers, body: upload.chunks(), abortAfter: 3 * MiB, beforeAbort: partial };
    },
    status: { 'express-upload': 0, 'fastify-upload': 0 },
  },
  {
    name: '5000 tiny fields',
    request: () => rawBody(B, `${Array.from({ length: 5000 }, (_, i) => `--${B}\nContent-Disposition: form-data; name="f${i}"\n\nx\n`).join('')}--${B}--\n`),
    status: { 'express-upload': 413, 'fastify-upload': 413 },
  },
  {
    name: '5000 tiny files',
    request: () => rawBody(B, `${Array.from({ length: 5000 }, (_, i) => filePart('file', `f${i}.txt`, 'x')).join('')}--${B}--\n`),
    status: { 'express-upload': 413, 'fastify-upload': 413 },
  },
];

async function nothingLeft(server: ExampleServer): Promise<void> {
  await until(() => leftovers(server.root).length === 0, `no file under ${server.root}: ${leftovers(server.root).join(', ')}`);
}

async function stillServing(server: ExampleServer): Promise<void> {
  expect(server.child.exitCode, server.output.join('\n')).toBeNull();
  expect((await getJson(`${server.url}/stats`)).pid).toBe(server.pid);
}

describe.each<Example>(['express-upload', 'fastify-upload'])('%s', (example) => {
  let big: ExampleServer; // the default 1 GiB limit, jobs run at once
  let small: ExampleServer; // an 8 MiB limit, jobs wait 1 s in the queue
  let quota: ExampleServer; // a manager whose uploads in flight may hold 1 MiB in all
  let disk: ExampleServer; // a manager that must leave 1 PiB free on the disk
  beforeAll(async () => {
    [big, small, quota, disk] = await Promise.all([
      startExample(example, { JOB_DELAY_MS: 500 }),
      startExample(example, { MAX_BYTES: 8 * MiB, JOB_DELAY_MS: 1000 }),
      startExample(example, { MAX_LIVE_BYTES: MiB }),
      startExample(example, { MIN_FREE_BYTES: 2 ** 50 }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([big, small, quota, disk].map((server) => server?.stop()));
  });

  it('streams a 256 MiB upload in constant memory, and the worker gets every byte', async () => {
    // A small upload first, so that what is measured is the big one, not the server warming up.
    const warmUp = new GeneratedUpload(MiB);
    const warm = await post(big, { headers: warmUp.headers, body: warmUp.chunks() });
    expect(warm.status).toBe(202);
    await finishedJob(big, warm.body!.job as string);
    const before = (await getJson<{ maxRssBytes: number }>(`${big.url}/stats`)).maxRssBytes;

    const upload = new GeneratedUpload(256 * MiB);
    const reply = await post(big, { headers: upload.headers, body: upload.chunks() });
    expect(reply.status, JSON.stringify(reply.body)).toBe(202);
    // Sampled before the worker starts (JOB_DELAY_MS): the upload's own peak, not the worker's read.
    const after = (await getJson<{ maxRssBytes: number }>(`${big.url}/stats`)).maxRssBytes;
    const job = await finishedJob(big, reply.body!.job as string);
    expect(job).toMatchObject({ state: 'done', filename: 'upload.bin', result: { size: upload.size, sha256: upload.sha256, head: upload.head } });
    console.log(`${example}: 256 MiB upload, server peak RSS ${(before / MiB).toFixed(0)} -> ${(after / MiB).toFixed(0)} MiB`);
    // Constant memory: the upload's 256 MiB never sit in the process. What the peak does hold is
    // the sockets' 64 KiB read buffers, dead once written, until V8 collects them: it starts a
    // collection when such memory has grown by about 64 MiB (docs/uploads.md, "Where the extra
    // memory is now"), so the peak rises by up to that much and a little more, whatever the size.
    expect(after - before).toBeLessThan(96 * MiB);
    await nothingLeft(big);
  });

  it('leaves no file when the client aborts half-way', async () => {
    const fds = await settledFds(big.pid);
    const upload = new GeneratedUpload(64 * MiB);
    const partial = () => until(() => leftovers(big.root).length === 1, 'the partial file');
    const reply = await post(big, { headers: upload.headers, body: upload.chunks(), abortAfter: 32 * MiB, beforeAbort: partial });
    expect(reply.status).toBe(0);
    await nothingLeft(big);
    await until(() => openFds(big.pid) <= fds, `the server's descriptors back to ${fds}`);
    await stillServing(big);
  });

  it('answers 413 to an over-limit upload, and leaves no file', async () => {
    // The refused body is drained (at most 128 MiB more by default) so that every client gets its
    // answer, then the connection is closed: the client never sends the whole 512 MiB.
    const upload = new GeneratedUpload(512 * MiB);
    const reply = await post(small, { headers: upload.headers, body: upload.chunks() });
    expect(reply.status).toBe(413);
    // Refused from its head (its declared length cannot fit: UPLOAD_LIMIT) or once past maxBytes.
    expect(['ERR_TEMPFILE_UPLOAD_LIMIT', 'ERR_TEMPFILE_SIZE_LIMIT']).toContain((reply.body as { error: string }).error);
    const socketBuffers = 32 * MiB;
    expect(reply.sent, 'the server stopped reading past the drain bound').toBeLessThan(8 * MiB + 128 * MiB + socketBuffers);
    await nothingLeft(small);
    await stillServing(small);
  });

  it('answers 507 when the quota is used up or the disk would fill, and leaves no file', async () => {
    const overQuota = new GeneratedUpload(2 * MiB);
    const refused = await post(quota, { headers: overQuota.headers, body: overQuota.chunks() });
    expect(refused.status).toBe(507);
    expect(refused.headers).toMatchObject({ 'retry-after': expect.any(String) });
    expect(refused.body).toMatchObject({ error: 'ERR_TEMPFILE_QUOTA_EXCEEDED' });

    const noRoom = new GeneratedUpload(MiB);
    const full = await post(disk, { headers: noRoom.headers, body: noRoom.chunks() });
    expect(full.status).toBe(507);
    expect(full.body).toMatchObject({ error: 'ERR_TEMPFILE_NO_SPACE' });
    await Promise.all([nothingLeft(quota), nothingLeft(disk)]);
    await Promise.all([stillServing(quota), stillServing(disk)]);
  });

  it('a handed-off upload survives its request and is claimed by the worker', async () => {
    const upload = new GeneratedUpload(2 * MiB);
    const reply = await post(small, { headers: upload.headers, body: upload.chunks() });
    expect(reply.status).toBe(202);
    const id = reply.body!.job as string;
    // The request is over and its scope removed; the file waits in the handoff area for the worker.
    expect(await getJson(`${small.url}/jobs/${id}`)).toMatchObject({ state: 'queued' });
    expect(leftovers(small.root)).toEqual([expect.stringMatching(new RegExp(`^handoff/entry_${id}_[0-9a-z]+_[0-9a-f]{32}$`)), expect.stringMatching(/\/data\.bin$/)]); // named by the client's extension (the bytes are of no known type)

    const job = await finishedJob(small, id);
    expect(job).toMatchObject({ state: 'done', filename: 'upload.bin', result: { size: upload.size, sha256: upload.sha256, head: upload.head } });
    await nothingLeft(small);
  });

  for (const { name, request, status } of hostile) {
    it(`survives ${name}: no crash, no leaked descriptor, no file left`, async () => {
      const fds = await settledFds(small.pid);
      const reply = await post(small, request(small));
      expect(reply.status, JSON.stringify(reply.body ?? reply.error?.message)).toBe(status[example]);
      if (reply.status === 202) await finishedJob(small, reply.body!.job as string);
      await nothingLeft(small);
      await until(() => openFds(small.pid) <= fds, `the server's descriptors back to ${fds}`);
      await stillServing(small);
    });
  }
});

describe('the examples’ own end-to-end checks', () => {
  it.each<Example>(['express-upload', 'fastify-upload'])('examples/%s/check.mjs passes', async (example) => {
    const check = path.join(import.meta.dirname, '../../examples', example, 'check.mjs');
    const { stdout } = await promisify(execFile)(process.execPath, [check], { timeout: 60_000 });
    expect(stdout).toContain('check passed');
  });
});
