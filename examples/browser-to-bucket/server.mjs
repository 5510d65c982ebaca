// Browser straight to the bucket: the page uploads to the S3 bucket itself, with a progress bar,
// through presigns the API gives (tempfile-manager/express's presignUploads(), the routes
// @uppy/aws-s3 calls); the API confirms the upload (confirmUpload(): size, type and digest of the
// object, never what the browser says) into a ticket, and a worker with a root of its own (no
// disk shared with the API, which has none) claims it from the bucket. Two pages: / with a plain
// XMLHttpRequest, /uppy with Uppy's @uppy/aws-s3, bundled for the browser here with esbuild.
// The gateway: S3_ENDPOINT and its keys, else the state of `node scripts/rgw.mjs start` (../s3-handoff/store.mjs).
// Run it with `npm run example:browser-to-bucket`, then open the URL it prints.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { CreateBucketCommand, PutBucketCorsCommand } from '@aws-sdk/client-s3';
import { build } from 'esbuild';
import express from 'express';
import { TempFileManager } from 'tempfile-manager';
import { confirmUpload, presignUploads } from 'tempfile-manager/express';
import { s3Store } from 'tempfile-manager/s3';
import { answers, gatewaySettings, makeClient } from '../s3-handoff/store.mjs';
import { runIfMain } from '../shared/standalone.mjs';
import { TICKET_TTL_MS } from '../shared/upload-status.mjs';
import { createWorker } from '../shared/upload-worker.mjs';

const here = import.meta.dirname;
const MiB = 1024 * 1024;
export const BUCKET = process.env.S3_BUCKET || 'tfm-example-browser';

/** The gateway's settings, or throws saying why there is none. */
export async function gateway() {
  const settings = gatewaySettings();
  const missing = settings.reason ?? ((await answers(settings)) ? undefined : `the S3 gateway at ${settings.endpoint} (from ${settings.from}) does not answer`);
  return missing ? { missing } : { settings };
}

export async function start({ port = 0, root, maxBytes = 1024 * MiB, log = () => {} } = {}) {
  const found = await gateway();
  if (found.missing) throw new Error(`browser-to-bucket: ${found.missing}`);
  const client = makeClient(found.settings);
  await ensureBucket(client);
  // A prefix of this run's own, so that "nothing left" is about this run only.
  const prefix = process.env.S3_PREFIX || `browser/${randomBytes(4).toString('hex')}/`;
  const store = s3Store({ client, bucket: BUCKET, prefix });

  // The worker: a manager on a root of its own that claims from the store (a host of its own in
  // production; here an in-process queue stands in for BullMQ or SQS).
  const workerManager = new TempFileManager({ root, stores: [store] });
  const worker = createWorker(workerManager, { log });

  const app = express();
  const uppyBundle = await bundleUppyPage();
  app.get('/', (_req, res) => res.sendFile(path.join(here, 'page.html')));
  app.get('/uppy', (_req, res) => res.sendFile(path.join(here, 'uppy.html')));
  app.get('/uppy.js', (_req, res) => res.type('text/javascript').send(uppyBundle));

  // The route's limit, for the page to check a file against before anything is sent (Uppy's
  // restrictions): a refusal after the upload reaches Uppy without its reason (docs/browser-uploads.md).
  app.get('/uploads/limits', (_req, res) => res.json({ maxBytes }));
  // The presigns: GET /uploads/s3/params and the multipart routes, as Uppy's companionEndpoint
  // expects them. The browser's file name goes into the ticket's meta (data, never a path).
  app.use('/uploads', presignUploads({ store, maxBytes, meta: (_req, file) => ({ filename: file.filename.slice(0, 200) }) }));
  // The receipt: the object is judged and becomes a ticket, or is refused (and removed).
  app.post('/uploads/confirm', confirmUpload({ store, ttlMs: TICKET_TTL_MS }), (req, res) => {
    const job = worker.enqueue(req.ticket);
    log(`upload ${req.ticket.id}: ${req.ticket.size} bytes confirmed`);
    res.status(202).json({ job: job.id, ticket: req.ticket });
  });
  app.get('/jobs/:id', (req, res) => {
    const job = worker.job(req.params.id);
    if (job) res.json(job);
    else res.status(404).json({ error: 'no such job' });
  });
  app.use(fail);

  const server = http.createServer(app);
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  // The page posts to the bucket, another origin: the bucket must allow it, and show the ETag of
  // each part (Uppy reads it to complete a multipart upload).
  await allowPage(client, url);

  async function close() {
    server.close();
    server.closeAllConnections();
    await worker.idle();
    await workerManager.close();
  }
  return { url, close, manager: workerManager, store, client, prefix };
}

async function ensureBucket(client) {
  try {
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } catch (err) {
    if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
  }
}

/** The bucket's CORS rule: the page's origin may POST a form, PUT a part, and read the ETag. */
async function allowPage(client, pageUrl) {
  // Any port of this host: two runs of the example at once share the bucket and its one rule.
  const { protocol, hostname } = new URL(pageUrl);
  await client.send(
    new PutBucketCorsCommand({
      Bucket: BUCKET,
      CORSConfiguration: {
        CORSRules: [{ AllowedOrigins: [`${protocol}//${hostname}:*`], AllowedMethods: ['POST', 'PUT'], AllowedHeaders: ['*'], ExposeHeaders: ['ETag'], MaxAgeSeconds: 600 }],
      },
    }),
  );
}

/**
 * uppy-page.mjs with Uppy and @uppy/aws-s3, one script for the browser, built in memory. Uppy's
 * packages are the page's own (browser/package.json), installed there on the first start: some of
 * what they depend on declares Node 22, though none of it runs in Node.
 */
async function bundleUppyPage() {
  const browser = path.join(here, 'browser');
  if (!fs.existsSync(path.join(browser, 'node_modules', '@uppy', 'aws-s3'))) {
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error'], { cwd: browser, stdio: 'inherit', timeout: 300_000 });
  }
  const result = await build({
    entryPoints: [path.join(browser, 'uppy-page.mjs')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

/** What reaches next(err): the server's failures (a store down: 503). The client's refusals were answered as JSON already. */
function fail(err, req, res, _next) {
  const status = err.statusCode ?? 500;
  console.error(`browser-to-bucket: ${req.method} ${req.path}: ${status} ${err.code ?? ''} ${err.message}`);
  if (req.socket.destroyed || res.headersSent) return;
  res.status(status).json({ statusCode: status, code: err.code ?? 'ERR_INTERNAL', message: err.expose ? err.message : 'internal error' });
}

await runIfMain(import.meta.url, 'browser-to-bucket', start);
