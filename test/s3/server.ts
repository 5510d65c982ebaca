// The real S3 server the store's tests run against: the Ceph RADOS Gateway that
// `node scripts/rgw.mjs start` (or `npm run test:s3`) brings up, found through its state file.
// Where none answers, each test skips and one line says why; under CI it fails instead
// (test/helpers/privileges.ts, the same house rule).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeEach, type TestContext } from 'vitest';
import { TempFileManager, type TempFileManagerOptions } from '../../src/index.js';
import type { S3Store } from '../../src/s3/index.js';
// @ts-expect-error: a plain fixture module shared with the child processes, without types
import { gatewayClient } from '../fixtures/s3-client.mjs';

/** What `scripts/rgw.mjs start` writes. */
export interface RgwState {
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly dir: string;
}

/** The state file: $TEMPFILE_MANAGER_S3_STATE, else the default of scripts/rgw.mjs. */
export const STATE_FILE =
  process.env.TEMPFILE_MANAGER_S3_STATE ??
  path.join(path.resolve(process.env.TEMPFILE_MANAGER_RGW_DIR || path.join(os.tmpdir(), 'tempfile-manager-rgw')), 'state.json');

function answers(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${endpoint}/`, { timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

let found: Promise<{ state: RgwState } | { reason: string }> | undefined;

/** The running server's state, or why there is none. Looked up once per test file. */
export function server(): Promise<{ state: RgwState } | { reason: string }> {
  found ??= (async () => {
    let state: RgwState;
    try {
      state = JSON.parse(fs.readFileSync(STATE_FILE, 'utf8')) as RgwState;
    } catch (err) {
      return { reason: `needs a running S3 server: no state file ${STATE_FILE} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}); run \`npm run test:s3\`, which starts Ceph RGW (node scripts/rgw.mjs install, as root, first)` };
    }
    if (!(await answers(state.endpoint))) return { reason: `needs a running S3 server: ${state.endpoint} (from ${STATE_FILE}) does not answer; run \`node scripts/rgw.mjs start\`` };
    return { state };
  })();
  return found;
}

/** Skips the test (printing why) where no server runs and CI is unset; fails under CI. */
export async function needsS3(ctx: TestContext): Promise<RgwState> {
  const result = await server();
  if ('state' in result) return result.state;
  if (process.env.CI) throw new Error(`this test ${result.reason}, and CI is set: CI must provide it (.ci/run starts RGW)`);
  console.warn(`skipped: "${ctx.task.name}" ${result.reason}; CI=1 runs it`);
  ctx.skip(result.reason);
  throw new Error('unreachable');
}

/** {@link needsS3} for every test of the enclosing `describe`. */
export function eachNeedsS3(): void {
  beforeEach(async (ctx) => {
    await needsS3(ctx);
  });
}

/** An S3Client for the server, with the settings docs/s3.md gives for a gateway. */
export function clientFor(state: RgwState, overrides: { endpoint?: string; maxAttempts?: number } = {}): S3Client {
  return (gatewayClient as (state: RgwState, overrides: { endpoint?: string; maxAttempts?: number }) => S3Client)(state, overrides);
}

/** A bucket for one test file (made if missing). */
export async function bucketFor(client: S3Client, name: string): Promise<string> {
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } catch (err) {
    const code = (err as { name?: string }).name;
    if (code !== 'BucketAlreadyOwnedByYou' && code !== 'BucketAlreadyExists') throw err;
  }
  return name;
}

/**
 * "Hosts" that share no disk, for one test file: each root (and each manager's) is a directory of
 * its own under the temp directory, removed after the file's tests.
 */
export function separateHosts(label: string, staleMs: number) {
  const roots: string[] = [];
  afterAll(() => {
    for (const root of roots) fs.rmSync(root, { recursive: true, force: true });
  });
  const newRoot = (): string => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `tfm-s3-${label}-`));
    roots.push(root);
    return path.join(root, 'r');
  };
  /** A manager on a host of its own, claiming through `stores`. */
  const manager = (stores: readonly S3Store[] = [], options: TempFileManagerOptions = {}): TempFileManager =>
    new TempFileManager({ root: newRoot(), stores, sweepOnStart: false, exitHook: false, staleMs, ...options });
  return { newRoot, manager };
}
