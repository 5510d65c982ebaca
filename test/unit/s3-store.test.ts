// The store's own logic with a scripted client: the If-Match form probe, a lease write whose
// answer was lost, and the typed errors. Not instead of the real server (test/s3/), which runs
// the same code against Ceph RGW: these pin what a gateway rarely does on cue.
import diagnostics_channel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { S3Client } from '@aws-sdk/client-s3';
import { StoreIo } from '../../src/s3/io.js';
import { StoreLease } from '../../src/object-store/lease.js';
import { fetchAheadWindow, LEASE_REMOVAL_DELAY_MS } from '../../src/object-store/fetch-ahead.js';
import { LeaseLostError, StoreError } from '../../src/base/errors.js';
import { CHANNELS, handoffKey } from '../../src/base/channels.js';
const KEYS = { entry: 'p/e/', data: 'p/e/data', lease: 'p/e/lease' };

interface Sent {
  readonly name: string;
  readonly input: Record<string, unknown>;
}

type Answer = (sent: Sent, objects: Map<string, { body: string; etag: string }>) => unknown;

/** An S3 client that keeps objects in memory and honours conditions, with an override per call. */
function fakeClient(options: { quotedIfMatch: boolean; override?: Answer }): { client: S3Client; sent: Sent[]; objects: Map<string, { body: string; etag: string }> } {
  const objects = new Map<string, { body: string; etag: string }>();
  const sent: Sent[] = [];
  let version = 0;
  const failure = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
  const send = async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
    const call = { name: command.constructor.name, input: command.input };
    sent.push(call);
    const overridden = options.override?.(call, objects);
    if (overridden instanceof Error) throw overridden;
    if (overridden !== undefined) return overridden;
    const key = String(call.input.Key);
    const current = objects.get(key);
    switch (call.name) {
      case 'PutObjectCommand': {
        if (call.input.IfNoneMatch === '*' && current) throw failure('PreconditionFailed', 412);
        if (call.input.IfMatch !== undefined) {
          const given = String(call.input.IfMatch);
          const accepted = options.quotedIfMatch ? given === current?.etag : given === current?.etag.slice(1, -1);
          if (!accepted) throw failure('PreconditionFailed', 412);
        }
        const etag = `"e${++version}"`;
        objects.set(key, { body: String(call.input.Body), etag });
        return { ETag: etag };
      }
      case 'GetObjectCommand':
        if (!current) throw failure('NoSuchKey', 404);
        return { ETag: current.etag, Body: { transformToString: async () => current.body } };
      case 'DeleteObjectCommand':
        objects.delete(key);
        return {};
      case 'CopyObjectCommand': {
        const from = objects.get(String(call.input.CopySource).replace(/^[^/]*\//, ''));
        if (!from) throw failure('NoSuchKey', 404);
        objects.set(key, { body: from.body, etag: `"e${++version}"` });
        return {};
      }
      default:
        throw new Error(`unexpected ${call.name}`);
    }
  };
  const config = { endpoint: async () => ({ protocol: 'http:', hostname: 'store.example', port: 9000, path: '/' }), region: async () => 'us-east-1' };
  return { client: { send, config } as unknown as S3Client, sent, objects };
}

/** A client whose next write of the lease, once armed, lands in the store and is answered with `failure()`. */
function nextLeaseWriteLandsThenFails(failure: () => Error): { client: S3Client; armed: { next: boolean } } {
  const armed = { next: false };
  const { client } = fakeClient({
    quotedIfMatch: true,
    override: (sent, objects) => {
      if (!armed.next || sent.name !== 'PutObjectCommand' || sent.input.Key !== 'p/e/lease') return undefined;
      armed.next = false;
      objects.set('p/e/lease', { body: String(sent.input.Body), etag: '"landed"' });
      return failure();
    },
  });
  return { client, armed };
}

describe('StoreIo', () => {
  for (const quoted of [true, false]) {
    it(`finds once which If-Match form the store compares (${quoted ? 'quoted, as AWS' : 'bare, as RGW 16'}) and uses it`, async () => {
      const { client, sent } = fakeClient({ quotedIfMatch: quoted });
      const io = new StoreIo(client, 'bucket', 'p/', 1000, 5 * 1024 * 1024);
      const first = await io.put('p/k', 'a', { create: true });
      const second = await io.put('p/k', 'b', { ifMatch: first });
      await io.put('p/k', 'c', { ifMatch: second });
      const probes = sent.filter((s) => String(s.input.Key).startsWith('p/.if-match-probe-'));
      expect(probes.filter((s) => s.name === 'PutObjectCommand').length).toBeLessThanOrEqual(4); // once, not per write
      expect(probes.at(-1)?.name).toBe('DeleteObjectCommand');
      const lastPut = sent.filter((s) => s.input.Key === 'p/k').at(-1)!;
      expect(String(lastPut.input.IfMatch).startsWith('"')).toBe(quoted);
    });
  }

  it('a store that ignores If-None-Match is refused: it could not hold a lease', async () => {
    const { client } = fakeClient({ quotedIfMatch: true, override: (s) => (s.name === 'PutObjectCommand' ? { ETag: '"same"' } : undefined) });
    const io = new StoreIo(client, 'bucket', 'p/', 1000, 5 * 1024 * 1024);
    await expect(io.put('p/k', 'a', { ifMatch: '"x"' })).rejects.toThrow(/ignores If-None-Match/);
  });

  it('failures are typed, name the endpoint and the bucket, and carry neither the SDK message nor its request', async () => {
    const { client } = fakeClient({ quotedIfMatch: true });
    const io = new StoreIo(client, 'bucket', 'p/', 1234, 5 * 1024 * 1024);
    const secret = 'AKIA-SECRET-IN-SDK-MESSAGE';
    const refused = await io.failure(Object.assign(new Error(`connect ECONNREFUSED ${secret}`), { code: 'ECONNREFUSED' }), 'claim x');
    expect(refused).toMatchObject({ code: 'ERR_TEMPFILE_STORE', reason: 'unreachable', endpoint: 'http://store.example:9000' });
    expect(refused.message).toContain('ECONNREFUSED');
    const timeout = await io.failure(Object.assign(new Error('aborted'), { name: 'TimeoutError' }), 'claim x');
    expect(timeout.message).toContain('1234 ms');
    const denied = await io.failure(Object.assign(new Error(`The request signature ${secret}`), { name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } }), 'claim x');
    expect(denied).toMatchObject({ reason: 'denied', httpStatus: 403, s3Code: 'SignatureDoesNotMatch', storeCode: 'SignatureDoesNotMatch' });
    const other = await io.failure(Object.assign(new Error(secret), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }), 'claim x');
    expect(other).toMatchObject({ reason: 'failed', httpStatus: 503 });
    for (const err of [refused, timeout, denied, other]) {
      expect(err).toBeInstanceOf(StoreError);
      expect(err.message).toContain('"bucket"');
      expect(`${err.message} ${JSON.stringify(err)} ${String(err.cause)}`).not.toContain(secret);
    }
  });
});

describe('StoreLease', () => {
  const rules = { staleMs: 2000, hostId: 'host' };

  it('a write whose answer was lost (it landed) is not taken for a takeover: the lease still names this holder', async () => {
    // The store takes the write, and the answer is lost on the way back.
    const { client, armed } = nextLeaseWriteLandsThenFails(() => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    const io = new StoreIo(client, 'bucket', 'p/', 1000, 5 * 1024 * 1024);
    const lease = await StoreLease.take(io, KEYS, 'e', rules);
    armed.next = true;
    await expect(lease.write('held')).rejects.toMatchObject({ kind: 'no-answer', networkCode: 'ECONNRESET' });
    await lease.write('held'); // refused on the old ETag, then found ours: goes on
    expect(lease.lost).toBe(false);
    await lease.write('released');
  });

  it('a takeover fences the old holder: its next write is LeaseLostError, and it writes nothing after', async () => {
    const { client, sent, objects } = fakeClient({ quotedIfMatch: true });
    objects.set('p/e/data', { body: 'bytes', etag: '"d"' });
    const io = new StoreIo(client, 'bucket', 'p/', 1000, 5 * 1024 * 1024);
    const lease = await StoreLease.take(io, KEYS, 'e', rules);
    await lease.write('released');
    const other = await StoreLease.take(io, KEYS, 'e', rules); // takes over the released lease
    expect(other.dataKey, 'a released lease is taken over onto a copy too').toMatch(/^p\/e\/data\.[0-9a-f]{16}$/);
    expect(objects.get(other.dataKey)?.body).toBe('bytes');
    expect(objects.has('p/e/data'), 'the old key goes with the takeover').toBe(false);
    await expect(lease.write('consumed')).rejects.toBeInstanceOf(LeaseLostError);
    const writes = sent.filter((s) => s.name === 'PutObjectCommand' && s.input.Key === 'p/e/lease').length;
    await expect(lease.write('consumed')).rejects.toBeInstanceOf(LeaseLostError);
    expect(sent.filter((s) => s.name === 'PutObjectCommand' && s.input.Key === 'p/e/lease').length).toBe(writes);
    await other.write('consumed');
  });

  it('a live holder is never written over: a second claimer is refused until the lease is released', async () => {
    const { client } = fakeClient({ quotedIfMatch: true });
    const io = new StoreIo(client, 'bucket', 'p/', 1000, 5 * 1024 * 1024);
    const lease = await StoreLease.take(io, KEYS, 'e', rules);
    await expect(StoreLease.take(io, KEYS, 'e', rules)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_ALREADY_CLAIMED' });
    await lease.write('consumed');
    await expect(StoreLease.take(io, KEYS, 'e', rules)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
  });

  // A lease is stale once its ETag was seen unchanged for staleMs: a first take records the
  // sighting and is refused, one after staleMs takes it over.
  const fast = { staleMs: 50, hostId: 'host' };
  async function takeOnceStale(io: StoreIo): Promise<StoreLease> {
    for (let tries = 0; ; tries++) {
      try {
        return await StoreLease.take(io, KEYS, 'e', fast);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_TEMPFILE_ALREADY_CLAIMED' || tries > 5) throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, 80));
    }
  }

  it('a stale holder is taken over onto a copy of the data, and its own key goes: the paused holder, resumed, deletes nothing the new one uses', async () => {
    const { client, objects } = fakeClient({ quotedIfMatch: true });
    objects.set('p/e/data', { body: 'bytes', etag: '"d0"' });
    const io = new StoreIo(client, 'bucket', 'p/', 1000, 5 * 1024 * 1024);
    const paused = await StoreLease.take(io, KEYS, 'e', fast);
    expect(paused.dataKey).toBe('p/e/data');
    const takeovers: unknown[] = [];
    const heard = (message: unknown) => takeovers.push(message);
    diagnostics_channel.subscribe(CHANNELS.claimTakeover, heard);
    const taker = await takeOnceStale(io).finally(() => diagnostics_channel.unsubscribe(CHANNELS.claimTakeover, heard));
    expect(takeovers).toEqual([{ handoff: handoffKey('e') }]); // published once, for the stale holder only
    expect(taker.dataKey).toMatch(/^p\/e\/data\.[0-9a-f]{16}$/);
    expect([...objects.keys()].sort()).toEqual([taker.dataKey, 'p/e/lease']);
    expect(objects.get(taker.dataKey)?.body).toBe('bytes');
    await expect(paused.write('consumed')).rejects.toBeInstanceOf(LeaseLostError);
    expect(JSON.parse(objects.get('p/e/lease')!.body)).toMatchObject({ state: 'held', data: taker.dataKey.slice('p/e/'.length) });
  });

  it("a stale holder whose data is gone (its consume deleted it; its consumed write not yet landed): the claimer records the consume for it, and that consume resolves", async () => {
    const { client, objects } = fakeClient({ quotedIfMatch: true });
    objects.set('p/e/data', { body: 'bytes', etag: '"d0"' });
    const io = new StoreIo(client, 'bucket', 'p/', 1000, 5 * 1024 * 1024);
    const consuming = await StoreLease.take(io, KEYS, 'e', fast);
    objects.delete('p/e/data'); // its consume's deletion landed; its write of the lease is late
    await expect(takeOnceStale(io)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    expect(JSON.parse(objects.get('p/e/lease')!.body)).toMatchObject({ state: 'consumed' });
    await expect(consuming.write('consumed')).resolves.toBeUndefined();
    // Recorded for that holder only: a release of it is still refused.
    await expect(consuming.write('released')).rejects.toBeInstanceOf(LeaseLostError);
    await expect(StoreLease.take(io, KEYS, 'e', fast)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
  });

  // Ceph RGW answers 500 (ECANCELED) to a conditional write that raced another on the same key,
  // after the client's retries: the lease, read back, says who holds it.
  const raced = () => Object.assign(new Error('InternalError'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } });

  it('a create the store answered 500 to, that landed: the claimer holds the lease', async () => {
    const { client, armed } = nextLeaseWriteLandsThenFails(raced);
    armed.next = true;
    const io = new StoreIo(client, 'bucket', 'p/', 1000, 5 * 1024 * 1024);
    const lease = await StoreLease.take(io, KEYS, 'e', rules);
    await lease.write('held');
    expect(lease.lost).toBe(false);
  });

  it('a takeover the store answered 500 to while another landed: AlreadyClaimedError; one that nobody landed: the store error', async () => {
    let mode: 'other' | 'none' | undefined;
    const { client, objects } = fakeClient({
      quotedIfMatch: true,
      override: (sent, objs) => {
        if (mode === undefined || sent.name !== 'PutObjectCommand' || sent.input.IfMatch === undefined) return undefined;
        if (mode === 'other') objs.set('p/e/lease', { body: JSON.stringify({ v: 1, holder: 'someone-else', state: 'held', beat: 0 }), etag: '"theirs"' });
        mode = undefined;
        return raced();
      },
    });
    const io = new StoreIo(client, 'bucket', 'p/', 1000, 5 * 1024 * 1024);
    await (await StoreLease.take(io, KEYS, 'e', rules)).write('released');
    mode = 'none';
    await expect(StoreLease.take(io, KEYS, 'e', rules)).rejects.toMatchObject({ kind: 'failed', status: 500, storeCode: 'InternalError' });
    expect(JSON.parse(objects.get('p/e/lease')!.body)).toMatchObject({ state: 'released' });
    mode = 'other';
    await expect(StoreLease.take(io, KEYS, 'e', rules)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_ALREADY_CLAIMED' });
  });
});

describe('the window of a fetch ahead of the lease', () => {
  afterEach(() => vi.restoreAllMocks());

  // The sweep's wait after an entry's data went is at least twice the window, for clocks that run
  // at different rates: early bytes are kept only within half of it.
  const FETCH_AHEAD_WINDOW_MS = LEASE_REMOVAL_DELAY_MS / 2;

  it('keeps early bytes only within half the wait before a lease is removed, on the monotonic clock and the wall clock alike', () => {
    let mono = 1_000;
    let wall = 1_700_000_000_000;
    vi.spyOn(process, 'hrtime').mockImplementation(() => [Math.floor(mono / 1e3), (mono % 1e3) * 1e6]);
    vi.spyOn(Date, 'now').mockImplementation(() => wall);
    const window = fetchAheadWindow();
    mono += FETCH_AHEAD_WINDOW_MS - 1;
    wall += FETCH_AHEAD_WINDOW_MS - 1;
    expect(window.within()).toBe(true);
    // A host suspended meanwhile: its monotonic clock stood still, its wall clock did not.
    wall += 60_000;
    expect(window.within()).toBe(false);
    // A wall clock stepped back: the monotonic clock still counts.
    wall -= 60_000 + FETCH_AHEAD_WINDOW_MS;
    expect(window.within()).toBe(true);
    mono += 1;
    expect(window.within()).toBe(false);
  });
});
