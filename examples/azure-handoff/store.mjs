// The container both processes use, and how each finds the storage account: the connection string
// in AZURE_STORAGE_CONNECTION_STRING (run.mjs sets it to the Azurite it starts when none is given).
// Nothing here is shared on disk between the two processes: each builds its own client and store
// from the same settings.
import { BlobServiceClient } from '@azure/storage-blob';
import { azureStore } from 'tempfile-manager/azure';

export const CONTAINER = process.env.AZURE_CONTAINER || 'tfm-example-azure-handoff';
export const PREFIX = process.env.AZURE_PREFIX || 'handoffs/';

/** The connection string, or `{ reason }` saying why there is none. */
export function accountSettings() {
  const connection = process.env.AZURE_STORAGE_CONNECTION_STRING;
  if (!connection) return { reason: 'AZURE_STORAGE_CONNECTION_STRING is not set (run.mjs sets it to an Azurite of its own)' };
  return { connection };
}

/** A ContainerClient of the container (a few quick retries: the example's service is local). */
export function makeContainer(settings) {
  const service = BlobServiceClient.fromConnectionString(settings.connection, { retryOptions: { maxTries: 3, retryDelayInMs: 100, maxRetryDelayInMs: 1000 } });
  return service.getContainerClient(CONTAINER);
}

/** The store each process makes for itself: the same container and prefix, its own client. */
export function makeStore(container) {
  return azureStore({ client: container, prefix: PREFIX });
}
