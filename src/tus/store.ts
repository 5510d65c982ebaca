import type { Readable } from 'node:stream';
import { detached } from '../base/detached.js';
import { InvalidOptionError, isGone, isTempFileError, SizeLimitError, systemErrorCode, toFileSystemError } from '../base/errors.js';
import { dataName, tusUploadName } from '../base/layout.js';
import { takeForRemoval, type LeaseContext } from '../handoff/lease.js';
import type { ManagerContext } from '../context/context.js';
import type { TempFile } from '../handles/file.js';
import { checkMetadata } from './metadata.js';
import { listUploads, openUploadFile, pinUpload, removeUploadDir, tusPlaces, uploadDir, type PinnedUpload, type TusPlaces } from './places.js';
import { makeUpload, readInfo, receivedBytes, type UploadInfo } from './uploads.js';
import { dataFileIn, dataFileName, uploadExpiry, uploadHolderLives } from '../lifetime/tus-upload.js';
import { adoptFinished } from './finish.js';
import { runVerify, type ResolvedVerify } from '../write/verify.js';
import { Meter, pump } from '../write/intake.js';
import { Reservation } from '../limits/accounting.js';
import { AppendQueue } from './append-queue.js';
import { fs } from '../disk/fs.js';
import { openPinnedSync } from '../disk/pinned-dir.js';
import { builtin } from '../base/builtin.js';
const { STATUS_CODES } = builtin('node:http');
const { constants } = builtin('node:fs');
const path = builtin('node:path');

/** An upload as the store reports it: tus's `Upload` fields. @internal */
export interface UploadState {
  readonly id: string;
  readonly size: number | undefined;
  readonly offset: number;
  readonly metadata: Readonly<Record<string, string | null>> | undefined;
  readonly creationDate: string;
  readonly shown: string;
}

/** The tus errors the store answers with (`ERRORS` of @tus/utils), as loaded. @internal */
export interface TusErrorSet {
  readonly FILE_NOT_FOUND: unknown;
  readonly INVALID_OFFSET: unknown;
  readonly ERR_SIZE_EXCEEDED: unknown;
}

/** The store's checked settings. @internal */
export interface UploadStoreSettings {
  readonly context: ManagerContext;
  readonly lease: LeaseContext;
  readonly maxBytes: number;
  readonly expirationMs: number;
  readonly accept: readonly string[] | undefined;
  readonly verify: ResolvedVerify<TempFile> | undefined;
  readonly newFile: () => TempFile;
  readonly onFinish: ((file: TempFile, upload: UploadState) => unknown) | undefined;
  readonly errors: TusErrorSet;
}

/** An upload found and held open. */
interface FoundUpload {
  readonly dir: PinnedUpload;
  readonly info: UploadInfo;
  readonly name: string;
}

/**
 * How long an upload whose finish succeeded (onUploadFinish returned) is still reported as
 * finished: POST's own second look at it, and a client whose last answer was lost asking again.
 */
const FINISHED_KEPT_MS = 60_000;

/** How long a creation is watched for the request that made it failing before it was answered. */
const CREATION_KEPT_MS = 60_000;

/**
 * What a request for an upload whose finish is under way in this process is answered: 423, which
 * tus-js-client retries, and the finish's outcome by then (its success, or a 404).
 */
const FINISHING = Object.freeze({ status_code: 423, body: 'The upload is being finished (checked, then handed over): ask again later.\n' });

/** A reservation against `maxLiveBytes`: bytes this process wrote into one data file, known by its device and inode. */
interface UploadReservation {
  readonly reservation: Reservation;
  readonly dev: number;
  readonly ino: number;
}

/**
 * The uploads of one tus store, each a directory of `<root>/tus` (layout.ts): its info written
 * once, and its data file, whose size is the offset. A write fsyncs the file before it answers,
 * so an offset once told to a client is on disk; after a kill -9, the size is what the kernel
 * holds, bytes the client sent in order, never a claim of bytes that are not there. @internal
 */
export class UploadStore {
  private placesOnce: Promise<TusPlaces> | undefined;
  private placesNow: TusPlaces | undefined;
  /**
   * Bytes this process counted against maxLiveBytes, by upload: each held while the data file it
   * wrote them into (the same device and inode) is still the upload's on disk, and released once
   * it is not, whoever ended it: reconciled against the disk before the quota refuses anything and
   * before `stats()` reports it (see docs/tus.md, "Counted").
   */
  private readonly reserved = new Map<string, UploadReservation>();
  /** Removes {@link reconcile} from the manager's accounting; set while anything is reserved. */
  private unwatch: (() => void) | undefined;
  /** Uploads whose finish (accept, verify, onUploadFinish) is under way in this process. */
  private readonly finishing = new Set<string>();
  /** Uploads whose finish succeeded here lately: onUploadFinish returned. */
  private readonly finished = new Map<string, UploadState>();
  /** Uploads made by a request not yet answered: removed when that request fails ({@link abandonCreation}). */
  private readonly creating = new Set<string>();

  constructor(private readonly settings: UploadStoreSettings) {}

  /** `<root>/tus`, made and checked on first use. */
  places(): Promise<TusPlaces> {
    this.placesOnce ??= tusPlaces(this.settings.context).then(
      (places) => (this.placesNow = places),
      (err: unknown) => {
        this.placesOnce = undefined;
        throw err;
      },
    );
    return this.placesOnce;
  }

  async create(id: string, size: number | undefined, metadata: Readonly<Record<string, string | null>> | undefined): Promise<UploadState> {
    checkMetadata(metadata);
    if (size !== undefined && size > this.settings.maxBytes) throw new SizeLimitError(this.settings.maxBytes);
    const places = await this.places();
    const dir = uploadDir(places, id);
    if (dir === undefined) {
      throw new InvalidOptionError('namingFunction', `The tus server's namingFunction gave the id ${JSON.stringify(id).slice(0, 140)}: tempfile-manager/tus takes 1 to 128 of A-Z a-z 0-9 _ -. Return such an id (the default one is).`);
    }
    const created = Date.now();
    const { expirationMs } = this.settings;
    const info: UploadInfo = { size, metadata, creationDate: new Date(created).toISOString(), ...(expirationMs > 0 && { expiresAt: created + expirationMs }) };
    await makeUpload(dir, info);
    this.forgetCreationLater(id);
    const state: UploadState = { id, size, offset: 0, metadata, creationDate: info.creationDate, shown: dir.shown };
    // An empty upload is complete once made: it finishes now, as a PATCH's last byte would finish it.
    if (size === 0) await this.withUpload(id, ({ dir: pinned, name }) => this.finish(pinned, name, state));
    return state;
  }

  /**
   * Marks upload `id` as being created, for a minute at most. Apart from {@link create}: a timer
   * made there would keep that call's context, and with it the upload's state and the client's
   * metadata, for the whole minute.
   */
  private forgetCreationLater(id: string): void {
    this.creating.add(id);
    // Outside the request's async context: the timer keeps none of its stores alive for a minute.
    detached(() => setTimeout(() => this.creating.delete(id), CREATION_KEPT_MS)).unref();
  }

  /**
   * The request that made upload `id` failed before it was answered (the creation-with-upload
   * body refused, the client gone): the client never learnt its URL, so nothing of it stays.
   */
  async abandonCreation(id: string): Promise<void> {
    if (!this.creating.delete(id)) return;
    await this.remove(id).catch((err: unknown) => {
      if (err !== this.settings.errors.FILE_NOT_FOUND) throw err;
    });
  }

  /** The request that made upload `id` was answered: it is the client's to resume from now on. */
  creationAnswered(id: string): void {
    this.creating.delete(id);
  }

  async get(id: string): Promise<UploadState> {
    if (this.finishing.has(id)) throw FINISHING;
    const done = this.finished.get(id);
    if (done) return done;
    return this.withUpload(id, async ({ dir, info, name }) => {
      const offset = await receivedBytes(dir, name);
      if (offset === undefined) throw this.settings.errors.FILE_NOT_FOUND;
      return { id, size: info.size, offset, metadata: info.metadata, creationDate: info.creationDate, shown: dir.shown };
    });
  }

  /** Appends `stream` at `offset`; fsyncs before answering the new offset; a finished upload goes to the hook. */
  write(stream: Readable, id: string, offset: number): Promise<number> {
    if (this.finishing.has(id)) return Promise.reject(FINISHING);
    const done = this.finished.get(id);
    if (done) return this.writeFinished(stream, done, offset);
    return this.withUpload(id, (found) => this.writeFound(stream, found, offset));
  }

  /**
   * A write to an upload that finished here (an empty one made with a creation-with-upload
   * body): nothing more is taken, and the offset stays its length.
   */
  private async writeFinished(stream: Readable, done: UploadState, offset: number): Promise<number> {
    let bytes = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) bytes += chunk.length;
    if (bytes > 0) throw this.settings.errors.ERR_SIZE_EXCEEDED;
    if (offset !== done.offset) throw this.settings.errors.INVALID_OFFSET;
    return offset;
  }

  private async writeFound(stream: Readable, { dir, info, name }: FoundUpload, offset: number): Promise<number> {
    const { id } = dir;
    const shown = path.join(dir.shown, name);
    const handle = await openUploadFile(`${dir.at}/${name}`, shown, constants.O_WRONLY);
    let position = offset;
    try {
      const stat = await handle.stat();
      if (stat.size !== offset) throw this.settings.errors.INVALID_OFFSET;
      position = await this.append(stream, handle, { id, dev: stat.dev, ino: stat.ino, shown }, offset, info.size);
    } finally {
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    if (position === info.size) await this.finish(dir, name, { id, size: info.size, offset: position, metadata: info.metadata, creationDate: info.creationDate, shown: dir.shown });
    return position;
  }

  // Read through the iterator by hand, not `for await`: leaving a `for await` early destroys the
  // stream with no error, which @tus/server's pipeline reports as the client's abort (a 400) in
  // place of the limit or quota that stopped the write. Destroyed with the error, it answers it.
  private async append(stream: Readable, handle: Awaited<ReturnType<typeof openUploadFile>>, file: WrittenFile, offset: number, size: number | undefined): Promise<number> {
    const chunks = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const next = (): Promise<Buffer | undefined> => chunks.next().then((read) => (read.done ? undefined : read.value));
    const queue = new AppendQueue(handle.fd, offset);
    const { context, maxBytes, errors } = this.settings;
    const declared = size === undefined ? undefined : { bytes: size, refusal: () => errors.ERR_SIZE_EXCEEDED };
    // The intake's meter counts each chunk before it is queued; the accounting reconciles every
    // reservation against the disk before it refuses (reconcile()).
    const reservation = this.reservationFor(file);
    const meter = new Meter({ maxBytes, hash: undefined, offset, declared }, context.freeSpace, reservation);
    try {
      await meter.start();
      await pump(next, meter, queue, undefined);
      return offset + queue.bytesStored;
    } catch (caught) {
      // The chunks written before the refusal stay, and the upload resumes after them; those the
      // disk refused (ENOSPC) are not on it, so the quota stops counting them now.
      await queue.flush().catch(() => {});
      reservation.giveBack(meter.size - offset - queue.bytesStored);
      const err = toFileSystemError('write the upload', file.shown, caught);
      // The server answers the stream's error as soon as it is destroyed: give it its status first.
      stream.destroy(forTus(err) as Error);
      throw err;
    }
  }

  /** The reservation the bytes written into `file` count against: a new one once the upload's data file is another. */
  private reservationFor(file: WrittenFile): Reservation {
    const { accounting } = this.settings.context;
    const held = this.reserved.get(file.id);
    if (held !== undefined && held.dev === file.dev && held.ino === file.ino) return held.reservation;
    if (held !== undefined) this.release(file.id); // another data file under the same id: the old one is gone
    const reservation = new Reservation(accounting);
    this.reserved.set(file.id, { reservation, dev: file.dev, ino: file.ino });
    this.unwatch ??= accounting.watch(() => this.reconcile());
    return reservation;
  }

  // A client is told an upload finished only once onUploadFinish received it and returned: until
  // then a request for it in this process is a 423 (FINISHING), and after a failure its directory
  // is gone, so every process answers a 404 from then on.
  private async finish(dir: PinnedUpload, name: string, upload: UploadState): Promise<void> {
    const { accept, verify, onFinish } = this.settings;
    const file = this.settings.newFile();
    this.release(upload.id);
    this.finishing.add(upload.id);
    try {
      await fs.promises.rename(`${dir.at}/${name}`, file.access);
      await removeUploadDir(dir);
      await adoptFinished(file, upload.offset, accept);
      if (verify) await runVerify(verify, file, [], () => new Error('no signal is given to a tus upload\'s check'));
      await onFinish?.(file, upload);
      this.remember(upload);
    } finally {
      this.finishing.delete(upload.id);
      if (!file.disposed) await file.remove();
    }
  }

  private remember(upload: UploadState): void {
    this.finished.set(upload.id, upload);
    detached(() => setTimeout(() => this.finished.delete(upload.id), FINISHED_KEPT_MS)).unref();
  }

  /** Removes an upload (tus termination): its data file taken for removal first, so no lock finds it. */
  async remove(id: string): Promise<void> {
    await this.withUpload(id, ({ dir, name }) => this.takeAndRemove(dir, name));
  }

  /** Removes every upload whose expiry has passed and no live request holds; returns how many. */
  async deleteExpired(now = Date.now()): Promise<number> {
    if (this.settings.expirationMs === 0) return 0;
    const places = await this.places();
    let removed = 0;
    for (const listed of await listUploads(places)) {
      const dir = await pinUpload(listed);
      if (dir === undefined) continue; // gone since it was listed
      try {
        if (await this.removeIfExpired(dir, now)) removed += 1;
      } finally {
        await dir.close();
      }
    }
    this.reconcile();
    return removed;
  }

  private async removeIfExpired(dir: PinnedUpload, now: number): Promise<boolean> {
    const info = await readInfo(dir);
    // No info: its creation is under way (the directory comes first), or was cut short.
    if (info === undefined) return this.removeIfOld(dir, now);
    const expiresAt = uploadExpiry(info, this.settings.expirationMs);
    if (expiresAt === undefined || expiresAt > now) return false;
    const name = await dataFileName(dir.at);
    if (name !== undefined && name !== dataName('') && uploadHolderLives(this.settings.lease, dir.at, dir.shown, name)) return false;
    return this.takeAndRemove(dir, name);
  }

  private async removeIfOld(dir: PinnedUpload, now: number): Promise<boolean> {
    try {
      const stat = await fs.promises.lstat(dir.named);
      if (stat.mtimeMs + this.settings.expirationMs > now) return false;
    } catch (err) {
      if (isGone(systemErrorCode(err))) return false;
      throw err;
    }
    return this.takeAndRemove(dir, await dataFileName(dir.at));
  }

  private async takeAndRemove(dir: PinnedUpload, name: string | undefined): Promise<boolean> {
    if (name !== undefined && !(await takeForRemoval(dir.at, name))) return false;
    await removeUploadDir(dir);
    this.release(dir.id);
    return true;
  }

  /** Runs `use` with upload `id` held open (its directory pinned), its info and its data file's name; 404 when there is none. */
  private async withUpload<T>(id: string, use: (found: FoundUpload) => Promise<T>): Promise<T> {
    const places = await this.places();
    const named = uploadDir(places, id);
    const dir = named && (await pinUpload(named));
    if (!dir) throw this.settings.errors.FILE_NOT_FOUND;
    try {
      const info = await readInfo(dir);
      const name = info && (await dataFileName(dir.at));
      if (!info || !name) throw this.settings.errors.FILE_NOT_FOUND;
      return await use({ dir, info, name });
    } finally {
      await dir.close();
    }
  }

  private release(id: string): void {
    const held = this.reserved.get(id);
    if (held === undefined) return;
    this.reserved.delete(id);
    held.reservation.release();
    if (this.reserved.size === 0) {
      this.unwatch?.();
      this.unwatch = undefined;
    }
  }

  /**
   * Holds each reservation to what is on disk: released once the upload's data file is no longer
   * the one this process wrote (finished, terminated, expired or swept, by any process). Synchronous, as the accounting asks it (before a refusal, and for
   * `stats()`): one listing and one lstat per upload reserved here. A look that fails for another
   * reason than the file being gone keeps the reservation: the quota errs on the side of counting.
   */
  reconcile(): void {
    const places = this.placesNow;
    if (places === undefined) return;
    for (const [id, held] of [...this.reserved]) {
      if (stillOnDisk(`${places.base}/${tusUploadName(id)}`, held) === false) this.release(id);
    }
  }
}

/** The upload and the data file a write holds: what its reservation is known by. */
interface WrittenFile {
  readonly id: string;
  readonly dev: number;
  readonly ino: number;
  /** The data file as messages show it. */
  readonly shown: string;
}

/** Looks for the data file of an upload at most this many times while requests rename it (data, held_<owner>). */
const LOOKS = 3;

/**
 * Whether the data file a reservation was made for is still its upload's, under upload directory
 * `at` (under whichever name a request holds it): false when the directory or the file is gone,
 * or is another file; undefined when it could not be told. Its size is not compared: a write in
 * flight counts its bytes before the disk has them.
 */
function stillOnDisk(at: string, held: UploadReservation): boolean | undefined {
  let dir: ReturnType<typeof openPinnedSync>;
  try {
    // Opened without following a link: every look below is one name under its descriptor.
    dir = openPinnedSync(at);
  } catch {
    return undefined;
  }
  if (typeof dir === 'string') return false; // gone, or not a directory the store made
  try {
    for (let look = 0; look < LOOKS; look++) {
      const names = fs.readdirSync(dir.base);
      const name = dataFileIn(names);
      if (name === undefined) return false;
      try {
        const stat = fs.lstatSync(`${dir.base}/${name}`);
        return stat.isFile() && stat.dev === held.dev && stat.ino === held.ino;
      } catch (err) {
        if (!isGone(systemErrorCode(err))) return undefined;
        // Renamed between the listing and the look (a request took it or gave it back): look again.
      }
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    dir.close();
  }
}

/**
 * The error as the tus server answers it: a {@link TempFileError} gets the `status_code` and
 * `body` the server reads (its message for a 4xx, written for the client; the status's name
 * otherwise). @internal
 */
export function forTus(err: unknown): unknown {
  if (!isTempFileError(err)) return unexposed(err);
  const body = err.expose ? `${err.message}\n` : `${err.statusCode} ${STATUS_CODES[err.statusCode] ?? 'Error'}\n`;
  Object.defineProperty(err, 'status_code', { value: err.statusCode, enumerable: false, configurable: true });
  Object.defineProperty(err, 'body', { value: body, enumerable: false, configurable: true });
  return err;
}

/**
 * An error that is neither the library's nor one of tus's own answers (a system call's, a hook's):
 * @tus/server would send its message to the client (`EEXIST: ... mkdir '/proc/<pid>/fd/...'`), a
 * server path and a syscall's text. It answers a bare 500 instead; the error itself is unchanged
 * for the server's logs.
 */
function unexposed(err: unknown): unknown {
  if (typeof err !== 'object' || err === null || 'status_code' in err) return err;
  try {
    Object.defineProperty(err, 'status_code', { value: 500, enumerable: false, configurable: true });
    Object.defineProperty(err, 'body', { value: `500 ${STATUS_CODES[500]}\n`, enumerable: false, configurable: true });
  } catch {
    return new Error('500 Internal Server Error', { cause: err }); // a frozen error: answered through one of ours
  }
  return err;
}
