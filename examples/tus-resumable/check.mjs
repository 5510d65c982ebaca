// End-to-end self-check of this example (`npm run examples:check`), in Debian's Chromium driven by
// playwright-core: the page makes 32 MiB and uploads them with tus-js-client, throttled to 8 MiB/s;
// once 8 MiB are on the server's disk the server is killed (SIGKILL) and started again on the same
// root and port; the page resumes from the bytes on disk, the worker finds the SHA-256 the page
// computed, and nothing is left under the root. Exits non-zero on any failure.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const MiB = 1024 * 1024;
const here = path.dirname(fileURLToPath(import.meta.url));

setTimeout(() => {
  console.error('tus-resumable check: timed out');
  process.exit(1);
}, 90_000).unref();

if (!fs.existsSync(CHROMIUM)) {
  console.error(`tus-resumable check: ${CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium), as CI does.`);
  process.exit(1);
}

const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'tus-resumable-check-'));
const root = path.join(parent, 'root');
const servers = new Set();
process.on('exit', () => {
  for (const child of servers) child.kill('SIGKILL');
  fs.rmSync(parent, { recursive: true, force: true });
});

/** A port free now, for both runs of the server. */
async function freePort() {
  const probe = net.createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Starts server.mjs as a process of its own; resolves once it listens. */
function startServer(port) {
  const child = spawn(process.execPath, [path.join(here, 'server.mjs')], {
    env: { ...process.env, PORT: String(port), EXAMPLE_ROOT: root },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  servers.add(child);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    let output = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (output.includes('listening on')) resolve({ child, exited });
    });
    exited.then(({ code, signal }) => reject(new Error(`the server ended before it listened (${code ?? signal}):\n${output}`)));
  });
}

/** The bytes of the one upload in progress on the server's disk (its data file, free or held). */
function bytesOnDisk() {
  const tus = path.join(root, 'tus');
  const uploads = fs.existsSync(tus) ? fs.readdirSync(tus) : [];
  if (uploads.length !== 1) return 0;
  const dir = path.join(tus, uploads[0]);
  const data = fs.readdirSync(dir).find((name) => name !== 'info.json');
  return data === undefined ? 0 : fs.statSync(path.join(dir, data)).size;
}

async function until(check, what, ms = 30_000) {
  for (const deadline = Date.now() + ms; !(await check()); await sleep(20)) {
    assert.ok(Date.now() < deadline, `${what} did not happen within ${ms / 1000} s`);
  }
}

const started = Date.now();
const port = await freePort();
let server = await startServer(port);
let survived = 0;
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  // 8 MiB/s up: the 32 MiB take about 4 s, time enough to kill the server mid-way.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 8 * MiB });
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.fill('#size', '32');
  await page.click('#send');

  await until(() => bytesOnDisk() >= 8 * MiB, 'the first 8 MiB on the server');
  server.child.kill('SIGKILL');
  assert.equal((await server.exited).signal, 'SIGKILL');
  survived = bytesOnDisk();
  assert.ok(survived >= 8 * MiB && survived < 32 * MiB, `${survived} bytes on disk after the kill`);

  server = await startServer(port);
  await page.waitForFunction('window.upload.done === true', null, { timeout: 45_000 });
  const seen = await page.evaluate(() => window.upload);
  const result = JSON.parse(await page.textContent('#result'));
  assert.deepEqual(result, { size: 32 * MiB, sha256: seen.sha256, verified: true });
  assert.match(await page.textContent('#status'), /^done/);
  assert.ok(seen.retries >= 1, 'tus-js-client never retried: the server was not cut off mid-upload');
  // tus-js-client asked the new server where to go on: it answered the bytes that survived, or more.
  assert.ok(seen.heads.some((offset) => offset >= survived), `HEAD answered ${seen.heads.join(', ')}, not the ${survived} bytes on disk`);
  await page.close();
} finally {
  await browser.close();
  server.child.kill('SIGTERM');
  await server.exited;
}
// The worker consumed the handoff entry; the finished upload left <root>/tus; the killed server's
// session went with the restarted server's first sweep; the graceful one's at its close.
const left = fs.readdirSync(root, { recursive: true }).filter((name) => !['handoff', 'tus', '.tempfile-manager'].includes(name));
assert.deepEqual(left, [], `left under ${root}`);
console.log(`tus-resumable check passed in ${((Date.now() - started) / 1000).toFixed(1)} s: 32 MiB uploaded from Chromium, the server killed with ${(survived / MiB).toFixed(1)} MiB on disk, the upload resumed from the bytes on disk and verified by the worker; nothing left under the root`);
