// End-to-end check of this example (`npm run examples:check`), without a browser: starts the
// server, does from Node what the pages do in one (the presigned form POSTed to the bucket; a
// multipart upload through the routes Uppy calls), confirms each, waits for the worker's result
// and compares it with the bytes sent; a refusal is answered with its status; then sweeps the
// store and checks that nothing is left in the bucket nor under the worker's root. The pages
// themselves run in Chromium in test/e2e/browser-to-bucket.test.ts. It needs an S3 gateway
// (../s3-handoff/store.mjs says how it finds one): where none answers it prints why and passes,
// except under CI, where it fails.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { BUCKET, gateway, start } from './server.mjs';

const found = await gateway();
if (found.missing) {
  if (process.env.CI) {
    console.error(`browser-to-bucket: check failed: ${found.missing}. CI must provide the gateway (.ci/run starts it with node scripts/rgw.mjs start).`);
    process.exit(1);
  }
  console.log(`browser-to-bucket: check skipped: ${found.missing}. With CI set it fails instead.`);
  process.exit(0);
}
setTimeout(() => {
  console.error('browser-to-bucket check: timed out');
  process.exit(1);
}, 120_000).unref();

const MiB = 1024 * 1024;
const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'browser-to-bucket-check-'));
const root = path.join(parent, 'root');
process.on('exit', () => fs.rmSync(parent, { recursive: true, force: true }));
const app = await start({ root, maxBytes: 64 * MiB });

async function json(response, status) {
  const body = await response.json();
  assert.equal(response.status, status, JSON.stringify(body));
  return body;
}
const post = (url, body) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Confirms the receipt and waits for the worker; checks what it read against `bytes`. */
async function confirmAndCheck(key, bytes) {
  const { job: id, ticket } = await json(await post(`${app.url}/uploads/confirm`, { key }), 202);
  assert.equal(ticket.size, bytes.length);
  let job;
  for (const deadline = Date.now() + 60_000; ; await sleep(50)) {
    job = await json(await fetch(`${app.url}/jobs/${id}`), 200);
    if (job.state === 'done' || job.state === 'failed') break;
    assert.ok(Date.now() < deadline, `job ${id} still ${job.state}`);
  }
  assert.deepEqual(job.result, { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), head: bytes.subarray(0, 16).toString('hex') });
}

try {
  // The pages and Uppy's bundle are served.
  for (const [route, type] of [['/', 'text/html'], ['/uppy', 'text/html'], ['/uppy.js', 'text/javascript']]) {
    const page = await fetch(`${app.url}${route}`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type'), new RegExp(type));
    await page.arrayBuffer();
  }

  // What the plain page does: the presigned form, posted to the bucket.
  const small = randomBytes(3 * MiB);
  const params = await json(await fetch(`${app.url}/uploads/s3/params?filename=small.bin&type=`), 200);
  const form = new FormData();
  for (const [name, value] of Object.entries(params.fields)) form.append(name, value);
  form.append('file', new Blob([small]), 'small.bin');
  const sent = await fetch(params.url, { method: 'POST', body: form });
  await sent.arrayBuffer();
  assert.equal(sent.status, 204);
  await confirmAndCheck(params.key, small);

  // What Uppy does for a large file: a multipart upload through the routes, each part PUT to the bucket.
  const large = randomBytes(12 * MiB);
  const { key, uploadId } = await json(await post(`${app.url}/uploads/s3/multipart`, { filename: 'large.bin', type: 'application/octet-stream', metadata: {} }), 200);
  const parts = [];
  for (let n = 1, offset = 0; offset < large.length; n++, offset += 5 * MiB) {
    const { url } = await json(await fetch(`${app.url}/uploads/s3/multipart/${encodeURIComponent(uploadId)}/${n}?${new URLSearchParams({ key })}`), 200);
    const put = await fetch(url, { method: 'PUT', body: large.subarray(offset, offset + 5 * MiB) });
    await put.arrayBuffer();
    assert.equal(put.status, 200);
    parts.push({ PartNumber: n, ETag: put.headers.get('etag') });
  }
  const completed = await json(await post(`${app.url}/uploads/s3/multipart/${encodeURIComponent(uploadId)}/complete?${new URLSearchParams({ key })}`, { parts }), 200);
  await confirmAndCheck(completed.key, large);

  // A receipt the store never made is a 400 with the library's JSON body, and touches nothing.
  const forged = await json(await post(`${app.url}/uploads/confirm`, { key: `${app.prefix}.intake/${'0'.repeat(32)}.${Date.now() + 60_000}/upload` }), 400);
  assert.equal(forged.code, 'ERR_TEMPFILE_BAD_RECEIPT');
} finally {
  await app.close();
}

// The consumed entries' leases stay as tombstones until a sweep of the store (the worker's
// background sweeper runs one every few staleMs): this check does not wait for it.
const swept = await app.store.sweep();
assert.deepEqual(swept.errors, []);
// A confirmed upload's record stays, saying so, until its presign expires (a confirmation sent
// again meanwhile is told 409): the sweep removes it then.
const objects = await app.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: app.prefix }));
const left = (objects.Contents ?? []).map((o) => o.Key).filter((key) => !/\.intake\/[0-9a-f]+\.\d+\/record$/.test(key));
assert.deepEqual(left, [], `left in the bucket under ${app.prefix}`);
const uploads = await app.client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: app.prefix }));
assert.deepEqual(uploads.Uploads ?? [], []);
const leftHere = fs.readdirSync(root, { recursive: true }).filter((name) => name !== 'handoff' && name !== '.tempfile-manager');
assert.deepEqual(leftHere, [], `left under ${root}`);
console.log('browser-to-bucket check passed: 3 MiB by a presigned form and 12 MiB by a multipart upload, straight to the bucket, confirmed and claimed by the worker; a forged receipt 400; nothing left in the bucket nor under the root');
