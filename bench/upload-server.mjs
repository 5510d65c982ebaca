// Child of bench/uploads.mjs: one upload server, one contender, in a process of its own so that
// its peak RSS is its own. argv: <contender> <upload dir>. Run with --expose-gc.
//
// It serves POST /upload on one port (the contender: Express or Fastify, as an app would write
// it, the file streamed into <upload dir>, answered with the size the file has on disk and
// removed after the response; the contender `floor`: no framework and no multipart parser, the
// body piped to a file), and a control server on another port, outside the framework:
//   POST /baseline  gc(), then remember the RSS                    -> { rss }
//   GET  /stats     peak RSS (process.resourceUsage().maxRSS), the largest RSS sampled every
//                   5 ms since the baseline, the RSS now, the CPU time (user + system, every
//                   thread) since the baseline, and the open descriptors
// It prints { port, control } once both listen.
import fs from 'node:fs';
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks';

const [contender, dir] = process.argv.slice(2);
// `<id>@baseline`: the same contender on another build of the library (TFM_BENCH_BASELINE, a dist
// directory), to compare two builds side by side in one run. `<peer>+library`: a peer's server
// with the library loaded and a manager made, none of it used: the peer carrying the library's
// fixed cost, the floor of the memory any upload through the library can cost.
const id = contender.replace(/@baseline$/, '').replace(/\+library$/, '');
const fsp = fs.promises;
const MAX_BYTES = 2 ** 31; // 2 GiB: far above every upload here, as a service would set it
// TFM_BENCH_APP_HEAP_MIB: live objects of that many MiB on the heap before the app starts, as a
// real service holds them (its routes, configuration, caches). A bare server's heap is about 7 to
// 10 MiB, around the size where Node 20's V8 starts marking the old generation (bench/analyses/uploads.md).
const APP_HEAP_MIB = Number(process.env.TFM_BENCH_APP_HEAP_MIB ?? 0);
globalThis.appHeap = Array.from({ length: Math.floor((APP_HEAP_MIB * 1024 * 1024) / 80) }, (_, i) => ({ id: i, name: `item-${i}` })); // 80 bytes each
const DIST = contender.endsWith('@baseline') ? new URL(`file://${process.env.TFM_BENCH_BASELINE.replace(/\/?$/, '/')}`) : new URL('../dist/', import.meta.url);
if (contender.endsWith('+library')) {
  const { TempFileManager } = await import(new URL('index.js', DIST).href);
  await import(new URL(id.startsWith('fastify') ? 'fastify.js' : 'express.js', DIST).href);
  // Its root beside the upload directory: its marker is not an upload left behind.
  globalThis.unusedManager = new TempFileManager({ root: `${dir}.library`, sweepOnStart: false });
}

/** Removes a file after the response is out, as the apps of the peers would. */
const removeLater = (filePath) => () => fsp.unlink(filePath).catch(() => {});
const sizeOf = async (filePath) => (await fsp.stat(filePath)).size;

// ---------------------------------------------------------------------------------------------
// Express contenders

async function expressApp() {
  const { default: express } = await import('express');
  const app = express();
  const route = await expressRoute();
  app.post('/upload', ...route);
  app.use((err, req, res, _next) => {
    if (!res.headersSent && !req.socket.destroyed) res.status(500).json({ error: String(err?.message ?? err) });
  });
  const server = http.createServer(app);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server.address().port;
}

async function expressRoute() {
  switch (id) {
    case 'express-upload': {
      // The one-line upload: files into the request's scope, removed after the response.
      const { TempFileManager } = await import(new URL('index.js', DIST).href);
      const { upload } = await import(new URL('express.js', DIST).href);
      const mgr = new TempFileManager({ root: dir, sweepOnStart: false });
      return [upload({ field: 'file', maxBytes: MAX_BYTES, manager: mgr }), async (req, res) => res.json({ size: await sizeOf(req.file.path) })];
    }
    case 'multer': {
      const { default: multer } = await import('multer');
      const upload = multer({ storage: multer.diskStorage({ destination: dir }) }).single('file');
      return [
        upload,
        async (req, res, next) => {
          try {
            res.on('finish', removeLater(req.file.path));
            res.json({ size: await sizeOf(req.file.path) });
          } catch (err) {
            next(err);
          }
        },
      ];
    }
    case 'formidable': {
      const { default: formidable } = await import('formidable');
      return [
        async (req, res, next) => {
          const form = formidable({ uploadDir: dir, maxFileSize: MAX_BYTES, maxTotalFileSize: MAX_BYTES, maxFiles: 1 });
          try {
            const [, files] = await form.parse(req);
            const file = files.file[0];
            res.on('finish', removeLater(file.filepath));
            res.json({ size: await sizeOf(file.filepath) });
          } catch (err) {
            next(err);
          }
        },
      ];
    }
    default:
      throw new Error(`unknown contender ${id}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Fastify contenders

async function fastifyApp() {
  const { default: Fastify } = await import('fastify');
  const { default: multipart } = await import('@fastify/multipart');
  const app = Fastify({ logger: false });
  // @fastify/multipart's default fileSize is Fastify's bodyLimit (1 MiB), and it truncates there.
  await app.register(multipart, { limits: { fileSize: MAX_BYTES + 1, files: 1 } });
  switch (id) {
    case 'fastify-upload': {
      const { TempFileManager } = await import(new URL('index.js', DIST).href);
      const { default: tempFiles } = await import(new URL('fastify.js', DIST).href);
      const mgr = new TempFileManager({ root: dir, sweepOnStart: false });
      await app.register(tempFiles, { manager: mgr });
      app.post('/upload', async (request) => {
        const { file } = await request.saveUploads({ field: 'file', maxBytes: MAX_BYTES });
        return { size: await sizeOf(file.path) };
      });
      break;
    }
    case 'fastify-save':
      app.post('/upload', async (request) => {
        const saved = await request.saveRequestFiles({ tmpdir: dir });
        const file = (Array.isArray(saved) ? saved : saved.files)[0];
        return { size: await sizeOf(file.filepath) }; // the plugin removes it after the response
      });
      break;
    default:
      throw new Error(`unknown contender ${id}`);
  }
  await app.listen({ port: 0, host: '127.0.0.1' });
  return app.server.address().port;
}

// ---------------------------------------------------------------------------------------------
// Control: baseline and peak memory, open descriptors.

// Garbage collections since the baseline: count and milliseconds, by kind.
const GC_KINDS = {
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};
let gc = {};
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = GC_KINDS[entry.detail?.kind ?? entry.kind] ?? 'other';
    const k = (gc[kind] ??= { count: 0, ms: 0 });
    k.count++;
    k.ms += entry.duration;
  }
}).observe({ entryTypes: ['gc'] });

let baseline = 0;
let sampledPeak = 0;
let cpuAtBaseline = process.cpuUsage();
// The largest of each part of process.memoryUsage() sampled since the baseline: where a peak of
// the RSS lives (the JS heap, buffers outside it, or neither: the allocator's and the sockets').
let memoryPeak = {};
setInterval(() => {
  sampledPeak = Math.max(sampledPeak, process.memoryUsage.rss());
}, 5).unref();
setInterval(() => {
  const now = process.memoryUsage();
  for (const key of ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers']) memoryPeak[key] = Math.max(memoryPeak[key] ?? 0, now[key]);
}, 20).unref();

/** Descriptors this process holds on files of the upload directory, removed ones included. */
function uploadFds() {
  const held = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the readdir's own descriptor, closed meanwhile
    }
    if (!target.startsWith(dir)) continue;
    // Nor is the liveness signal the manager holds at its root for its life (docs/design.md).
    if (/^live_[0-9a-f]{16}$/.test(target.slice(dir.length + 1))) continue;
    let stats;
    try {
      stats = fs.statSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    // Directories are not upload files: the adapters hold their root and session open.
    if (!stats.isDirectory()) held.push({ deleted: target.endsWith(' (deleted)'), size: stats.size });
  }
  return held;
}

async function controlServer() {
  const server = http.createServer(async (req, res) => {
    if (req.url === '/baseline') {
      globalThis.gc();
      globalThis.gc();
      baseline = process.memoryUsage.rss();
      sampledPeak = baseline;
      cpuAtBaseline = process.cpuUsage();
      gc = {};
      memoryPeak = {};
      res.end(JSON.stringify({ rss: baseline }));
    } else if (req.url === '/stats') {
      const rss = process.memoryUsage.rss();
      res.end(
        JSON.stringify({
          baseline,
          maxRss: process.resourceUsage().maxRSS * 1024,
          memoryPeak,
          memory: process.memoryUsage(),
          sampledPeak: Math.max(sampledPeak, rss),
          rss,
          cpu: (({ user, system }) => (user + system) / 1e6)(process.cpuUsage(cpuAtBaseline)),
          fds: fs.readdirSync('/proc/self/fd').length,
          uploadFds: uploadFds(),
          gc,
        }),
      );
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server.address().port;
}

// The floor: no framework and no multipart parser, the request's body piped to a file as it comes.
async function floorApp() {
  let n = 0;
  const server = http.createServer(async (req, res) => {
    const file = `${dir}/floor-${n++}`;
    try {
      await pipeline(req, fs.createWriteStream(file, { flags: 'wx', mode: 0o600 }));
      const size = await sizeOf(file);
      res.on('finish', removeLater(file));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ size }));
    } catch {
      res.destroy();
      await fsp.unlink(file).catch(() => {});
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server.address().port;
}

const port = id === 'floor' ? await floorApp() : id.startsWith('fastify') ? await fastifyApp() : await expressApp();
const control = await controlServer();
console.log(JSON.stringify({ port, control }));
