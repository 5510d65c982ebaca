// Every error the claim path through an object store can raise (tempfile-manager/s3: claim(), the
// claim's steps, withClaim()), against a real S3 server (Ceph RGW): each is built for real, or
// with one answer of the store changed by a hook on the claimer's client. None holds a ticket's
// id, the bearer secret of a handoff: not in its message, its stack, its fields or its causes'
// (the SDK's own errors, which may quote a key, included), nor does any message or span the
// diagnostics channels publish meanwhile. The handoff is named by its digest (docs/observability.md).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { handoffKey } from '../../src/base/channels.js';
import type { ClaimedFile, HandoffTicket, TempFileManager, TempFileManagerOptions } from '../../src/index.js';
import { s3Store, type S3Store } from '../../src/s3/index.js';
import { errorText, onEverything } from '../helpers/observed.js';
import { bucketFor, clientFor, needsS3, separateHosts, server, type RgwState } from './server.js';

const STALE_MS = 2000;
const { manager } = separateHosts('claim-msg', STALE_MS);

let state: RgwState;
let admin: S3Client;
let bucket: string;
const prefix = `claim-msg-${randomBytes(4).toString('hex')}/`;

beforeAll(async () => {
  const found = await server();
  if (!('state' in found)) return;
  state = found.state;
  admin = clientFor(state);
  bucket = await bucketFor(admin, 'tfm-claim-messages');
});

/** What a hook sees of a request; `send()` sends it and resolves with the SDK's `{ output, response }`. */
interface Request {
  readonly command: string;
  readonly key: string;
  readonly input: { IfMatch?: string; IfNoneMatch?: string; Body?: unknown };
  send(): Promise<{ output: Record<string, unknown> }>;
}
type Hook = (request: Request) => Promise<unknown>;

interface Host {
  hook: Hook | undefined;
  readonly store: S3Store;
  readonly mgr: TempFileManager;
}

const open: TempFileManager[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((mgr) => mgr.close().catch(() => {})));
});

/** A claimer: its own client, whose requests go through `hook` when one is set, its store and its manager. */
function host(options: { timeoutMs?: number; client?: S3Client; bucket?: string; manager?: TempFileManagerOptions } = {}): Host {
  const client = options.client ?? clientFor(state, { maxAttempts: 1 });
  const store = s3Store({ client, bucket: options.bucket ?? bucket, prefix, ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }) });
  const self: Host = { hook: undefined, store, mgr: manager([store], options.manager) };
  open.push(self.mgr);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Request['input'] & { Key?: string };
      const request: Request = { command: String(context.commandName).replace(/Command$/, ''), key: input.Key ?? '', input, send: () => next(args) as Promise<unknown> as Promise<{ output: Record<string, unknown> }> };
      return (self.hook ? self.hook(request) : request.send()) as ReturnType<typeof next>;
    },
    { step: 'initialize', name: 'claimMessagesHook' },
  );
  return self;
}

/** Every ticket id made in this file: none may show in any error or message. */
const ids = new Set<string>();

async function handOff(size = 4096, meta?: { job: number }): Promise<HandoffTicket> {
  const sender = manager();
  open.push(sender);
  const store = s3Store({ client: admin, bucket, prefix });
  const ticket = await (await sender.write(randomBytes(size), { suffix: '.bin' })).handoff({ ttlMs: 600_000, store, ...(meta && { meta }) });
  ids.add(ticket.id);
  return JSON.parse(JSON.stringify(ticket)) as HandoffTicket;
}

const dataKey = (ticket: HandoffTicket): string => `${prefix}${ticket.id}.${ticket.expiresAt}/data`;
const leaseKey = (ticket: HandoffTicket): string => `${prefix}${ticket.id}.${ticket.expiresAt}/lease`;
const isLeaseWrite = (r: Request, condition: 'create' | 'replace'): boolean =>
  r.command === 'PutObject' && r.key.endsWith('/lease') && (condition === 'create' ? r.input.IfNoneMatch === '*' : r.input.IfMatch !== undefined);
const isDataRead = (r: Request): boolean => r.command === 'GetObject' && /\/data(\.[0-9a-f]{16})?$/.test(r.key);

/** A failed answer as the SDK throws it; its message quotes the request's key, as a store's may. */
function answered(status: number, name: string, key: string): Error {
  return Object.assign(new Error(`${name}: ${key}`), { name, $metadata: { httpStatusCode: status } });
}
/** A connection lost before the answer. */
function cutOff(key: string): Error {
  return Object.assign(new Error(`socket hang up (${key})`), { code: 'ECONNRESET' });
}

/** The error `work` rejects with; a test fails if it resolves. */
async function refusal(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  throw new Error('expected a refusal');
}

/** A claimer's claim of `ticket`, once its lease is free or stale; the refusals met meanwhile in `met`. */
async function claimWhenFree(mgr: TempFileManager, ticket: HandoffTicket, met: unknown[]): Promise<ClaimedFile> {
  for (;;) {
    try {
      return await mgr.claim(ticket);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_TEMPFILE_ALREADY_CLAIMED') throw error;
      if (met.length === 0) met.push(error);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** An error's code, with a StoreError's reason; the message of an error that is not the library's. */
const codeOf = (error: unknown): string => {
  const { code, reason, message } = error as { code?: string; reason?: string; message?: string };
  if (code === undefined) return String(message);
  return reason === undefined ? code : `${code} ${reason}`;
};

/** Every code (and a StoreError's reason) built by the cases below. */
const built = new Set<string>();

/**
 * A case: `build` raises some errors of the claim path; each must have the code expected, and
 * neither they nor anything published on a channel meanwhile may hold a ticket's id.
 */
function claimCase(name: string, expected: readonly string[], build: () => Promise<unknown[]>, timeout = 30_000): void {
  it(name, async (ctx) => {
    await needsS3(ctx);
    const heard: unknown[] = [];
    onEverything((message) => heard.push(message));
    const errors = await build();
    expect(errors.map(codeOf)).toEqual(expected);
    for (const error of errors) {
      built.add(codeOf(error));
      const text = errorText(error);
      for (const id of ids) expect(text, codeOf(error)).not.toContain(id);
    }
    const published = errorText(heard);
    for (const id of ids) expect(published, 'a channel message or span').not.toContain(id);
  }, timeout);
}

describe('the claim, refused before the store is asked', () => {
  claimCase('a garbled ticket, bad options, a bad callback, an expired ticket, a closed manager', [
    'ERR_TEMPFILE_BAD_TICKET',
    'ERR_TEMPFILE_INVALID_OPTION',
    'ERR_TEMPFILE_INVALID_OPTION',
    'ERR_TEMPFILE_HANDOFF_EXPIRED',
    'ERR_TEMPFILE_MANAGER_CLOSED',
  ], async () => {
    const ticket = await handOff();
    const { mgr } = host();
    const errors = [
      await refusal(mgr.claim(JSON.stringify(ticket).slice(0, -3))),
      await refusal(mgr.claim(ticket, { verifyDigest: 'yes' } as never)),
      await refusal(mgr.withClaim(ticket, 'the job' as never)),
      await refusal(mgr.claim({ ...ticket, createdAt: Date.now() - 2000, expiresAt: Date.now() - 1000 })),
    ];
    await mgr.close();
    errors.push(await refusal(mgr.claim(ticket)));
    return errors;
  });

  claimCase('a manager given no store for the ticket names the handoff by its digest', ['ERR_TEMPFILE_STORE not-configured'], async () => {
    const ticket = await handOff();
    const bare = manager();
    open.push(bare);
    const error = await refusal(bare.claim(ticket));
    expect((error as Error).message).toContain(handoffKey(ticket.id));
    return [error];
  });
});

describe('the entry, as the store holds it', () => {
  claimCase('held by a live claimer; taken over once stale; the holder taken over refused at each step', [
    'ERR_TEMPFILE_ALREADY_CLAIMED',
    'ERR_TEMPFILE_LEASE_LOST',
    'ERR_TEMPFILE_LEASE_LOST',
    'ERR_TEMPFILE_LEASE_LOST',
    'ERR_TEMPFILE_LEASE_LOST',
  ], async () => {
    const ticket = await handOff();
    const [a, b] = [host(), host()];
    const held = await a.mgr.claim(ticket);
    // Cut off from the store, A's beats are lost: its lease goes stale, and B takes it over.
    a.hook = async (r) => {
      if (isLeaseWrite(r, 'replace')) throw cutOff(r.key);
      return r.send();
    };
    const met: unknown[] = [];
    const taken = await claimWhenFree(b.mgr, ticket, met);
    a.hook = undefined;
    const destination = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-s3-kept-')), 'kept.bin');
    const errors = [...met, await refusal(held.consume()), await refusal(held.consume()), await refusal(held.release()), await refusal(held.keep(destination))];
    fs.rmSync(path.dirname(destination), { recursive: true, force: true });
    await taken.consume();
    return errors;
  });

  claimCase('consumed (a redelivered ticket, claimed and in withClaim), forged, and its data gone under a released lease', [
    'ERR_TEMPFILE_HANDOFF_NOT_FOUND',
    'ERR_TEMPFILE_HANDOFF_NOT_FOUND',
    'ERR_TEMPFILE_HANDOFF_NOT_FOUND',
    'ERR_TEMPFILE_HANDOFF_NOT_FOUND',
  ], async () => {
    const [consumed, released] = [await handOff(), await handOff()];
    const { mgr } = host();
    await mgr.withClaim(consumed, () => {});
    const forged = { ...consumed, id: randomBytes(16).toString('hex') };
    ids.add(forged.id);
    await (await mgr.claim(released)).release();
    await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: dataKey(released) }));
    return [await refusal(mgr.claim(consumed)), await refusal(mgr.withClaim(consumed, () => {})), await refusal(mgr.claim(forged)), await refusal(mgr.claim(released))];
  });

  claimCase('not the bytes of its ticket: too few, too many, another digest, another meta', [
    'ERR_TEMPFILE_HANDOFF_MISMATCH',
    'ERR_TEMPFILE_HANDOFF_MISMATCH',
    'ERR_TEMPFILE_HANDOFF_MISMATCH',
    'ERR_TEMPFILE_HANDOFF_MISMATCH',
  ], async () => {
    const ticket = await handOff(4096, { job: 1 });
    const { mgr } = host();
    const errors = [];
    for (const changed of [{ size: ticket.size + 1 }, { size: ticket.size - 1 }, { digest: `sha256:${'0'.repeat(64)}` }, { meta: { job: 2 } }]) {
      errors.push(await refusal(mgr.claim({ ...ticket, ...changed })));
    }
    await mgr.withClaim(ticket, () => {}); // given back untouched each time
    return errors;
  });

  claimCase("a download over the claimer's maxLiveBytes", ['ERR_TEMPFILE_QUOTA_EXCEEDED'], async () => {
    const ticket = await handOff();
    const { mgr } = host({ manager: { maxLiveBytes: 1000 } });
    return [await refusal(mgr.claim(ticket))];
  });
});

describe('the store failing the claim', () => {
  claimCase('credentials refused, no such bucket, a refused connection, a store that never answers', [
    'ERR_TEMPFILE_STORE denied',
    'ERR_TEMPFILE_STORE no-bucket',
    'ERR_TEMPFILE_STORE unreachable',
    'ERR_TEMPFILE_STORE unreachable',
  ], async () => {
    const ticket = await handOff();
    const wrong = new S3Client({
      endpoint: state.endpoint,
      region: state.region,
      forcePathStyle: true,
      credentials: { accessKeyId: 'TFMWRONGACCESSKEY001', secretAccessKey: `wrong-${randomBytes(12).toString('hex')}` },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      maxAttempts: 1,
    });
    const noBucket = `tfm-no-such-bucket-${randomBytes(4).toString('hex')}`;
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const sockets: net.Socket[] = [];
    silent.on('connection', (socket) => sockets.push(socket));
    try {
      const { port } = silent.address() as net.AddressInfo;
      return [
        await refusal(host({ client: wrong }).mgr.claim(ticket)),
        await refusal(host({ bucket: noBucket }).mgr.claim({ ...ticket, store: { kind: 's3', bucket: noBucket, prefix } })),
        await refusal(host({ client: clientFor(state, { endpoint: 'http://127.0.0.1:9', maxAttempts: 1 }) }).mgr.claim(ticket)),
        await refusal(host({ client: clientFor(state, { endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1 }), timeoutMs: 300 }).mgr.claim(ticket)),
      ];
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  claimCase('the lease answered 500; the data answered 500, as no stream, cut mid-body, stalled', [
    'ERR_TEMPFILE_STORE failed',
    'ERR_TEMPFILE_STORE failed',
    'ERR_TEMPFILE_STORE failed',
    'ERR_TEMPFILE_STORE unreachable',
    'ERR_TEMPFILE_STORE unreachable',
  ], async () => {
    const ticket = await handOff(256 * 1024);
    const claimer = host({ timeoutMs: 500 });
    const faults: Hook[] = [
      async (r) => (isLeaseWrite(r, 'create') ? Promise.reject(answered(500, 'InternalError', r.key)) : r.send()),
      async (r) => (isDataRead(r) ? Promise.reject(answered(500, 'InternalError', r.key)) : r.send()),
      async (r) => {
        const answer = await r.send();
        if (!isDataRead(r)) return answer;
        (answer.output.Body as Readable).destroy();
        return { ...answer, output: { ...answer.output, Body: `the bytes of ${r.key}` } };
      },
      async (r) => {
        const answer = await r.send();
        if (!isDataRead(r)) return answer;
        const body = answer.output.Body as Readable;
        return { ...answer, output: { ...answer.output, Body: cutAfterFirstChunk(body, cutOff(r.key)) } };
      },
      async (r) => {
        const answer = await r.send();
        if (!isDataRead(r)) return answer;
        (answer.output.Body as Readable).destroy();
        return { ...answer, output: { ...answer.output, Body: new Readable({ read() {} }) } }; // no byte, ever
      },
    ];
    const errors = [];
    for (const fault of faults) {
      claimer.hook = fault;
      errors.push(await refusal(claimer.mgr.claim(ticket)));
      claimer.hook = undefined;
      // A lease the fault left (its create landed) is given back, or goes stale: the next fault starts on a free entry.
      await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: leaseKey(ticket) }));
    }
    return errors;
  }, 60_000);

  claimCase('a manager closed while its claim waits for the lease', ['ERR_TEMPFILE_MANAGER_CLOSED'], async () => {
    const ticket = await handOff();
    const claimer = host();
    let closing: Promise<void> | undefined;
    claimer.hook = async (r) => {
      if (isLeaseWrite(r, 'create')) await (closing ??= claimer.mgr.close());
      return r.send();
    };
    return [await refusal(claimer.mgr.claim(ticket))];
  });
});

describe("the claim's steps", () => {
  claimCase('consume, release and keep answered 500, cut off, refused; withClaim whose consume fails, or whose job and release fail; a consume answered without an ETag', [
    'ERR_TEMPFILE_STORE failed',
    'ERR_TEMPFILE_STORE unreachable',
    'ERR_TEMPFILE_STORE denied',
    'ERR_TEMPFILE_STORE failed',
    'the job failed',
    'ERR_TEMPFILE_STORE failed',
  ], async () => {
    const [ticket, job, second] = [await handOff(), await handOff(), await handOff()];
    const claimer = host();
    const failing = (step: string, error: (key: string) => Error): Hook => async (r) =>
      isLeaseWrite(r, 'replace') && String(r.input.Body).includes(`"state":"${step}"`) ? Promise.reject(error(r.key)) : r.send();
    const claimed = await claimer.mgr.claim(ticket);
    const errors: unknown[] = [];
    claimer.hook = failing('consumed', (key) => answered(500, 'InternalError', key));
    errors.push(await refusal(claimed.consume()));
    claimer.hook = failing('released', cutOff);
    errors.push(await refusal(claimed.release()));
    claimer.hook = failing('held', (key) => answered(403, 'AccessDenied', key));
    errors.push(await refusal(claimed.keep(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-s3-kept-')), 'kept.bin'))));
    claimer.hook = undefined;
    await claimed.release();
    claimer.hook = failing('consumed', (key) => answered(500, 'InternalError', key));
    errors.push(await refusal(claimer.mgr.withClaim(ticket, () => {})));
    // A fresh entry: the consume that failed above deleted its data (a retry gets HandoffNotFoundError).
    claimer.hook = failing('released', (key) => answered(500, 'InternalError', key));
    const failed = await refusal(claimer.mgr.withClaim(job, () => Promise.reject(new Error('the job failed'))));
    expect(codeOf((failed as { releaseError?: unknown }).releaseError)).toBe('ERR_TEMPFILE_STORE failed');
    errors.push(failed);
    claimer.hook = undefined;
    const unanswered = await claimer.mgr.claim(second);
    claimer.hook = async (r) => {
      const answer = await r.send();
      return isLeaseWrite(r, 'replace') ? { ...answer, output: { ...answer.output, ETag: undefined } } : answer;
    };
    errors.push(await refusal(unanswered.consume()));
    claimer.hook = undefined;
    return errors;
  });

  claimCase('a sync step, a keep after the consume, a keep onto a name taken, a store that ignores If-None-Match', [
    'ERR_TEMPFILE_STORE sync',
    'ERR_TEMPFILE_DESTINATION_EXISTS',
    'ERR_TEMPFILE_DISPOSED',
    'ERR_TEMPFILE_STORE failed',
  ], async () => {
    const [ticket, second] = [await handOff(), await handOff()];
    const { mgr } = host();
    const claimed = await mgr.claim(ticket);
    const taken = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-s3-kept-')), 'taken.bin');
    fs.writeFileSync(taken, 'the app\'s own file');
    const errors = [await refusal(Promise.resolve().then(() => claimed.consumeSync())), await refusal(claimed.keep(taken))];
    await claimed.consume();
    errors.push(await refusal(claimed.keep(taken)));
    fs.rmSync(path.dirname(taken), { recursive: true, force: true });
    // A fresh store probes how the store compares ETags at its first conditional replace: here, a release.
    const careless = host();
    careless.hook = async (r) =>
      r.command === 'PutObject' && r.key.includes('.if-match-probe-') && String(r.input.Body) === 'probe again' ? { output: { ETag: '"again"', $metadata: {} }, response: {} } : r.send();
    const held = await careless.mgr.claim(second);
    errors.push(await refusal(held.release()));
    careless.hook = undefined;
    return errors;
  });
});

it('the cases above built every error the claim path through a store raises', async (ctx) => {
  await needsS3(ctx);
  expect([...built].sort()).toEqual(
    [
      'ERR_TEMPFILE_ALREADY_CLAIMED',
      'ERR_TEMPFILE_BAD_TICKET',
      'ERR_TEMPFILE_DESTINATION_EXISTS',
      'ERR_TEMPFILE_DISPOSED',
      'ERR_TEMPFILE_HANDOFF_EXPIRED',
      'ERR_TEMPFILE_HANDOFF_MISMATCH',
      'ERR_TEMPFILE_HANDOFF_NOT_FOUND',
      'ERR_TEMPFILE_INVALID_OPTION',
      'ERR_TEMPFILE_LEASE_LOST',
      'ERR_TEMPFILE_MANAGER_CLOSED',
      'ERR_TEMPFILE_QUOTA_EXCEEDED',
      'ERR_TEMPFILE_STORE denied',
      'ERR_TEMPFILE_STORE failed',
      'ERR_TEMPFILE_STORE no-bucket',
      'ERR_TEMPFILE_STORE not-configured',
      'ERR_TEMPFILE_STORE sync',
      'ERR_TEMPFILE_STORE unreachable',
      'the job failed',
    ].sort(),
  );
});

/** `body`'s first chunk, then `error`, as a connection lost mid-body. */
function cutAfterFirstChunk(body: Readable, error: Error): Readable {
  return Readable.from(
    (async function* () {
      for await (const chunk of body) {
        yield chunk as Buffer;
        body.destroy();
        throw error;
      }
    })(),
  );
}
