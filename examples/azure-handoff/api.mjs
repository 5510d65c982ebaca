// The API process: streams each upload to a temp file of its own root, hands it off through the
// container (uploaded, then removed here) and passes the ticket, plain JSON, to a worker over HTTP.
// It shares no disk with the worker: only the container and the ticket.
//   EXAMPLE_ROOT=/tmp/api WORKER_URL=http://127.0.0.1:4001 node examples/azure-handoff/api.mjs    (PORT, AZURE_*)
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { TempFileManager } from 'tempfile-manager';
import { accountSettings, makeContainer, makeStore } from './store.mjs';

const settings = accountSettings();
if (settings.reason) {
  console.error(`api: ${settings.reason}`);
  process.exit(1);
}
const store = makeStore(makeContainer(settings));
const mgr = new TempFileManager({ ...(process.env.EXAMPLE_ROOT && { root: process.env.EXAMPLE_ROOT }) });
const workerUrl = process.env.WORKER_URL ?? 'http://127.0.0.1:4001';
const log = (message) => console.log(`api ${process.pid}: ${message}`);

/** The upload, handed off through the container: the ticket, or the scope removes the file. */
async function handOff(req, name, flaky) {
  return mgr.withScope(async (scope) => {
    const upload = await scope.write(req, { suffix: '.csv', maxBytes: 2 ** 30 });
    // Uploaded to the container (in staged blocks above 8 MiB), its digest computed on the way; removed here.
    return upload.handoff({ ttlMs: 3_600_000, store, meta: { name, flaky } });
  });
}

/** Hands the ticket to the worker; a job that failed there was released, so it is sent again. */
async function runJob(ticket) {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(`${workerUrl}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ticket, attempt }) });
    const body = await res.json();
    if (res.ok) return { ...body, attempts: attempt };
    if (attempt === 3 || !body.retry) throw new Error(`the worker failed job ${ticket.id}: ${body.error}`);
    log(`job ${ticket.id.slice(0, 8)} failed on attempt ${attempt} (${body.error}), sent again`);
    await sleep(100);
  }
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method !== 'POST' || url.pathname !== '/uploads') {
    res.writeHead(404).end();
    return;
  }
  try {
    const name = url.searchParams.get('name') ?? 'upload.csv';
    const ticket = await handOff(req, name, url.searchParams.has('flaky'));
    log(`${name}: ${ticket.size} bytes handed off as ${ticket.store.container}/${ticket.store.prefix}${ticket.id.slice(0, 8)}…`);
    const result = await runJob(ticket);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name, size: ticket.size, digest: ticket.digest, ...result }));
  } catch (err) {
    log(`failed: ${err.code ?? err.name}: ${err.message}`);
    res.writeHead(err.statusCode ?? 500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: err.message, code: err.code }));
  }
});

server.listen(Number(process.env.PORT ?? 4000), '127.0.0.1', () => {
  console.log(`api listening on http://127.0.0.1:${server.address().port} (temp files under ${mgr.root}, container ${store.container}/${store.prefix})`);
});
// `on`, not `once`: the exit hook must see that the process handles the signal itself.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => mgr.close().then(() => process.exit(0), () => process.exit(1))));
}
