// The flushes tempfile-manager/tus starts while a PATCH still comes (src/tus/append-queue.ts), from
// the side of a hostile kernel: an fdatasync that answers late, one that fails. The upload's
// data file is flushed while its bytes are written, never closed under a flush, and a flush that
// lost bytes fails the PATCH: the fsync after it, on the same descriptor, may not report the error
// again (Linux reports a writeback error once per open file), so an answered offset would claim
// bytes that are not on disk.
import { randomBytes } from 'node:crypto';
import nodeFs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppendQueue } from '../../src/tus/append-queue.js';
import { manager, scratchDir } from '../helpers/roots.js';
import { createUpload, patchHeaders, tusRequest, tusServers } from '../helpers/tus.js';

const serve = tusServers();

const MiB = 1024 * 1024;

interface Flushes {
  /** What happened, in order: each write's end, each fdatasync's start and end. */
  readonly events: string[];
  /** Lays the layer over node:fs (the library's own calls go through it); returns the undo. */
  lay(): () => void;
}

/** An fdatasync that answers on a later turn, failing with `fail` when given; every write and flush recorded. */
function slowFlushes(fail?: string): Flushes {
  const realWrite = nodeFs.write;
  const realFdatasync = nodeFs.fdatasync;
  const events: string[] = [];
  const write = ((fd: number, buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null, written: number) => void) => {
    realWrite(fd, buffer, offset, length, position, (err, written) => {
      events.push('write');
      callback(err, written);
    });
  }) as unknown as typeof nodeFs.write;
  const fdatasync = ((fd: number, callback: (err: Error | null) => void) => {
    events.push('flush started');
    realFdatasync(fd, (err) => {
      setTimeout(() => {
        events.push('flush done');
        callback(fail === undefined ? err : Object.assign(new Error(`${fail}: injected`), { code: fail }));
      }, 20);
    });
  }) as typeof nodeFs.fdatasync;
  return {
    events,
    lay: () => {
      nodeFs.write = write;
      nodeFs.fdatasync = fdatasync;
      return () => {
        nodeFs.write = realWrite;
        nodeFs.fdatasync = realFdatasync;
      };
    },
  };
}

async function appendAll(fd: number, data: Buffer): Promise<number> {
  const queue = new AppendQueue(fd, 0);
  for (let at = 0; at < data.length; at += 64 * 1024) await queue.push(data.subarray(at, at + 64 * 1024));
  return queue.flush();
}

describe('the flushes of a PATCH in progress', () => {
  it('the data file is flushed while the PATCH is written, and the queue drains only once no flush is in flight', async () => {
    const file = path.join(scratchDir(), 'data');
    nodeFs.writeFileSync(file, '');
    const data = randomBytes(24 * MiB);
    const flushes = slowFlushes();
    const fd = nodeFs.openSync(file, 'r+');
    const lifted = flushes.lay();
    let written: number;
    try {
      written = await appendAll(fd, data);
      flushes.events.push('drained');
    } finally {
      lifted();
      nodeFs.closeSync(fd);
    }
    expect(written).toBe(data.length);
    expect(nodeFs.readFileSync(file).equals(data)).toBe(true);
    const { events } = flushes;
    // Flushed before the last write: the disk took bytes while the rest still came.
    expect(events.indexOf('flush started')).toBeGreaterThan(-1);
    expect(events.indexOf('flush started')).toBeLessThan(events.lastIndexOf('write'));
    // Never drained (then fsynced and closed by the store) under a flush still in flight.
    expect(events.lastIndexOf('flush done')).toBeLessThan(events.indexOf('drained'));
    expect(events.filter((e) => e === 'flush started').length).toBe(events.filter((e) => e === 'flush done').length);
  });

  it('a flush that fails fails the PATCH: no offset is answered for bytes the disk lost', async () => {
    const file = path.join(scratchDir(), 'data');
    nodeFs.writeFileSync(file, '');
    const data = randomBytes(24 * MiB);
    const flushes = slowFlushes('EIO');
    const fd = nodeFs.openSync(file, 'r+');
    const lifted = flushes.lay();
    let outcome: unknown;
    try {
      outcome = await appendAll(fd, data).catch((err: unknown) => err);
    } finally {
      lifted();
      nodeFs.closeSync(fd);
    }
    expect(flushes.events).toContain('flush done');
    expect(outcome).toMatchObject({ code: 'EIO' });
  });

  it('through @tus/server: a PATCH whose flush fails is answered 500, never 204, and the upload is given back to resume', async () => {
    const mgr = manager();
    const { url } = await serve(mgr);
    const data = randomBytes(24 * MiB);
    const upload = await createUpload(url, data.length);
    const flushes = slowFlushes('EIO');
    const lifted = flushes.lay();
    let answer: Awaited<ReturnType<typeof tusRequest>>;
    try {
      answer = await tusRequest(upload, 'PATCH', patchHeaders(0, data.length), data);
    } finally {
      lifted();
    }
    expect(flushes.events).toContain('flush done');
    expect(answer.status).toBe(500);
    const head = await tusRequest(upload, 'HEAD', {});
    expect(head.status).toBe(200);
    const onDisk = path.join(mgr.root, 'tus', `upload_${upload.slice(upload.lastIndexOf('/') + 1)}`, 'data');
    expect(Number(head.headers['upload-offset'])).toBe(nodeFs.statSync(onDisk).size);
  });
});

