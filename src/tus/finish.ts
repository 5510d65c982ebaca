import { constants } from 'node:fs';
import type { DetectedType } from '../base/errors.js';
import { assertAccepted, detectType, SNIFF_BYTES } from '../write/sniff.js';
import { recordContent, reservationOf, type TempFile } from '../handles/file.js';
import { fs } from '../disk/fs.js';

/**
 * Makes `file` the finished upload its bytes were renamed into (over the new empty temp file of
 * the manager's session, on the root's file system: no byte is copied). Its size is counted against
 * `maxLiveBytes` from then on as any `write()`'s file is, and its first bytes are checked against
 * `accept` as `write()` checks them (a refused type removes the file: `TypeNotAcceptedError`, 415).
 */
export async function adoptFinished(file: TempFile, size: number, accept: readonly string[] | undefined): Promise<void> {
  reservationOf(file).take(size);
  const detected = accept === undefined ? undefined : await sniff(file);
  if (accept !== undefined) assertAccepted(accept, detected);
  recordContent(file, { size, digest: undefined, detectedType: detected });
}

async function sniff(file: TempFile): Promise<DetectedType | undefined> {
  const handle = await fs.promises.open(file.access, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const head = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(head, 0, SNIFF_BYTES, 0);
    return await detectType(head.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}
