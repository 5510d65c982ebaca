// The worker-threads, bullmq and pdf-download examples, run for real: their own end-to-end checks,
// then the bullmq kill-a-worker-mid-job case and the pdf-download cleanup asserted from here.
// The examples import the built package: `npm test` builds dist/ first.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';

const examples = path.join(import.meta.dirname, '../../examples');
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function scratchRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-e2e-workers-'));
  cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
  return root;
}

interface Running {
  child: ChildProcess;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** What it printed so far, stdout and stderr. */
  output(): string;
  /** Resolves with the first group of the next line (from now on) that matches. */
  waitFor(pattern: RegExp): Promise<string>;
}

function run(script: string, env: Record<string, string>): Running {
  const child = spawn(process.execPath, [path.join(examples, script)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  let output = '';
  child.stderr!.on('data', (data: Buffer) => (output += data.toString()));
  const waiters: { pattern: RegExp; resolve: (group: string) => void }[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    output += `${line}\n`;
    for (const waiter of [...waiters]) {
      const match = waiter.pattern.exec(line);
      if (match) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match[1] ?? match[0]);
      }
    }
  });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return {
    child,
    exited,
    output: () => output,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        waiters.push({ pattern, resolve });
        void exited.then(() => reject(new Error(`${script} exited before printing ${pattern}:\n${output}`)));
      }),
  };
}

async function until(what: string, test: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !test(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function startRedis(): Promise<string> {
  if (spawnSync('redis-server', ['--version']).error) throw new Error('redis-server is needed: apt-get install redis-server (or brew install redis)');
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const dir = scratchRoot();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
  const exited = once(redis, 'exit');
  cleanups.push(async () => {
    redis.kill('SIGTERM');
    await exited;
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    redis.stdout.on('data', (data: Buffer) => {
      output += data.toString();
      if (output.includes('Ready to accept connections')) resolve();
    });
    void exited.then(() => reject(new Error(`redis-server did not start:\n${output}`)));
  });
  redis.stdout.resume();
  return `redis://127.0.0.1:${port}`;
}

describe('the examples’ own end-to-end checks', () => {
  it.each(['worker-threads', 'pdf-download', 'bullmq'])('examples/%s/check.mjs passes', async (name) => {
    const check = run(`${name}/check.mjs`, {});
    const [code] = await check.exited;
    expect(code, check.output()).toBe(0);
  }, 120_000);
});

describe('bullmq: a worker SIGKILLed mid-job', () => {
  it('the job completes through the second worker, its entry is consumed, nothing is left; a retry of a done job is done', async () => {
    const root = scratchRoot();
    const redisUrl = await startRedis();
    const env = { REDIS_URL: redisUrl, EXAMPLE_ROOT: root, PORT: '0', WORK_MS: '1500' };
    const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue('uploads', { connection });
    const events = new QueueEvents('uploads', { connection });
    cleanups.push(async () => {
      await events.close();
      await queue.close();
      await connection.quit();
    });
    await events.waitUntilReady();

    const api = run('bullmq/api.mjs', env);
    const apiUrl = await api.waitFor(/listening on (\S+)/);
    const uploads: { jobId: string; entry: string; digest: string }[] = [];
    for (let n = 1; n <= 3; n += 1) {
      const body = `line of upload ${n}\n`.repeat(30_000);
      const res = await fetch(`${apiUrl}?name=upload-${n}.txt`, { method: 'POST', body });
      expect(res.status).toBe(202);
      const answer = (await res.json()) as { jobId: string; entry: string; digest: string };
      expect(answer.digest).toBe(`sha256:${createHash('sha256').update(body).digest('hex')}`);
      uploads.push(answer);
    }
    const entryDir = (id: string) => {
      const name = fs.readdirSync(path.join(root, 'handoff')).find((entry) => entry.startsWith(`${id}_`));
      return name && path.join(root, 'handoff', name);
    };

    const first = run('bullmq/worker.mjs', env);
    const killedJob = await first.waitFor(/job (\S+) claimed/);
    const killed = uploads.find((u) => u.jobId === killedJob)!;
    const dir = entryDir(killed.entry)!;
    expect(fs.readdirSync(dir).find((name) => name.startsWith('held_'))).toContain(`_${first.child.pid}_`); // held by the first worker
    await new Promise((resolve) => setTimeout(resolve, 300));
    first.child.kill('SIGKILL');
    expect((await first.exited)[1]).toBe('SIGKILL');
    expect(fs.existsSync(dir)).toBe(true); // the dead worker's entry waits, bytes intact

    const second = run('bullmq/worker.mjs', env);
    const results = await Promise.all(
      uploads.map(async (u) => (await queue.getJob(u.jobId))!.waitUntilFinished(events, 60_000) as Promise<{ digest: string; worker: number }>),
    );
    for (const [i, u] of uploads.entries()) expect(results[i]!.digest).toBe(u.digest);
    const retried = (await queue.getJob(killedJob))!;
    expect(retried.returnvalue.worker).toBe(second.child.pid);
    expect(retried.stalledCounter).toBe(1);
    expect(entryDir(killed.entry)).toBeUndefined(); // consumed

    // A retry of a job whose entry was consumed already is treated as done.
    const again = await queue.add('process-upload', retried.data);
    expect(await again.waitUntilFinished(events, 30_000)).toEqual({ alreadyDone: true });

    second.child.kill('SIGTERM');
    api.child.kill('SIGTERM');
    expect((await second.exited)[0]).toBe(0);
    expect((await api.exited)[0]).toBe(0);
    expect(fs.readdirSync(root, { recursive: true })).toEqual(['handoff']);
  }, 90_000);
});

describe('pdf-download: the temp file lives as long as its response', () => {
  it('a full download matches Content-Length, an abort half-way too removes the file; nothing is left', async () => {
    const root = scratchRoot();
    const pdfs = () => (fs.readdirSync(root, { recursive: true }) as string[]).filter((name) => name.endsWith('.pdf'));
    const server = run('pdf-download/server.mjs', { PORT: '0', REPORT_MIB: '24', EXAMPLE_ROOT: root });
    const url = await server.waitFor(/listening on (\S+)/);

    const res = await fetch(url);
    const length = Number(res.headers.get('content-length'));
    expect(length).toBeGreaterThan(20 * 1024 * 1024);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBe(length);
    expect(body.subarray(0, 5).toString()).toBe('%PDF-');
    expect(body.subarray(-6).toString()).toBe('%%EOF\n');
    await until('the full download’s temp file is gone', () => pdfs().length === 0);

    const during = await new Promise<string[]>((resolve, reject) => {
      http
        .get(url, (response) => {
          const half = Number(response.headers['content-length']) / 2;
          let received = 0;
          response.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received < half) return;
            const seen = pdfs();
            response.destroy();
            resolve(seen);
          });
        })
        .on('error', reject);
    });
    expect(during).toHaveLength(1);
    await until('the aborted download’s temp file is gone', () => pdfs().length === 0);

    server.child.kill('SIGTERM');
    expect((await server.exited)[0]).toBe(0);
    expect(fs.readdirSync(root)).toEqual([]);
  }, 60_000);
});
