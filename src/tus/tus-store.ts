import type { DataStore, Locker, Upload } from '@tus/server';
import type { Readable } from 'node:stream';
import { CallbackError, InvalidOptionError } from '../base/errors.js';
import { loadPeer } from '../base/peer.js';
import { describeArgument, ownOptions, validateBytes, validateDuration, validateFunction, validateObject, type NoneLeftOut } from '../base/validators.js';
import type { TempFile } from '../handles/file.js';
import { managerParts, type ManagerParts, type TempFileManager } from '../manager/manager.js';
import { parseAccept } from '../write/sniff.js';
import { resolveVerify, type ResolvedVerify, type VerifyResult } from '../write/verify.js';
import { UploadLock } from './lock.js';
import { forTus, UploadStore, type UploadState } from './store.js';

/** What {@link tusStore} takes. */
export interface TusStoreOptions {
  /** The manager whose root holds the uploads (under `<root>/tus`) and whose session gets each finished one. */
  readonly manager: TempFileManager;
  /**
   * The most bytes one upload may hold: a longer `Upload-Length`, or a PATCH past it, is refused
   * with a `SizeLimitError` (413).
   * @default Infinity
   */
  readonly maxBytes?: number;
  /**
   * How long an upload may stay unfinished, from its creation (the tus expiration extension: the
   * server sends `Upload-Expires`, answers 410 after it, and `server.cleanUpExpiredUploads()`
   * removes it). 0: never; else 1000 (1 s) to a year.
   * @default 86_400_000 (24 hours)
   */
  readonly expirationMs?: number;
  /**
   * Media types the finished upload's first bytes must show, as `write()`'s `accept`
   * (`['image/*', 'application/pdf']`); refused: `TypeNotAcceptedError` (415), nothing kept.
   * @default undefined (anything)
   */
  readonly accept?: readonly string[];
  /**
   * A check of each finished upload's complete file, after `accept` and before `onUploadFinish`
   * (an antivirus scan, a checksum against the metadata), as `write()`'s `verify`: only `true`
   * accepts it; `false` or `{ reason, statusCode }` refuses it (`VerifyRefusedError`, 422 or the
   * hook's 4xx), a throw or a timeout fails it (`VerifyFailedError`, 503). Either way the file is
   * removed, the last PATCH is answered with that status, and the upload is ended: every later
   * HEAD or PATCH of it is a 404, never a success.
   * @default undefined (no check)
   */
  readonly verify?: (file: TempFile, signal: AbortSignal) => VerifyResult | PromiseLike<VerifyResult>;
  /**
   * How long `verify` may take before the upload fails with a `VerifyFailedError`; 0: no limit.
   * @default 60_000
   */
  readonly verifyTimeoutMs?: number;
  /**
   * Called with each finished upload as a {@link TempFile} of the manager's session (its bytes
   * moved there, not copied) and the tus upload (its id and metadata). `keep()` it or `handoff()`
   * it here: a file still live when the hook returns (or throws) is removed. The client's last
   * PATCH is answered once it returns; what it throws answers it (a `CallbackError`, 500) and
   * ends the upload (a 404 from then on). No client is told an upload finished before this hook
   * returned: while it runs, a HEAD of the upload is a 423. An empty upload (`Upload-Length: 0`)
   * finishes at its creation.
   * @default undefined (the file is removed at once)
   */
  readonly onUploadFinish?: (file: TempFile, upload: Upload) => void | PromiseLike<unknown>;
  /**
   * How long a request waits for an upload another request holds (the lock across processes)
   * before the server answers 500 `ERR_LOCK_TIMEOUT`.
   * @default 30_000
   */
  readonly lockTimeoutMs?: number;
}

/** A tus data store and its locker, for `new Server({ path, datastore, locker })`. */
export interface TusStore {
  /** The `DataStore` of @tus/server that keeps each upload in progress under the manager's root. */
  readonly datastore: DataStore;
  /** A `Locker` across every process sharing the root: one request at a time writes an upload. */
  readonly locker: Locker;
}

/** The names of `tusStore()`'s options: every key of {@link TusStoreOptions} (`NoneLeftOut`). */
const TUS_STORE_OPTION_KEYS = [
  'manager',
  'maxBytes',
  'expirationMs',
  'accept',
  'verify',
  'verifyTimeoutMs',
  'onUploadFinish',
  'lockTimeoutMs',
] as const satisfies readonly (keyof TusStoreOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type TusStoreOptionsListed = NoneLeftOut<Exclude<keyof TusStoreOptions, (typeof TUS_STORE_OPTION_KEYS)[number]>>;
const TUS_STORE_OPTIONS: ReadonlySet<string> = new Set<string>(TUS_STORE_OPTION_KEYS);
const DAY_MS = 86_400_000;
const MAX_DURATION_MS = 365 * DAY_MS;

/**
 * A data store for `@tus/server` (the tus resumable-upload protocol: tus-js-client, Uppy) built
 * on a {@link TempFileManager}: each upload in progress is a private file of `<root>/tus`
 * (0600 in a 0700 directory, opened without following links), counted against the manager's
 * `maxLiveBytes` and `minFreeBytes`; its offset is its size after an fsync; it belongs to no
 * session, so another server process sharing the root resumes it after a crash; the locker holds
 * an upload for one request at a time across processes; a finished upload is handed to
 * `onUploadFinish` as a {@link TempFile}. `@tus/server` (2 or later) is an optional peer, loaded
 * here. See docs/tus.md.
 *
 * **Security:** the client's `Upload-Metadata` is hostile input: a value longer than 1 KiB or
 * holding a control character, a file name with a path separator, or a type that is no media type
 * is refused with a `MalformedUploadError` (400). Upload ids are never paths: one that is not 1 to
 * 128 of `[A-Za-z0-9_-]` is not found (404).
 *
 * @example
 * const mgr = new TempFileManager({ root: '/var/tmp/uploads', maxLiveBytes: 10 * 2 ** 30 });
 * const { datastore, locker } = await tusStore({
 *   manager: mgr,
 *   maxBytes: 2 ** 30,
 *   accept: ['video/*'],
 *   onUploadFinish: async (file, upload) => {
 *     await file.keep(`/srv/videos/${upload.id}.mp4`);
 *   },
 * });
 * const server = new Server({ path: '/files', datastore, locker });
 *
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: an unknown option, or one of
 * the wrong type or out of its range (`err.option` names it).
 * @throws {@link MissingPeerError} `ERR_TEMPFILE_MISSING_PEER`: `@tus/server` is not installed.
 */
export async function tusStore(options: TusStoreOptions): Promise<TusStore> {
  const settings = checkOptions(options);
  const tus = await loadPeer('@tus/server', 'tempfile-manager/tus', () => import('@tus/server'));
  const { context, rootContext } = settings.parts;
  const uploads = new UploadStore({
    context,
    lease: rootContext,
    maxBytes: settings.maxBytes,
    expirationMs: settings.expirationMs,
    accept: settings.accept,
    verify: settings.verify,
    newFile: () => settings.manager.file(),
    onFinish: settings.onUploadFinish && hookOf(settings.onUploadFinish, (state) => toUpload(tus, state)),
    errors: tus.ERRORS,
  });
  const datastore = new (dataStoreClass(tus))(uploads, settings.expirationMs);
  const lockContext = {
    places: () => uploads.places(),
    lease: rootContext,
    timeoutMs: settings.lockTimeoutMs,
    timedOut: () => tus.ERRORS.ERR_LOCK_TIMEOUT,
    creationEnded: (id: string, failed: boolean) => (failed ? uploads.abandonCreation(id).catch(rethrowForTus) : uploads.creationAnswered(id)),
  };
  const locker: Locker = {
    newLock: (id: string) => {
      const lock = new UploadLock(lockContext, id);
      // What taking or giving back a lock throws (a closed manager, a disk's failure) is answered
      // as the store's own failures are: its status, never its message with a server path.
      return {
        lock: (signal: AbortSignal, requestRelease: Parameters<UploadLock['lock']>[1]) => lock.lock(signal, requestRelease).catch(rethrowForTus),
        unlock: () => lock.unlock().catch(rethrowForTus),
      };
    },
  };
  return { datastore, locker };
}

type TusModule = typeof import('@tus/server');

function hookOf(hook: NonNullable<TusStoreOptions['onUploadFinish']>, upload: (state: UploadState) => Upload) {
  return async (file: TempFile, state: UploadState): Promise<void> => {
    try {
      await hook(file, upload(state));
    } catch (err) {
      throw new CallbackError('onUploadFinish', err);
    }
  };
}

function toUpload(tus: TusModule, state: UploadState): Upload {
  const metadata = state.metadata === undefined ? undefined : { ...state.metadata };
  return new tus.Upload({
    id: state.id,
    size: state.size,
    offset: state.offset,
    metadata,
    creation_date: state.creationDate,
    storage: { type: 'tempfile-manager', path: state.shown },
  });
}

// The class is made once @tus/server is loaded: its DataStore is the base a server checks for.
function dataStoreClass(tus: TusModule) {
  return class TempFileDataStore extends tus.DataStore {
    // Runtime-private: the store reaches the manager's context, which no caller may.
    readonly #uploads: UploadStore;
    readonly #expirationMs: number;

    constructor(uploads: UploadStore, expirationMs: number) {
      super();
      this.#uploads = uploads;
      this.#expirationMs = expirationMs;
      this.extensions = ['creation', 'creation-with-upload', 'termination', 'expiration'];
    }

    override async create(upload: Upload): Promise<Upload> {
      // No creation-defer-length: an upload with no length could never finish here (a server
      // answers Upload-Defer-Length with this 501 before it calls create()).
      if (upload.size === undefined) throw tus.ERRORS.UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION;
      const state = await this.#uploads.create(upload.id, upload.size, upload.metadata).catch(rethrowForTus);
      upload.creation_date = state.creationDate;
      upload.storage = { type: 'tempfile-manager', path: state.shown };
      return upload;
    }

    override async getUpload(id: string): Promise<Upload> {
      return toUpload(tus, await this.#uploads.get(id).catch(rethrowForTus));
    }

    override write(stream: Readable, id: string, offset: number): Promise<number> {
      return this.#uploads.write(stream, id, offset).catch(rethrowForTus);
    }

    /** No creation-defer-length (every upload declares its length at its creation): refused, never a silent no-op. */
    override async declareUploadLength(): Promise<void> {
      throw tus.ERRORS.UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION;
    }

    override remove(id: string): Promise<void> {
      return this.#uploads.remove(id).catch(rethrowForTus);
    }

    override deleteExpired(): Promise<number> {
      return this.#uploads.deleteExpired().catch(rethrowForTus);
    }

    override getExpiration(): number {
      return this.#expirationMs;
    }
  };
}

function rethrowForTus(err: unknown): never {
  throw forTus(err);
}

interface CheckedOptions {
  readonly manager: TempFileManager;
  readonly parts: ManagerParts;
  readonly maxBytes: number;
  readonly expirationMs: number;
  readonly accept: readonly string[] | undefined;
  readonly verify: ResolvedVerify<TempFile> | undefined;
  readonly onUploadFinish: TusStoreOptions['onUploadFinish'];
  readonly lockTimeoutMs: number;
}

function checkOptions(options: TusStoreOptions): CheckedOptions {
  const example = '{ manager: new TempFileManager(), onUploadFinish: (file) => file.keep(dest) }';
  validateObject(options, 'tusStore()', TUS_STORE_OPTIONS, example);
  const own = ownOptions(options);
  const manager = own.manager;
  const parts = managerParts(manager);
  if (parts === undefined && (manager as { constructor?: { name?: unknown } } | undefined)?.constructor?.name === 'TempFileManager') {
    throw new InvalidOptionError(
      'manager',
      'tusStore() was given a TempFileManager of another copy of tempfile-manager (one loaded with import, the other with require, or two installed versions): load TempFileManager and tempfile-manager/tus the same way, both with import or both with require.',
    );
  }
  if (parts === undefined) {
    throw new InvalidOptionError('manager', `tusStore() takes a TempFileManager as \`manager\`, got ${describeArgument(manager)}. Pass { manager: new TempFileManager() }.`);
  }
  return {
    manager: manager as TempFileManager,
    parts,
    maxBytes: own.maxBytes === undefined ? Infinity : validateBytes(own.maxBytes, 'maxBytes', { min: 1, infinity: true }),
    expirationMs: own.expirationMs === undefined ? DAY_MS : validateDuration(own.expirationMs, 'expirationMs', { min: 1000, max: MAX_DURATION_MS, off: { value: 0, meaning: 'never' } }),
    accept: own.accept === undefined ? undefined : parseAccept(own.accept),
    verify: resolveVerify<TempFile>(own.verify, own.verifyTimeoutMs, 'tusStore()'),
    onUploadFinish: own.onUploadFinish === undefined ? undefined : validateFunction<NonNullable<TusStoreOptions['onUploadFinish']>>(own.onUploadFinish, 'onUploadFinish', 'taking the finished TempFile and the upload'),
    lockTimeoutMs: own.lockTimeoutMs === undefined ? 30_000 : validateDuration(own.lockTimeoutMs, 'lockTimeoutMs', { min: 1, max: 10 * 60_000 }),
  };
}
