import type { Readable } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import { BadTicketError, InvalidOptionError } from '../base/errors.js';
import { describe } from '../base/names.js';
import { MAX_TIMER_MS, ownOptions, validateDuration, validateInteger, validateObject, type NoneLeftOut } from '../base/validators.js';
import { checkLocationFields, isValidPrefix, type HandoffStore, type StoreLocation, type StoreSweepReport } from '../base/stores.js';
import type { BackendClaim, CheckedClaimOptions, ClaimPlace, HandOffRequest, HandoffSource, StoreBackend, StreamHandOffRequest, StreamHandoff } from '../handoff/backend.js';
import type { HandoffTicket } from '../handoff/ticket.js';
import { ObjectStoreEngine } from '../object-store/engine.js';
import { AzureIo } from './io.js';

// The Azure store: a front over the object-store engine (object-store/engine.ts: the lease under
// conditional writes, the claim, the stream's staged upload, the sweep) with Azure's requests
// (io.ts) and its naming rules. docs/azure.md says why the lease is conditional writes on a lease
// blob, not Azure's own blob leases.

/** Where an Azure store's blobs live: `{ kind: 'azure', account, container, prefix }`. Never a credential nor a URL. */
export interface AzureLocation extends StoreLocation {
  /** Always `'azure'`. */
  readonly kind: 'azure';
  /** The storage account's name. */
  readonly account: string;
  /** The container. */
  readonly container: string;
  /** The name prefix every blob of the store starts with (`''`, or ending in `/`). */
  readonly prefix: string;
}

/** Options of {@link azureStore}. */
export interface AzureStoreOptions {
  /**
   * Your `ContainerClient` (`@azure/storage-blob`), with its credential: a shared key, a SAS, or a
   * token credential. The store calls only its methods: it never reads the credential, and the
   * container's URL appears in errors without its query (a SAS token is a credential).
   */
  readonly client: ContainerClient;
  /**
   * The name prefix of every blob of the store: `''`, or segments each ending in `/`. Give each
   * application its own; a lifecycle management rule on it backs up the sweep (docs/azure.md).
   * @default 'tempfile-manager/'
   */
  readonly prefix?: string;
  /**
   * The longest any one request may take before the store is reported unreachable (a
   * {@link StoreError} naming the container's URL): a whole number of milliseconds from 100 to
   * 2^31 - 1. A claim's download is bounded up to its answer's headers, then per wait for the next
   * bytes. Your client's own retry policy runs within it.
   * @default 30000
   */
  readonly timeoutMs?: number;
  /**
   * The block size of a staged upload (a stream of unknown size, a file over 256 MiB), in bytes
   * (1 MiB to 4000 MiB): memory used by such an upload is at most about three blocks. A file of
   * known size up to 256 MiB is streamed in one Put Blob.
   * @default 8 MiB
   */
  readonly blockSize?: number;
}

/** Options of {@link AzureStore.sweep}. */
export interface AzureSweepOptions {
  /**
   * A lease seen unchanged this long on this process's clock is stale: its expired entry is
   * removed. A whole number of milliseconds from 2000 to 2^31 - 1.
   * @default 30000
   */
  readonly staleMs?: number;
}

/** The names of `azureStore()`'s options: every key of {@link AzureStoreOptions} (`NoneLeftOut`). */
const AZURE_STORE_OPTION_KEYS = ['client', 'prefix', 'timeoutMs', 'blockSize'] as const satisfies readonly (keyof AzureStoreOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type AzureStoreOptionsListed = NoneLeftOut<Exclude<keyof AzureStoreOptions, (typeof AZURE_STORE_OPTION_KEYS)[number]>>;
const STORE_OPTIONS: ReadonlySet<string> = new Set<string>(AZURE_STORE_OPTION_KEYS);
const DEFAULT_PREFIX = 'tempfile-manager/';
const MIN_BLOCK = 1024 * 1024;
const MAX_BLOCK = 4000 * 1024 * 1024;
const ACCOUNT = /^[a-z0-9]{3,24}$/;
const CONTAINER = /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/;

/**
 * Checks a ticket's location as an Azure store's: `{ kind: 'azure', account, container, prefix }`,
 * each by Azure's naming rules. @throws {@link BadTicketError}
 */
function parseAzureLocation(location: StoreLocation): AzureLocation {
  if (location.kind !== 'azure') throw new BadTicketError(`\`store.kind\` is "${location.kind}", not "azure"`, 'store');
  checkLocationFields(location, ['account', 'container', 'prefix']);
  const { account, container, prefix } = location as AzureLocation;
  if (!ACCOUNT.test(account)) throw new BadTicketError('`store.account` is not a storage account name', 'store');
  if (!CONTAINER.test(container)) throw new BadTicketError('`store.container` is not a valid container name', 'store');
  if (!isValidPrefix(prefix)) throw new BadTicketError('`store.prefix` is not a valid name prefix', 'store');
  return { kind: 'azure', account, container, prefix };
}

/**
 * An Azure Blob Storage container that handoffs go through, for workers that share no disk with
 * the process that hands a file off. Made by {@link azureStore}; give it to
 * `file.handoff({ ttlMs, store })` and to the claiming manager
 * (`new TempFileManager({ stores: [store] })`).
 *
 * **Ownership:** the store owns the blobs under its prefix that name an entry
 * (`<id>.<expiresAt>/data`, its copies, `lease` and `uploading`): a claim's consume deletes them,
 * {@link AzureStore.sweep} removes what expired or was left over. It owns nothing else in the
 * container, and not the client.
 *
 * **Security:** tickets name the account, the container and the prefix, never a credential nor a
 * URL; a claim checks the ticket against the one the store holds, and the downloaded bytes against
 * its digest (docs/azure.md).
 */
export class AzureStore implements HandoffStore {
  /** Where its blobs live; tickets made through it carry this. */
  readonly location: AzureLocation;
  readonly #engine: ObjectStoreEngine;

  /** @internal Made by {@link azureStore}. */
  constructor(io: AzureIo, location: AzureLocation) {
    this.location = location;
    this.#engine = new ObjectStoreEngine(io, location);
  }

  /**
   * The storage account's name.
   * @throws Never. It reads the store's location.
   */
  get account(): string {
    return this.location.account;
  }

  /**
   * The container.
   * @throws Never. It reads the store's location.
   */
  get container(): string {
    return this.location.container;
  }

  /**
   * The name prefix of every blob of the store.
   * @throws Never. It reads the store's location.
   */
  get prefix(): string {
    return this.location.prefix;
  }

  /** Checks a ticket's location as this kind of store's. @internal */
  parseLocation(location: StoreLocation): StoreLocation {
    return parseAzureLocation(location);
  }

  /** Uploads a file and makes its ticket. @internal */
  handOff(source: HandoffSource, request: HandOffRequest): Promise<HandoffTicket> {
    return this.#engine.handOff(source, request);
  }

  /** Uploads a stream with no local file and makes its ticket. @internal */
  handOffStream(source: Readable, request: StreamHandOffRequest): Promise<StreamHandoff> {
    return this.#engine.handOffStream(source, request);
  }

  /** Claims a ticket of this store: the lease, and the bytes into a local temp file. @internal */
  claim(ticket: HandoffTicket, place: ClaimPlace, _options?: CheckedClaimOptions): Promise<BackendClaim> {
    return this.#engine.claim(ticket, place);
  }

  /**
   * Removes what expired or was left over under the prefix: entries whose ticket expired
   * unclaimed (or whose holder's lease is stale), consumed entries' leases (and any blob their
   * consume could not delete), data whose handoff failed after its upload (once its expiry
   * passed), copies left by claimers that lost a takeover, staged uploads never committed of
   * expired entries or of dead uploaders (counted in `uploadsAborted`). An expired entry a live
   * claimer holds is left. Before an entry is removed the sweep takes its lease (a conditional
   * write, as a claim takes it), so a claimer racing it gets the entry or a
   * {@link HandoffNotFoundError}, never half of it. A sweep that removes entries lasts 2 s or more
   * (an entry's lease goes 2 s after its data, docs/object-store.md).
   *
   * **Ownership:** it removes only blobs of the library's form under the prefix; others are
   * counted in `foreign` and never touched. A lifecycle management rule backs it up (docs/azure.md).
   *
   * **Security:** it lists and deletes through the caller's client only; the report and its
   * errors carry blob names, never a credential.
   *
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `options` is not
   * `{ staleMs? }` or `staleMs` is out of range.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: the container could not be listed
   * (unreachable, credentials refused, no such container); a blob that could not be deleted is
   * reported in `errors` instead.
   */
  sweep(options?: AzureSweepOptions): Promise<StoreSweepReport> {
    return this.#engine.sweep(options);
  }
}

/**
 * Makes a store of an Azure Blob Storage container for handoffs between hosts that share no disk:
 * pass it to `file.handoff({ ttlMs, store })`, and to the claiming manager's `stores` option. The
 * store calls only the methods of your `ContainerClient` (`@azure/storage-blob`, an optional peer:
 * `npm install @azure/storage-blob`); it never imports the SDK itself.
 *
 * **Ownership:** the store owns the blobs of its entries under the prefix (see
 * {@link AzureStore}); the client stays the caller's.
 *
 * **Security:** the client's credential is never read, logged nor put in a ticket or an error;
 * errors show the container's URL without its query.
 *
 * @example
 * import { BlobServiceClient } from '@azure/storage-blob';
 * import { DefaultAzureCredential } from '@azure/identity';
 * import { azureStore } from 'tempfile-manager/azure';
 * const service = new BlobServiceClient('https://myaccount.blob.core.windows.net', new DefaultAzureCredential());
 * const store = azureStore({ client: service.getContainerClient('uploads') });
 * const ticket = await upload.handoff({ ttlMs: 3_600_000, store });
 * // on a worker host:
 * const mgr = new TempFileManager({ stores: [store] });
 * await mgr.withClaim(ticket, (claimed) => transcode(claimed.path));
 *
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: an unknown option, a `client`
 * that is not a ContainerClient (or whose account or container name is not valid), a `prefix`
 * that is not `''` or segments ending in `/`, a `timeoutMs` or `blockSize` out of range.
 */
export function azureStore(options: AzureStoreOptions): AzureStore {
  validateObject(options, 'azureStore()', STORE_OPTIONS, "{ client: service.getContainerClient('uploads') }");
  if (options === undefined) throw new InvalidOptionError('client', "azureStore() needs { client }: a ContainerClient of @azure/storage-blob, such as service.getContainerClient('uploads').");
  const own = ownOptions(options);
  const client: unknown = own.client;
  const c = client as Partial<Record<'getBlockBlobClient' | 'listBlobsFlat' | 'containerName' | 'accountName' | 'url', unknown>> | null;
  if (typeof client !== 'object' || c === null || typeof c.getBlockBlobClient !== 'function' || typeof c.listBlobsFlat !== 'function' || typeof c.containerName !== 'string' || typeof c.url !== 'string') {
    throw new InvalidOptionError('client', `azureStore(): \`client\` must be a ContainerClient of @azure/storage-blob (service.getContainerClient('uploads')), got ${describe(client)}.`);
  }
  const account = typeof c.accountName === 'string' ? c.accountName : '';
  if (!ACCOUNT.test(account)) {
    throw new InvalidOptionError(
      'client',
      `azureStore(): the client's account name must be 3 to 24 lower-case letters and digits, got ${describe(account)}: make the client from the account's URL (https://<account>.blob.core.windows.net, or Azurite's http://127.0.0.1:10000/<account>).`,
    );
  }
  const container = c.containerName;
  if (!CONTAINER.test(container)) {
    throw new InvalidOptionError('client', `azureStore(): the client's container name must be 3 to 63 lower-case letters, digits and single dashes, got ${describe(container)}.`);
  }
  const prefix: unknown = own.prefix ?? DEFAULT_PREFIX;
  if (typeof prefix !== 'string' || !isValidPrefix(prefix)) {
    throw new InvalidOptionError(
      'prefix',
      `azureStore(): \`prefix\` must be '' or path segments each ending in '/' (letters, digits and !_.*'()-), such as 'uploads/tmp/', got ${describe(prefix)}.`,
    );
  }
  const timeoutMs = own.timeoutMs === undefined ? 30_000 : validateDuration(own.timeoutMs, 'timeoutMs', { min: 100, max: MAX_TIMER_MS }, { where: 'azureStore()' });
  const blockSize =
    own.blockSize === undefined ? 8 * 1024 * 1024 : validateInteger(own.blockSize, 'blockSize', { where: 'azureStore()', min: MIN_BLOCK, max: MAX_BLOCK, unit: 'bytes', note: '(1 MiB to 4000 MiB)' });
  const io = new AzureIo(client as ContainerClient, account, container, timeoutMs, blockSize);
  const store = new AzureStore(io, { kind: 'azure', account, container, prefix });
  store satisfies StoreBackend; // the contract the core calls (src/handoff/backend.ts), checked here
  return store;
}
