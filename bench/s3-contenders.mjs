// The gateway and the contenders of the object-store bench (bench/s3-handoff.mjs), shared with its
// memory child (bench/s3-rss-child.mjs) and the cost gate's object-store rows (bench/gate-stores.mjs,
// which runs the library's contender on two builds). The gateway is the one the tests use (test/s3/server.ts):
// found through the state file `node scripts/rgw.mjs start` writes. Every request of a client is
// counted and timed (to its response's headers) by a middleware, per command.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { TempFileManager } from '../dist/index.js';
import { s3Store } from '../dist/s3.js';
import { hashing, MiB } from './lib.mjs';

/** The build the library's contender runs on unless it is given another ({@link makeContender}'s `build`). */
const THIS_BUILD = { TempFileManager, s3Store };

export const BUCKET = 'tfm-bench-s3';
export const TTL_MS = 10 * 60 * 1000;

/** The state file: $TEMPFILE_MANAGER_S3_STATE, else the default of scripts/rgw.mjs (as test/s3/server.ts). */
export const STATE_FILE =
  process.env.TEMPFILE_MANAGER_S3_STATE ??
  path.join(path.resolve(process.env.TEMPFILE_MANAGER_RGW_DIR || path.join(os.tmpdir(), 'tempfile-manager-rgw')), 'state.json');

/** The gateway's state, or why there is none. */
export async function gateway() {
  let state;
  try {
    state = JSON.parse(fs.readFileSync(STATE_FILE, 'utf8'));
  } catch (err) {
    return { reason: `no state file ${STATE_FILE} (${err.code ?? 'unreadable'}): run \`node scripts/rgw.mjs start\`` };
  }
  const answers = await new Promise((resolve) => {
    const req = http.get(`${state.endpoint}/`, { timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
  if (!answers) return { reason: `${state.endpoint} (from ${STATE_FILE}) does not answer: run \`node scripts/rgw.mjs start\`` };
  return { state };
}

/**
 * Frees what deleted objects still hold in the test gateway. RGW keeps the data of a deleted
 * object for `rgw_gc_obj_min_wait` (2 hours) before its garbage collector frees it, and the OSD of
 * `scripts/rgw.mjs` holds 20 GiB, shared by everyone using the gateway: a run of this bench
 * uploads and deletes about 10 GiB, so it runs the collector now (`radosgw-admin gc process
 * --include-all`, the gateway's own tool, on its own configuration). Resolves with why it could
 * not, or undefined.
 */
export function reclaimDeleted(state) {
  const conf = path.join(state.dir ?? '', 'ceph.conf');
  if (!state.dir || !fs.existsSync(conf)) return `no ${conf}`;
  const run = spawnSync('radosgw-admin', ['-c', conf, '-n', 'client.rgw', '--admin-socket=', 'gc', 'process', '--include-all'], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (run.status === 0) return undefined;
  return run.error?.message ?? `radosgw-admin exited ${run.status}: ${run.stderr.trim().split('\n').at(-1)}`;
}

/** A client for the gateway with the settings docs/s3.md gives, its requests counted in `requests`. */
export function benchClient(state) {
  const client = new S3Client({
    endpoint: state.endpoint,
    region: state.region,
    forcePathStyle: true,
    credentials: { accessKeyId: state.accessKeyId, secretAccessKey: state.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const requests = new Map(); // command -> { n, ns }
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const start = process.hrtime.bigint();
      try {
        return await next(args);
      } finally {
        const name = context.commandName ?? 'unknown';
        const seen = requests.get(name) ?? { n: 0, ns: 0n };
        seen.n += 1;
        seen.ns += process.hrtime.bigint() - start;
        requests.set(name, seen);
      }
    },
    { step: 'initialize', name: 'benchRequestTimer' },
  );
  return { client, requests };
}

export async function ensureBucket(client) {
  try {
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } catch (err) {
    if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
  }
}

/** `size` bytes as a stream of 1 MiB chunks of `block` (constant memory, for the 1 GiB object). */
export function repeated(block, size) {
  return Readable.from(
    (function* () {
      for (let left = size; left > 0; left -= block.length) yield left >= block.length ? block : block.subarray(0, left);
    })(),
  );
}

export const NAMES = {
  lib: '`file.handoff({ ttlMs, store })` + `mgr.claim(ticket)` + `claimed.consume()` (digest checked)',
  floor: 'floor: lib-storage `Upload` (its defaults: 5 MiB parts, 4 in flight) + `GetObject` streamed to a file + `DeleteObject`',
  'floor-8x2': "floor with the library's part size: `Upload` with 8 MiB parts, 2 in flight (reference)",
  'floor-fenced':
    'fenced floor: the floor plus a lease, created with `If-None-Match: *` while the `GetObject` runs and written `consumed` with `If-Match` while the `DeleteObject` runs',
  'floor-checked': "checked floor: the fenced floor plus the contract's check, the bytes hashed (SHA-256) as they go up and again as they come down, the digests compared",
};
export const SHORT = { lib: 'library', floor: 'floor', 'floor-8x2': 'floor, 8 MiB × 2', 'floor-fenced': 'fenced floor', 'floor-checked': 'checked floor' };

/**
 * A contender's state: `create()` makes the file a request would have left on this "host",
 * untimed; `cycle(item, mark)` hands it over, takes it on the other host, and removes everything.
 * `mark(phase)` starts a phase; 'end' ends the last one. `build`: the library's contender on
 * another build, its `TempFileManager` and `s3Store` (this build's by default).
 */
export function makeContender(id, { dir, client, prefix, bytes, build = THIS_BUILD }) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (id === 'lib') return libContender(dir, client, prefix, bytes, build);
  if (id === 'floor') return floorContender(dir, client, prefix, bytes, {});
  if (id === 'floor-8x2') return floorContender(dir, client, prefix, bytes, { partSize: 8 * MiB, queueSize: 2 });
  if (id === 'floor-fenced') return floorContender(dir, client, prefix, bytes, {}, { fenced: true });
  if (id === 'floor-checked') return floorContender(dir, client, prefix, bytes, {}, { fenced: true, checked: true });
  throw new Error(`unknown contender ${id}`);
}

function libContender(dir, client, prefix, bytes, { TempFileManager, s3Store }) {
  // Two hosts that share no disk: the API's root and the worker's, in directories of their own,
  // each with its own store object (as two processes would have).
  // No background sweep: it lists the prefix every 3 × staleMs (90 s), not per handoff.
  const common = { sweepOnStart: false, sweepIntervalMs: 0, exitHook: false };
  const apiStore = s3Store({ client, bucket: BUCKET, prefix });
  const workerStore = s3Store({ client, bucket: BUCKET, prefix });
  const api = new TempFileManager({ root: path.join(dir, 'api'), ...common });
  const worker = new TempFileManager({ root: path.join(dir, 'worker'), stores: [workerStore], ...common });
  return {
    phases: ['handoff', 'claim', 'consume'],
    // Untimed: the file an upload would have written, not hashed: the handoff hashes it on its way
    // up (the ticket's digest), the claim on its way down (the check), each once, in the cycle.
    create: () => api.write(bytes, { suffix: '.bin' }),
    async cycle(file, mark) {
      mark('handoff');
      const ticket = await file.handoff({ ttlMs: TTL_MS, store: apiStore });
      mark('claim');
      const claimed = await worker.claim(ticket);
      mark('consume');
      await claimed.consume();
      mark('end');
    },
    async close() {
      await Promise.all([api.close(), worker.close()]);
    },
  };
}

/**
 * The bare SDK's transfer. `fenced`: with the lease's two writes. `checked`: with the check the
 * handoff contract promises (the claimer gets the bytes handed off, or an error), bare: the file
 * hashed with SHA-256 as it streams up, the download hashed as it streams into its file, the two
 * digests compared.
 */
function floorContender(dir, client, prefix, bytes, uploadOptions, { fenced = false, checked = false } = {}) {
  const api = path.join(dir, 'api');
  const worker = path.join(dir, 'worker');
  fs.mkdirSync(api, { mode: 0o700 });
  fs.mkdirSync(worker, { mode: 0o700 });
  let n = 0;
  return {
    phases: ['upload', 'get', 'delete'],
    async create() {
      const name = `f${n++}.bin`;
      await fs.promises.writeFile(path.join(api, name), bytes, { flag: 'wx', mode: 0o600 });
      return name;
    },
    // The same work as the library's cycle, bare: the upload, the local file removed; the download
    // to a file of the other host; the object deleted and the downloaded copy removed.
    async cycle(name, mark) {
      const key = `${prefix}${name}`;
      const local = path.join(api, name);
      const copy = path.join(worker, name);
      mark('upload');
      let sent;
      if (checked) {
        const up = hashing();
        await Promise.all([
          new Upload({ client, params: { Bucket: BUCKET, Key: key, Body: up.through }, ...uploadOptions }).done(),
          pipeline(fs.createReadStream(local, { highWaterMark: MiB }), up.through),
        ]);
        sent = up.digest();
      } else {
        await new Upload({ client, params: { Bucket: BUCKET, Key: key, Body: fs.createReadStream(local) }, ...uploadOptions }).done();
      }
      await fs.promises.unlink(local);
      mark('get');
      const download = async () => {
        const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
        if (!checked) return pipeline(out.Body, fs.createWriteStream(copy, { flags: 'wx', mode: 0o600 }));
        const down = hashing();
        await pipeline(out.Body, down.through, fs.createWriteStream(copy, { flags: 'wx', mode: 0o600 }));
        if (down.digest() !== sent) throw new Error(`${key}: the bytes downloaded differ from those uploaded`);
      };
      // Fenced: the lease the library takes, made bare, each write beside the request it overlaps in
      // the library. The consumed lease stays, as the library's does until a sweep. The ETag goes
      // bare in If-Match: the form the test gateway compares (the library probes for it).
      const leaseKey = `${key}.lease`;
      const [lease] = await Promise.all([
        fenced ? client.send(new PutObjectCommand({ Bucket: BUCKET, Key: leaseKey, Body: 'held', IfNoneMatch: '*' })) : undefined,
        download(),
      ]);
      mark('delete');
      await Promise.all([
        fenced ? client.send(new PutObjectCommand({ Bucket: BUCKET, Key: leaseKey, Body: 'consumed', IfMatch: lease.ETag.replace(/^"(.*)"$/, '$1') })) : undefined,
        client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key })),
      ]);
      await fs.promises.unlink(copy);
      mark('end');
    },
    async close() {},
  };
}
