// Child of bench/uploads.mjs: one upload server, one contender, in a process of its own so that
// its peak RSS is its own. argv: <contender> <upload dir>. Run with --expose-gc.
//
// It serves POST /upload on one port (the contender: Express or Fastify, as an app would write
// it, the file streamed into <upload dir>, answered with the size the file has on disk and
// removed after the response), and a control server on another port, outside the framework:
//   POST /baseline  gc(), then remember the RSS                    -> { rss }
//   GET  /stats     peak RSS (process.resourceUsage().maxRSS), the largest RSS sampled every
//                   5 ms since the baseline, the RSS now, the CPU time (user + system, every
//                   thread) since the baseline, and the open descriptors
// It prints { port, control } once both listen.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Session } from 'node:inspector/promises';
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';

const [id, dir] = process.argv.slice(2);
const fsp = fs.promises;
const MAX_BYTES = 2 ** 31; // 2 GiB: far above every upload here, as a service would set it
const ABORT_GUARD = id === 'express-tmp-guard';
// For experiments only: a modified copy of dist/, somewhere its imports still resolve (a directory
// beside dist/, or a copy of the repository with node_modules linked). The bench never sets it.
const DIST = new URL(process.env.UPLOAD_BENCH_DIST ?? '../dist/', import.meta.url);

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
    case 'express-tmp':
    case 'express-tmp-guard': {
      const { default: busboy } = await import('busboy');
      const { TempFileManager } = await import(new URL('index.js', DIST).href);
      const { tempScope } = await import(new URL('express.js', DIST).href);
      const mgr = new TempFileManager({ root: dir, sweepOnStart: false });
      // As in examples/express-upload/server.mjs, minimal: busboy, one file, req.tmp.write(); no
      // hash, no handoff. The -guard variant adds the example's req 'close' guard.
      return [
        tempScope(mgr),
        (req, res, next) => {
          const form = busboy({ headers: req.headers, limits: { fileSize: MAX_BYTES + 1, files: 1 } });
          let upload;
          let fileStream;
          form.on('file', (_name, stream) => {
            stream.on('error', () => {});
            if (upload) {
              stream.resume();
              return;
            }
            fileStream = stream;
            upload = req.tmp.write(stream, { maxBytes: MAX_BYTES });
            upload.catch(() => {});
          });
          form.on('error', next);
          form.on('close', () => {
            if (!upload) return res.status(400).json({ error: 'no file' });
            upload.then(async (file) => res.json({ size: await sizeOf(file.path) })).catch(next);
          });
          if (ABORT_GUARD) {
            req.on('close', () => {
              if (!req.complete) fileStream?.destroy(Object.assign(new Error('the client went away'), { code: 'ECONNRESET' }));
            });
          }
          req.pipe(form);
        },
      ];
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
    case 'busboy-raw': {
      const { default: busboy } = await import('busboy');
      return [
        (req, res, next) => {
          const form = busboy({ headers: req.headers });
          let saved;
          form.on('file', (_name, stream) => {
            const filePath = path.join(dir, randomUUID());
            saved = pipeline(stream, fs.createWriteStream(filePath)).then(() => filePath);
            saved.catch(() => {});
          });
          form.on('error', next);
          form.on('close', () => {
            if (!saved) return res.status(400).json({ error: 'no file' });
            saved
              .then(async (filePath) => {
                res.on('finish', removeLater(filePath));
                res.json({ size: await sizeOf(filePath) });
              })
              .catch(next);
          });
          req.pipe(form);
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
    case 'fastify-tmp': {
      const { TempFileManager } = await import(new URL('index.js', DIST).href);
      const { default: tempFiles } = await import(new URL('fastify.js', DIST).href);
      const mgr = new TempFileManager({ root: dir, sweepOnStart: false });
      await app.register(tempFiles, { manager: mgr });
      app.post('/upload', async (request) => {
        const part = await request.file();
        const file = await request.tmp.write(part.file, { maxBytes: MAX_BYTES });
        return { size: await sizeOf(file.path) };
      });
      break;
    }
    case 'fastify-mgr': {
      // Experiment only: write() straight from the manager, without the plugin's request scope.
      const { TempFileManager } = await import(new URL('index.js', DIST).href);
      const mgr = new TempFileManager({ root: dir, sweepOnStart: false });
      app.post('/upload', async (request, reply) => {
        const part = await request.file();
        const file = await mgr.write(part.file, { maxBytes: MAX_BYTES });
        reply.raw.on('finish', () => file.remove().catch(() => {}));
        return { size: await sizeOf(file.path) };
      });
      break;
    }
    case 'fastify-iter-lib':
      // Experiment only: fastify-iter with the library loaded and a manager made (and one file
      // written, so its session exists), but not used for the upload.
      {
        const { TempFileManager } = await import(new URL('index.js', DIST).href);
        const mgr = new TempFileManager({ root: path.join(dir, 'unused'), sweepOnStart: false });
        await (await mgr.write('x')).remove();
      }
    // falls through
    case 'fastify-iter':
    case 'fastify-iterv':
      // Experiment only: the file part read the way write() reads a stream (its async iterator),
      // each chunk written with FileHandle.write() (-iterv: FileHandle.writev([chunk])); no library.
      app.post('/upload', async (request, reply) => {
        const part = await request.file();
        const filePath = path.join(dir, randomUUID());
        const handle = await fsp.open(filePath, 'wx', 0o600);
        try {
          if (id === 'fastify-iterv') for await (const chunk of part.file) await handle.writev([chunk]);
          else for await (const chunk of part.file) await handle.write(chunk);
        } finally {
          await handle.close();
        }
        reply.raw.on('finish', removeLater(filePath));
        return { size: await sizeOf(filePath) };
      });
      break;
    case 'fastify-save':
      app.post('/upload', async (request) => {
        const saved = await request.saveRequestFiles({ tmpdir: dir });
        const file = (Array.isArray(saved) ? saved : saved.files)[0];
        return { size: await sizeOf(file.filepath) }; // the plugin removes it after the response
      });
      break;
    case 'fastify-pipeline':
      app.post('/upload', async (request, reply) => {
        const part = await request.file();
        const filePath = path.join(dir, randomUUID());
        await pipeline(part.file, fs.createWriteStream(filePath));
        reply.raw.on('finish', removeLater(filePath));
        return { size: await sizeOf(filePath) };
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
setInterval(() => {
  sampledPeak = Math.max(sampledPeak, process.memoryUsage.rss());
}, 5).unref();

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
    let size = 0;
    try {
      size = fs.statSync(`/proc/self/fd/${fd}`).size;
    } catch {
      // closed meanwhile
    }
    held.push({ deleted: target.endsWith(' (deleted)'), size, isDir: target === dir });
  }
  return held.filter((h) => !h.isDir);
}

// For experiments: with UPLOAD_BENCH_PROFILE set, /baseline starts the V8 CPU profiler and /stats
// stops it and adds its summary (self time by origin, top functions) to the answer.
const PROFILE = Boolean(process.env.UPLOAD_BENCH_PROFILE);
const HEAP_PROFILE = process.env.UPLOAD_BENCH_PROFILE === 'heap';
let profiler;

async function startProfile() {
  profiler = new Session();
  profiler.connect();
  if (HEAP_PROFILE) {
    // Allocations sampled every 4 KiB on average (JS heap objects, not ArrayBuffer contents).
    await profiler.post('HeapProfiler.enable');
    await profiler.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return;
  }
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.setSamplingInterval', { interval: 100 });
  await profiler.post('Profiler.start');
}

async function stopHeapProfile() {
  const { profile } = await profiler.post('HeapProfiler.stopSampling');
  profiler.disconnect();
  const sites = {};
  const walk = (node) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url.replace(/^.*\/node_modules\//, '').replace(/^.*\/(dist|bench)\//, '$1/');
    const name = `${functionName || '(anonymous)'} ${where}${url ? `:${lineNumber + 1}` : ''}`;
    sites[name] = (sites[name] ?? 0) + node.selfSize;
    for (const child of node.children) walk(child);
  };
  walk(profile.head);
  const top = Object.entries(sites).sort((a, b) => b[1] - a[1]).slice(0, 25);
  return { groups: [['(sampled JS heap allocations, bytes)', 0]], functions: top.map(([k, bytes]) => [k, bytes / 1e3]) };
}

async function stopProfile() {
  if (HEAP_PROFILE) return stopHeapProfile();
  const { profile } = await profiler.post('Profiler.stop');
  profiler.disconnect();
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  const groups = {};
  const functions = {};
  for (const [id, ms] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const where = url.replace(/^.*\/node_modules\//, '').replace(/^.*\/(dist|bench)\//, '$1/');
    const group = !url
      ? functionName.startsWith('(') ? functionName : '(native)'
      : url.includes('/dist/')
        ? 'tempfile-manager'
        : url.includes('/node_modules/')
          ? where.split('/')[0].startsWith('@') ? where.split('/').slice(0, 2).join('/') : where.split('/')[0]
          : url.startsWith('node:')
            ? url
            : 'other';
    groups[group] = (groups[group] ?? 0) + ms;
    const name = `${functionName || '(anonymous)'} ${where}${url ? `:${lineNumber + 1}` : ''}`;
    functions[name] = (functions[name] ?? 0) + ms;
  }
  const top = (o, n) => Object.entries(o).sort((a, b) => b[1] - a[1]).slice(0, n);
  return { groups: top(groups, 20), functions: top(functions, 25) };
}

async function controlServer() {
  const server = http.createServer(async (req, res) => {
    if (req.url === '/baseline') {
      if (PROFILE) await startProfile();
      globalThis.gc();
      globalThis.gc();
      baseline = process.memoryUsage.rss();
      sampledPeak = baseline;
      cpuAtBaseline = process.cpuUsage();
      gc = {};
      res.end(JSON.stringify({ rss: baseline }));
    } else if (req.url === '/stats') {
      const profile = PROFILE && profiler ? await stopProfile() : undefined;
      const rss = process.memoryUsage.rss();
      res.end(
        JSON.stringify({
          baseline,
          maxRss: process.resourceUsage().maxRSS * 1024,
          sampledPeak: Math.max(sampledPeak, rss),
          rss,
          cpu: (({ user, system }) => (user + system) / 1e6)(process.cpuUsage(cpuAtBaseline)),
          fds: fs.readdirSync('/proc/self/fd').length,
          uploadFds: uploadFds(),
          gc,
          profile,
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

const port = id.startsWith('fastify') ? await fastifyApp() : await expressApp();
const control = await controlServer();
console.log(JSON.stringify({ port, control }));
