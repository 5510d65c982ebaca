// `npm run demo`: the express-upload example at work. A server whose heap is capped at 64 MiB
// receives a 256 MiB upload over HTTP, streams it to a temp file, hands it off to its background
// worker, and leaves nothing on disk. Exits non-zero if any step fails.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const MiB = 1024 * 1024;
const SIZE = 256 * MiB;
const HEAP_MIB = 64;
const server = fileURLToPath(new URL('express-upload/server.mjs', import.meta.url));
const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-demo-'));
const root = path.join(parent, 'root');
let child;

try {
  console.log(`1. Start examples/express-upload/server.mjs with a ${HEAP_MIB} MiB heap (--max-old-space-size=${HEAP_MIB})`);
  const url = await startServer();
  console.log(`   ${url}, temp files under ${root}\n`);

  console.log(`2. POST /upload: a ${SIZE / MiB} MiB file as multipart/form-data, made up as it is sent`);
  const upload = await uploadFile(`${url}/upload`);
  if (upload.status !== 202) throw new Error(`the upload got ${upload.status}: ${JSON.stringify(upload.body)}`);
  const { ticket } = upload.body;
  console.log('   202 Accepted; the request handed the file off and returned this ticket:');
  console.log(`   ${JSON.stringify(ticket)}\n`);

  console.log('3. The worker claims the file by its ticket (the digest is checked again), reads it, consumes it');
  const job = await waitForJob(url, ticket.id);
  if (job.state !== 'done') throw new Error(`the job ${job.state}: ${job.error}`);
  console.log(`   result: ${JSON.stringify(job.result)}`);
  if (job.result.size !== SIZE || job.result.sha256 !== upload.sha256) throw new Error('the worker did not get the bytes that were sent');
  console.log('   same size and SHA-256 as the bytes sent\n');

  const { maxRssBytes } = await getJson(`${url}/stats`);
  console.log(`4. Server peak RSS: ${Math.round(maxRssBytes / MiB)} MiB: the ${SIZE / MiB} MiB file was never in its ${HEAP_MIB} MiB heap\n`);

  await stopServer();
  const left = fs.readdirSync(root, { recursive: true }).filter((name) => name !== 'handoff' && name !== '.tempfile-manager');
  console.log(`5. On disk, once the server has stopped: ${left.length === 0 ? 'nothing left (only the empty handoff/ directory)' : left.join(', ')}`);
  if (left.length > 0) throw new Error(`files were left under ${root}`);
  console.log('\ndone: see examples/express-upload/README.md for what the server does and how');
} catch (err) {
  console.error(`\ndemo failed: ${err.message}`);
  process.exitCode = 1;
  child?.kill();
} finally {
  fs.rmSync(parent, { recursive: true, force: true });
}

function startServer() {
  child = spawn(process.execPath, [`--max-old-space-size=${HEAP_MIB}`, server], {
    env: { ...process.env, PORT: '0', EXAMPLE_ROOT: root },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the server exited (${code})`)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /listening on (\S+)/.exec(line);
      if (match) resolve(match[1]);
    });
  });
}

async function stopServer() {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM'); // the example closes gracefully: in-flight jobs finish, the session goes
  await exited;
}

/** Streams a multipart body with one generated file, with backpressure, printing the progress. */
function uploadFile(url) {
  const boundary = `----demo${randomBytes(8).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="demo.bin"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const hash = createHash('sha256');
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + SIZE + tail.length },
    });
    let responded = false; // an early answer (413, 507...) comes while the body is still going out
    req.on('error', (err) => responded || reject(err));
    req.on('response', (res) => {
      responded = true;
      let text = '';
      res.setEncoding('utf8').on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text), sha256: hash.digest('hex') }));
    });
    (async () => {
      const block = randomBytes(MiB);
      req.write(head);
      for (let sent = 0; sent < SIZE && !responded && !req.destroyed; ) {
        const chunk = Buffer.from(block);
        chunk.writeUInt32BE(sent / MiB); // every MiB differs
        hash.update(chunk);
        sent += chunk.length;
        if (sent % (SIZE / 4) === 0) console.log(`   ${String((sent / SIZE) * 100).padStart(3)}%  ${sent / MiB} MiB sent`);
        if (!req.write(chunk)) await waitForDrain(req);
      }
      if (!responded) req.end(tail);
    })().catch(reject);
  });
}

function waitForDrain(req) {
  return new Promise((resolve) => {
    const done = () => {
      req.off('drain', done).off('close', done);
      resolve();
    };
    req.on('drain', done).on('close', done);
  });
}

async function waitForJob(url, id) {
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(100)) {
    const job = await getJson(`${url}/jobs/${id}`);
    if (job.state === 'done' || job.state === 'failed') return job;
  }
  throw new Error(`job ${id} did not finish`);
}

async function getJson(url) {
  return (await fetch(url)).json();
}
