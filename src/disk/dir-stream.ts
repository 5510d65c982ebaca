import type { Dir } from 'node:fs';
import { isGone, systemErrorCode } from '../base/errors.js';
import { fs } from './fs.js';
import { builtin } from '../base/builtin.js';
const { Dirent } = builtin('node:fs');
type Dirent = import('node:fs').Dirent;

// Reading a directory, tolerating names that vanish while it is read.
//
// Where the file system gives each entry's type (d_type), a listing is one stream read in batches.
// Where it does not (DT_UNKNOWN: ext4 made with -O ^filetype, older XFS, some network and FUSE file
// systems), Node lstats each name after reading it, and one name gone in between rejects the whole
// read, dropping the names read with it. There the stream reads one name at a time: a rejection
// then concerns that name only, which vanished, and the listing goes on. Which kind a device is
// is learnt from its first entry listed, and remembered per device.

/** Entries a stream reads at once where the file system gives entry types. */
const TYPED_BATCH = 64;
/** Entries a stream reads at once where it does not: one, so a vanished name costs only itself. */
const UNTYPED_BATCH = 1;

/** One listed entry. @internal */
export interface ListedEntry {
  readonly name: string;
  /** A directory (by d_type, or an lstat that never follows a link). */
  readonly isDir: boolean;
}

/** A batch of entries; `done` once the listing has no more. @internal */
export interface ListedBatch {
  readonly entries: ListedEntry[];
  readonly done: boolean;
}

/** Per device: whether its listings give entry types. */
const typedByDevice = new Map<number, boolean>();

function knownTyped(dev: number | undefined): boolean | undefined {
  return dev === undefined ? undefined : typedByDevice.get(dev);
}

function learnTyped(dev: number | undefined, typed: boolean): void {
  if (dev === undefined) return;
  typedByDevice.set(dev, typed);
}

/** Node's lstat of a name it listed without a type found the name gone. */
function isVanishedName(err: unknown): boolean {
  return (err as { syscall?: unknown } | null)?.syscall === 'lstat' && isGone(systemErrorCode(err));
}

function hasOwnType(entry: Dirent): boolean {
  return Object.getPrototypeOf(entry) === Dirent.prototype;
}

/** What reading one entry gave: an entry, the end, or a name that vanished before it was typed. */
type Read = Dirent | null | 'vanished';

/**
 * An open listing of a directory that tolerates names vanishing while it is read: such a name
 * is left out, never an error, on file systems with and without entry types. Memory is constant
 * in the number of entries (a stream). `dev` is the directory's device: what was learnt of its
 * entry types is kept by it.
 * @internal
 */
export class DirListing {
  /** Names left out because they vanished between the listing and their lstat. */
  vanished = 0;
  private first = true;
  private skip: string | undefined;
  /** What this listing last recorded of its device: recorded again only when that changes. */
  private typed: boolean | undefined;

  private constructor(
    private readonly path: string,
    private readonly dev: number | undefined,
    private source: { dir: Dir; typed: boolean },
  ) {}

  /** Opens `path` for listing. Throws what opening it throws (ENOENT...). */
  static openSync(path: string, dev?: number): DirListing {
    const typed = knownTyped(dev) !== false;
    return new DirListing(path, dev, { dir: fs.opendirSync(path, { bufferSize: typed ? TYPED_BATCH : UNTYPED_BATCH }), typed });
  }

  /** Async {@link DirListing.openSync}. */
  static async open(path: string, dev?: number): Promise<DirListing> {
    const typed = knownTyped(dev) !== false;
    return new DirListing(path, dev, { dir: await fs.promises.opendir(path, { bufferSize: typed ? TYPED_BATCH : UNTYPED_BATCH }), typed });
  }

  /** Up to `max` more entries. */
  readSync(max: number): ListedBatch {
    const entries: ListedEntry[] = [];
    while (entries.length < max) {
      const read = readOneSync(this.source.dir);
      if (read === null) return { entries, done: true };
      const entry = this.take(read);
      if (this.mustReopen(read)) this.source = this.reopenedSync();
      if (entry) entries.push(entry);
    }
    return { entries, done: false };
  }

  /** Async {@link DirListing.readSync}. */
  async read(max: number): Promise<ListedBatch> {
    const entries: ListedEntry[] = [];
    while (entries.length < max) {
      const read = await readOne(this.source.dir);
      if (read === null) return { entries, done: true };
      const entry = this.take(read);
      if (this.mustReopen(read)) this.source = await this.reopened();
      if (entry) entries.push(entry);
    }
    return { entries, done: false };
  }

  /** Closes the listing; never throws. */
  closeSync(): void {
    try {
      this.source.dir.closeSync();
    } catch {
      // closing was all that was left to do
    }
  }

  /** Async {@link DirListing.closeSync}. */
  async close(): Promise<void> {
    await this.source.dir.close().catch(() => {});
  }

  /** What `read` adds to the listing, learning the device's kind from it. */
  private take(read: Dirent | 'vanished'): ListedEntry | undefined {
    this.learn(read !== 'vanished' && hasOwnType(read));
    if (read === 'vanished') {
      this.vanished += 1;
      return undefined;
    }
    if (read.name === this.skip) {
      this.skip = undefined;
      return undefined;
    }
    return { name: read.name, isDir: read.isDirectory() };
  }

  private learn(typed: boolean): void {
    if (typed === this.typed) return;
    this.typed = typed;
    learnTyped(this.dev, typed);
  }

  /**
   * A batched stream whose first entry shows the device gives no types is read again one name at
   * a time (a later batch could lose names to one that vanished); the name already listed is
   * skipped once. A device that gave types before and then none (a mixed file system) keeps its
   * stream: a name vanishing there costs the rest of its batch in this listing only.
   */
  private mustReopen(read: Dirent | 'vanished'): boolean {
    const first = this.first;
    this.first = false;
    if (!first || !this.source.typed) return false;
    if (read !== 'vanished' && hasOwnType(read)) return false;
    this.skip = read === 'vanished' ? undefined : read.name;
    return true;
  }

  private reopenedSync(): { dir: Dir; typed: boolean } {
    this.closeSync();
    return { dir: fs.opendirSync(this.path, { bufferSize: UNTYPED_BATCH }), typed: false };
  }

  private async reopened(): Promise<{ dir: Dir; typed: boolean }> {
    await this.close();
    return { dir: await fs.promises.opendir(this.path, { bufferSize: UNTYPED_BATCH }), typed: false };
  }
}

function readOneSync(dir: Dir): Read {
  try {
    return dir.readSync();
  } catch (err) {
    if (isVanishedName(err)) return 'vanished';
    throw err;
  }
}

async function readOne(dir: Dir): Promise<Read> {
  try {
    return await dir.read();
  } catch (err) {
    if (isVanishedName(err)) return 'vanished';
    throw err;
  }
}

/** A directory read whole, and how many names vanished before they were typed. @internal */
export interface WholeListing {
  readonly entries: ListedEntry[];
  readonly vanished: number;
}

const typedEntry = (entry: Dirent): ListedEntry => ({ name: entry.name, isDir: entry.isDirectory() });

// Read whole: one call where entry types come with the names (or no name vanished before Node
// typed it); else the names are read alone and each one typed here, a name gone meanwhile left out.
async function readWhole(path: string): Promise<WholeListing> {
  try {
    return { entries: (await fs.promises.readdir(path, { withFileTypes: true })).map(typedEntry), vanished: 0 };
  } catch (err) {
    if (!isVanishedName(err)) throw err;
  }
  const typed = await Promise.all(
    (await fs.promises.readdir(path)).map(async (name) => {
      try {
        return { name, isDir: (await fs.promises.lstat(`${path}/${name}`)).isDirectory() };
      } catch (err) {
        if (isGone(systemErrorCode(err))) return undefined;
        throw err;
      }
    }),
  );
  return whole(typed);
}

function whole(typed: (ListedEntry | undefined)[]): WholeListing {
  const entries = typed.filter((entry): entry is ListedEntry => entry !== undefined);
  return { entries, vanished: typed.length - entries.length };
}

/** Entries a batch of {@link readDirBatches} holds at most. */
const BATCH = 128;

/**
 * The entries of `dir` (on device `dev`), as a {@link DirListing}, in batches of at most
 * `batch`: memory is constant in the number of entries, and names vanishing meanwhile are left
 * out. Throws what opening or reading the directory throws (ENOENT once it is gone...).
 * @internal
 */
export async function* readDirBatches(dir: string, dev: number | undefined, batch = BATCH): AsyncGenerator<ListedEntry[]> {
  const listing = await DirListing.open(dir, dev);
  try {
    for (;;) {
      const { entries, done } = await listing.read(batch);
      if (entries.length > 0) yield entries;
      if (done) return;
    }
  } finally {
    await listing.close();
  }
}

/**
 * Every entry of a small directory, read whole (one call where the file system gives entry
 * types), names vanishing meanwhile left out, and how many did. Throws what reading it throws.
 * @internal
 */
export async function listSmallDir(dir: string): Promise<WholeListing> {
  return readWhole(dir);
}
