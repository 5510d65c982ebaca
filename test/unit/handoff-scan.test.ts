import { describe, expect, it } from 'vitest';
import { FileSystemError } from '../../src/errors.js';
import { scanHandoff } from '../../src/handoff/entries.js';
import { layOver, manager } from '../helpers/roots.js';
import { realFs, type FsLayer } from '../helpers/fs-layer.js';

/** The scan's context, its calls made on `layer` (laid over the test's disk). */
const context = (layer: FsLayer) => (layOver(layer), { staleMs: 2000, graceMs: 0, hostId: 'scan-test' });
const enoent = () => Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT' });

// The scan reads the handoff directory and visits each entry. Only a directory that vanished while
// it was read means "no more entries": a failure anywhere else must reach the caller, or a sweep
// or an `ls` would stop half-way and report an incomplete listing as a whole one.
describe('scanning the handoff directory', () => {
  it('passes on a failure that comes from visiting an entry, ENOENT included', async () => {
    const mgr = manager();
    for (let i = 0; i < 3; i++) await (await mgr.write(`entry ${i}`)).handoff({ ttlMs: 60_000 });
    let visited = 0;
    const scan = scanHandoff(context(realFs), mgr.root, Date.now(), {
      entry: async () => {
        visited += 1;
        throw enoent();
      },
      foreign: () => {},
    });
    await expect(scan).rejects.toBeInstanceOf(FileSystemError);
    expect(visited).toBeGreaterThan(0);
  });

  it('takes a handoff directory that vanishes while it is read for one with no more entries', async () => {
    const mgr = manager();
    await (await mgr.write('one entry')).handoff({ ttlMs: 60_000 });
    const fs = {
      ...realFs,
      promises: { ...realFs.promises, opendir: async () => Promise.reject(enoent()) },
    } as unknown as FsLayer;
    const seen: string[] = [];
    await scanHandoff(context(fs), mgr.root, Date.now(), { entry: async (info) => void seen.push(info.id), foreign: () => {} });
    expect(seen).toEqual([]);
  });

  it('passes on any other failure to read the handoff directory', async () => {
    const mgr = manager();
    await (await mgr.write('one entry')).handoff({ ttlMs: 60_000 });
    const eio = Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    const fs = { ...realFs, promises: { ...realFs.promises, opendir: async () => Promise.reject(eio) } } as unknown as FsLayer;
    await expect(scanHandoff(context(fs), mgr.root, Date.now(), { entry: async () => {}, foreign: () => {} })).rejects.toMatchObject({
      code: 'ERR_TEMPFILE_IO',
    });
  });
});
