// scripts/rgw.mjs keeps its daemons' pids in pids.json from one run to the next, and pids wrap
// (32,768 of them on these machines, and a CI run spawns more). A pid written by an earlier run may
// be another process's now: `start` must not take it for its daemon (it would wait for a gateway it
// never started) and `stop` must not kill it.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';

const script = path.join(import.meta.dirname, '../../scripts/rgw.mjs');
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

it("neither takes for its daemons nor stops the processes that now hold an earlier run's pids", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-rgw-pids-'));
  const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  cleanups.push(() => {
    other.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  fs.writeFileSync(path.join(dir, 'pids.json'), JSON.stringify({ mon: other.pid, osd: other.pid, rgw: other.pid }));
  const env = { ...process.env, TEMPFILE_MANAGER_RGW_DIR: dir, TEMPFILE_MANAGER_RGW_PORT: String(await freePort()) };

  const status = spawnSync(process.execPath, [script, 'status'], { env, encoding: 'utf8' });
  expect(status.stdout).toContain('rgw: mon: not running\nrgw: osd: not running\nrgw: rgw: not running\n');
  expect(status.status).toBe(1);

  const stop = spawnSync(process.execPath, [script, 'stop'], { env, encoding: 'utf8' });
  expect(stop.stdout).toBe('rgw: stopped\n');
  expect(stop.status).toBe(0);
  expect(other.exitCode).toBeNull();
  expect(other.signalCode).toBeNull();
  expect(() => process.kill(other.pid as number, 0)).not.toThrow();
});
