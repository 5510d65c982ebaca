import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Server } from '@tus/server';
import { Upload as TusClientUpload } from 'tus-js-client';
import { afterEach } from 'vitest';
import type { TempFileManager } from '../../src/index.js';
import { tusStore, type TusStoreOptions } from '../../src/tus/index.js';
import { until } from './wait.js';

/** A tus server on tempfile-manager/tus, in this process, on a real HTTP port. */
export interface TusTestServer {
  readonly url: string;
  readonly server: Server;
  readonly datastore: Awaited<ReturnType<typeof tusStore>>['datastore'];
  close(): Promise<void>;
}

export async function startTusServer(manager: TempFileManager, options: Omit<TusStoreOptions, 'manager'> = {}): Promise<TusTestServer> {
  const { datastore, locker } = await tusStore({ manager, ...options });
  const server = new Server({ path: '/files', datastore, locker });
  const listener = http.createServer((req, res) => void server.handle(req, res));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/files`,
    server,
    datastore,
    close: () => new Promise<void>((resolve) => {
      listener.closeAllConnections();
      listener.close(() => resolve());
    }),
  };
}

/** What a raw HTTP exchange answered. */
export interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One tus request, its body sent whole (or none). */
export function tusRequest(url: string, method: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  const open = openTusRequest(url, method, { ...headers, 'Content-Length': String(body?.length ?? 0) });
  open.request.end(body);
  return open.answer;
}

/** A tus request whose body the test sends as it likes (`request.write`, `request.end`, `request.destroy`). */
export function openTusRequest(url: string, method: string, headers: Record<string, string>): { request: http.ClientRequest; answer: Promise<Answer> } {
  const request = http.request(url, { method, headers: { 'Tus-Resumable': '1.0.0', ...headers }, agent: false });
  const answer = new Promise<Answer>((resolve, reject) => {
    request.on('error', reject);
    request.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
  });
  request.flushHeaders();
  return { request, answer };
}

/** Makes an upload of `length` bytes; its URL. `metadata` is encoded as tus does (base64 values). */
export async function createUpload(url: string, length: number, metadata: Record<string, string> = {}): Promise<string> {
  const encoded = Object.entries(metadata).map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`).join(',');
  const answer = await tusRequest(url, 'POST', { 'Upload-Length': String(length), ...(encoded && { 'Upload-Metadata': encoded }) });
  if (answer.status !== 201) throw new Error(`POST answered ${answer.status}: ${answer.body}`);
  return new URL(answer.headers.location!, url).href;
}

/** The directory of the upload at `url` under `<root>/tus`. */
export function uploadDirOf(root: string, url: string): string {
  return path.join(root, 'tus', `upload_${url.slice(url.lastIndexOf('/') + 1)}`);
}

/** Waits until the expiry the upload's info file records has passed (by the clock the stores and the sweep read). */
export async function untilExpired(dir: string): Promise<void> {
  const { expiresAt } = JSON.parse(fs.readFileSync(path.join(dir, 'info.json'), 'utf8')) as { expiresAt: number };
  await until(() => Date.now() > expiresAt, 30_000, 'the upload expired');
}

/** PATCH headers at `offset`. */
export function patchHeaders(offset: number, length: number): Record<string, string> {
  return { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(length) };
}

/** Uploads `data` with tus-js-client, resuming `uploadUrl` when given; resolves with the upload's URL. */
export function clientUpload(data: Buffer, options: { endpoint?: string; uploadUrl?: string; metadata?: Record<string, string>; chunkSize?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const upload = new TusClientUpload(data, {
      ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
      ...(options.uploadUrl !== undefined && { uploadUrl: options.uploadUrl }),
      metadata: options.metadata ?? {},
      ...(options.chunkSize !== undefined && { chunkSize: options.chunkSize }),
      retryDelays: [],
      onError: reject,
      onSuccess: () => resolve(upload.url!),
    });
    upload.start();
  });
}

/** A test file's way to start tus servers: each one started is closed after the test that started it. */
export function tusServers(): (...args: Parameters<typeof startTusServer>) => Promise<TusTestServer> {
  const servers: TusTestServer[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
  });
  return async (...args) => {
    const server = await startTusServer(...args);
    servers.push(server);
    return server;
  };
}
