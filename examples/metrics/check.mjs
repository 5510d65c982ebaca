// End-to-end check of this example (`npm run examples:check`): installs its OpenTelemetry
// packages here, starts server.mjs, uploads, claims, writes and sweeps over HTTP, scrapes /metrics
// and checks each value, then ends the server with SIGTERM and reads the exit hook's textfile.
// The OpenTelemetry SDK needs Node 22.15 or later: on an older Node it says so and passes.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';

const here = import.meta.dirname;
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 15)) {
  console.log(`metrics: skipped: @opentelemetry/sdk-metrics needs Node 22.15 or later, and this is ${process.version}`);
  process.exit(0);
}
installDependencies();

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-check-metrics-'));
const root = path.join(scratch, 'root');
const exitTextfile = path.join(scratch, 'exit-hook.prom');
const server = spawn(process.execPath, [path.join(here, 'server.mjs')], {
  env: { ...process.env, PORT: '0', EXAMPLE_ROOT: root, MAX_BYTES: String(64 * 1024), EXIT_TEXTFILE: exitTextfile },
  stdio: ['ignore', 'pipe', 'inherit'],
});
try {
  const url = await listeningUrl(server);
  // The manager's own sweep at start, soon after it is made: past it, the sweep below is the one
  // that finds the expiring entry expired (the start sweep would have removed it first).
  await startSweepDone(url);
  const accepted = [];
  for (let i = 0; i < 3; i++) accepted.push(await uploadFile(url, 1000));
  const tooLarge = await uploadFile(url, 128 * 1024, 413);
  assert.equal(tooLarge.code, 'ERR_TEMPFILE_SIZE_LIMIT');
  const expiring = await uploadFile(url, 1000, 202, '?ttlMs=1');
  await claim(url, accepted[0], 'consume');
  await claim(url, accepted[1], 'hold');
  for (let i = 0; i < 2; i++) await post(url, '/scratch', Buffer.alloc(5000, 7), 'application/octet-stream');
  while (Date.now() <= expiring.expiresAt) await new Promise((resolve) => setTimeout(resolve, 5));
  const sweep = await post(url, '/sweep');
  assert.equal(sweep.handoffEntriesRemoved >= 1, true, 'the sweep removed the expired entry');

  const metrics = parse(await (await fetch(`${url}/metrics`)).text());
  const expect = (name, labels, value) => assert.equal(valueOf(metrics, name, labels), value, `${name}${JSON.stringify(labels)}`);
  expect('tempfile_written_bytes_total', {}, 4 * 1000 + 2 * 5000); // the refused upload's bytes are not counted
  expect('tempfile_writes_refused_total', { reason: 'ERR_TEMPFILE_SIZE_LIMIT' }, 1);
  expect('tempfile_uploads_refused_total', { reason: 'ERR_TEMPFILE_SIZE_LIMIT' }, 1);
  expect('tempfile_requests_total', { status: '202' }, 4);
  expect('tempfile_requests_total', { status: '413' }, 1);
  expect('tempfile_live_files', {}, 2); // the two scratch files: every upload was handed off, the refused one removed
  expect('tempfile_live_bytes', {}, 2 * 5000);
  expect('tempfile_handoffs_waiting', {}, 1); // 4 handed off, 2 claimed, 1 expired
  expect('tempfile_claims_in_flight', {}, 1); // one consumed, one held
  expect('tempfile_takeovers_total', {}, 0);
  expect('tempfile_sweep_removed_total', { kind: 'handoff_entries' }, sweep.handoffEntriesRemoved);
  console.log(metrics.filter((m) => m.name.startsWith('tempfile_')).map((m) => `  ${m.line}`).join('\n'));

  server.kill('SIGTERM');
  const [code, signal] = await once(server, 'exit');
  assert.equal(signal, 'SIGTERM', `the server ends of the signal (exit code ${code})`);
  const exit = parse(fs.readFileSync(exitTextfile, 'utf8'));
  assert.equal(valueOf(exit, 'tempfile_exit_hook_tasks', { reason: 'SIGTERM' }) >= 1, true, 'the exit hook ran the session\'s task');
  assert.equal(valueOf(exit, 'tempfile_exit_hook_duration_seconds', { reason: 'SIGTERM' }) >= 0, true);
  console.log(`  exit hook: ${exit.map((m) => m.line).join(', ')}`);
  console.log('metrics: check passed');
} finally {
  server.kill('SIGKILL');
  fs.rmSync(scratch, { recursive: true, force: true });
}

/** `npm install` here, run by this Node (first on PATH): the OpenTelemetry packages are this example's own. */
function installDependencies() {
  const PATH = `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}`;
  execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: here, stdio: 'inherit', timeout: 300_000, env: { ...process.env, PATH } });
}

async function listeningUrl(child) {
  let out = '';
  for await (const chunk of child.stdout) {
    out += chunk;
    const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
    if (match) return match[1];
  }
  throw new Error(`the server ended before listening: ${out}`);
}

async function startSweepDone(url) {
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 20))) {
    if ((await (await fetch(`${url}/metrics`)).text()).includes('tempfile_sweep_removed_total')) return;
  }
  throw new Error('the manager made no sweep at start within 30 s');
}

async function uploadFile(url, size, status = 202, query = '') {
  const form = new FormData();
  form.append('file', new Blob([Buffer.alloc(size, 1)]), 'data.bin');
  const response = await fetch(`${url}/upload${query}`, { method: 'POST', body: form });
  assert.equal(response.status, status, `an upload of ${size} bytes`);
  return response.json();
}

async function claim(url, ticket, then) {
  return post(url, '/claims', JSON.stringify({ ticket, then }), 'application/json');
}

async function post(url, route, body, type) {
  const response = await fetch(`${url}${route}`, { method: 'POST', body, headers: type ? { 'content-type': type } : {} });
  const json = await response.json();
  assert.equal(response.ok, true, `POST ${route}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/** Prometheus' text format: each sample's name, labels and value. */
function parse(text) {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
      const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k, v]));
      return { name: match[1], labels, value: Number(match[3]), line };
    });
}

function valueOf(samples, name, labels) {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.equal(found.length, 1, `one sample of ${name}${JSON.stringify(labels)}, found ${found.map((s) => s.line).join('; ') || 'none'}`);
  return found[0].value;
}
