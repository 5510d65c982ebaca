// Each request of the store is bounded by timeoutMs even after a garbage collection: a store that
// accepts connections and never answers (a gateway stopped, a black-holed link) must fail the
// request, never hold it forever. A real S3Client against a TCP server that never answers.
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreIo } from '../../src/s3/io.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const TIMEOUT_MS = 500;
// A hang, not a speed: twenty times the bound of one request (maxAttempts is 1).
const BOUND_MS = 20 * TIMEOUT_MS;
const MiB = 1024 * 1024;

let silent: net.Server;
const sockets: net.Socket[] = [];
let endpoint: string;

beforeAll(async () => {
  silent = net.createServer((socket) => {
    sockets.push(socket);
    socket.resume(); // takes the bytes, never answers
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
});

function silentIo(): StoreIo {
  return ioAt(endpoint, 1);
}

function ioAt(at: string, maxAttempts: number): StoreIo {
  const client = new S3Client({
    endpoint: at,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'TFMTESTACCESSKEY0001', secretAccessKey: 'not-a-credential' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts,
  });
  return new StoreIo(client, 'tfm-silent', '', TIMEOUT_MS, 5 * MiB);
}

/** How `request` settled, or `'hung'` once BOUND_MS passed; a collection runs while it waits. */
async function settledAfterGc(request: Promise<unknown>): Promise<{ error: unknown } | { value: unknown } | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), BOUND_MS)));
  setTimeout(gc, TIMEOUT_MS / 5); // the request is under way, its timer not yet due
  try {
    return await Promise.race([request.then((value) => ({ value }), (error: unknown) => ({ error })), bound]);
  } finally {
    clearTimeout(timer);
  }
}

describe('a store that never answers, with a garbage collection during the request', () => {
  it("a part of a stream's upload (UploadPart) fails within its timeoutMs", async () => {
    const io = silentIo();
    const outcome = await settledAfterGc(io.uploadPart('k/data', 'upload-id', 2, Buffer.alloc(5 * MiB), new AbortController().signal));
    expect(outcome, 'UploadPart to a silent store never settled').not.toBe('hung');
    expect(outcome).toHaveProperty('error');
    expect(await io.failure((outcome as { error: unknown }).error, 'send a part')).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'unreachable' });
  });

  it("a file's upload (lib-storage, each request bounded) fails within its timeoutMs", async () => {
    const io = silentIo();
    const outcome = await settledAfterGc(io.upload('k/data', Readable.from([Buffer.alloc(6 * MiB)]), {}));
    expect(outcome, 'the upload to a silent store never settled').not.toBe('hung');
    expect(outcome).toHaveProperty('error');
  });

  it('a small request (PutObject) fails within its timeoutMs', async () => {
    const io = silentIo();
    const outcome = await settledAfterGc(io.putPlain('k/uploading', '{}'));
    expect(outcome, 'PutObject to a silent store never settled').not.toBe('hung');
    expect(outcome).toHaveProperty('error');
  });
});

// docs/s3.md's bound on an upload straight to the bucket counts each request once, whatever the
// client's maxAttempts: the client's retries (and their waits, up to 20 s each) run inside the
// request's timeoutMs, which ends them.
describe("the client's retries run inside timeoutMs", () => {
  it('UploadPart to an endpoint that refuses every connection, the client allowed 20 attempts: fails by its timeoutMs, never hangs', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const io = ioAt(`http://127.0.0.1:${port}`, 20);
    const outcome = await settledAfterGc(io.uploadPart('k/data', 'upload-id', 2, Buffer.alloc(MiB), new AbortController().signal));
    expect(outcome, 'UploadPart to a refusing store never settled').not.toBe('hung');
    expect(outcome).toHaveProperty('error');
    // Ended by the timeout, not by the client running out of attempts (ECONNREFUSED).
    expect((await io.failure((outcome as { error: unknown }).error, 'send a part')).message).toContain(`no answer within ${TIMEOUT_MS} ms`);
  });
});

// The other side of the bound: a request that was answered stops its timer. Left pending, each
// timer held about 1 KiB for the whole timeoutMs (30 s by default): 30 MiB at 1,000 requests a
// second. A real S3Client against a server that answers each HEAD with a 404 at once.
describe('a store that answers', () => {
  it('keeps no timer of the requests it answered: 3,000 HEADs leave no 1 KiB each behind', async () => {
    const answering = http.createServer((req, res) => {
      req.resume();
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((resolve) => answering.listen(0, '127.0.0.1', resolve));
    const client = new S3Client({
      endpoint: `http://127.0.0.1:${(answering.address() as net.AddressInfo).port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'TFMTESTACCESSKEY0001', secretAccessKey: 'not-a-credential' },
      maxAttempts: 1,
    });
    const io = new StoreIo(client, 'tfm-answering', '', 600_000, 5 * MiB);
    const heap = async (): Promise<number> => {
      for (let i = 0; i < 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        gc();
      }
      return process.memoryUsage().heapUsed;
    };
    try {
      for (let i = 0; i < 200; i++) expect(await io.head(`k/${i}`)).toBeUndefined(); // the client's own caches made
      const before = await heap();
      for (let i = 0; i < 3000; i++) await io.head(`k/${i}`);
      const grown = (await heap()) - before;
      // With each timer left pending: 4.4 MB (the timers about 3 of it); with each stopped: 1.2 to 1.4 MB.
      expect(grown).toBeLessThan(2.5 * 1024 * 1024);
    } finally {
      client.destroy();
      await new Promise((resolve) => answering.close(resolve));
    }
    // 18 s on a machine where a request took 6 ms, beside CI's own load: what it promises is memory,
    // not time, and a loaded machine's HTTP may be slower still.
  }, 300_000);
});
