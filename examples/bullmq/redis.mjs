// Starts a throwaway redis-server on a free loopback port, without persistence, in a temp dir.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const INSTALL_HINT =
  'redis-server was not found. Install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), ' +
  'or set REDIS_URL to a Redis that is running.';

export async function startRedis() {
  if (spawnSync('redis-server', ['--version']).error?.code === 'ENOENT') throw new Error(INSTALL_HINT);
  // Another process may take the free port before Redis binds it: then try another one.
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startOn(await freePort());
    } catch (err) {
      if (attempt === 3) throw err;
    }
  }
}

async function startOn(port) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-example-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  let output = '';
  try {
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (data) => {
        output += data;
        if (output.includes('Ready to accept connections')) resolve();
      });
      child.stderr.on('data', (data) => (output += data));
      exited.then(() => reject(new Error(`redis-server exited before it was ready:\n${output}`)));
    });
  } catch (err) {
    await stop();
    throw err;
  }
  child.stdout.resume();
  return { url: `redis://127.0.0.1:${port}`, stop };
}

async function freePort() {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}
