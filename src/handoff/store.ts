import type { Readable } from 'node:stream';
import type { KeepOptions } from '../keep/move.js';
import type { HandoffMeta, HandoffTicket } from './ticket.js';
import { isHandoffStore, type HandoffStore, type StoreSweepReport } from '../base/stores.js';

// The seam between the core and an object store (src/s3/): the core knows a store only by this
// interface, so that it never loads a store's SDK. A ticket made through a store says so in its
// `store` field; `mgr.claim()` hands such a ticket to the store the manager was given for it.

/** What a store reads of a file it is handed. @internal */
export interface StoreSource {
  /** The file's path, for errors. */
  readonly path: string;
  readonly suffix: string;
  /** Its size when known (`write()`'s files), else undefined. */
  readonly size: number | undefined;
  /** `write({ hash })`'s digest, when there is one. */
  readonly digest: string | undefined;
  /** A read stream of the file, opened as the handle opens it. */
  open(): Readable;
}

/** The local temp file a store claim downloads into: a `TempFile` of the claimer's scope. @internal */
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

/** What a store claim needs of the claiming manager. @internal */
export interface StoreClaimPlace {
  /**
   * Streams `source` into a new temp file of the manager's scope with `write()`, so that the
   * manager's limits hold for a download as for an upload (`maxLiveBytes`, `minFreeBytes`, and
   * `maxBytes`, here the ticket's size), and no partial file is left if it fails.
   */
  download(source: Readable, options: { suffix: string; maxBytes: number; hash: string }): Promise<LocalFile>;
  /** The claimer's `staleMs`: a lease's heartbeat seen unchanged this long on its own clock is stale. */
  readonly staleMs: number;
  readonly hostId: string;
}

/** A claim held in a store: the steps `ClaimedFile` forwards to. @internal */
export interface StoreClaim {
  /** The local copy of the file. */
  readonly path: string;
  readonly done: boolean;
  consume(): Promise<void>;
  release(): Promise<void>;
  keep(destination: string, options: KeepOptions): Promise<string>;
  /** Stops the heartbeat and removes the local copy at once; the lease is released in the background. */
  releaseSync(): void;
}

/** The store's side of a handoff and a claim. @internal */
export interface StoreBackend extends HandoffStore {
  handOff(source: StoreSource, options: { ttlMs: number; meta: HandoffMeta | undefined }): Promise<HandoffTicket>;
  claim(ticket: HandoffTicket, place: StoreClaimPlace): Promise<StoreClaim>;
  sweep(options: { staleMs: number }): Promise<StoreSweepReport>;
}

/** True when `value` is a store made by a store factory (`s3Store()`). @internal */
export function isStoreBackend(value: unknown): value is StoreBackend {
  return isHandoffStore(value);
}

