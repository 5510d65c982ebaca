import { SNIFF_BYTES } from '../write/sniff.js';
import { sniffSource } from '../write/intake.js';
import { recordContent, reservationOf, type TempFile } from '../handles/file.js';
import { fs } from '../disk/fs.js';
import { builtin } from '../base/builtin.js';
const { constants } = builtin('node:fs');

/**
 * Makes `file` the finished upload its bytes were renamed into (over the new empty temp file of
 * the manager's session, on the root's file system: no byte is copied). Its size is counted against
 * `maxLiveBytes` from then on as any `write()`'s file is, and its first bytes are checked against
 * `accept` by the intake's one sniffer (a refused type removes the file: `TypeNotAcceptedError`, 415).
 * The head is read from the finished file, not from a PATCH: the upload's first bytes may have come
 * in a request to another process.
 */
export async function adoptFinished(file: TempFile, size: number, accept: readonly string[] | undefined): Promise<void> {
  reservationOf(file).take(size);
  // No meter: each PATCH's held the bytes to maxBytes as they came.
  const detectedType = accept === undefined ? undefined : (await sniffSource(headOf(file), accept, undefined)).type;
  recordContent(file, { size, digest: undefined, detectedType });
}

/** The file's first bytes as a source: one read of up to the sniffer's window, then the end. */
function headOf(file: TempFile): () => Promise<Buffer | undefined> {
  let done = false;
  return async () => {
    if (done) return undefined;
    done = true;
    const handle = await fs.promises.open(file.access, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const head = Buffer.alloc(SNIFF_BYTES);
      const { bytesRead } = await handle.read(head, 0, SNIFF_BYTES, 0);
      return bytesRead === 0 ? undefined : head.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  };
}
