import type fs from 'node:fs';
import { createFsFromVolume, type Volume } from 'memfs';
import type { FsLayer } from './fs-layer.js';

/**
 * A memfs volume as a layer. memfs (4.x) keeps a stale entry in a directory where a directory was
 * renamed over another (the capability probe's `rename` onto a directory): its rmdir then fails
 * with ENOTEMPTY while it lists nothing. Such a directory is removed here as the kernel would.
 */
export function memoryFs(vol: Volume): FsLayer {
  const mem = createFsFromVolume(vol) as unknown as FsLayer;
  const rmdirSync = (dir: fs.PathLike) => {
    try {
      mem.rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || mem.readdirSync(dir).length > 0) throw err;
      mem.rmSync(dir, { recursive: true });
    }
  };
  return { ...mem, rmdirSync, promises: { ...mem.promises, rmdir: async (dir: fs.PathLike) => rmdirSync(dir) } };
}
