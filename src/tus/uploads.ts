import { isGone, systemErrorCode, toFileSystemError } from '../base/errors.js';
import { dataName, TUS_INFO } from '../base/layout.js';
import { MAX_INFO_BYTES, parseUploadInfo, type UploadInfo } from '../lifetime/tus-upload.js';
import { createUploadFile, openUploadFile, pinUpload, removeUploadDir, type UploadDir } from './places.js';
import { fs } from '../disk/fs.js';
import { builtin } from '../base/builtin.js';
const { constants } = builtin('node:fs');

export type { UploadInfo } from '../lifetime/tus-upload.js';

/**
 * Makes an upload's directory, its info (fsynced) and its empty data file; the directory is
 * fsynced last. A failure (ENOSPC: a `NoSpaceError`) removes what it made.
 */
export async function makeUpload(made: UploadDir, info: UploadInfo): Promise<void> {
  try {
    await fs.promises.mkdir(made.named, { mode: 0o700 });
  } catch (err) {
    throw toFileSystemError('make the upload', made.shown, err);
  }
  try {
    await fillUpload(made, info);
  } catch (err) {
    const dir = await pinUpload(made).catch(() => undefined);
    // Else the sweep removes it, an upload with no info.
    if (dir) await removeUploadDir(dir).catch(() => {}).finally(() => dir.close());
    throw toFileSystemError('make the upload', made.shown, err);
  }
}

async function fillUpload(made: UploadDir, info: UploadInfo): Promise<void> {
  const dir = await pinUpload(made);
  if (dir === undefined) throw Object.assign(new Error(`ENOENT: ${made.shown} went as it was made`), { code: 'ENOENT' });
  try {
    const infoFile = await createUploadFile(`${dir.at}/${TUS_INFO}`);
    try {
      await infoFile.writeFile(JSON.stringify(info));
      await infoFile.sync();
    } finally {
      await infoFile.close();
    }
    await (await createUploadFile(`${dir.at}/${dataName('')}`)).close();
    await syncDir(dir.at);
  } finally {
    await dir.close();
  }
}

/** The upload's info; undefined when it has none (gone, or its creation was cut short). */
export async function readInfo(dir: UploadDir): Promise<UploadInfo | undefined> {
  let text: string;
  try {
    const handle = await openUploadFile(`${dir.at}/${TUS_INFO}`, `${dir.shown}/${TUS_INFO}`, constants.O_RDONLY);
    try {
      const buffer = Buffer.alloc(MAX_INFO_BYTES + 1);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      if (bytesRead > MAX_INFO_BYTES) return undefined;
      text = buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (isGone(systemErrorCode(err))) return undefined;
    throw err;
  }
  return parseUploadInfo(text);
}

/**
 * The bytes received: the data file's size, which a write fsyncs before it answers. The file is
 * checked as a write checks it (opened without following a link, a regular file with one link):
 * a file planted in its place is a `FileSystemError`, never an offset that tells its size.
 */
export async function receivedBytes(dir: UploadDir, name: string): Promise<number | undefined> {
  let handle: Awaited<ReturnType<typeof openUploadFile>>;
  try {
    handle = await openUploadFile(`${dir.at}/${name}`, `${dir.shown}/${name}`, constants.O_RDONLY);
  } catch (err) {
    if (isGone(systemErrorCode(err))) return undefined;
    throw err;
  }
  try {
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}

async function syncDir(at: string): Promise<void> {
  const handle = await fs.promises.open(at, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
