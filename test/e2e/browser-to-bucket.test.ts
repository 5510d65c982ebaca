// examples/browser-to-bucket in a real browser (Debian's Chromium driven by playwright-core),
// against the real S3 gateway (Ceph RGW): the page sends the file to the bucket itself, once with
// a plain XMLHttpRequest and once with Uppy's @uppy/aws-s3 (a form POST, and a multipart upload);
// the API confirms it and a worker on a root of its own claims it. The worker's digest of what it
// claimed must be that of the file the browser read, and nothing may be left in the bucket.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3Store } from '../../src/s3/index.js';
import { clientFor, server as gateway } from '../s3/server.js';
import { leftovers, MiB, startExample, type ExampleServer } from './upload-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const BUCKET = 'tfm-example-browser';
const prefix = `browser-e2e/${randomBytes(4).toString('hex')}/`;

/** Writes `size` random bytes to a file; returns what the worker reports of it. */
function makeFile(file: string, size: number): { size: number; sha256: string; head: string } {
  const bytes = randomBytes(size);
  fs.writeFileSync(file, bytes);
  return { size, sha256: createHash('sha256').update(bytes).digest('hex'), head: bytes.subarray(0, 16).toString('hex') };
}

describe('browser-to-bucket in Chromium', () => {
  let example: ExampleServer | undefined;
  let browser: Browser | undefined;
  let client: S3Client | undefined;
  let endpoint = '';
  let missing: string | undefined;
  let files: string;

  beforeAll(async () => {
    const found = await gateway();
    if (!('state' in found)) {
      if (process.env.CI) throw new Error(`this test ${found.reason}, and CI is set: CI must provide it (.ci/run starts RGW before npm run test:e2e)`);
      missing = found.reason;
      console.warn(`skipped: browser-to-bucket in Chromium ${missing}; CI=1 runs it`);
      return;
    }
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's Chromium with \`apt-get install -y chromium\` (CI does).`);
    client = clientFor(found.state);
    endpoint = new URL(found.state.endpoint).origin;
    files = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-browser-bucket-'));
    [example, browser] = await Promise.all([
      startExample('browser-to-bucket', { S3_PREFIX: prefix }),
      chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      }),
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    await example?.stop();
    if (files) fs.rmSync(files, { recursive: true, force: true });
  });

  const cases = [
    { page: '/', size: 24 * MiB, bucketCalls: ['POST'], what: 'a plain XMLHttpRequest posts the presigned form' },
    { page: '/uppy', size: 3 * MiB, bucketCalls: ['POST'], what: '@uppy/aws-s3 posts the presigned form' },
    { page: '/uppy', size: 24 * MiB, bucketCalls: ['PUT', 'PUT', 'PUT', 'PUT', 'PUT'], what: '@uppy/aws-s3 sends a multipart upload, five parts' },
  ] as const;

  it.for(cases)('$page, $size bytes: $what straight to the bucket; the progress bar reaches 100%, the worker claims the same sha256', async ({ page: route, size, bucketCalls }, ctx) => {
    if (missing) ctx.skip(missing);
    const file = path.join(files, `upload-${route.replace('/', '') || 'xhr'}-${size}.bin`);
    const expected = makeFile(file, size);
    const page = await browser!.newPage();
    const toBucket: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).origin === endpoint && request.method() !== 'OPTIONS') toBucket.push(request.method());
    });
    await page.goto(`${example!.url}${route}`);
    await page.setInputFiles('#file', file);
    await page.click('#send');

    // The worker's result, or the page's word that the upload failed: whichever comes first.
    await page.waitForFunction("!document.getElementById('result').hidden || /failed|refused/.test(document.getElementById('status').textContent)", null, { timeout: 60_000 });
    expect(await page.textContent('#status')).toMatch(/done/);
    expect(await page.$eval('#progress', (bar) => (bar as unknown as { value: number }).value)).toBe(100);
    expect(JSON.parse((await page.textContent('#result'))!)).toEqual(expected);
    expect(toBucket).toEqual(bucketCalls);
    await page.close();
    expect(leftovers(example!.root)).toEqual([]);
  });

  // Uppy's companion client answers a route's refusal with its status text alone ("Companion
  // request failed: Payload Too Large"), and the bucket's own refusal of a form over maxBytes
  // (400 EntityTooLarge) comes without the CORS headers the browser needs to read it, which Uppy
  // calls a network error: the page gives Uppy the route's maxBytes as its restriction.
  it.for([
    { size: 3 * MiB, what: 'a form POST' },
    { size: 24 * MiB, what: 'a multipart upload' },
  ])('/uppy, $size bytes over a 1 MiB maxBytes ($what): the page says the file is too large and names the limit; nothing reaches the bucket', async ({ size }, ctx) => {
    if (missing) ctx.skip(missing);
    const small = await startExample('browser-to-bucket', { S3_PREFIX: prefix, MAX_BYTES: MiB });
    try {
      const file = path.join(files, `too-large-${size}.bin`);
      makeFile(file, size);
      const page = await browser!.newPage();
      const toBucket: string[] = [];
      page.on('request', (request) => {
        if (new URL(request.url()).origin === endpoint) toBucket.push(request.method());
      });
      await page.goto(`${small.url}/uppy`);
      await page.waitForFunction("document.getElementById('status').dataset.ready === 'yes'", null, { timeout: 30_000 });
      await page.setInputFiles('#file', file);
      await page.click('#send');
      await page.waitForFunction("/failed|refused/.test(document.getElementById('status').textContent)", null, { timeout: 60_000 });
      const status = (await page.textContent('#status'))!;
      expect(status).toMatch(/refused/);
      expect(status).toMatch(/1 MB|1048576 bytes/);
      expect(status).not.toMatch(/network error|Companion request failed/);
      expect(toBucket).toEqual([]);
      await page.close();
    } finally {
      await small.stop();
    }
  });

  it('leaves nothing in the bucket once swept but the records of confirmed uploads (until their presign expires): no other object, no multipart upload', async (ctx) => {
    if (missing) ctx.skip(missing);
    // The consumed entries' leases stay as tombstones until a sweep of the store.
    const swept = await s3Store({ client: client!, bucket: BUCKET, prefix }).sweep();
    expect(swept.errors).toEqual([]);
    const objects = await client!.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    expect((objects.Contents ?? []).map((o) => o.Key).filter((key) => !/\.intake\/[0-9a-f]+\.\d+\/record$/.test(key!))).toEqual([]);
    const uploads = await client!.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });
});
