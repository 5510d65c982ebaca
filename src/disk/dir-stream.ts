import type { Dirent } from 'node:fs';
import type { FileSystem } from './fs.js';

/** Entries a directory stream buffers: memory stays this size whatever the directory holds. */
const BUFFER = 128;

/**
 * The entries of `dir`, read as a stream (`fs.opendir` with a bounded buffer) in batches of at
 * most `batch`: memory is constant in the number of entries. An injected fs without `opendir`
 * (memfs) is read whole. Throws what opening the directory throws (ENOENT...).
 * @internal
 */
export async function* readDirBatches(fs: FileSystem, dir: string, batch = BUFFER): AsyncGenerator<Dirent[]> {
  if (!fs.promises.opendir) {
    const all = await fs.promises.readdir(dir, { withFileTypes: true });
    for (let i = 0; i < all.length; i += batch) yield all.slice(i, i + batch);
    return;
  }
  const stream = await fs.promises.opendir(dir, { bufferSize: BUFFER });
  try {
    let pending: Dirent[] = [];
    for (let entry = await stream.read(); entry !== null; entry = await stream.read()) {
      pending.push(entry);
      if (pending.length < batch) continue;
      yield pending;
      pending = [];
    }
    if (pending.length > 0) yield pending;
  } finally {
    await stream.close().catch(() => {});
  }
}
