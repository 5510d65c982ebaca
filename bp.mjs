import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { HeadObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { gatewayClient } from './test/fixtures/s3-client.mjs';
import { s3Store } from './dist/s3.js';
const state = JSON.parse(fs.readFileSync('/tmp/tempfile-manager-rgw/state.json', 'utf8'));
const client = gatewayClient(state);
const store = s3Store({ client, bucket: 'tfm-presign', prefix: 'bench-probe/' });
const size = Number(process.argv[2]) * 1024 * 1024;
const body = randomBytes(size);
for (let i = 0; i < 3; i++) {
  const p = await store.presignUpload({ maxBytes: size });
  const form = new FormData();
  for (const [k, v] of Object.entries(p.fields)) form.append(k, v);
  form.append('file', new Blob([body]));
  await (await fetch(p.url, { method: 'POST', body: form })).arrayBuffer();
  let t = performance.now();
  await client.send(new HeadObjectCommand({ Bucket: 'tfm-presign', Key: p.key }));
  const out = await client.send(new GetObjectCommand({ Bucket: 'tfm-presign', Key: p.key }));
  for await (const c of out.Body) {}
  const floor = performance.now() - t;
  t = performance.now();
  const ticket = await store.confirmUpload(p.key, { ttlMs: 60000 });
  const conf = performance.now() - t;
  console.log(size / 1048576, 'MiB floor', floor.toFixed(0), 'confirm', conf.toFixed(0), 'ratio', (floor / conf).toFixed(2));
}
