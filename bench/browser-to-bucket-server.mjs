// One API process of bench/browser-to-bucket.mjs: an Express server that serves ONE upload the
// way its contender does, then prints one JSON line with its peak RSS (`maxRSS`, KiB) and the CPU
// time it spent from its first request to its last answer (user + system, ms), and exits.
//
//   node bench/browser-to-bucket-server.mjs <contender> <prefix>   prints {"port":...} when listening
//
//   presign  POST /presign: store.presignUpload(); the browser sends the file to the bucket; then
//            POST /confirm: store.confirmUpload() (the object read once, hashed, sniffed)
//   lib      POST /upload: upload({ field, store, ttlMs }), the bytes through the API to the bucket
//   multer   POST /upload: multer({ storage: multerS3(...) }).single(field)
import { randomBytes } from 'node:crypto';
import express from 'express';
import { upload } from '../dist/express.js';
import { s3Store } from '../dist/s3.js';
import { benchClient, BUCKET, gateway, TTL_MS } from './s3-contenders.mjs';

const [contender, prefix] = process.argv.slice(2);
const found = await gateway();
if (!('state' in found)) throw new Error(found.reason);
const { client } = benchClient(found.state);
const app = express();
let done;
const finished = new Promise((resolve) => (done = resolve));
let cpuAtStart;
app.use((_req, _res, next) => {
  cpuAtStart ??= process.cpuUsage();
  next();
});
const store = s3Store({ client, bucket: BUCKET, prefix });

if (contender === 'presign') {
  app.post('/presign', express.json(), async (req, res) => res.json(await store.presignUpload({ maxBytes: req.body.maxBytes })));
  app.post('/confirm', express.json(), async (req, res) => {
    res.json(await store.confirmUpload({ key: req.body.key }, { ttlMs: TTL_MS }));
    done();
  });
} else if (contender === 'lib') {
  app.post('/upload', upload({ field: 'file', store, ttlMs: TTL_MS, maxBytes: Infinity }), (req, res) => {
    res.json(req.handedOff[0].ticket);
    done();
  });
} else if (contender === 'multer') {
  const { default: multer } = await import('multer');
  const { default: multerS3 } = await import('multer-s3');
  const storage = multerS3({ s3: client, bucket: BUCKET, key: (_req, _file, cb) => cb(null, `${prefix}${randomBytes(16).toString('hex')}`) });
  app.post('/upload', multer({ storage }).single('file'), (req, res) => {
    res.json({ key: req.file.key, size: req.file.size });
    done();
  });
} else {
  throw new Error(`unknown contender ${contender}`);
}
app.use((err, _req, res, _next) => res.status(err.statusCode ?? 500).json({ error: String(err) }));
const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
await finished;
const cpu = process.cpuUsage(cpuAtStart);
await new Promise((resolve) => setTimeout(resolve, 50)); // the answer's last bytes out
server.close();
process.stdout.write(`${JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
process.exit(0);
