import { constants } from 'node:fs';
import { systemErrorCode } from '../base/errors.js';
import { dataName, isHeldName, TUS_INFO } from '../base/layout.js';
import { createUploadFile, openUploadFile, pinUpload, type TusPlaces, type UploadDir } from './places.js';
import { fs } from '../disk/fs.js';

/** What `info.json` holds: written once, when the upload is made. @internal */
export interface UploadInfo {
  readonly size: number | undefined;
  readonly metadata: Readonly<Record<string, string | null>> | undefined;
  readonly creationDate: string;
  /** When the upload expires, in ms since the epoch: what the root's sweep judges it by (lifetime/tus-sweep.ts). None: never. */
  readonly expiresAt?: number;
}

/** The longest info file read: metadata is bounded (metadata.ts), so a longer one is not ours. */
const MAX_INFO_BYTES = 128 * 1024;

/** Makes an upload's directory, its info (fsynced) and its empty data file; the directory is fsynced last. */
export async function makeUpload(places: TusPlaces, made: UploadDir, info: UploadInfo): Promise<void> {
  await fs.promises.mkdir(made.named, { mode: 0o700 });
  const dir = await pinUpload(places, made);
  if (dir === undefined) throw Object.assign(new Error(`ENOENT: ${made.shown} went as it was made`), { code: 'ENOENT' });
  try {
    const infoFile = await createUploadFile(places, `${dir.at}/${TUS_INFO}`);
    try {
      await infoFile.writeFile(JSON.stringify(info));
      await infoFile.sync();
    } finally {
      await infoFile.close();
    }
    await (await createUploadFile(places, `${dir.at}/${dataName('')}`)).close();
    await syncDir(places, dir.at);
  } finally {
    await dir.close();
  }
}

/** The upload's info; undefined when it has none (gone, or its creation was cut short). */
export async function readInfo(places: TusPlaces, dir: UploadDir): Promise<UploadInfo | undefined> {
  let text: string;
  try {
    const handle = await openUploadFile(places, `${dir.at}/${TUS_INFO}`, `${dir.shown}/${TUS_INFO}`, constants.O_RDONLY);
    try {
      const buffer = Buffer.alloc(MAX_INFO_BYTES + 1);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      if (bytesRead > MAX_INFO_BYTES) return undefined;
      text = buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  return parseInfo(text);
}

function parseInfo(text: string): UploadInfo | undefined {
  try {
    const value = JSON.parse(text) as Partial<UploadInfo>;
    if (typeof value.creationDate !== 'string') return undefined;
    if (value.size !== undefined && !Number.isSafeInteger(value.size)) return undefined;
    return { size: value.size, metadata: value.metadata ?? undefined, creationDate: value.creationDate };
  } catch {
    return undefined;
  }
}

/** The data file's name now: `data`, or `held_<owner>` while a request holds it; undefined when gone. */
export async function currentDataName(places: TusPlaces, dir: UploadDir): Promise<string | undefined> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir.at);
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  return names.find((name) => isHeldName(name, '')) ?? (names.includes(dataName('')) ? dataName('') : undefined);
}

/**
 * The bytes received: the data file's size, which a write fsyncs before it answers. The file is
 * checked as a write checks it (opened without following a link, a regular file with one link):
 * a file planted in its place is a `FileSystemError`, never an offset that tells its size.
 */
export async function receivedBytes(places: TusPlaces, dir: UploadDir, name: string): Promise<number | undefined> {
  let handle: Awaited<ReturnType<typeof openUploadFile>>;
  try {
    handle = await openUploadFile(places, `${dir.at}/${name}`, `${dir.shown}/${name}`, constants.O_RDONLY);
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}

async function syncDir(places: TusPlaces, at: string): Promise<void> {
  const handle = await fs.promises.open(at, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
