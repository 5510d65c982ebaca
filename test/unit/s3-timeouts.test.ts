// Each request of the store is bounded by timeoutMs even after a garbage collection: a store that
// accepts connections and never answers (a gateway stopped, a black-holed link) must fail the
// request, never hold it forever. A real S3Client against a TCP server that never answers.
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
