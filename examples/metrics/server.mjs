// An upload service that exports tempfile-manager's metrics for Prometheus on GET /metrics.
// POST /upload (multipart, field `file`) hands the file off and answers 202 with its ticket;
// POST /claims { ticket, then: 'consume' | 'release' | 'hold' } claims one; POST /scratch writes
// the body to a temp file it keeps; POST /sweep sweeps the root.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import express from 'express';
import { TempFileManager } from 'tempfile-manager';
import { upload } from 'tempfile-manager/express';
import { instrumentTempFiles } from './metrics.mjs';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 15)) {
  console.error(`This example needs Node 22.15 or later, as the OpenTelemetry SDK it uses declares; this is ${process.version}.`);
  process.exit(1);
}

export async function start({ port = 3000, root, maxBytes = 1024 * 1024, exitTextfile } = {}) {
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  const unsubscribe = instrumentTempFiles(meterProvider.getMeter('tempfile-manager'), { exitTextfile });
  const manager = new TempFileManager({ root });
  const held = []; // claims held and scratch files, until close()

  const app = express();
  app.get('/metrics', (req, res) => exporter.getMetricsRequestHandler(req, res));
  app.post('/upload', upload({ manager, field: 'file', maxBytes }), async (req, res) => {
    const ttlMs = Number(req.query.ttlMs ?? 3_600_000);
    res.status(202).json(await req.file.handoff({ ttlMs }));
  });
  app.post('/claims', express.json(), async (req, res) => {
    const claimed = await manager.claim(req.body.ticket);
    if (req.body.then === 'consume') await claimed.consume();
    else if (req.body.then === 'release') await claimed.release();
    else held.push(claimed);
    res.json({ size: claimed.size });
  });
  app.post('/scratch', async (req, res) => {
    const file = await manager.write(req);
    held.push(file);
    res.json({ size: file.size });
  });
  app.post('/sweep', async (req, res) => res.json(await manager.sweep()));
  app.use((err, req, res, next) => res.status(err.statusCode ?? 500).json({ code: err.code ?? 'ERR_UNKNOWN', message: err.message }));

  const server = app.listen(port, '127.0.0.1');
  await new Promise((resolve, reject) => server.once('listening', resolve).once('error', reject));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    manager,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      for (const handle of held.splice(0)) await handle[Symbol.asyncDispose]();
      await manager.close();
      unsubscribe();
      await meterProvider.shutdown();
    },
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const env = process.env;
  const app = await start({
    port: Number(env.PORT ?? 3000),
    root: env.EXAMPLE_ROOT || undefined,
    maxBytes: env.MAX_BYTES ? Number(env.MAX_BYTES) : undefined,
    exitTextfile: env.EXIT_TEXTFILE || undefined,
  });
  // SIGINT and SIGTERM are left to the library's exit hook: it removes this process's temp files,
  // gives back its claims, and ends the process of the signal (the textfile gets its time).
  console.log(`metrics example listening on ${app.url}: GET ${app.url}/metrics (temp files under ${app.manager.root})`);
}
