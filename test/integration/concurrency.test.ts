import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { TempFileManager } from '../../src/index.js';
import { freshRoot } from '../helpers/roots.js';

const workerScript = path.join(import.meta.dirname, '../fixtures/worker-create.mjs');

interface WorkerReport {
  paths: string[];
  intact: boolean;
  session: string;
}

function once<T>(worker: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

describe('concurrency', () => {
  it('eight worker threads sharing a root make 16,000 files with no clash and no loss', async () => {
    const root = freshRoot();
    new TempFileManager({ root, sweepOnStart: false, exitHook: false }).closeSync();
    const workers = Array.from({ length: 8 }, () => new Worker(workerScript, { workerData: { root, count: 2000 } }));
    const reports = await Promise.all(workers.map((w) => once<WorkerReport>(w)));
    const all = reports.flatMap((r) => r.paths);
    expect(new Set(all).size).toBe(16_000);
    expect(reports.every((r) => r.intact)).toBe(true);
    expect(new Set(reports.map((r) => r.session)).size).toBe(8);
    for (const p of all) expect(fs.existsSync(p)).toBe(true);
    const closed = workers.map((w) => once<{ closed: boolean }>(w));
    for (const w of workers) w.postMessage('close');
    await Promise.all(closed);
    await Promise.all(workers.map((w) => w.terminate()));
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
  });

  it('fifty managers in one process each keep their own session and files', async () => {
    const root = freshRoot();
    const managers = Array.from({ length: 50 }, () => new TempFileManager({ root, sweepOnStart: false, exitHook: false }));
    const files = managers.flatMap((mgr) => Array.from({ length: 40 }, () => mgr.file()));
    expect(new Set(files.map((f) => f.path)).size).toBe(2000);
    expect(new Set(managers.map((m) => m.sessionPath)).size).toBe(50);
    await Promise.all(managers.slice(0, 25).map((m) => m.close()));
    // Closing half the managers leaves the other half's files untouched.
    for (const [i, file] of files.entries()) expect(fs.existsSync(file.path)).toBe(i >= 25 * 40);
    await Promise.all(files.map((f) => f.remove()));
    await Promise.all(managers.map((m) => m.close()));
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
  });

  it('removes thousands of files disposed at once without losing one', async () => {
    const root = freshRoot();
    await using mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
    const scope = mgr.scope();
    const files = Array.from({ length: 3000 }, (_, i) => (i % 10 ? scope.file() : scope.dir()));
    await scope.remove();
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
    expect(files.every((f) => f.disposed)).toBe(true);
  });
});
