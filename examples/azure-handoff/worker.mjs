// The worker process, on a "host" that shares no disk with the API: it takes tickets over HTTP
// and claims each with mgr.withClaim(): the bytes come down from the container into a temp file of
// its own root, size and digest checked, under a lease held in the container; the entry is consumed
// (its data deleted, its lease left saying so until the manager's background sweep) when the job
// resolves, and released for a retry when it throws.
//   EXAMPLE_ROOT=/tmp/worker PORT=4001 node examples/azure-handoff/worker.mjs    (AZURE_*)
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { HandoffExpiredError, HandoffMismatchError, HandoffNotFoundError, TempFileManager } from 'tempfile-manager';
import { accountSettings, makeContainer, makeStore } from './store.mjs';

const settings = accountSettings();
if (settings.reason) {
  console.error(`worker: ${settings.reason}`);
  process.exit(1);
}
const store = makeStore(makeContainer(settings));
const mgr = new TempFileManager({ ...(process.env.EXAMPLE_ROOT && { root: process.env.EXAMPLE_ROOT }), stores: [store] });
const log = (message) => console.log(`worker ${process.pid}: ${message}`);

/** The job: reads the claimed file (a local temp file), counts its lines and hashes it. */
async function countLines(file) {
  let lines = 0;
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) {
    hash.update(chunk);
    for (const byte of chunk) if (byte === 10) lines++;
  }
  return { lines, sha256: `sha256:${hash.digest('hex')}` };
}

async function job(ticket, attempt) {
  return mgr.withClaim(ticket, async (claimed) => {
    log(`claimed ${claimed.meta.name} (${ticket.size} bytes) into ${claimed.path}`);
    const result = await countLines(claimed.path);
    // A job that throws releases the entry: it stays in the container, and the retry claims it at once.
    if (claimed.meta.flaky && attempt === 1) throw new Error('a transient failure (simulated)');
    log(`${claimed.meta.name}: ${result.lines} lines, consumed`);
    return { ...result, pid: process.pid };
  });
}

const server = http.createServer(async (req, res) => {
  if (req.method !== 'POST' || req.url !== '/jobs') {
    res.writeHead(404).end();
    return;
  }
  const reply = (status, body) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  try {
    let text = '';
    for await (const chunk of req) text += chunk;
    const { ticket, attempt } = JSON.parse(text);
    reply(200, await job(ticket, attempt));
  } catch (err) {
    // Consumed already, expired, or bytes that are not the ticket's: a retry cannot help.
    const final = err instanceof HandoffNotFoundError || err instanceof HandoffExpiredError || err instanceof HandoffMismatchError;
    log(`job failed: ${err.code ?? err.name}: ${err.message}`);
    reply(final ? 422 : 503, { error: err.message, code: err.code, retry: !final });
  }
});

server.listen(Number(process.env.PORT ?? 4001), '127.0.0.1', () => {
  console.log(`worker listening on http://127.0.0.1:${server.address().port} (temp files under ${mgr.root})`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => mgr.close().then(() => process.exit(0), () => process.exit(1))));
}
