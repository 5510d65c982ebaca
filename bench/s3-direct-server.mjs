// One API process of bench/s3-direct.mjs: an Express server that takes ONE multipart upload and
// hands it to the bucket the way its contender does, answers, then prints one JSON line with its
// peak RSS (`process.resourceUsage().maxRSS`, KiB) and exits.
//
//   node bench/s3-direct-server.mjs <contender> <prefix>     prints {"port":...} when listening
//
//   lib     upload({ field, store, ttlMs }): the file part straight to the store, no local file
//   multer  multer({ storage: multerS3(...) }).single(field): multer-s3's Upload of the part
//   floor   lib-storage Upload of the raw request stream, 8 MiB parts, 2 in flight (the store's)
import { randomBytes } from 'node:crypto';
import express from 'express';
import { Upload } from '@aws-sdk/lib-storage';
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

if (contender === 'lib') {
  const store = s3Store({ client, bucket: BUCKET, prefix });
  app.post('/upload', upload({ field: 'file', store, ttlMs: TTL_MS, maxBytes: Infinity }), (req, res) => res.json(req.handedOff[0].ticket));
} else if (contender === 'multer') {
  const { default: multer } = await import('multer');
  const { default: multerS3 } = await import('multer-s3');
  const storage = multerS3({ s3: client, bucket: BUCKET, key: (_req, _file, cb) => cb(null, `${prefix}${randomBytes(16).toString('hex')}`) });
  app.post('/upload', multer({ storage }).single('file'), (req, res) => res.json({ key: req.file.key, size: req.file.size }));
} else if (contender === 'floor') {
  app.post('/upload', async (req, res) => {
    const key = `${prefix}${randomBytes(16).toString('hex')}`;
    await new Upload({ client, params: { Bucket: BUCKET, Key: key, Body: req }, partSize: 8 * 1024 * 1024, queueSize: 2 }).done();
    res.json({ key });
  });
} else {
  throw new Error(`unknown contender ${contender}`);
}
app.use((err, _req, res, _next) => res.status(err.statusCode ?? 500).json({ error: String(err) }));
const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
server.on('request', (_req, res) => res.once('finish', () => done()));
await finished;
server.close();
process.stdout.write(`${JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS })}\n`);
process.exit(0);
