// The express-upload page in a real browser: Debian's Chromium driven by playwright-core.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leftovers, MiB, startExample, until, type ExampleServer } from './upload-helpers.js';

const CHROMIUM = '/usr/bin/chromium';

/** Writes `size` bytes of generated data to a file, a MiB at a time; returns its SHA-256 and head. */
function makeFile(file: string, size: number): { sha256: string; head: string } {
  const block = randomBytes(MiB);
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'w');
  for (let n = 0; n * MiB < size; n++) {
    block.writeUInt32BE(n, 0);
    fs.writeSync(fd, block);
    hash.update(block);
  }
  fs.closeSync(fd);
  block.writeUInt32BE(0, 0);
  return { sha256: hash.digest('hex'), head: block.subarray(0, 16).toString('hex') };
}

const progress = (page: Page) => page.$eval('#progress', (bar) => (bar as unknown as { value: number }).value);

describe('express-upload in Chromium', () => {
  let server: ExampleServer;
  let browser: Browser;
  let files: string;

  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's Chromium with \`apt-get install -y chromium\` (CI does).`);
    }
    files = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-browser-'));
    [server, browser] = await Promise.all([
      startExample('express-upload'),
      // launch() gives every run a fresh temporary profile (user-data dir).
      chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      }),
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (files) fs.rmSync(files, { recursive: true, force: true });
  });

  it('uploads a 64 MiB file through the file input: the progress bar reaches 100% and the worker’s result appears', async () => {
    const file = path.join(files, 'upload-64m.bin');
    const expected = makeFile(file, 64 * MiB);
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.setInputFiles('#file', file);
    await page.click('#send');

    await page.waitForFunction("document.getElementById('progress').value === 100", null, { timeout: 30_000 });
    await expect(page.textContent('#percent')).resolves.toBe('100%');
    await page.waitForSelector('#result:not([hidden])', { timeout: 30_000 });
    expect(await page.textContent('#status')).toMatch(/done/);
    expect(JSON.parse((await page.textContent('#result'))!)).toEqual({ size: 64 * MiB, ...expected });
    await page.close();
    expect(leftovers(server.root)).toEqual([]);
  });

  it('leaves no file when the page is closed half-way through an upload', async () => {
    const file = path.join(files, 'upload-32m.bin');
    makeFile(file, 32 * MiB);
    const page = await browser.newPage();
    // 8 MiB/s up: the upload takes about 4 s, time enough to leave half-way.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 8 * MiB });
    await page.goto(server.url);
    await page.setInputFiles('#file', file);
    await page.click('#send');

    await until(async () => (await progress(page)) >= 50, 'the upload to be half-way', 20_000);
    expect(await progress(page)).toBeLessThan(100);
    expect(leftovers(server.root)).toHaveLength(1); // the partial upload, in the request's scope
    await page.close();

    await until(() => leftovers(server.root).length === 0, 'the server to remove the partial upload');
    expect(fs.readdirSync(path.join(server.root, 'handoff'), { recursive: true })).toEqual([]);
  });
});
