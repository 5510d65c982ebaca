// Runs the example: a worker process and an API process, each with a root of its own under a
// temp directory of its own (no shared disk), an Azure Blob Storage container between them. It
// uploads three CSV files to the API, one of them failing in the worker on its first attempt,
// checks each result against the bytes sent, and checks that nothing is left in the container
// (once swept) nor under either root. The account: AZURE_STORAGE_CONNECTION_STRING, else an Azurite
// of its own (installed by node scripts/azurite.mjs install), stopped at the end.
//   npm run example:azure-handoff
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { azureStore } from 'tempfile-manager/azure';
import { CONTAINER } from './store.mjs';

const base = process.env.EXAMPLE_DIR || os.tmpdir();
let azurite;
if (!process.env.AZURE_STORAGE_CONNECTION_STRING) {
  const { installed, startAzurite } = await import('../../scripts/azurite.mjs');
  if (!installed()) {
    console.error('azure-handoff: AZURE_STORAGE_CONNECTION_STRING is not set and Azurite is not installed: run node scripts/azurite.mjs install.');
    process.exit(2);
  }
  azurite = await startAzurite({ location: fs.mkdtempSync(path.join(base, 'tfm-azurite-')) });
  process.env.AZURE_STORAGE_CONNECTION_STRING = `DefaultEndpointsProtocol=http;AccountName=${azurite.account};AccountKey=${azurite.key};BlobEndpoint=${azurite.endpoint};`;
  console.log(`azure-handoff: Azurite listening on ${azurite.endpoint}`);
}
const { accountSettings, makeContainer } = await import('./store.mjs');
const container = makeContainer(accountSettings());
await container.createIfNotExists();
// A prefix of this run's own, so that "nothing left" is about this run only.
const prefix = process.env.AZURE_PREFIX || `handoffs/${randomBytes(4).toString('hex')}/`;
const apiDir = fs.mkdtempSync(path.join(base, 'tfm-az-api-'));
const workerDir = fs.mkdtempSync(path.join(base, 'tfm-az-worker-'));
const roots = { api: path.join(apiDir, 'root'), worker: path.join(workerDir, 'root') };
const children = [];

/** Starts a part with its own root; resolves its URL once it listens. */
function start(name, env) {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, `${name}.mjs`)], {
    env: { ...process.env, ...env, AZURE_PREFIX: prefix, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout.on('data', (data) => {
      buffered += data;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      for (const line of lines) {
        console.log(`  [${name}] ${line}`);
        const url = /listening on (http:\/\/\S+)/.exec(line)?.[1];
        if (url) resolve(url);
      }
    });
    child.on('exit', (code) => reject(new Error(`${name} exited (${code}) before it listened`)));
  });
}

function csv(rows) {
  const lines = Array.from({ length: rows }, (_, i) => `${i},${randomBytes(12).toString('hex')}\n`);
  return Buffer.from(lines.join(''));
}

let failed = false;
try {
  const workerUrl = await start('worker', { EXAMPLE_ROOT: roots.worker });
  const apiUrl = await start('api', { EXAMPLE_ROOT: roots.api, WORKER_URL: workerUrl });
  const files = [
    { name: 'small.csv', body: csv(100) },
    { name: 'flaky.csv', body: csv(20_000), flaky: true },
    { name: 'large.csv', body: csv(400_000) }, // about 11 MiB: uploaded in two staged blocks
  ];
  for (const file of files) {
    const res = await fetch(`${apiUrl}/uploads?name=${file.name}${file.flaky ? '&flaky' : ''}`, { method: 'POST', body: file.body });
    const result = await res.json();
    const sent = `sha256:${createHash('sha256').update(file.body).digest('hex')}`;
    const lines = file.body.toString().split('\n').length - 1;
    const ok = res.ok && result.sha256 === sent && result.digest === sent && result.lines === lines;
    if (!ok) failed = true;
    console.log(
      `${ok ? 'ok ' : 'BAD'} ${file.name}: ${file.body.length} bytes, ${result.lines} lines, ${String(result.sha256).slice(0, 19)}… ` +
        `in worker ${result.pid}, ${result.attempts} attempt${result.attempts === 1 ? '' : 's'}${result.error ? ` (${result.error})` : ''}`,
    );
  }
  // A consumed entry's lease stays as a tombstone (it turns a redelivered ticket away) until a
  // sweep of the store: this check does not wait for the worker's background sweeper.
  const swept = await azureStore({ client: container, prefix }).sweep();
  console.log(`swept the store: ${swept.removed} consumed entries' leases removed`);
  if (swept.errors.length > 0 || swept.held > 0) failed = true;
  const names = [];
  for await (const blob of container.listBlobsFlat({ prefix, includeUncommitedBlobs: true })) names.push(blob.name);
  console.log(`left in the container under ${CONTAINER}/${prefix}: ${names.length === 0 ? 'nothing' : names.join(', ')}`);
  if (names.length > 0) failed = true;
} catch (err) {
  failed = true;
  console.log(`BAD ${err.message}`);
} finally {
  await Promise.all(
    children.map((child) => {
      if (child.exitCode !== null || child.signalCode !== null) return undefined;
      child.kill('SIGTERM');
      return new Promise((resolve) => child.on('exit', resolve));
    }),
  );
  for (const [name, root] of Object.entries(roots)) {
    const left = fs.existsSync(root) ? fs.readdirSync(root, { recursive: true }).filter((f) => f !== '.tempfile-manager' && f !== 'handoff') : [];
    console.log(`left under the ${name}'s root: ${left.length === 0 ? 'nothing' : left.join(', ')}`);
    if (left.length > 0) failed = true;
  }
  fs.rmSync(apiDir, { recursive: true, force: true });
  fs.rmSync(workerDir, { recursive: true, force: true });
  if (azurite) {
    azurite.child.kill('SIGTERM');
    await new Promise((resolve) => azurite.child.once('exit', resolve));
    fs.rmSync(azurite.location, { recursive: true, force: true });
  }
}
process.exitCode = failed ? 1 : 0;
