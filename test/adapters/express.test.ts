import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { tempScope } from '../../src/adapters/express.js';
import type { HandoffTicket } from '../../src/index.js';
import { sessionFiles, until } from '../helpers/wait.js';
import { CHATTR, needs } from '../helpers/privileges.js';
import { manager } from '../helpers/roots.js';

const servers: http.Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

async function listen(app: express.Express): Promise<string> {
  const server = http.createServer(app);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('tempfile-manager/express', () => {
  it('gives each request a scope, removed once the response is sent', async () => {
    const mgr = manager();
    const app = express();
    app.use(tempScope(mgr));
    const seen: string[] = [];
    app.post('/upload', async (req, res) => {
      const file = await req.tmp.write(req, { maxBytes: 1024 * 1024 });
      const scratch = req.tmp.dir();
      seen.push(file.path, scratch.path);
      res.json({ size: file.size, exists: fs.existsSync(file.path) });
    });
    const url = await listen(app);
    const response = await fetch(`${url}/upload`, { method: 'POST', body: 'x'.repeat(1000) });
    expect(await response.json()).toEqual({ size: 1000, exists: true });
    await until(() => seen.every((p) => !fs.existsSync(p)));
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it('removes the scope when the client goes away mid-upload', async () => {
    const mgr = manager();
    const app = express();
    app.use(tempScope(mgr));
    let failure: unknown;
    app.post('/upload', async (req, res) => {
      try {
        await req.tmp.write(req);
        res.end();
      } catch (err) {
        failure = err;
      }
    });
    const url = new URL(await listen(app));
    const req = http.request({ host: url.hostname, port: url.port, path: '/upload', method: 'POST', headers: { 'content-length': 64 * 1024 * 1024 } });
    req.on('error', () => {});
    req.write(Buffer.alloc(8 * 1024 * 1024), () => setTimeout(() => req.destroy(), 50));
    await until(() => failure !== undefined);
    expect(failure).toMatchObject({ code: 'ERR_TEMPFILE_ABORTED' });
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('maps an over-limit upload to 413, leaves no file, and reads no more of the body than the drain bound', async () => {
    const mgr = manager();
    const app = express();
    app.use(tempScope(mgr, { drain: { maxBytes: 4 * 1024 * 1024 } }));
    let bytesRead = 0;
    app.post('/upload', async (req, res) => {
      res.once('close', () => (bytesRead = req.socket.bytesRead));
      try {
        await req.tmp.write(req, { maxBytes: 1000 });
        res.sendStatus(201);
      } catch (err) {
        res.status((err as { code?: string }).code === 'ERR_TEMPFILE_SIZE_LIMIT' ? 413 : 500).end();
      }
    });
    const url = await listen(app);
    const body = Buffer.alloc(64 * 1024 * 1024);
    const response = await fetch(`${url}/upload`, { method: 'POST', body });
    expect(response.status).toBe(413);
    await until(() => sessionFiles(mgr).length === 0 && bytesRead > 0);
    expect(bytesRead).toBeLessThan(16 * 1024 * 1024);
  });

  it('also stops reading a multipart body past the drain bound after a refused part, once the 413 is out', async () => {
    const busboy = (await import('busboy')).default;
    const mgr = manager();
    const app = express();
    app.use(tempScope(mgr, { drain: { maxBytes: 4 * 1024 * 1024 } }));
    let bytesRead = 0;
    app.post('/upload', (req, res) => {
      res.once('close', () => (bytesRead = req.socket.bytesRead));
      const parser = busboy({ headers: req.headers });
      parser.on('file', (_name, stream) => {
        req.tmp.write(stream, { maxBytes: 1000 }).then(
          () => res.sendStatus(201),
          () => {
            req.unpipe(parser);
            stream.resume();
            res.status(413).end();
          },
        );
      });
      req.pipe(parser);
    });
    const url = await listen(app);
    const form = new FormData();
    form.append('file', new Blob([Buffer.alloc(64 * 1024 * 1024)]), 'big.bin');
    const response = await fetch(`${url}/upload`, { method: 'POST', body: form });
    expect(response.status).toBe(413);
    await until(() => sessionFiles(mgr).length === 0 && bytesRead > 0);
    expect(bytesRead).toBeLessThan(32 * 1024 * 1024);
  });

  it('a client gone mid-file through busboy: the write is aborted with its scope, no descriptor stays open', async () => {
    const busboy = (await import('busboy')).default;
    const mgr = manager();
    const app = express();
    app.use(tempScope(mgr));
    let failure: unknown;
    app.post('/upload', (req, res) => {
      const parser = busboy({ headers: req.headers });
      // busboy does not fail its file stream when the request is cut off: the scope must stop it.
      parser.on('file', (_name, stream) => req.tmp.write(stream).then(() => res.sendStatus(201), (err) => (failure = err)));
      req.pipe(parser);
    });
    const url = new URL(await listen(app));
    const boundary = 'b0undary';
    const req = http.request({
      host: url.hostname, port: url.port, path: '/upload', method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': 64 * 1024 * 1024 },
    });
    req.on('error', () => {});
    req.write(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="a.bin"\r\n\r\n`);
    req.write(Buffer.alloc(4 * 1024 * 1024), () => setTimeout(() => req.destroy(), 50));
    await until(() => failure !== undefined);
    expect(failure).toMatchObject({ code: 'ERR_TEMPFILE_ABORTED' });
    const openUnderRoot = () =>
      fs.readdirSync('/proc/self/fd').filter((fd) => {
        try {
          // The manager holds its root and its session directory open for its life: not the upload's.
          const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
          return target.startsWith(mgr.root) && target !== mgr.root && target !== mgr.sessionPath && !/\/live_[0-9a-f]{16}$/.test(target);
        } catch {
          return false;
        }
      });
    await until(() => openUnderRoot().length === 0 && sessionFiles(mgr).length === 0);
  });

  it('a handed-off upload survives its request and is claimed by a worker', async () => {
    const mgr = manager();
    const app = express();
    app.use(tempScope(mgr));
    app.post('/upload', async (req, res) => {
      const file = await req.tmp.write(req, { hash: 'sha256' });
      res.json(await file.handoff({ ttlMs: 60_000 }));
    });
    const url = await listen(app);
    const ticket = (await (await fetch(`${url}/upload`, { method: 'POST', body: 'for the worker' })).json()) as HandoffTicket;
    await new Promise((resolve) => setTimeout(resolve, 50));
    await using claimed = await mgr.claim(ticket, { verifyDigest: true });
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('for the worker');
  });

  it('logs a disposal failure through onDisposeError, never into the response', async (ctx) => {
    needs(ctx, CHATTR);
    const mgr = manager();
    const app = express();
    const errors: unknown[] = [];
    app.use(tempScope(mgr, { onDisposeError: (err) => errors.push(err) }));
    let stuck = '';
    app.get('/', (req, res) => {
      stuck = `${req.tmp.dir().path}/stuck`;
      fs.writeFileSync(stuck, 'x');
      execFileSync('chattr', ['+i', stuck]); // immutable: not even root can remove it
      res.send('ok');
    });
    const url = await listen(app);
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('ok');
    await until(() => errors.length === 1);
    execFileSync('chattr', ['-i', stuck]);
    expect(errors[0]).toMatchObject({ code: 'ERR_TEMPFILE_REMOVE_FAILED' });
  });

  it('refuses a bad drain option at set-up', () => {
    expect(() => tempScope(manager(), { drain: { maxBytes: -1 } })).toThrow(/`drain` must be/);
  });

  it('types req.tmp without a cast', () => {
    const handler: express.RequestHandler = (req, _res, next) => {
      const scope = req.tmp; // TempScope through declaration merging
      expect(typeof scope).toBe('undefined');
      next();
    };
    handler({} as express.Request, {} as express.Response, () => {});
  });
});
