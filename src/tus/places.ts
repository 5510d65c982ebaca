import path from 'node:path';
import { constants } from 'node:fs';
import { FileSystemError, systemErrorCode, toFileSystemError } from '../base/errors.js';
import { isTusUploadId, parseTusUploadName, TUS_DIR, tusUploadName } from '../base/layout.js';
import { O_NOFOLLOW, fs } from '../disk/fs.js';
import { OPEN_EXISTING } from '../disk/open-checked.js';
import type { ManagerContext } from '../context/context.js';

/** Where the uploads of one store live: reached through the manager's pinned root. @internal */
export interface TusPlaces {
  readonly context: ManagerContext;
  /** `<root>/tus` as system calls reach it. */
  readonly base: string;
  /** `<root>/tus` as errors and logs show it. */
  readonly shown: string;
}

/** An upload's directory, as reached and as shown. @internal */
export interface UploadDir {
  readonly id: string;
  readonly at: string;
  readonly shown: string;
}

/**
 * `<root>/tus`, made 0700 when missing, and checked on every call to be a directory of ours closed
 * to others (never a symlink): the root is 0700, so only this user could plant one, but a planted
 * link must still never redirect an upload out of the root.
 */
export async function tusPlaces(context: ManagerContext): Promise<TusPlaces> {
  context.session();
  context.checkRoot();
  const base = `${context.rootBase()}/${TUS_DIR}`;
  const shown = path.join(context.root, TUS_DIR);
  try {
    await fs.promises.mkdir(base, { mode: 0o700 });
  } catch (err) {
    if (systemErrorCode(err) !== 'EEXIST') throw toFileSystemError('make', shown, err);
  }
  const stat = await fs.promises.lstat(base);
  const uid = process.getuid?.();
  if (!stat.isDirectory() || (stat.mode & 0o077) !== 0 || (uid !== undefined && stat.uid !== uid)) {
    throw new FileSystemError('use', shown, undefined, 'It is not a private directory of this user (a symlink, a file, or open to others): nothing was written. Remove it; the store makes it again.');
  }
  return { context, base, shown };
}

/** The directory of upload `id`, or undefined for an id the store never makes (hostile input). */
export function uploadDir(places: TusPlaces, id: string): UploadDir | undefined {
  if (!isTusUploadId(id)) return undefined;
  const name = tusUploadName(id);
  return { id, at: `${places.base}/${name}`, shown: path.join(places.shown, name) };
}

/** Every upload directory under `tus/`; foreign names are left out (and never removed). */
export async function listUploads(places: TusPlaces): Promise<UploadDir[]> {
  const names = await fs.promises.readdir(places.base);
  return names.flatMap((name) => {
    const id = parseTusUploadName(name);
    return id === undefined ? [] : [uploadDir(places, id)!];
  });
}

/**
 * Opens an existing file of an upload: no symlink followed (ELOOP: a `FileSystemError`), no FIFO
 * blocked on, a regular file with one link.
 */
export async function openUploadFile(places: TusPlaces, at: string, shown: string, flags: number): ReturnType<typeof fs.promises.open> {
  let handle: Awaited<ReturnType<typeof fs.promises.open>>;
  try {
    handle = await fs.promises.open(at, flags | OPEN_EXISTING | O_NOFOLLOW);
  } catch (err) {
    // ENOENT stays as it is: the upload is gone, which callers answer with a 404.
    if (systemErrorCode(err) === 'ENOENT') throw err;
    throw toFileSystemError('open', shown, err);
  }
  const stat = await handle.stat();
  if (!stat.isFile() || stat.nlink !== 1) {
    await handle.close();
    throw new FileSystemError('open', shown, undefined, 'It is not a regular file with one link: nothing was written or read.');
  }
  return handle;
}

/** Creates a new private file of an upload, exclusively, never through a symlink. */
export async function createUploadFile(places: TusPlaces, at: string): ReturnType<typeof fs.promises.open> {
  return fs.promises.open(at, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW, 0o600);
}
