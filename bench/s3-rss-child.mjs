// One side of a transfer through the bucket, in a process of its own (bench/s3-handoff.mjs): it
// prints one JSON line with its peak RSS (`process.resourceUsage().maxRSS`, KiB) at its end.
//
//   lib-handoff <root> <prefix> <bytes>     write() a file from a stream, hand it off; prints the ticket
//   lib-claim   <root> <prefix> <ticket>    claim the ticket, consume it
//   floor-put   <dir> <prefix> <bytes>      write a file with a write stream, Upload it; prints the key
//   floor-get   <dir> <prefix> <key>        GetObject to a file, DeleteObject
//   idle        <dir> <prefix>              load the library and the SDK, list the bucket
//   probe       <root> <prefix>             time the first consume of a process (the store's probe) and a later one
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { TempFileManager } from '../dist/index.js';
import { s3Store } from '../dist/s3.js';
import { benchClient, BUCKET, gateway, repeated, TTL_MS } from './s3-contenders.mjs';

const [mode, dir, prefix, arg] = process.argv.slice(2);
const found = await gateway();
if (!('state' in found)) throw new Error(found.reason);
const { client, requests } = benchClient(found.state);
const block = randomBytes(1024 * 1024);
const common = { sweepOnStart: false, sweepIntervalMs: 0, exitHook: false };
const result = {};
fs.mkdirSync(dir, { recursive: true, mode: 0o700 }); // the parent of a root must exist; a root is made by its manager

switch (mode) {
  case 'lib-handoff': {
    const store = s3Store({ client, bucket: BUCKET, prefix });
    const mgr = new TempFileManager({ root: path.join(dir, 'root'), ...common });
    const file = await mgr.write(repeated(block, Number(arg)), { suffix: '.bin', hash: 'sha256' });
    result.ticket = await file.handoff({ ttlMs: TTL_MS, store });
    await mgr.close();
    break;
  }
  case 'lib-claim': {
    const store = s3Store({ client, bucket: BUCKET, prefix });
    const mgr = new TempFileManager({ root: path.join(dir, 'root'), stores: [store], ...common });
    const claimed = await mgr.claim(JSON.parse(arg));
    result.size = fs.statSync(claimed.path).size;
    await claimed.consume();
    await mgr.close();
    break;
  }
  case 'floor-put': {
    const local = path.join(dir, 'upload.bin');
    await pipeline(repeated(block, Number(arg)), fs.createWriteStream(local, { flags: 'wx', mode: 0o600 }));
    result.key = `${prefix}floor.bin`;
    await new Upload({ client, params: { Bucket: BUCKET, Key: result.key, Body: fs.createReadStream(local) } }).done();
    fs.unlinkSync(local);
    break;
  }
  case 'floor-get': {
    const copy = path.join(dir, 'download.bin');
    const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: arg }));
    await pipeline(out.Body, fs.createWriteStream(copy, { flags: 'wx', mode: 0o600 }));
    result.size = fs.statSync(copy).size;
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: arg }));
    fs.unlinkSync(copy);
    break;
  }
  case 'idle': {
    const mgr = new TempFileManager({ root: path.join(dir, 'root'), ...common });
    await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, MaxKeys: 1 }));
    s3Store({ client, bucket: BUCKET, prefix });
    await mgr.close();
    break;
  }
  case 'probe': {
    const store = s3Store({ client, bucket: BUCKET, prefix });
    const api = new TempFileManager({ root: path.join(dir, 'api'), ...common });
    const worker = new TempFileManager({ root: path.join(dir, 'worker'), stores: [store], ...common });
    const consume = async () => {
      const ticket = await (await api.write(block)).handoff({ ttlMs: TTL_MS, store });
      const claimed = await worker.claim(ticket);
      requests.clear();
      const start = process.hrtime.bigint();
      await claimed.consume();
      return { ms: Number(process.hrtime.bigint() - start) / 1e6, requests: new Map([...requests].map(([name, { n }]) => [name, n])) };
    };
    const first = await consume();
    const later = await consume();
    result.firstMs = first.ms;
    result.laterMs = later.ms;
    // The probe's own requests: the first consume's, less a later one's.
    result.requests = [...first.requests]
      .map(([name, n]) => [name.replace(/Command$/, ''), n - (later.requests.get(name) ?? 0)])
      .filter(([, n]) => n > 0)
      .map(([name, n]) => `${n} ${name}`)
      .join(', ');
    await Promise.all([api.close(), worker.close()]);
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
result.maxRssKiB = process.resourceUsage().maxRSS;
console.log(JSON.stringify(result));
