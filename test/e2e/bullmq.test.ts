// The bullmq example against a real Redis (redis-server, started here on a free port): its own
// end-to-end check, then a worker SIGKILLed mid-job. Run by `npm run test:e2e`, which installs
// redis-server first when it can.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { cleanups, run, scratchRoot } from './example-process.js';

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

describe('the bullmq example’s own end-to-end check', () => {
  it('examples/bullmq/check.mjs passes', async () => {
    const check = run('bullmq/check.mjs', {});
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
      const name = fs.readdirSync(path.join(root, 'handoff')).find((entry) => entry.startsWith(`entry_${id}_`));
      return name && path.join(root, 'handoff', name);
    };

    const first = run('bullmq/worker.mjs', env);
    const killedJob = await first.waitFor(/job (\S+) claimed/);
    const killed = uploads.find((u) => u.jobId === killedJob)!;
    const dir = entryDir(killed.entry)!;
    expect(fs.readdirSync(dir).find((name) => name.startsWith('held_'))).toContain(`_${first.child.pid}.${first.child.pid}_`); // held by the first worker
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
    expect(fs.readdirSync(root, { recursive: true }).sort()).toEqual(['.tempfile-manager', 'handoff']);
  }, 90_000);
});
