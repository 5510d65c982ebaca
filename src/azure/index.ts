/**
 * Handoff without a shared disk, through Azure Blob Storage: `tempfile-manager/azure` makes a store
 * of a container that `file.handoff({ ttlMs, store })` uploads to and `mgr.claim(ticket)` downloads
 * from, on a host that shares no disk with the one that handed the file off. One holder at a time,
 * fenced by the store's conditional writes (If-None-Match, If-Match); no clock compared across
 * hosts. `@azure/storage-blob` is an optional peer: the store calls the methods of your
 * `ContainerClient` and never imports it (docs/azure.md).
 *
 * ```ts
 * import { azureStore } from 'tempfile-manager/azure';
 * const store = azureStore({ client: service.getContainerClient('uploads'), prefix: 'tmp/' });
 * const ticket = await upload.handoff({ ttlMs: 3_600_000, store });
 * const worker = new TempFileManager({ stores: [store] });
 * await worker.withClaim(ticket, (claimed) => transcode(claimed.path));
 * ```
 *
 * @packageDocumentation
 * @module tempfile-manager/azure
 */
export { azureStore, AzureStore } from './store.js';
export type { AzureLocation, AzureStoreOptions, AzureSweepOptions } from './store.js';
export type { HandoffStore, StoreLocation, StoreSweepError, StoreSweepReport, StoreSweepResult } from '../base/stores.js';
export { StoreError } from '../base/errors.js';
export type { StoreFailure } from '../base/errors.js';
