// An upload interrupted at any instant (the uploading process SIGKILLed) leaves no object that a
// ticket names, and nothing the store's sweep does not remove once the entry's expiry passed.
import { randomBytes } from 'node:crypto';
import { ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { beforeAll, expect, it } from 'vitest';
import { s3Store } from '../../src/s3/index.js';
import { nextJson, startChild } from '../helpers/child.js';
import { bucketFor, clientFor, needsS3, separateHosts, server, type RgwState } from './server.js';

let state: RgwState;
let client: S3Client;
let bucket: string;
const { newRoot } = separateHosts('int', 2000);

beforeAll(async () => {
  const found = await server();
  if (!('state' in found)) return;
  state = found.state;
  client = clientFor(state);
  bucket = await bucketFor(client, 'tfm-interrupted');
});

it('uploads SIGKILLed at instants from 0 to 1.5 s into the handoff: every data object is whole, every ticket handed out names one; after expiry the sweep leaves nothing', async (ctx) => {
  await needsS3(ctx);
  const prefix = `int-${randomBytes(4).toString('hex')}/`;
  const ttlMs = 3000;
  const delays = [0, 30, 100, 250, 500, 800, 1200, 1500];
  const finished: string[] = [];
  for (const delay of delays) {
    const root = newRoot();
    const child = startChild('s3-uploader.mjs', [], { TFM_S3: JSON.stringify({ state, bucket, prefix, root, size: 24 * 1024 * 1024, ttlMs }) });
    expect(await nextJson<{ event: string }>(child)).toMatchObject({ event: 'writing' });
    await new Promise((resolve) => setTimeout(resolve, delay));
    child.child.kill('SIGKILL');
    await child.ended;
    // Whatever it printed before it died: a ticket it was handed is whole.
    for (;;) {
      const { value, done } = await child.lines.next();
      if (done) break;
      const line = JSON.parse(value) as { event: string; ticket?: { id: string } };
      if (line.event === 'handed-off') finished.push(line.ticket!.id);
    }
  }
  const lastHandoffBy = Date.now(); // every entry's expiry is at most ttlMs after this
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  const objects = new Map((out.Contents ?? []).map((o) => [o.Key!, o.Size ?? 0]));
  // The data object is the commit: it is there whole, or not at all.
  for (const [key, size] of objects) expect(size, `${key} is whole`).toBe(24 * 1024 * 1024);
  for (const id of finished) expect([...objects.keys()].some((k) => k.includes(id) && k.endsWith('/data')), `the data of ${id}`).toBe(true);
  const uploads = (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))).Uploads ?? [];
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, lastHandoffBy + ttlMs + 200 - Date.now())));
  const report = await s3Store({ client, bucket, prefix }).sweep();
  expect(report.errors).toEqual([]);
  expect((await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).toEqual([]);
  expect((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))).Uploads ?? []).toEqual([]);
  console.log(
    `interrupted uploads: ${delays.length} killed, ${finished.length} had finished; left before the sweep: ${objects.size} objects, ${uploads.length} multipart uploads; the sweep removed ${report.removed} entries and aborted ${report.uploadsAborted} uploads`,
  );
}, 120_000);
