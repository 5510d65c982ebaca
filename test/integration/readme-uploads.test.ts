// The two upload routes of docs/uploads.md's quick start and docs/migrating.md's multer and @fastify/multipart recipes,
// run as they are written (each block is a file of test/fixtures/docs/) against the built package,
// over real HTTP. The default manager's root goes under a TMPDIR of the test's own.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { TempFileManager, type HandoffTicket } from '../../src/index.js';
import { scratchDir } from '../helpers/roots.js';

const repo = path.join(import.meta.dirname, '../..');
const fixtures = path.join(repo, 'test/fixtures/docs');
const normalize = (code: string) => code.split('\n').map((line) => line.trim()).filter(Boolean).join('\n');
const blocks = (file: string) => [...fs.readFileSync(path.join(repo, file), 'utf8').matchAll(/```js\n([\s\S]*?)```/g)].map((m) => normalize(m[1]!));

// The first bytes of an MP4 file (an ftyp box, brand mp42): a video to the sniffer.
const MP4 = Buffer.from('00000018' + '66747970' + '6d703432' + '00000000' + '69736f6d' + '6d703432', 'hex');
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');

const children: ChildProcess[] = [];
// Each fixture is stopped, and has exited, before its TMPDIR is removed (roots.ts, after this
// hook): one still running could write there after the removal and leave a directory behind.
afterEach(async () => {
  await Promise.all(children.splice(0).map(stopped));
});

function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  return exited;
}

/** Runs a fixture with PORT=0 and TMPDIR set; resolves its URL once it listens (the port it reports) and answers. */
async function serve(fixture: string): Promise<{ url: string; tmpdir: string }> {
  if (!fs.existsSync(path.join(repo, 'dist/express.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const tmpdir = scratchDir();
  const reporter = pathToFileURL(path.join(fixtures, '..', 'report-port.mjs')).href;
  const child = spawn(process.execPath, ['--import', reporter, path.join(fixtures, fixture)], { env: { ...process.env, PORT: '0', TMPDIR: tmpdir }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${fixture} did not listen within 20 s`)), 20_000);
    child.once('exit', (code) => reject(new Error(`${fixture} exited with ${code}`)));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const reported = /^\{"listeningPort":(\d+)\}$/.exec(line);
      if (!reported) return void process.stdout.write(`${line}\n`);
      clearTimeout(timer);
      resolve(Number(reported[1]));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 20_000; ; await new Promise((resolve) => setTimeout(resolve, 50))) {
    if (child.exitCode !== null) throw new Error(`${fixture} exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`${fixture} did not answer on ${port}`);
    if (await fetch(url).then(() => true, () => false)) return { url, tmpdir };
  }
}

function form(field: string, name: string, bytes: Buffer, extra: Record<string, string> = {}): FormData {
  const data = new FormData();
  for (const [key, value] of Object.entries(extra)) data.append(key, value);
  data.append(field, new Blob([bytes]), name);
  return data;
}

describe('the quick-start upload routes (docs/uploads.md, linked from the README)', () => {
  it('each quick-start block is a file of test/fixtures/docs, so that the tests below run it as written', () => {
    const sources = fs.readdirSync(fixtures).map((f) => normalize(fs.readFileSync(path.join(fixtures, f), 'utf8')));
    // The quick start opens the page: the whole apps, before the first section of the reference.
    const page = fs.readFileSync(path.join(repo, 'docs/uploads.md'), 'utf8');
    const quickStart = page.slice(page.indexOf('\n## Quick start\n'), page.indexOf('\n## ', page.indexOf('\n## Quick start\n') + 1));
    expect(page.indexOf('\n## Quick start\n')).toBeLessThan(page.indexOf('\n## Express'));
    const uploadBlocks = [...quickStart.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => normalize(m[1]!))
      .filter((b) => b.includes("from 'tempfile-manager/express'") || b.includes("from 'tempfile-manager/fastify'"));
    expect(uploadBlocks).toHaveLength(2);
    for (const block of uploadBlocks) {
      expect(sources.some((s) => s.includes(block)), block).toBe(true);
      expect(block.split('\n').length).toBeLessThanOrEqual(10);
    }
    const readmeText = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
    expect(readmeText).toContain('](docs/uploads.md)');
    for (const block of blocks('docs/migrating.md').filter((b) => b.includes('saveUploads') || b.includes('upload({'))) {
      expect(sources.some((s) => s.includes(block)), block).toBe(true);
    }
  });

  it.each(['readme-express.mjs', 'readme-fastify.mjs'])('%s: a video is handed off (202, a ticket a worker claims); a PNG is refused with 415', async (fixture) => {
    const { url, tmpdir } = await serve(fixture);
    const video = Buffer.concat([MP4, Buffer.alloc(64 * 1024, 7)]);
    const accepted = await fetch(`${url}/videos`, { method: 'POST', body: form('video', 'clip.mp4', video) });
    expect(accepted.status, await accepted.clone().text()).toBe(202);
    const ticket = (await accepted.json()) as HandoffTicket;
    expect(ticket.size).toBe(video.length);
    // The worker's file is named by its type, and the client's name travels with the ticket.
    expect(ticket).toMatchObject({ suffix: '.mp4', meta: { filename: 'clip.mp4' } });
    await using worker = new TempFileManager({ root: path.join(tmpdir, `tempfile-manager-${process.getuid!()}`), sweepOnStart: false, exitHook: false });
    await using claimed = await worker.claim(ticket);
    expect(fs.readFileSync(claimed.path).equals(video)).toBe(true);

    // Refusals as printed, with no error handler: the status and the message, never a stack or a path.
    const refused = await fetch(`${url}/videos`, { method: 'POST', body: form('video', 'clip.mp4', PNG) });
    expect(refused.status).toBe(415);
    const malformed = await fetch(`${url}/videos`, { method: 'POST', body: 'not a form', headers: { 'content-type': 'text/plain' } });
    expect(malformed.status).toBe(400);
    for (const answer of [refused, malformed]) {
      const text = await answer.text();
      expect(JSON.parse(text)).toMatchObject({ statusCode: answer.status, code: expect.stringMatching(/^ERR_TEMPFILE_/) });
      expect(text).not.toMatch(/\bat \S+ \(|node_modules|\.[cm]?[jt]s:\d|<html/i);
    }
  });
});

describe('docs/migrating.md recipes', () => {
  it('multer → upload(): req.file, req.body; 413 past maxBytes', async () => {
    const { url } = await serve('migrating-multer.mjs');
    const ok = await fetch(`${url}/upload`, { method: 'POST', body: form('file', 'a.bin', Buffer.alloc(1000), { note: 'hi' }) });
    expect(await ok.json()).toEqual({ name: 'a.bin', size: 1000, fields: { note: 'hi' } });
    const big = await fetch(`${url}/upload`, { method: 'POST', body: form('file', 'a.bin', Buffer.alloc(8 * 1024 * 1024 + 1)) });
    expect(big.status).toBe(413);
  });

  it('@fastify/multipart → request.saveUploads(): files, fields; 413 past maxCount', async () => {
    const { url } = await serve('migrating-fastify.mjs');
    const two = form('file', 'a.bin', Buffer.alloc(10), { note: 'hi' });
    two.append('file', new Blob([Buffer.alloc(20)]), 'b.bin');
    expect(await (await fetch(`${url}/upload`, { method: 'POST', body: two })).json()).toEqual({ names: ['a.bin', 'b.bin'], sizes: [10, 20], fields: { note: 'hi' } });
    const six = new FormData();
    for (let i = 0; i < 6; i++) six.append('file', new Blob(['x']), `${i}.bin`);
    expect((await fetch(`${url}/upload`, { method: 'POST', body: six })).status).toBe(413);
  });
});
