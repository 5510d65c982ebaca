import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { ROOT_MARKER } from '../../src/base/layout.js';

export const MiB = 1024 * 1024;
const repo = path.join(import.meta.dirname, '../..');

export interface ExampleServer {
  url: string;
  pid: number;
  /** The server's TempFileManager root. */
  root: string;
  child: ChildProcess;
  /** What the server printed, stdout and stderr, line by line. */
  output: string[];
  stop(): Promise<void>;
}

/**
 * Starts `examples/<name>/server.mjs` in a child process of its own (its memory and file
 * descriptors are then its own), on a fresh root, and waits for the URL it prints.
 */
export async function startExample(name: string, env: Record<string, string | number> = {}, nodeArgs: string[] = []): Promise<ExampleServer> {
  if (!fs.existsSync(path.join(repo, 'dist/index.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first (the examples import the built package by its name)');
  }
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), `tfm-e2e-${name}-`));
  const root = path.join(parent, 'root');
  const child = spawn(process.execPath, [...nodeArgs, path.join(repo, 'examples', name, 'server.mjs')], {
    env: { ...process.env, PORT: '0', EXAMPLE_ROOT: root, ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  readline.createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${output.join('\n')}`)), 20_000);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      const match = /listening on (http:\/\/\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then(() => reject(new Error(`${name} exited before listening:\n${output.join('\n')}`)));
  });
  return {
    url,
    pid: child.pid!,
    root,
    child,
    output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      fs.rmSync(parent, { recursive: true, force: true });
    },
  };
}

/** Files anywhere under the root, and any handoff entry: what an upload may leave behind. */
export function leftovers(root: string): string[] {
  for (;;) {
    try {
      return fs
        .readdirSync(root, { recursive: true, withFileTypes: true })
        .map((entry) => ({ entry, rel: path.relative(root, path.join(entry.parentPath, entry.name)) }))
        .filter(({ entry, rel }) => (entry.isFile() && rel !== ROOT_MARKER) || rel.startsWith(`handoff${path.sep}`))
        .map(({ rel }) => rel)
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // raced with a removal: look again
    }
  }
}

export function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** The server's open file descriptors once closing connections have settled. */
export async function settledFds(pid: number): Promise<number> {
  let last = openFds(pid);
  for (let stable = 0; stable < 3; ) {
    await new Promise((resolve) => setTimeout(resolve, 30));
    const now = openFds(pid);
    stable = now === last ? stable + 1 : 0;
    last = now;
  }
  return last;
}

export async function until(check: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** GETs JSON over a connection of its own, closed afterwards (so it holds no server fd). */
export function getJson<T = Record<string, unknown>>(url: string): Promise<T> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString()) as T);
          } catch (err) {
            reject(err as Error);
          }
        });
      })
      .on('error', reject);
  });
}

export interface Job {
  id: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  result?: { size: number; sha256: string; head: string };
  error?: string;
}

export async function finishedJob(server: ExampleServer, id: string): Promise<Job> {
  let job: Job | undefined;
  await until(async () => {
    job = await getJson<Job>(`${server.url}/jobs/${id}`);
    return job.state === 'done' || job.state === 'failed';
  }, `job ${id}`, 60_000);
  return job!;
}

/** A multipart body holding one generated file, produced chunk by chunk, never whole in memory. */
export class GeneratedUpload {
  readonly boundary = `----tfm${randomBytes(12).toString('hex')}`;
  readonly headers: Record<string, string | number>;
  /** The file's SHA-256 and first 16 bytes, known once the body was produced to its end. */
  sha256 = '';
  head = '';
  private readonly preamble: Buffer;
  private readonly epilogue: Buffer;

  constructor(
    readonly size: number,
    { field = 'file', filename = 'upload.bin' } = {},
  ) {
    this.preamble = Buffer.from(
      `--${this.boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    );
    this.epilogue = Buffer.from(`\r\n--${this.boundary}--\r\n`);
    this.headers = {
      'content-type': `multipart/form-data; boundary=${this.boundary}`,
      'content-length': this.preamble.length + size + this.epilogue.length,
    };
  }

  *chunks(): Generator<Buffer> {
    const block = randomBytes(MiB);
    const hash = createHash('sha256');
    yield this.preamble;
    for (let offset = 0, n = 0; offset < this.size; offset += MiB, n++) {
      const chunk = Buffer.from(block.subarray(0, Math.min(MiB, this.size - offset)));
      if (chunk.length >= 4) chunk.writeUInt32BE(n, 0); // every MiB differs
      if (offset === 0) this.head = chunk.subarray(0, 16).toString('hex');
      hash.update(chunk);
      yield chunk;
    }
    this.sha256 = hash.digest('hex');
    yield this.epilogue;
  }
}

export interface Reply {
  /** 0 when the connection ended without a response. */
  status: number;
  body?: Record<string, unknown>;
  headers?: http.IncomingHttpHeaders;
  error?: Error;
  /** Bytes of the body written when the response came or the connection ended. */
  sent: number;
}

export interface PostOptions {
  headers: Record<string, string | number>;
  body: Iterable<Buffer>;
  /** Drop the connection once this many bytes are sent, after `beforeAbort` resolves. */
  abortAfter?: number;
  beforeAbort?: () => Promise<void>;
}

/**
 * POSTs a body to `/upload` over a connection of its own, with backpressure; stops sending as soon
 * as a response arrives (a 413 comes while the client is still sending), and then closes.
 * Keep-alive, as browsers do: a client that asks for `Connection: close` gets its connection closed
 * by Node right after an early answer, and may see a reset (EPIPE) before it reads the answer.
 */
export function post(server: ExampleServer, { headers, body, abortAfter, beforeAbort }: PostOptions): Promise<Reply> {
  return new Promise((resolve) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const req = http.request(`${server.url}/upload`, { method: 'POST', headers, agent });
    let responded = false;
    let settled = false;
    let sent = 0;
    const settle = (reply: Omit<Reply, 'sent'>) => {
      if (!settled) resolve({ ...reply, sent });
      settled = true;
      req.destroy();
      agent.destroy();
    };
    req.on('response', async (res) => {
      responded = true;
      const chunks: Buffer[] = [];
      try {
        for await (const chunk of res) chunks.push(chunk as Buffer);
        settle({ status: res.statusCode!, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> });
      } catch {
        settle({ status: res.statusCode!, headers: res.headers });
      }
    });
    req.on('error', (error) => {
      if (!responded) settle({ status: 0, error });
    });
    req.on('close', () => {
      if (!responded) setTimeout(() => settle({ status: 0, error: new Error('closed without a response') }), 200);
    });
    void (async () => {
      for (const chunk of body) {
        if (responded || req.destroyed) return;
        if (abortAfter !== undefined && sent >= abortAfter) {
          await beforeAbort?.();
          req.destroy();
          return;
        }
        sent += chunk.length;
        if (!req.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              req.off('drain', done).off('close', done).off('response', done);
              resolve();
            };
            req.on('drain', done).on('close', done).on('response', done);
          });
        }
      }
      if (!req.destroyed) req.end();
    })();
  });
}

/** A raw multipart body from parts written out by hand (for malformed and hostile inputs). */
export function rawBody(boundary: string, text: string): PostOptions {
  const body = Buffer.from(text.replaceAll('\n', '\r\n'), 'latin1');
  return {
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length },
    body: [body],
  };
}
