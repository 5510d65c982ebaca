import type { Readable } from 'node:stream';
import { isTempFileError, toFileSystemError, type DetectedType } from '../base/errors.js';
import type { FileIdentity } from '../disk/open-checked.js';
import type { KeepOptions } from '../keep/move.js';
import type { HandoffMeta, HandoffTicket } from './ticket.js';
import { describeLocation, isHandoffStore, type HandoffStore, type StoreLocation, type StoreSweepReport, type StoreSweepResult } from '../base/stores.js';

// The one contract of a place handoffs go through: the shared disk (`handoff/disk-backend.ts`) and
// an object store (`s3/store.ts`) each implement it, and `TempFile.handoff()`, `mgr.claim()` and
// `ClaimedFile` know a backend only by it. docs/backends.md says what each step must guarantee.

/** The file a backend is handed: a temp file of the handing-off manager's session. @internal */
export interface HandoffSource {
  /** The file's public path, for errors. */
  readonly path: string;
  /** The path system calls take (through the pinned session directory). */
  readonly access: string;
  readonly suffix: string;
  /** Its size when known (`write()`'s files), else undefined. */
  readonly size: number | undefined;
  /** `write({ hash })`'s digest, when there is one. */
  readonly digest: string | undefined;
  /** The device and inode the file was created with, when known. */
  readonly identity?: FileIdentity | undefined;
  /** A read stream of the file, opened as the handle opens it. */
  open(): Readable;
  /**
   * Removes the local file once the backend holds its bytes elsewhere (a backend that moves the
   * file itself never calls it). Never rejects: what it cannot remove goes with the session.
   */
  discard(): Promise<void>;
}

/** The local temp file a claim downloads into: a `TempFile` of the claimer's scope. @internal */
export interface LocalFile {
  readonly path: string;
  /** The bytes written, as `write()` counted them. */
  readonly size: number | undefined;
  /** `'<algorithm>:<hex>'` of those bytes. */
  readonly digest: string | undefined;
  keep(destination: string, options?: KeepOptions): Promise<string>;
  remove(): Promise<void>;
  removeSync(): void;
}

/** What a claim needs of the claiming manager. @internal */
export interface ClaimPlace {
  /**
   * Streams `source` into a new temp file of the manager's scope with `write()`, so that the
   * manager's limits hold for a download as for an upload (`maxLiveBytes`, `minFreeBytes`, and
   * `maxBytes`, here the ticket's size), and no partial file is left if it fails.
   */
  download(source: Readable, options: { suffix: string; maxBytes: number; hash: string }): Promise<LocalFile>;
  /** The claimer's `staleMs`: a lease's heartbeat seen unchanged this long on its own clock is stale. */
  readonly staleMs: number;
  readonly hostId: string;
  /** True once the claiming manager was closed: a claim made meanwhile is given back. */
  closed(): boolean;
}

/** The synchronous steps of a claim, for a backend that can take them without waiting. @internal */
export interface SyncSteps {
  consumeSync(): void;
  releaseSync(): void;
}

/**
 * A claim held in a backend: the steps `ClaimedFile` forwards to, each fenced (a holder that was
 * taken over throws `LeaseLostError` and changes nothing). @internal
 */
export interface BackendClaim {
  /** Where the bytes are while this claim holds them. */
  readonly path: string;
  /** True once consumed, released or kept, or once the lease was found lost. */
  readonly done: boolean;
  consume(): Promise<void>;
  release(): Promise<void>;
  /** `destination` and `options` are checked already. */
  keep(destination: string, options: KeepOptions): Promise<string>;
  /** `await using`'s end: a release, unless the claim ended (or its loss was reported) already. */
  dispose(): Promise<void>;
  /** `using`'s end, without waiting: a backend that cannot release synchronously stops its heartbeat and releases in the background. */
  disposeSync(): void;
  /** The synchronous steps, when the backend can take them; absent, `consumeSync()` and `releaseSync()` refuse. */
  readonly sync?: SyncSteps | undefined;
}

/** A claim's options, checked once (`checkClaimOptions`). @internal */
export interface CheckedClaimOptions {
  /** Re-hash the bytes and refuse them unless they match the ticket's digest (a store always does). */
  readonly verifyDigest: boolean;
}

/** The options of a handoff, checked once (`meta` a copy). @internal */
export interface HandOffRequest {
  readonly ttlMs: number;
  readonly meta: HandoffMeta | undefined;
}

/** The options of a stream's handoff straight to a store, checked once. @internal */
export interface StreamHandOffRequest extends HandOffRequest {
  /** More bytes than this is a `SizeLimitError`, and nothing stays in the store. */
  readonly maxBytes: number;
  /** The types the first bytes may show (lower-case patterns), or undefined for any. */
  readonly accept: readonly string[] | undefined;
  /** The digest's algorithm, as `hashOption()` names it. */
  readonly hash: string;
  /** The ticket's suffix, from the type the first bytes showed. */
  suffixOf(type: DetectedType | undefined): string;
  /** False: the first bytes are not sniffed for a type (no `accept` either), the type is undefined. */
  readonly detectType?: boolean;
}

/** What a stream's handoff gives: the ticket, and the type its first bytes showed. @internal */
export interface StreamHandoff {
  readonly ticket: HandoffTicket;
  readonly detectedType: DetectedType | undefined;
  /** Deletes the data before its ticket was given to anyone (a form refused after this file). Never rejects. */
  discard(): Promise<void>;
}

/** A place handoffs go through: the shared disk, or an object store. @internal */
export interface HandoffBackend {
  /** Makes the file durable in the backend and returns its ticket; a failure leaves the file with its handle. */
  handOff(source: HandoffSource, request: HandOffRequest): Promise<HandoffTicket>;
  /** Takes the lease on a ticket's entry (a ticket `parseTicket()` returned, its options checked). */
  claim(ticket: HandoffTicket, place: ClaimPlace, options: CheckedClaimOptions): Promise<BackendClaim>;
}

/** An object store as a backend: a located {@link HandoffBackend} that sweeps through its own client. @internal */
export interface StoreBackend extends HandoffBackend, HandoffStore {
  /**
   * Checks a ticket's location as this kind of store's own (an S3 bucket's name rules, an Azure
   * container's) and returns it; the core checked only its generic shape (`checkStoreLocation`).
   * Called on a store of the ticket's kind before a store of that location is looked for.
   * @throws BadTicketError (`field: 'store'`)
   */
  parseLocation(location: StoreLocation): StoreLocation;
  /** Uploads a stream with no local file; a refused or failed one leaves nothing in the store. */
  handOffStream(source: Readable, request: StreamHandOffRequest): Promise<StreamHandoff>;
  sweep(options: { staleMs: number }): Promise<StoreSweepReport>;
}

/** True when `value` is a store made by a store factory (`s3Store()`, `azureStore()`): its location and every step of {@link StoreBackend}. @internal */
export function isStoreBackend(value: unknown): value is StoreBackend {
  return isHandoffStore(value);
}

/**
 * Sweeps each store through its own client, at once: what each removed, or why it could not.
 * One store that fails (unreachable, denied) never stops the others, and never throws. @internal
 */
export async function sweepStores(stores: readonly StoreBackend[], staleMs: number): Promise<StoreSweepResult[]> {
  return Promise.all(
    stores.map(async (store): Promise<StoreSweepResult> => {
      try {
        return { location: store.location, report: await store.sweep({ staleMs }) };
      } catch (error) {
        return { location: store.location, error: isTempFileError(error) ? error : toFileSystemError('sweep the store', describeLocation(store.location), error) };
      }
    }),
  );
}
