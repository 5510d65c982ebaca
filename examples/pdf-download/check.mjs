// End-to-end check: starts server.mjs on a fresh root, downloads a report in full (its bytes match
// Content-Length), aborts a second download half-way, and verifies that each temp file is gone
// once its response is over, and that nothing is left under the root after shutdown.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-check-pdf-download-'));
const pdfs = () => fs.readdirSync(root, { recursive: true }).filter((name) => name.endsWith('.pdf'));

async function until(what, test, ms = 5000) {
  for (const end = Date.now() + ms; !test(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const server = spawn(process.execPath, [path.join(import.meta.dirname, 'server.mjs')], {
  env: { ...process.env, PORT: '0', REPORT_MIB: '24', EXAMPLE_ROOT: root },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const exited = once(server, 'exit');
try {
  const [first] = await once(readline.createInterface({ input: server.stdout }), 'line');
  console.log(first);
  const url = /http:\/\/\S+/.exec(first)[0];

  const res = await fetch(url);
  assert.equal(res.status, 200);
  const length = Number(res.headers.get('content-length'));
  assert.ok(length > 20 * 1024 * 1024, `a large report (${length} bytes)`);
  let received = 0;
  let head = '';
  let tail = Buffer.alloc(0);
  for await (const chunk of res.body) {
    if (received === 0) head = Buffer.from(chunk.subarray(0, 5)).toString();
    received += chunk.length;
    tail = Buffer.concat([tail, chunk]).subarray(-6);
  }
  assert.equal(received, length, 'every byte of Content-Length arrived');
  assert.equal(head, '%PDF-');
  assert.equal(tail.toString(), '%%EOF\n');
  await until('the temp file of the full download is gone', () => pdfs().length === 0);
  console.log(`full download: ${received} bytes = Content-Length; temp file removed`);

  const aborted = await new Promise((resolve, reject) => {
    http.get(url, (response) => {
      const half = Number(response.headers['content-length']) / 2;
      let got = 0;
      response.on('data', (chunk) => {
        got += chunk.length;
        if (got < half) return;
        const during = pdfs();
        response.destroy();
        resolve({ got, during });
      });
    }).on('error', reject);
  });
  assert.equal(aborted.during.length, 1, 'the report was in a temp file while it downloaded');
  await until('the temp file of the aborted download is gone', () => pdfs().length === 0);
  console.log(`aborted download after ${aborted.got} bytes; temp file removed`);

  server.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0, 'the server shut down cleanly');
  assert.deepEqual(fs.readdirSync(root), ['.tempfile-manager'], 'nothing left under the root');
  console.log('pdf-download: check passed');
} finally {
  server.kill('SIGKILL');
  fs.rmSync(root, { recursive: true, force: true });
}
