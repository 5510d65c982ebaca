// What the host programs share: the library under test (the build, or a mutated copy of it),
// their events to the runner, and a canary: a live temp file whose bytes must survive the run.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

export const lib = await import(pathToFileURL(process.env.TFM_LIB).href);
export const ROOT = process.env.TFM_ROOT;
export const STALE_MS = Number(process.env.TFM_STALE_MS);
// Shorter than the default (60 s) so that the run's own leftovers are swept at its end; longer
// than a handoff's staging takes on a loaded machine, which the sweep judges by age alone.
export const GRACE_MS = 10_000;
export { sleep };

// The object-store mode: TFM_S3 holds the gateway's endpoint and keys (scripts/rgw.mjs's state),
// TFM_BUCKET the bucket. Then the files go through the store, and each host's root is its own disk.
export const PREFIX = 'hosts/';
// TFM_AZURE instead: Azurite's endpoint, account and key, TFM_BUCKET the container.
export const store = process.env.TFM_S3 ? await openStore(JSON.parse(process.env.TFM_S3)) : process.env.TFM_AZURE ? await openAzure(JSON.parse(process.env.TFM_AZURE)) : undefined;

async function openAzure(state) {
  const { azuriteContainer } = await import('../fixtures/azure-client.mjs');
  const azure = await import(pathToFileURL(path.join(path.dirname(process.env.TFM_LIB), 'azure.js')).href);
  // Azurite, one Node process, answers a burst more slowly than RGW on a loaded two-core machine.
  return azure.azureStore({ client: azuriteContainer(state, process.env.TFM_BUCKET), prefix: PREFIX, timeoutMs: 15_000 });
}

async function openStore(state) {
  const { gatewayClient } = await import('../fixtures/s3-client.mjs');
  // The s3 entry next to the library under test: a mutated build's own, when there is one.
  const s3 = await import(pathToFileURL(path.join(path.dirname(process.env.TFM_LIB), 's3.js')).href);
  // Requests time out within seconds: a host cut off learns it soon (the SDK tries each request
  // three times), and comes back to a working store once its link is up.
  return s3.s3Store({ client: gatewayClient(state), bucket: process.env.TFM_BUCKET, prefix: PREFIX, timeoutMs: 5000 });
}

/** One event for the runner, as a JSON line on stdout. */
export function emit(ev, fields = {}) {
  process.stdout.write(`${JSON.stringify({ ev, ...fields })}\n`);
}

export function sha256(bytes) {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * A manager on the shared root with this host's id (from TEMPFILE_MANAGER_HOST_ID); in the
 * object-store mode, on this host's own root, claiming from the store and sweeping it.
 */
export function manager() {
  return new lib.TempFileManager({ root: ROOT, staleMs: STALE_MS, graceMs: GRACE_MS, sweepOnStart: false, ...(store && { stores: [store] }) });
}

/** A live file of this process that no sweeper may remove while the process lives. */
export async function plantCanary(mgr) {
  const bytes = randomBytes(512);
  const file = mgr.file('.canary');
  fs.writeFileSync(file.path, bytes);
  return {
    check() {
      try {
        return sha256(fs.readFileSync(file.path)) === sha256(bytes);
      } catch {
        return false;
      }
    },
  };
}

/** Calls `stop` on SIGTERM, then exits. */
export function onTerm(stop) {
  process.on('SIGTERM', async () => {
    try {
      await stop();
    } catch (err) {
      emit('error', { where: 'stop', message: String(err?.message ?? err) });
    }
    process.exit(0);
  });
}
