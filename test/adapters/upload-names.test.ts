// An uploaded file is created with the extension of its type (found from its bytes), else a safe
// one of the client's name, and its ticket keeps the client's name, made safe, in meta.filename.
// The names are the attacker's: separators, `..`, controls, 10 KB, Windows device names. None of
// them may change where the file is made, crash the route, or reach the worker unsafe.
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { upload } from '../../src/adapters/express.js';
import tempFiles from '../../src/adapters/fastify.js';
import type { HandoffTicket, TempFileManager } from '../../src/index.js';
import { BOUNDARY, formEnd, listenClosing } from '../helpers/http-clients.js';
import { png } from '../helpers/magic.js';
import { freshRoot, listTree, manager } from '../helpers/roots.js';
import { sessionFiles } from '../helpers/wait.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

interface Received {
  readonly suffix: string;
  readonly dir: string;
  readonly ticket: HandoffTicket;
}

type Adapter = 'express' | 'fastify';

/** `POST /upload`: one file, answered with where it was made and the ticket of its handoff. */
async function serve(adapter: Adapter, mgr: TempFileManager, detectType = true): Promise<string> {
  if (adapter === 'fastify') {
    const app = Fastify();
    await app.register(tempFiles, { manager: mgr });
    app.post('/upload', async (request) => {
      const { file } = await request.saveUploads({ field: 'file', detectType });
      return { suffix: file.suffix, dir: path.dirname(file.path), ticket: await file.handoff({ ttlMs: 60_000 }) };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  }
  const app = express();
  app.post('/upload', upload({ field: 'file', manager: mgr, detectType }), async (req, res) => {
    const file = req.file!;
    res.json({ suffix: file.suffix, dir: path.dirname(file.path), ticket: await file.handoff({ ttlMs: 60_000 }) });
  });
  return listenClosing(app, closers);
}

/** A form with one file part whose filename parameter is `filename` as raw bytes (UTF-8). */
async function send(url: string, filename: string, data: Buffer): Promise<{ status: number; body: Received }> {
  const head = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`, 'utf8');
  const body = Buffer.concat([head, data, Buffer.from(`\r\n${formEnd.replace('\n', '\r\n')}`)]);
  const response = await fetch(`${url}/upload`, { method: 'POST', body, headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } });
  const text = await response.text();
  return { status: response.status, body: response.ok ? (JSON.parse(text) as Received) : ({ text } as never) };
}

/** The worker's side: the ticket is claimed, and its file has the ticket's suffix. */
async function claimedName(mgr: TempFileManager, ticket: HandoffTicket): Promise<string> {
  await using claimed = await mgr.claim(ticket);
  return path.basename(claimed.path);
}

describe.each<Adapter>(['express', 'fastify'])('the names of uploaded files, %s', (adapter) => {
  it('a PNG sent as ../../evil.png.exe is made as .png in the session; the ticket keeps evil.png.exe in meta', async () => {
    const mgr = manager();
    const { status, body } = await send(await serve(adapter, mgr), '../../evil.png.exe', png());
    expect(status).toBe(200);
    expect(body.suffix).toBe('.png');
    expect(body.dir).toBe(mgr.sessionPath);
    expect(body.ticket).toMatchObject({ suffix: '.png', meta: { filename: 'evil.png.exe' } });
    expect(await claimedName(mgr, body.ticket)).toMatch(/\.png$/);
  });

  it('without detectType nor accept, the bytes are not sniffed: a PNG sent as evil.png.exe is made as .exe, its type unknown', async () => {
    const mgr = manager();
    const { status, body } = await send(await serve(adapter, mgr, false), '../../evil.png.exe', png());
    expect(status).toBe(200);
    expect(body.suffix).toBe('.exe');
    expect(body.ticket).toMatchObject({ suffix: '.exe', meta: { filename: 'evil.png.exe' } });
  });

  it('a file of no known type sent as report.csv is made as .csv', async () => {
    const mgr = manager();
    const { status, body } = await send(await serve(adapter, mgr), 'report.csv', Buffer.from('id,amount\n1,20\n'));
    expect(status).toBe(200);
    expect(body.ticket).toMatchObject({ suffix: '.csv', meta: { filename: 'report.csv' } });
  });

  it.each([
    ['control characters', 'a\u0001b\u001b[2J\u007f.txt'],
    ['a 10 KB name', `${'n'.repeat(10_000)}.bin`],
    ['CON', 'CON'],
    ['a path', 'a/b'],
    ['..', '..'],
    ['backslashes', '..\\..\\x.sh'],
    ['a dot name', '.htaccess'],
    ['NUL and an extension', 'x.p\u0000ng'],
  ])('%s: made in the session with a safe suffix, the name kept safe or not at all', async (_what, filename) => {
    const mgr = manager();
    const before = listTree(path.dirname(mgr.root));
    const { status, body } = await send(await serve(adapter, mgr), filename, Buffer.from('plain bytes'));
    if (status === 200) {
      expect(body.dir).toBe(mgr.sessionPath);
      expect(body.suffix).toMatch(/^(\.[a-z0-9]{1,16})?$/);
      const kept = body.ticket.meta?.filename;
      if (kept !== undefined) {
        expect(kept).toEqual(expect.any(String));
        expect(kept).not.toMatch(/[/\\\u0000-\u001f\u007f]|^[.\s]|^con$/i);
        expect(Buffer.byteLength(kept as string)).toBeLessThanOrEqual(255);
      }
      expect(await claimedName(mgr, body.ticket)).toMatch(new RegExp(`${body.suffix.replace('.', '\\.')}$`));
    } else {
      // busboy refuses controls in a part's header; a name of nothing but dots is a file input
      // left empty: both a typed 400, nothing kept.
      expect(status).toBe(400);
      expect(JSON.parse((body as unknown as { text: string }).text)).toMatchObject({ code: 'ERR_TEMPFILE_UPLOAD_MALFORMED' });
      expect(sessionFiles(mgr)).toEqual([]);
    }
    // Nothing appeared next to the root: every file stayed under it.
    expect(listTree(path.dirname(mgr.root)).filter((p) => !p.startsWith('root')).sort()).toEqual(before.filter((p) => !p.startsWith('root')).sort());
  });
});

// Over the built package, in a process of its own, where a module hook sees every specifier resolved.
describe('the sniffer is loaded only when the type is asked for', () => {
  const sniffed = (options: object) =>
    JSON.parse(execFileSync(process.execPath, [path.join(import.meta.dirname, '../fixtures/sniffer-loads.mjs'), JSON.stringify(options), freshRoot()], { encoding: 'utf8' })) as {
      status: number;
      suffix: string;
      detected: string | null;
      loaded: boolean;
    };

  it.each([
    [{}, { status: 200, suffix: '.exe', detected: null, loaded: false }],
    [{ detectType: true }, { status: 200, suffix: '.png', detected: 'image/png', loaded: true }],
    [{ accept: ['image/png'] }, { status: 200, suffix: '.png', detected: 'image/png', loaded: true }],
  ])('%j', (options, expected) => {
    expect(sniffed(options)).toEqual(expected);
  });
});
