// handleUpload(): uploads from a Web Request, on the intake the Express and Fastify adapters use.
// Served by Hono over real HTTP (@hono/node-server), and called as a Next.js App Router route
// handler is: with the Request the framework made. Each refusal leaves nothing under the root.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { handleUpload, refusalResponse, type WebUploadOptions } from '../../src/adapters/web.js';
import type { TempFileManager } from '../../src/index.js';
import { BOUNDARY, bigFileForm, declaredUpload, fieldPart, filePart, formEnd, MiB, rawForm } from '../helpers/http-clients.js';
import { png } from '../helpers/magic.js';
import { manager } from '../helpers/roots.js';
import { sessionFiles, until } from '../helpers/wait.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** `POST /upload` on Hono: the file's size and digest, read in the route, or the refusal. */
async function honoServer(mgr: TempFileManager, options: Omit<WebUploadOptions, 'manager'>): Promise<string> {
  const app = new Hono();
  app.post('/upload', (c) =>
    handleUpload(c.req.raw, { ...options, manager: mgr, hash: 'sha256' }, ({ file, fields }) => Response.json({ size: file?.size, digest: file?.digest, fields: { ...fields } })),
  );
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const formOf = (file: Buffer, type = 'application/octet-stream') => {
  const form = new FormData();
  form.append('title', 'a title');
  form.append('file', new Blob([file], { type }), 'photo.png');
  return form;
};

describe('Hono over HTTP', () => {
  it('a file streams to a temp file of the request, with its bytes and digest; nothing stays after the answer', async () => {
    const mgr = manager();
    const url = await honoServer(mgr, { field: 'file', maxBytes: 4 * MiB });
    const bytes = randomBytes(3 * MiB);
    const res = await fetch(`${url}/upload`, { method: 'POST', body: formOf(bytes) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ size: bytes.length, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, fields: { title: 'a title' } });
    await until(() => sessionFiles(mgr).length === 0);
  });

  // The refusals that come before the body is read go through a raw client: fetch() (undici) may
  // throw from inside its own stream, out of reach, when the server answers while it still sends.
  it('a chunked body over maxBytes is a 413 with the JSON answer, and nothing stays', async () => {
    const mgr = manager();
    const url = await honoServer(mgr, { field: 'file', maxBytes: MiB });
    const reply = await declaredUpload(Number(new URL(url).port), '/upload', 8 * MiB, { chunked: true });
    expect(reply.status).toBe(413);
    expect(JSON.parse(reply.text.slice(reply.text.indexOf('{')))).toMatchObject({ statusCode: 413, code: 'ERR_TEMPFILE_SIZE_LIMIT', error: 'Payload Too Large' });
    expect(reply.error).toBeUndefined(); // the rest was read: the client was never reset
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('a refused type is a 415 and nothing is written', async () => {
    const mgr = manager();
    const url = await honoServer(mgr, { field: 'file', accept: ['image/png'] });
    const res = await fetch(`${url}/upload`, { method: 'POST', body: formOf(Buffer.from('%PDF-1.7 not a png'), 'image/png') });
    expect(res.status).toBe(415);
    expect(await res.json()).toMatchObject({ code: 'ERR_TEMPFILE_TYPE_NOT_ACCEPTED' });
    const ok = await fetch(`${url}/upload`, { method: 'POST', body: formOf(png(3)) });
    expect(ok.status).toBe(200);
    await until(() => sessionFiles(mgr).length === 0);
  });

  // A refusal reads the rest of the body and throws it away: the connection stays whole, and a
  // client's keep-alive agent sends its next request down it.
  it('a refusal before the body is read keeps the connection, and the next request of a keep-alive client is answered on it', async () => {
    const mgr = manager();
    const url = await honoServer(mgr, { field: 'file', accept: ['image/png'] });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    closers.push(async () => agent.destroy());
    const post = (form: FormData) =>
      new Promise<{ status: number; connection: string | undefined; port: number | undefined }>((resolve, reject) => {
        const body = new Response(form);
        void body.arrayBuffer().then((bytes) => {
          const req = http.request(`${url}/upload`, { method: 'POST', agent, headers: { 'content-type': body.headers.get('content-type')! } }, (res) => {
            const port = res.socket.localPort;
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, port }));
          });
          req.on('error', reject);
          req.end(Buffer.from(bytes));
        }, reject);
      });
    const refused = await post(formOf(Buffer.concat([Buffer.from('%PDF-1.7 '), randomBytes(4 * MiB)]), 'image/png'));
    expect(refused).toMatchObject({ status: 415, connection: 'keep-alive' });
    const next = await post(formOf(png(3)));
    expect(next.status).toBe(200);
    expect(next.port).toBe(refused.port); // the same connection
    await until(() => sessionFiles(mgr).length === 0);
  });

  it('a client gone mid-body leaves nothing, and the route is never called', async () => {
    const mgr = manager();
    let routed = 0;
    const app = new Hono();
    app.post('/upload', (c) => handleUpload(c.req.raw, { field: 'file', manager: mgr }, () => {
      routed += 1;
      return new Response('ok');
    }));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const { head, length } = bigFileForm(64 * MiB);
    const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${length}\r\n\r\n`);
    socket.write(head);
    socket.write(Buffer.alloc(2 * MiB));
    await until(() => sessionFiles(mgr).length === 1, 30_000, 'the file being written');
    socket.destroy();
    await until(() => sessionFiles(mgr).length === 0, 30_000, 'the partial file removed');
    expect(routed).toBe(0);
  });

  it('a declared Content-Length past the limits is refused from the head: 413, the body unread', async () => {
    const mgr = manager();
    const url = await honoServer(mgr, { field: 'file', maxBytes: MiB, maxFields: 0 }); // a text field's 1 MiB each would lift the bound past 64 MiB
    const reply = await declaredUpload(Number(new URL(url).port), '/upload', 64 * MiB);
    expect(reply.status).toBe(413);
    expect(reply.text).toContain('"code":"ERR_TEMPFILE_UPLOAD_LIMIT"'); // the form's bound, from the head
    expect(reply.text).not.toMatch(/^connection: close/im); // the server ends it once the client stops, never under a client still sending
    expect(reply.error).toBeUndefined(); // a FIN, not a reset
    expect(reply.sent).toBeLessThan(64 * MiB);
    expect(sessionFiles(mgr)).toEqual([]);
  });
});

describe('a Next.js App Router route handler (the framework hands it a Web Request)', () => {
  const route = (mgr: TempFileManager) =>
    async function POST(request: Request): Promise<Response> {
      return handleUpload(request, { array: 'photos', maxCount: 2, maxBytes: MiB, accept: ['image/*'], manager: mgr }, async ({ files, fields }) => {
        const list = files as { size: number; detectedType?: { mime: string } }[];
        return Response.json({ sizes: list.map((f) => f.size), types: list.map((f) => f.detectedType?.mime), fields: { ...fields } }, { status: 201 });
      });
    };

  it('takes the files of an array field, typed by their bytes', async () => {
    const mgr = manager();
    const form = new FormData();
    form.append('caption', 'two');
    form.append('photos', new Blob([png(2)]), 'a.png');
    form.append('photos', new Blob([png(4)]), 'b.png');
    const res = await route(mgr)(new Request('http://localhost/api/photos', { method: 'POST', body: form }));
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ sizes: [png(2).length, png(4).length], types: ['image/png', 'image/png'], fields: { caption: 'two' } });
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it('too many files is a 413 naming the limit; a form that is no form is a 400; nothing stays', async () => {
    const mgr = manager();
    // The bytes of a form, not a FormData: undici feeds a FormData body from a generator that
    // throws, out of reach, when the reader stops early, as a refusal does.
    const parts = [0, 1, 2].map((i) =>
      Buffer.concat([Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="photos"; filename="${i}.png"\r\nContent-Type: image/png\r\n\r\n`), png(1), Buffer.from('\r\n')]),
    );
    const threeFiles = Buffer.concat([...parts, Buffer.from(`--${BOUNDARY}--\r\n`)]);
    const many = await route(mgr)(
      new Request('http://localhost/api/photos', { method: 'POST', body: threeFiles, headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } }),
    );
    expect(many.status).toBe(413);
    const { body, headers } = rawForm(`${fieldPart('a', 'b')}${filePart('photos', 'x.png', 'no end')}`);
    const cut = await route(mgr)(new Request('http://localhost/api/photos', { method: 'POST', body, headers }));
    expect(cut.status).toBe(400);
    const json = await route(mgr)(new Request('http://localhost/api/photos', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }));
    expect(json.status).toBe(400);
    expect(sessionFiles(mgr)).toEqual([]);
    void formEnd;
  });

  // Deno.serve errors the body of a client gone mid-body (BadResource) where Node's servers end it:
  // the error fails the form, never the process (scripts/runtimes.mjs runs the real thing).
  it('a body that errors mid-file: the client is gone (499), the route never runs, and nothing stays', async () => {
    const mgr = manager();
    const { head } = bigFileForm(8 * MiB);
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls += 1;
        if (pulls === 1) controller.enqueue(new Uint8Array(head));
        else if (pulls < 10) controller.enqueue(new Uint8Array(256 * 1024));
        else controller.error(Object.assign(new Error('Cannot read request body as underlying resource unavailable'), { name: 'BadResource' }));
      },
    });
    const request = new Request('http://localhost/x', { method: 'POST', body, headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }, duplex: 'half' } as RequestInit);
    let routed = 0;
    const res = await handleUpload(request, { field: 'file', manager: mgr }, () => {
      routed += 1;
      return new Response('ok');
    });
    expect(res.status).toBe(499);
    expect(routed).toBe(0);
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it('a route that throws: the error is the server\'s (a rejection), and the files are removed all the same', async () => {
    const mgr = manager();
    const form = new FormData();
    form.append('file', new Blob([png(1)]), 'a.png');
    const failing = handleUpload(new Request('http://localhost/x', { method: 'POST', body: form }), { field: 'file', manager: mgr }, () => {
      throw new Error('the route failed');
    });
    await expect(failing).rejects.toThrow('the route failed');
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it('bad options are an InvalidOptionError naming the option, before the body is read', async () => {
    const request = () => new Request('http://localhost/x', { method: 'POST', body: 'x' });
    await expect(handleUpload(request(), { maxBytes: -1 }, () => new Response())).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'maxBytes' });
    await expect(handleUpload(request(), { drain: {} } as never, () => new Response())).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'drain' });
    await expect(handleUpload({} as Request, {}, () => new Response())).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'request' });
    await expect(handleUpload(request(), {}, undefined as never)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'route' });
    expect(refusalResponse(new Error('not ours'))).toBeUndefined();
  });
});
