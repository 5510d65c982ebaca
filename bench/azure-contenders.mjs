// The contenders of the Azure handoff bench (bench/azure-handoff.mjs), shared with the cost gate's
// object-store rows (bench/gate-stores.mjs, which runs the library's contender on two builds). Each
// has `prepare()`, which makes the local file a cycle starts from (untimed), and `cycle(file)`,
// which hands it over through the container to another "host" and removes everything.
// `context`: `dir`, where the contender keeps its local files, and `container()`, a new
// ContainerClient for the container the bench made.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TempFileManager } from '../dist/index.js';
import { azureStore } from '../dist/azure.js';
import { hashing, MiB } from './lib.mjs';

/** The build the library's contender runs on unless it is given another (`context.build`). */
const THIS_BUILD = { TempFileManager, azureStore };

/**
 * The library: a TempFile handed off, claimed on another root, consumed. `context.build`: another
 * build's `TempFileManager` and `azureStore`.
 */
export function library(bytes, { dir, container, build = THIS_BUILD }) {
  const prefix = `lib-${randomBytes(4).toString('hex')}/`;
  const store = build.azureStore({ client: container(), prefix });
  const options = { sweepOnStart: false, sweepIntervalMs: 0, exitHook: false, stores: [store] };
  const api = new build.TempFileManager({ root: path.join(dir, 'lib-api'), ...options });
  const worker = new build.TempFileManager({ root: path.join(dir, 'lib-worker'), ...options });
  const data = randomBytes(bytes);
  return {
    id: 'lib',
    name: 'library: handoff + claim + consume',
    prepare: () => api.write(data, { suffix: '.bin' }),
    async cycle(file) {
      const ticket = await file.handoff({ ttlMs: 3_600_000, store });
      const claimed = await worker.claim(ticket);
      await claimed.consume();
    },
    close: () => Promise.all([api.close(), worker.close()]),
  };
}

/**
 * A floor: the bare SDK moving a file from one "host"'s directory to another's through the
 * container. `move({ file, blob, lease, copy })` is the cycle: `file` to send, `blob` and `lease`
 * its two blobs, `copy` where the other host writes it.
 */
function bareFloor(bytes, { dir, container }, id, name, move) {
  const client = container();
  const prefix = `${id}-${randomBytes(4).toString('hex')}/`;
  const local = path.join(dir, `${id}-api`);
  const remote = path.join(dir, `${id}-worker`);
  fs.mkdirSync(local, { recursive: true });
  fs.mkdirSync(remote, { recursive: true });
  const data = randomBytes(bytes);
  let n = 0;
  return {
    id,
    name,
    async prepare() {
      const file = path.join(local, `${++n}.bin`);
      await fs.promises.writeFile(file, data);
      return file;
    },
    cycle(file) {
      const blobName = `${prefix}${path.basename(file)}`;
      return move({
        file,
        blob: client.getBlockBlobClient(`${blobName}/data`),
        lease: client.getBlockBlobClient(`${blobName}/lease`),
        copy: path.join(remote, path.basename(file)),
      });
    },
    close: async () => {},
  };
}

/** The fenced floor: the bare SDK's transfer, with the lease's create and its consumed write. */
export function fencedFloor(bytes, context) {
  return bareFloor(bytes, context, 'floor-fenced', 'fenced floor: uploadFile, lease created beside downloadToFile, consumed beside the delete', async ({ file, blob, lease, copy }) => {
    await blob.uploadFile(file);
    await fs.promises.unlink(file);
    const [created] = await Promise.all([lease.upload('held', 4, { conditions: { ifNoneMatch: '*' } }), blob.downloadToFile(copy)]);
    await Promise.all([lease.upload('consumed', 8, { conditions: { ifMatch: created.etag } }), blob.delete()]);
    await fs.promises.unlink(copy);
  });
}

/**
 * The checked floor: the fenced floor with the contract's check, bare: the file hashed as it is sent
 * in one Put Blob, and the download hashed as it is written, then compared.
 */
export function checkedFloor(bytes, context) {
  return bareFloor(bytes, context, 'floor-checked', 'checked floor: the fenced floor, the bytes hashed (SHA-256) going up and coming down', async ({ file, blob, lease, copy }) => {
    const up = hashing();
    const size = (await fs.promises.stat(file)).size;
    await Promise.all([blob.upload(up.through, size), pipeline(fs.createReadStream(file, { highWaterMark: MiB }), up.through)]);
    const sent = up.digest();
    await fs.promises.unlink(file);
    const fetchAndCheck = async () => {
      const down = hashing();
      const got = await blob.download();
      await pipeline(got.readableStreamBody, down.through, fs.createWriteStream(copy));
      if (down.digest() !== sent) throw new Error('the digest differs');
    };
    const [created] = await Promise.all([lease.upload('held', 4, { conditions: { ifNoneMatch: '*' } }), fetchAndCheck()]);
    await Promise.all([lease.upload('consumed', 8, { conditions: { ifMatch: created.etag } }), blob.delete()]);
    await fs.promises.unlink(copy);
  });
}
