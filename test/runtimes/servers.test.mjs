// Uploads on Bun and Deno: tempfile-manager/express's upload() over the runtime's node:http, and
// handleUpload() (tempfile-manager/web) served by Bun.serve and Deno.serve. A file arrives whole;
// a chunked body over maxBytes (413), a client gone mid-body and a refused type (415) each leave
// nothing under the root, and the route never runs for them. Run by scripts/runtimes.mjs.
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { agentPost, chunkedUpload, eventually, fileHead, jsonBody, leftUnder, MiB, oneFileForm, rawRequest, scratch, startOn, BOUNDARY } from './helpers.mjs';

const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(64)]);
const parent = scratch(after, 'runtimes-servers');

const nothingLeft = (root, what) => eventually(`${what}: nothing left under the root`, () => (leftUnder(root).length === 0 ? true : undefined));

for (const runtime of ['bun', 'deno']) {
  for (const kind of ['express', 'web']) {
    const served = kind === 'web' ? `handleUpload() on ${runtime === 'bun' ? 'Bun.serve' : 'Deno.serve'}` : 'Express upload()';
    describe(`${runtime}: ${served}`, () => {
      const root = path.join(parent, `${runtime}-${kind}`);
      let server;
      let url;
      let port;
      const routed = async () => (await (await fetch(`${url}/routed`)).json()).routed;
      before(async () => {
        server = startOn(runtime, 'upload-server.mjs', [kind, root]);
        ({ port } = await server.firstLine());
        url = `http://127.0.0.1:${port}`;
      });
      after(async () => {
        server.proc.kill('SIGTERM');
        await server.ended;
        assert.deepEqual(leftUnder(root), [], 'the exit hook removed the session');
      });

      test('a file arrives whole; its request leaves nothing', async () => {
        const { body, headers } = oneFileForm(Buffer.alloc(MiB, 7));
        const res = await fetch(`${url}/upload`, { method: 'POST', body, headers });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), { size: MiB });
        await nothingLeft(root, 'the answered request');
      });

      // Whether the client then stops sending is the server's: Bun reads the rest of the body itself.
      // Several rounds, since a server that closes under a client still sending loses the answer
      // only when the client's next write meets the reset.
      test('a chunked body over maxBytes: 413 with the JSON refusal, nothing left', async () => {
        const before = await routed();
        for (let round = 0; round < 6; round += 1) {
          const reply = await chunkedUpload(port, '/upload', 32 * MiB);
          assert.equal(reply.status, 413, `round ${round}: ${reply.error ?? ''} ${reply.text.slice(0, 300)}`);
          assert.equal(jsonBody(reply).code, 'ERR_TEMPFILE_SIZE_LIMIT');
        }
        await nothingLeft(root, 'the refused body');
        assert.equal(await routed(), before);
      });

      test('a keep-alive client is answered its refusal and then its next request', async () => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          for (let round = 0; round < 3; round += 1) {
            const refused = await agentPost(agent, port, '/upload', oneFileForm(Buffer.alloc(6 * MiB)));
            assert.equal(refused.status, 413, `round ${round}: ${refused.error ?? ''}`);
            const ok = await agentPost(agent, port, '/upload', oneFileForm(Buffer.alloc(1024)));
            assert.equal(ok.status, 200, `round ${round}: the request after the refusal`);
          }
        } finally {
          agent.destroy();
        }
        await nothingLeft(root, 'the refused bodies');
      });

      test('a client gone mid-body: the partial file is removed, nothing left', async () => {
        const before = await routed();
        const declared = 64 * MiB;
        const headers = { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}`, 'Content-Length': String(declared) };
        await rawRequest(port, '/upload', headers, async (socket) => {
          socket.write(fileHead());
          socket.write(Buffer.alloc(2 * MiB));
          await eventually('the file being written', () => (leftUnder(root).length > 0 ? true : undefined));
          socket.destroy();
        });
        await nothingLeft(root, 'the cut request');
        assert.equal(await routed(), before);
      });

      test('a refused type: 415 with the JSON refusal, nothing left', async () => {
        const before = await routed();
        const refused = oneFileForm(Buffer.from('%PDF-1.7 not a png'), 'image/png');
        const res = await fetch(`${url}/images`, { method: 'POST', body: refused.body, headers: refused.headers });
        assert.equal(res.status, 415);
        assert.equal((await res.json()).code, 'ERR_TEMPFILE_TYPE_NOT_ACCEPTED');
        await nothingLeft(root, 'the refused file');
        assert.equal(await routed(), before);
        const png = oneFileForm(PNG, 'image/png');
        const ok = await fetch(`${url}/images`, { method: 'POST', body: png.body, headers: png.headers });
        assert.equal(ok.status, 200, 'a PNG is accepted on the same route');
      });
    });
  }
}
