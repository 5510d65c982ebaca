// The client side of the upload benchmarks (bench/uploads.mjs, and the cost gate's upload rows):
// the servers of bench/upload-server.mjs, each in a child process of its own, and the uploads
// sent to them.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const SERVER = fileURLToPath(new URL('./upload-server.mjs', import.meta.url));
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The client: a multipart body generated as it is sent, from one random MiB sent over and over
// (never changed, so no write can see it half-updated), with backpressure.

const DATA = randomBytes(MiB);
const BOUNDARY = `----tfm-bench-${randomBytes(12).toString('hex')}`;
if (Buffer.concat([DATA, DATA]).includes(`--${BOUNDARY}`)) throw new Error('the boundary occurs in the data: run again');
const HEAD = Buffer.from(
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="upload.bin"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n',
);
const TAIL = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);

/**
 * Sends one upload of `bytes` file bytes; resolves { seconds, status, body } when the response
 * has been read. With `abortAt`, destroys the request once that many file bytes have left the
 * socket and the server had 300 ms to read them, and resolves { aborted: true }.
 */
export function upload(port, bytes, abortAt) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    let answered = false;
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/upload',
      agent: false,
      headers: {
        'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
        'content-length': String(HEAD.length + bytes + TAIL.length),
      },
    });
    req.on('response', (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ seconds: Number(process.hrtime.bigint() - start) / 1e9, status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (abortAt === undefined && !answered) reject(err);
    });
    (async () => {
      req.write(HEAD);
      const limit = abortAt ?? bytes;
      for (let sent = 0; sent < limit && !answered && !req.destroyed; ) {
        const chunk = limit - sent >= DATA.length ? DATA : DATA.subarray(0, limit - sent);
        sent += chunk.length;
        if (!req.write(chunk)) await once(req, 'drain');
      }
      if (abortAt !== undefined) {
        while (req.socket && req.socket.writableLength > 0) await sleep(5);
        await sleep(300);
        req.destroy();
        resolve({ aborted: true });
        return;
      }
      if (!answered) req.end(TAIL);
    })().catch(reject);
  });
}

export async function control(server, route, method = 'GET') {
  const res = await fetch(`http://127.0.0.1:${server.control}${route}`, { method });
  if (!res.ok) throw new Error(`${route}: ${res.status}`);
  return res.json();
}

// ---------------------------------------------------------------------------------------------
// Servers

export async function startServer(id, dir, env = process.env) {
  const child = spawn(process.execPath, ['--expose-gc', SERVER, id, dir], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let stdout = '';
  const ready = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line));
    });
    child.once('exit', (code, signal) => reject(new Error(`server ${id} exited (${code ?? signal}): ${stderr}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  return {
    ...ready,
    child,
    alive: () => child.exitCode === null && child.signalCode === null,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Small uploads: many requests over keep-alive connections, `concurrency` in flight at once.

/** One whole multipart body in memory: small uploads are sent as one buffer. */
function smallBody(bytes) {
  const file = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += DATA.length) DATA.copy(file, i, 0, Math.min(DATA.length, bytes - i));
  return Buffer.concat([HEAD, file, TAIL]);
}

function postSmall(agent, port, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/upload', agent, headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': body.length } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Uploads of `bytes` for `seconds`, `concurrency` at once; returns requests/s and latencies. With
 * `cut`, the load ends as a load generator's end does (autocannon's): at the deadline every
 * connection is destroyed, requests in flight included, some of them mid-body. With `rate`, the
 * requests start on a schedule of that many a second (at most `concurrency` in flight), as a
 * service's traffic arrives, instead of each one as soon as the one before it on its connection
 * is answered.
 */
export async function drive(port, bytes, concurrency, seconds, { check = true, cut = false, rate = undefined } = {}) {
  const body = smallBody(bytes);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = [];
  let failures = 0;
  let cutOff = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let over = false;
  let scheduled = 0;
  const timer = cut ? setTimeout(() => ((over = true), agent.destroy()), seconds * 1000) : undefined;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (!over && process.hrtime.bigint() < deadline) {
          if (rate !== undefined) {
            const due = start + BigInt(Math.round((scheduled++ * 1e9) / rate));
            if (due >= deadline) break;
            const waitNs = due - process.hrtime.bigint();
            if (waitNs > 0n) await sleep(Number(waitNs) / 1e6);
          }
          const t0 = process.hrtime.bigint();
          let result;
          try {
            result = await postSmall(agent, port, body);
          } catch (err) {
            if (!over) throw err;
            cutOff++;
            break;
          }
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          if (result.status !== 200 || (check && JSON.parse(result.body).size !== bytes)) failures++;
        }
      }),
    );
  } finally {
    clearTimeout(timer);
    agent.destroy();
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / elapsed, p99: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))], count: latencies.length, failures, cutOff };
}
