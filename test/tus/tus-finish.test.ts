// How an upload's finish ends, from the client's side: a client is never told an upload finished
// unless onUploadFinish received it and returned. Refused (415, 422), failed (verify threw or timed
// out, 503; onUploadFinish threw, 500): the file is removed, and every later HEAD and PATCH is a
// 404, which ends tus-js-client's retries. While the finish runs, a HEAD is a 423 (retry later).
// The real tus-js-client, with its default retryDelays, against a real @tus/server.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Upload as TusClientUpload } from 'tus-js-client';
import type { TempFile } from '../../src/index.js';
import type { TusStoreOptions } from '../../src/tus/index.js';
import { manager } from '../helpers/roots.js';
import { createUpload, openTusRequest, patchHeaders, tusRequest, tusServers } from '../helpers/tus.js';
import { until } from '../helpers/wait.js';

const serve = tusServers();

interface Outcome {
  readonly outcome: 'success' | 'error';
  readonly url: string | null;
  readonly message: string;
}

/** One tus-js-client upload with its default retryDelays; how it ended, and the upload URL it used last. */
function upload(data: Buffer, options: { readonly endpoint?: string; readonly uploadUrl?: string }): Promise<Outcome> {
  return new Promise((resolve) => {
    const client: TusClientUpload = new TusClientUpload(data, {
      ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
      ...(options.uploadUrl !== undefined && { uploadUrl: options.uploadUrl }),
      metadata: { filename: 'file.bin' },
      onError: (error) => resolve({ outcome: 'error', url: client.url, message: error.message }),
      onSuccess: () => resolve({ outcome: 'success', url: client.url, message: '' }),
    });
    client.start();
  });
}

function uploadsOnDisk(root: string): string[] {
  const dir = path.join(root, 'tus');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

type Failure = readonly [name: string, status: number, options: Omit<TusStoreOptions, 'manager'>];

const failures: readonly Failure[] = [
  ['verify refuses', 422, { verify: () => false }],
  ['accept refuses', 415, { accept: ['image/png'] }],
  ['verify throws', 503, { verify: () => Promise.reject(new Error('the scanner is down')) }],
  ['verify times out', 503, { verify: () => new Promise<boolean>(() => {}), verifyTimeoutMs: 200 }],
  ['onUploadFinish throws', 500, { onUploadFinish: () => Promise.reject(new Error('the database is down')) }],
];

describe('a finish that fails is never reported as a success', () => {
  for (const [name, status, options] of failures) {
    it(`${name} (${status}): tus-js-client with its default retries ends in onError, and so does a resume from the upload's URL`, async () => {
      const mgr = manager();
      const { url } = await serve(mgr, options);
      const data = Buffer.from('not an image, and not clean either');

      const client = await upload(data, { endpoint: url });
      expect(client.outcome, client.message).toBe('error');
      expect(client.url).not.toBeNull();
      const resumed = await upload(data, { uploadUrl: client.url! });
      expect(resumed.outcome, resumed.message).toBe('error');
      // The last PATCH answers the status; a HEAD after it must not answer the upload complete.
      const raw = await createUpload(url, data.length);
      const patched = await tusRequest(raw, 'PATCH', patchHeaders(0, data.length), data);
      expect(patched.status).toBe(status);
      const head = await tusRequest(raw, 'HEAD', {});
      expect(head.status).toBe(404);
      expect(head.headers['upload-offset']).toBeUndefined();
      expect((await tusRequest(raw, 'PATCH', patchHeaders(data.length, 0), Buffer.alloc(0))).status).toBe(404);
      expect((await tusRequest(raw, 'PATCH', patchHeaders(0, data.length), data)).status).toBe(404);

      const resumedRaw = await upload(data, { uploadUrl: raw });
      expect(resumedRaw.outcome, resumedRaw.message).toBe('error');

      expect(uploadsOnDisk(mgr.root)).toEqual([]);
      expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
      expect(mgr.stats().liveBytes).toBe(0);
    });
  }

  it('a finish that succeeds is still told to a client that asks again: HEAD answers the upload complete', async () => {
    const mgr = manager();
    const finished: number[] = [];
    const { url } = await serve(mgr, { onUploadFinish: (file: TempFile) => void finished.push(file.size ?? -1) });
    const data = Buffer.from('all of it');
    const done = await upload(data, { endpoint: url });
    expect(done.outcome, done.message).toBe('success');
    expect(finished).toEqual([data.length]);
    const head = await tusRequest(done.url!, 'HEAD', {});
    expect(head.status).toBe(200);
    expect(head.headers['upload-offset']).toBe(String(data.length));
    expect((await upload(data, { uploadUrl: done.url! })).outcome).toBe('success');
  });
});

describe('while the finish runs, a HEAD does not answer the upload complete', () => {
  const hooks: readonly (readonly [string, number, (gate: Promise<void>) => Omit<TusStoreOptions, 'manager'>])[] = [
    ['verify', 503, (gate) => ({ verify: () => gate.then(() => Promise.reject(new Error('the scanner went down'))), verifyTimeoutMs: 0 })],
    ['onUploadFinish', 500, (gate) => ({ onUploadFinish: () => gate.then(() => Promise.reject(new Error('the database went down'))) })],
  ];
  for (const [hook, status, options] of hooks) {
    it(`${hook} running: HEAD is a 423; once it failed, a 404`, async () => {
      const mgr = manager();
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const { url } = await serve(mgr, options(gate));
      const data = Buffer.from('twelve bytes');
      const target = await createUpload(url, data.length);
      const patch = openTusRequest(target, 'PATCH', patchHeaders(0, data.length));
      patch.request.end(data);
      // The data file leaves the upload's directory once the finish has it.
      const dir = path.join(mgr.root, 'tus', `upload_${target.slice(target.lastIndexOf('/') + 1)}`);
      await until(() => !fs.existsSync(dir), 30_000, 'the finish under way');
      const during = await tusRequest(target, 'HEAD', {});
      expect(during.status).toBe(423);
      expect(during.headers['upload-offset']).toBeUndefined();
      open();
      expect((await patch.answer).status).toBe(status);
      expect((await tusRequest(target, 'HEAD', {})).status).toBe(404);
    });
  }
});
