import nodeFs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { INLINE_IO_MAX_BYTES } from '../../src/disk/local-disk.js';
import { procIsOurs } from '../../src/disk/proc.js';
import { manager } from '../helpers/roots.js';
import { realFs, type FsLayer } from '../helpers/fs-layer.js';

// consume() unlinks a small held file inline when it sits on the handoff directory's own local
// device, and leaves every other unlink to the thread pool, where a slow one cannot stall the
// event loop: a large file, a file on another device (a mount made below the entry), a held name
// that cannot be looked at. The file-system layer below records the unlinks and, where a test
// says so, shows the held file on another device.
function recordingFs(otherDevice: (file: string) => boolean = () => false) {
  const unlinks: { how: 'inline' | 'thread pool'; file: string }[] = [];
  const fs = {
    ...realFs,
    unlinkSync: (file: nodeFs.PathLike) => {
      unlinks.push({ how: 'inline', file: String(file) });
      realFs.unlinkSync(file);
    },
    lstatSync: ((file: nodeFs.PathLike, options?: nodeFs.StatSyncOptions) => {
      const stat = realFs.lstatSync(file, options as nodeFs.StatSyncOptions & { bigint?: false });
      if (stat && otherDevice(String(file))) return Object.assign(stat, { dev: stat.dev + 1 });
      return stat;
    }) as typeof nodeFs.lstatSync,
    promises: {
      ...realFs.promises,
      unlink: async (file: nodeFs.PathLike) => {
        unlinks.push({ how: 'thread pool', file: String(file) });
        await realFs.promises.unlink(file);
      },
    },
  };
  return { fs: fs as unknown as FsLayer, unlinks };
}

const isHeld = (file: string) => path.basename(file).startsWith('held_');

async function consumeOne(bytes: number, otherDevice?: (file: string) => boolean) {
  const { fs, unlinks } = recordingFs(otherDevice);
  const mgr = manager({ fs });
  // Each cycle on a fresh manager: the first handoff opens <root>/handoff, and learns its device then.
  const ticket = await (await mgr.write(Buffer.alloc(bytes, 0x61))).handoff({ ttlMs: 60_000 });
  const claimed = await mgr.claim(ticket);
  unlinks.length = 0;
  await claimed.consume();
  expect(realFs.readdirSync(path.join(mgr.root, 'handoff'))).toEqual([]);
  return unlinks.filter((u) => isHeld(u.file)).map((u) => u.how);
}

describe('consume(): where the held file is unlinked', () => {
  // The device is learnt from the handoff directory a manager holds, which it holds only where
  // there is /proc: without it, every unlink goes through the thread pool, as before.
  it('inline, for a small file on the handoff directory\'s local device (where there is /proc)', async () => {
    const small = procIsOurs() ? 'inline' : 'thread pool';
    expect(await consumeOne(1024)).toEqual([small]);
    expect(await consumeOne(INLINE_IO_MAX_BYTES)).toEqual([small]);
  });

  it('in the thread pool, for a file larger than the inline bound', async () => {
    expect(await consumeOne(INLINE_IO_MAX_BYTES + 1)).toEqual(['thread pool']);
  });

  it('in the thread pool, for a small file on another device than the handoff directory', async () => {
    expect(await consumeOne(1024, isHeld)).toEqual(['thread pool']);
  });
});
