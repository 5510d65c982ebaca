import { FileSystemError, isGone, systemErrorCode, toFileSystemError } from '../base/errors.js';
import { isTusUploadId, parseTusUploadName, TUS_DIR, tusUploadName } from '../base/layout.js';
import { O_NOFOLLOW, fs } from '../disk/fs.js';
import { OPEN_EXISTING } from '../disk/open-checked.js';
import { openPinned, openPinnedSync, type PinnedDirSync } from '../disk/pinned-dir.js';
import { removeTree } from '../disk/remove.js';
import type { ManagerContext } from '../context/context.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');
const { constants } = builtin('node:fs');

/** Where the uploads of one store live: reached through the manager's pinned root. @internal */
export interface TusPlaces {
  readonly context: ManagerContext;
  /** `<root>/tus` as system calls reach it. */
  readonly base: string;
  /** `<root>/tus` as errors and logs show it. */
  readonly shown: string;
  /**
   * `<root>/tus`'s descriptor, held for the store's life: a plain descriptor, not a FileHandle,
   * which garbage collection would close under a dropped store (an error from Node 26 on).
   */
  readonly held: PinnedDirSync;
}

/** An upload's directory, as reached and as shown. @internal */
export interface UploadDir {
  readonly id: string;
  /** How system calls reach its files: its own descriptor once pinned ({@link pinUpload}), so that each is one name below it. */
  readonly at: string;
  /** Its name under the tus directory's descriptor: what makes it, removes it and opens it. */
  readonly named: string;
  readonly shown: string;
}

/** An upload's directory held open: its files are reached through the descriptor until `close()`. @internal */
export interface PinnedUpload extends UploadDir {
  close(): Promise<void>;
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
  const pinned = stat.isDirectory() ? openPinnedSync(base) : 'not-a-dir';
  if (typeof pinned === 'string' || (stat.mode & 0o077) !== 0 || (uid !== undefined && stat.uid !== uid)) {
    if (typeof pinned !== 'string') pinned.close();
    throw new FileSystemError('use', shown, undefined, 'It is not a private directory of this user (a symlink, a file, or open to others): nothing was written. Remove it; the store makes it again.');
  }
  // Held for the store's life: every upload is then one name below this descriptor.
  return { context, base: pinned.base, shown, held: pinned };
}

/** The directory of upload `id`, or undefined for an id the store never makes (hostile input). */
export function uploadDir(places: TusPlaces, id: string): UploadDir | undefined {
  if (!isTusUploadId(id)) return undefined;
  const name = tusUploadName(id);
  const named = `${places.base}/${name}`;
  return { id, at: named, named, shown: path.join(places.shown, name) };
}

/**
 * Opens an upload's directory without following a link, so that each of its files is one name
 * below a descriptor (a directory swapped for a link meanwhile redirects nothing); undefined when
 * it is gone or is not a directory.
 */
export async function pinUpload(dir: UploadDir): Promise<PinnedUpload | undefined> {
  const pinned = await openPinned(dir.named);
  if (typeof pinned === 'string') return undefined;
  return { ...dir, at: pinned.base, close: () => pinned.close() };
}

/** Removes a pinned upload's directory: its files through its descriptor, then its name. */
export async function removeUploadDir(dir: PinnedUpload): Promise<void> {
  await removeTree(dir.shown, { access: `${dir.at}/.`, keepTop: true });
  try {
    await fs.promises.rmdir(dir.named);
  } catch (err) {
    if (!isGone(systemErrorCode(err))) throw toFileSystemError('remove', dir.shown, err);
  }
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
export async function openUploadFile(at: string, shown: string, flags: number): ReturnType<typeof fs.promises.open> {
  let handle: Awaited<ReturnType<typeof fs.promises.open>>;
  try {
    handle = await fs.promises.open(at, flags | OPEN_EXISTING | O_NOFOLLOW);
  } catch (err) {
    // A name gone stays as it is (ENOENT, or ESTALE on sshfs and NFS): callers answer it with a 404.
    if (isGone(systemErrorCode(err))) throw err;
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
export async function createUploadFile(at: string): ReturnType<typeof fs.promises.open> {
  return fs.promises.open(at, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW, 0o600);
}
