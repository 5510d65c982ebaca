// Azure Blob Storage for the store's tests: Microsoft's emulator, Azurite, started by each test file
// on a free port of 127.0.0.1 with a data directory of its own (scripts/azurite.mjs), and killed
// after the file's tests. Where Azurite is not installed (`node scripts/azurite.mjs install`, which
// `npm run test:azure` runs), each test skips and one line says why; under CI it fails instead (the
// house rule of test/s3/server.ts).
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeEach, type TestContext } from 'vitest';
import { TempFileManager, type TempFileManagerOptions } from '../../src/index.js';
import type { HandoffStore } from '../../src/base/stores.js';
// @ts-expect-error: a plain script module, without types
import { installed, startAzurite, DIR, VERSION } from '../../scripts/azurite.mjs';
// @ts-expect-error: a plain fixture module shared with the child processes, without types
import { azuriteContainer } from '../fixtures/azure-client.mjs';

/** A running Azurite: what a client needs, and its process. */
export interface Azurite {
  readonly endpoint: string;
  readonly port: number;
  readonly account: string;
  readonly key: string;
  readonly location: string;
  child: ChildProcess;
}

type Start = (options: { location: string; port?: number }) => Promise<Azurite>;

let running: Promise<Azurite | { reason: string }> | undefined;
const dirs: string[] = [];

afterAll(async () => {
  const found = await running;
  if (found && 'child' in found) await stopAzurite(found);
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** This file's Azurite (started on first use), or why there is none. */
export function azurite(): Promise<Azurite | { reason: string }> {
  running ??= (async () => {
    if (!(installed as () => boolean)()) {
      return { reason: `needs Azurite ${VERSION as string}: none in ${DIR as string}; run \`node scripts/azurite.mjs install\` (or \`npm run test:azure\`)` };
    }
    const location = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-azurite-'));
    dirs.push(location);
    try {
      return await (startAzurite as Start)({ location });
    } catch (err) {
      return { reason: `needs Azurite, which did not start: ${(err as Error).message}` };
    }
  })();
  return running;
}

/** Skips the test (printing why) where Azurite cannot run and CI is unset; fails under CI. */
export async function needsAzurite(ctx: TestContext): Promise<Azurite> {
  const result = await azurite();
  if ('child' in result) return result;
  if (process.env.CI) throw new Error(`this test ${result.reason}, and CI is set: CI must provide it (.ci/run installs Azurite)`);
  console.warn(`skipped: "${ctx.task.name}" ${result.reason}; CI=1 runs it`);
  ctx.skip(result.reason);
  throw new Error('unreachable');
}

/** {@link needsAzurite} for every test of the enclosing `describe`. */
export function eachNeedsAzurite(): void {
  beforeEach(async (ctx) => {
    await needsAzurite(ctx);
  });
}

/** Kills Azurite (SIGKILL: mid-request, as a crash) and waits for its exit. */
export async function killAzurite(server: Azurite, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill(signal);
  await exited;
}

/** Stops it for good. */
export async function stopAzurite(server: Azurite): Promise<void> {
  await killAzurite(server, 'SIGTERM');
}

/**
 * Stops it mid-request and starts it again on the same port and data: what a restarted service is.
 * Stopped with SIGTERM, which closes its sockets at once and then saves its metadata: Azurite keeps
 * its metadata in memory and writes it out every 5 s, so a SIGKILL can lose writes it acknowledged
 * (even the container), which the real service never does. SIGKILL if it has not exited in 10 s.
 */
export async function restartAzurite(server: Azurite): Promise<void> {
  const exited = killAzurite(server, 'SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
  const again = await (startAzurite as Start)({ location: server.location, port: server.port });
  server.child = again.child;
}

/** A container (made if missing) on the running Azurite; `maxTries` 1: a refused connection fails at once. */
export async function containerFor(server: Azurite, name: string, overrides: { maxTries?: number } = {}): Promise<ContainerClient> {
  const client = (azuriteContainer as (state: Azurite, name: string, o: { maxTries?: number }) => ContainerClient)(server, name, overrides);
  await client.createIfNotExists();
  return client;
}

/** A client of `name` without making it (for a missing container). */
export function clientOf(server: Azurite | { endpoint: string; account: string; key: string }, name: string, overrides: { maxTries?: number } = {}): ContainerClient {
  return (azuriteContainer as (state: unknown, name: string, o: { maxTries?: number }) => ContainerClient)(server, name, overrides);
}

/** Every blob name under `prefix`. */
export async function blobsUnder(client: ContainerClient, prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const item of client.listBlobsFlat({ prefix, includeUncommitedBlobs: true })) names.push(item.name);
  return names.sort();
}

/** "Hosts" that share no disk: each manager has a root of its own, removed after the file's tests. */
export function separateHosts(label: string, staleMs: number) {
  const roots: string[] = [];
  afterAll(() => {
    for (const root of roots) fs.rmSync(root, { recursive: true, force: true });
  });
  const newRoot = (): string => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `tfm-az-${label}-`));
    roots.push(root);
    return path.join(root, 'r');
  };
  const manager = (stores: readonly HandoffStore[] = [], options: TempFileManagerOptions = {}): TempFileManager =>
    new TempFileManager({ root: newRoot(), stores, sweepOnStart: false, exitHook: false, staleMs, ...options });
  return { newRoot, manager };
}
