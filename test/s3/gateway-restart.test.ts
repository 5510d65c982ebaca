// The gateway killed (kill -9) and restarted mid-upload and mid-download, against a real Ceph
// cluster. The test runs a gateway of its own (a second radosgw on the same cluster, on another
// port), so that killing it leaves the gateway of the other test files alone.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HandoffExpiredError, TempFileError, type ClaimedFile, type HandoffTicket } from '../../src/index.js';
import { s3Store } from '../../src/s3/index.js';
import { sessionFiles } from '../helpers/wait.js';
import { bucketFor, clientFor, needsS3, separateHosts, server, type RgwState } from './server.js';

const PORT = Number(process.env.TEMPFILE_MANAGER_RGW_FAULT_PORT || 17481);
const STALE_MS = 2000;
// The ticket of the upload the gateway's kill cuts: short, so that the sweep's part, which waits for
// its expiry, is quick. A ticket that is claimed lives long: how long an upload, a restart and a
// download take is the machine's load, not the library's promise.
const CUT_TTL_MS = 4000;
const CLAIMED_TTL_MS = 600_000;
const { manager } = separateHosts('gw', STALE_MS);

let state: RgwState;
let client: S3Client;
let bucket: string;
const prefix = `gw-${randomBytes(4).toString('hex')}/`;
let gateway: ChildProcess | undefined;
const endpoint = `http://127.0.0.1:${PORT}`;

function answers(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${endpoint}/`, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Starts the test's own radosgw on PORT and resolves once it answers; returns how long it took. */
async function startGateway(): Promise<number> {
  const started = performance.now();
  const dir = state.dir;
  gateway = spawn(
    'radosgw',
    ['-f', '-c', path.join(dir, 'ceph.conf'), '-n', 'client.rgw', '--rgw_frontends', `beast endpoint=127.0.0.1:${PORT}`,
      '--admin-socket', path.join(dir, 'run', `rgw-${PORT}.asok`), '--log-file', path.join(dir, 'log', `rgw-${PORT}.log`)],
    { stdio: 'ignore' },
  );
  while (!(await answers())) {
    if (performance.now() - started > 60_000) throw new Error(`the test gateway on ${endpoint} did not answer within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return performance.now() - started;
}

async function killGateway(): Promise<void> {
  const child = gateway;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

beforeAll(async () => {
  const found = await server();
  if (!('state' in found)) return;
  state = found.state;
  client = clientFor(state);
  bucket = await bucketFor(client, 'tfm-gateway');
  await startGateway();
}, 90_000);

afterAll(async () => {
  await killGateway();
});

async function keysUnder(p: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: p }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await probe())) {
    if (performance.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('radosgw kill -9 and restart', () => {
  it('mid-upload: the handoff resolves whole or rejects typed, no data object half there; a retry after the restart hands it off; the sweep removes the leftovers once expired', async (ctx) => {
    await needsS3(ctx);
    const p = `${prefix}up-${randomBytes(3).toString('hex')}/`;
    const store = s3Store({ client: clientFor(state, { endpoint }), bucket, prefix: p, partSize: 5 * 1024 * 1024, timeoutMs: 5000 });
    const content = randomBytes(64 * 1024 * 1024);
    const sender = manager();
    const file = await sender.write(content, { suffix: '.bin', hash: 'sha256' });
    const handing = file.handoff({ ttlMs: CUT_TTL_MS, store }).then(
      (ticket) => ({ ticket }),
      (error: unknown) => ({ error }),
    );
    const cutExpiresBy = Date.now() + CUT_TTL_MS; // what the kill leaves expires by then
    // Killed once the upload is under way: a multipart upload has begun.
    await until('a multipart upload', async () => ((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: p }))).Uploads ?? []).length > 0);
    await killGateway();
    const restart = await startGateway();
    const outcome = await handing;
    let ticket: HandoffTicket;
    if ('error' in outcome) {
      expect(outcome.error, String(outcome.error)).toBeInstanceOf(TempFileError);
      // The data object is the commit: whole, or not there (an upload completed whose answer was lost).
      for (const key of (await keysUnder(p)).filter((k) => k.endsWith('/data'))) {
        expect((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength, `${key} after a failed handoff`).toBe(content.length);
      }
      expect(fs.existsSync(file.path), 'a failed handoff leaves the file with its handle').toBe(true);
      ticket = await file.handoff({ ttlMs: CLAIMED_TTL_MS, store });
    } else {
      ticket = outcome.ticket;
    }
    const worker = manager([s3Store({ client, bucket, prefix: p })]);
    const claimedWhole = (claimed: ClaimedFile) => expect(fs.readFileSync(claimed.path).equals(content)).toBe(true);
    const claimedFirst = await worker.withClaim(ticket, claimedWhole).then(
      () => true,
      (error: unknown) => {
        // The upload the SDK retried through, with the restart, outlasted its short ticket: a slow
        // machine, not a lost file. Its data object is whole (checked by size here, by digest below
        // on a second handoff, which the sweep's wait covers too).
        if (!(error instanceof HandoffExpiredError) || 'error' in outcome) throw error;
        return false;
      },
    );
    if (!claimedFirst) {
      expect((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${p}${ticket.id}.${ticket.expiresAt}/data` }))).ContentLength).toBe(content.length);
      await worker.withClaim(await file.handoff({ ttlMs: CLAIMED_TTL_MS, store }), claimedWhole);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, cutExpiresBy - Date.now() + 50)));
    const report = await s3Store({ client, bucket, prefix: p }).sweep();
    expect(report.errors).toEqual([]);
    expect(await keysUnder(p)).toEqual([]);
    expect((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: p }))).Uploads ?? []).toEqual([]);
    console.log(`kill -9 mid-upload: ${'error' in outcome ? `typed error ${(outcome.error as TempFileError).code}, retried` : `the SDK retried through it${claimedFirst ? '' : ', past the ticket\'s expiry'}`}; gateway back in ${Math.round(restart)} ms; swept: ${JSON.stringify({ removed: report.removed, uploadsAborted: report.uploadsAborted })}`);
    await Promise.all([sender.close(), worker.close()]);
  }, 120_000);

  it('mid-download: the claim resolves whole or rejects typed, leaving no local file; after the restart the next claimer gets the bytes, digest verified', async (ctx) => {
    await needsS3(ctx);
    const p = `${prefix}down-${randomBytes(3).toString('hex')}/`;
    const content = randomBytes(128 * 1024 * 1024);
    const sender = manager();
    const ticket = await (await sender.write(content, { suffix: '.bin' })).handoff({ ttlMs: 600_000, store: s3Store({ client, bucket, prefix: p }) });
    await sender.close();
    const viaTestGateway = s3Store({ client: clientFor(state, { endpoint }), bucket, prefix: p, timeoutMs: 5000 });
    const nextStore = s3Store({ client, bucket, prefix: p });
    const worker = manager([viaTestGateway]);
    const claiming = worker.claim(ticket).then(
      (claimed) => ({ claimed }),
      (error: unknown) => ({ error }),
    );
    const leaseKey = `${p}${ticket.id}.${ticket.expiresAt}/lease`;
    await until('the lease taken', async () => {
      try {
        await client.send(new GetObjectCommand({ Bucket: bucket, Key: leaseKey }));
        return true;
      } catch {
        return false;
      }
    });
    await killGateway();
    const outcome = await claiming;
    const restart = await startGateway();
    let claimed: ClaimedFile;
    let waited = 0;
    if ('error' in outcome) {
      expect(outcome.error, String(outcome.error)).toBeInstanceOf(TempFileError);
      // The session directory is made by the manager's first file: a claim the kill cut before its
      // download's headers came back (the lease's answer, or the GET's) never made one.
      expect(sessionFiles(worker).filter((n) => n.endsWith('.bin')), 'a local copy left by a failed claim').toEqual([]);
      // Never made, not removed under its live owner: a manager whose session was removed under it
      // throws on its next file (a typed error); one whose session was never made makes it now.
      await worker.file().remove();
      const next = manager([nextStore]);
      const started = performance.now();
      for (;;) {
        try {
          claimed = await next.claim(ticket);
          break;
        } catch (err) {
          expect((err as { code?: string }).code).toBe('ERR_TEMPFILE_ALREADY_CLAIMED'); // the killed gateway never took the release
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
      waited = performance.now() - started;
    } else {
      claimed = outcome.claimed;
    }
    expect(fs.readFileSync(claimed.path).equals(content)).toBe(true);
    await claimed.consume();
    await nextStore.sweep(); // the consumed lease, a tombstone, goes with the sweep
    expect(await keysUnder(p)).toEqual([]);
    console.log(`kill -9 mid-download: ${'error' in outcome ? `typed error ${(outcome.error as TempFileError).code}; the next claimer had it after ${Math.round(waited)} ms` : 'the claim completed first'}; gateway back in ${Math.round(restart)} ms`);
    await worker.close();
  }, 120_000);
});
