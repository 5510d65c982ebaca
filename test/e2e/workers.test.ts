// The worker-threads and pdf-download examples, run for real: their own end-to-end checks, then
// the pdf-download cleanup asserted from here. The bullmq example needs Redis: it is in
// bullmq.test.ts, run by `npm run test:e2e`. The examples import the built package: `npm test`
// builds dist/ first.
import fs from 'node:fs';
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { run, scratchRoot, until } from './example-process.js';

describe('the examples’ own end-to-end checks', () => {
  it.each(['worker-threads', 'pdf-download'])('examples/%s/check.mjs passes', async (name) => {
    const check = run(`${name}/check.mjs`, {});
    const [code] = await check.exited;
    expect(code, check.output()).toBe(0);
  }, 120_000);
});

describe('pdf-download: the temp file lives as long as its response', () => {
  it('a full download matches Content-Length, an abort half-way too removes the file; nothing is left', async () => {
    const root = scratchRoot();
    const pdfs = () => (fs.readdirSync(root, { recursive: true }) as string[]).filter((name) => name.endsWith('.pdf'));
    const server = run('pdf-download/server.mjs', { PORT: '0', REPORT_MIB: '24', EXAMPLE_ROOT: root });
    const url = await server.waitFor(/listening on (\S+)/);

    const res = await fetch(url);
    const length = Number(res.headers.get('content-length'));
    expect(length).toBeGreaterThan(20 * 1024 * 1024);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBe(length);
    expect(body.subarray(0, 5).toString()).toBe('%PDF-');
    expect(body.subarray(-6).toString()).toBe('%%EOF\n');
    await until('the full download’s temp file is gone', () => pdfs().length === 0);

    const during = await new Promise<string[]>((resolve, reject) => {
      http
        .get(url, (response) => {
          const half = Number(response.headers['content-length']) / 2;
          let received = 0;
          response.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received < half) return;
            const seen = pdfs();
            response.destroy();
            resolve(seen);
          });
        })
        .on('error', reject);
    });
    expect(during).toHaveLength(1);
    await until('the aborted download’s temp file is gone', () => pdfs().length === 0);

    server.child.kill('SIGTERM');
    expect((await server.exited)[0]).toBe(0);
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
  }, 60_000);
});
