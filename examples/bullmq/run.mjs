// The whole story on one machine: Redis (its own, unless REDIS_URL is set), the API, and workers.
// Uploads a few files, SIGKILLs the first worker in the middle of its job, starts a second one,
// and shows that every job completes (the killed one too, through the second worker) and that
// nothing is left under the root.
//   node examples/bullmq/run.mjs    (REDIS_URL, EXAMPLE_ROOT, WORK_MS)
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { startRedis } from './redis.mjs';

const UPLOADS = 4;
let redis;
if (!process.env.REDIS_URL) {
  try {
    redis = await startRedis();
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
  console.log(`started redis-server at ${redis.url}`);
}
const redisUrl = process.env.REDIS_URL ?? redis.url;
const root = process.env.EXAMPLE_ROOT ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-bullmq-'));
const env = { ...process.env, REDIS_URL: redisUrl, EXAMPLE_ROOT: root, PORT: '0' };

/** Starts a script of this example; its output is shown with a prefix, and can be waited for. */
function start(script, label) {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, script)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const waiters = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    console.log(`  [${label}] ${line}`);
    for (const waiter of [...waiters]) {
      const match = waiter.pattern.exec(line);
      if (!match) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(match);
    }
  });
  const exited = once(child, 'exit');
  const waitFor = (pattern) =>
    new Promise((resolve, reject) => {
      waiters.push({ pattern, resolve });
      exited.then(() => reject(new Error(`${label} exited before printing ${pattern}`)));
    });
  return { child, exited, waitFor };
}

function lines(n) {
  return Array.from({ length: 20_000 * n }, (_, i) => `upload ${n}, line ${i + 1}\n`).join('');
}

const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
const queue = new Queue('uploads', { connection });
const events = new QueueEvents('uploads', { connection });
events.on('stalled', ({ jobId }) => console.log(`job ${jobId} stalled: its worker is gone, the job goes back to waiting`));
await events.waitUntilReady();

const api = start('api.mjs', 'api');
let worker1;
let worker2;
let failed = false;
try {
  const [, apiUrl] = await api.waitFor(/listening on (\S+)/);
  const uploads = [];
  for (let n = 1; n <= UPLOADS; n += 1) {
    const body = lines(n);
    const res = await fetch(`${apiUrl}?name=upload-${n}.txt`, { method: 'POST', body });
    if (res.status !== 202) throw new Error(`upload ${n}: HTTP ${res.status} ${await res.text()}`);
    const answer = await res.json();
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    uploads.push({ ...answer, name: `upload-${n}.txt`, lines: 20_000 * n, expected: digest });
    console.log(`uploaded upload-${n}.txt (${answer.size} bytes): job ${answer.jobId}`);
  }

  worker1 = start('worker.mjs', 'worker 1');
  const [, killedJob] = await worker1.waitFor(/job (\S+) claimed/);
  await new Promise((resolve) => setTimeout(resolve, 300));
  worker1.child.kill('SIGKILL');
  await worker1.exited;
  const killed = uploads.find((u) => u.jobId === killedJob);
  const entry = fs.readdirSync(path.join(root, 'handoff')).find((name) => name.includes(killed.entry));
  const held = fs.readdirSync(path.join(root, 'handoff', entry));
  console.log(`killed worker 1 (pid ${worker1.child.pid}) in the middle of job ${killedJob}; its entry is still on disk: ${entry}/{${held}}`);

  worker2 = start('worker.mjs', 'worker 2');
  const results = await Promise.all(uploads.map(async (u) => (await queue.getJob(u.jobId)).waitUntilFinished(events, 60_000)));

  console.log('\nresults:');
  for (const [i, u] of uploads.entries()) {
    const r = results[i];
    const ok = r.digest === u.expected && r.lines === u.lines && (u.jobId !== killedJob || r.worker === worker2.child.pid);
    failed ||= !ok;
    const note = u.jobId === killedJob ? ` (killed in worker 1, completed by worker 2)` : '';
    console.log(`${ok ? 'ok ' : 'BAD'} job ${u.jobId} ${r.name}: ${r.lines} lines, ${r.digest.slice(0, 19)}… by pid ${r.worker}${note}`);
  }
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  for (const { child, exited } of [api, worker1, worker2].filter(Boolean)) {
    child.kill('SIGTERM');
    await exited;
  }
  await events.close();
  await queue.close();
  await connection.quit();
  await redis?.stop();
}

const left = fs.readdirSync(root, { recursive: true }).filter((name) => name !== 'handoff' && name !== '.tempfile-manager');
console.log(`left under the root: ${left.length === 0 ? 'nothing' : left.join(', ')}`);
if (!process.env.EXAMPLE_ROOT) fs.rmSync(root, { recursive: true, force: true });
process.exitCode = failed || left.length > 0 ? 1 : 0;
