// The bucket both processes use, and how each finds the gateway: the environment (S3_ENDPOINT and
// its keys), else the state file of the Ceph RGW that `node scripts/rgw.mjs start` runs for the
// tests (the same file test/s3/server.ts reads). Nothing here is shared on disk between the two
// processes: each builds its own client and store from the same settings.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { s3Store } from 'tempfile-manager/s3';

export const BUCKET = process.env.S3_BUCKET || 'tfm-example-s3-handoff';
export const PREFIX = process.env.S3_PREFIX || 'handoffs/';

const STATE_FILE =
  process.env.TEMPFILE_MANAGER_S3_STATE ??
  path.join(path.resolve(process.env.TEMPFILE_MANAGER_RGW_DIR || path.join(os.tmpdir(), 'tempfile-manager-rgw')), 'state.json');

/** The gateway's settings, or `{ reason }` saying why there are none. */
export function gatewaySettings() {
  if (process.env.S3_ENDPOINT) {
    return {
      endpoint: process.env.S3_ENDPOINT,
      region: process.env.S3_REGION || 'us-east-1',
      accessKeyId: process.env.S3_ACCESS_KEY_ID ?? '',
      secretAccessKey: process.env.S3_SECRET_ACCESS_KEY ?? '',
      from: 'S3_ENDPOINT',
    };
  }
  try {
    const state = JSON.parse(fs.readFileSync(STATE_FILE, 'utf8'));
    return { endpoint: state.endpoint, region: state.region, accessKeyId: state.accessKeyId, secretAccessKey: state.secretAccessKey, from: STATE_FILE };
  } catch (err) {
    return {
      reason:
        `no S3 gateway configured: S3_ENDPOINT is not set and ${STATE_FILE} cannot be read (${err.code ?? 'not JSON'}). ` +
        'Start the test gateway (sudo node scripts/rgw.mjs install, once; node scripts/rgw.mjs start) or set S3_ENDPOINT, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY',
    };
  }
}

/** An S3 client with the settings a gateway that is not AWS needs (docs/s3.md). */
export function makeClient(settings) {
  return new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: true,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 2,
  });
}

/** Whether the gateway answers at all (any HTTP answer), within `timeoutMs`. */
export async function answers(settings, timeoutMs = 3000) {
  try {
    await fetch(settings.endpoint, { signal: AbortSignal.timeout(timeoutMs) });
    return true;
  } catch {
    return false;
  }
}

/** Makes the bucket if it is missing. */
export async function ensureBucket(client) {
  try {
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } catch (err) {
    if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
  }
}

/** The store each process makes for itself: the same bucket and prefix, its own client. */
export function makeStore(client) {
  return s3Store({ client, bucket: BUCKET, prefix: PREFIX });
}
