// `node bench/upload-cpu.mjs [bytes] [concurrency] [batches] [per batch]`: server CPU per upload of
// each contender, interleaved batches (CPU time is far less swayed by the machine's load than
// requests/s); with TFM_BENCH_BASELINE=<another build's dist>, our contenders on that build too.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
const [sizeText = '10240', concText = '32', batches = '8', perBatch = '600'] = process.argv.slice(2);
const ids = ['express-upload', 'fastify-upload', 'multer', 'fastify-save', ...(process.env.TFM_BENCH_BASELINE ? ['express-upload@baseline', 'fastify-upload@baseline'] : [])];
const root = fs.mkdtempSync(`${process.env.TFM_BENCH_DIR ?? '/var/tmp'}/cpu-ab-`);
async function start(id) {
  const dir = fs.mkdtempSync(`${root}/d-`);
  const child = spawn(process.execPath, ['--expose-gc', new URL('./upload-server.mjs', import.meta.url).pathname, id, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const ready = await new Promise((res, rej) => {
    child.stdout.on('data', (d) => { out += d; const l = out.split('\n').find((x) => x.startsWith('{')); if (l) res(JSON.parse(l)); });
    child.on('exit', (code) => rej(new Error(`the ${id} server exited (${code}) before it listened`)));
  });
  return { id, child, ...ready, agent: new http.Agent({ keepAlive: true, maxSockets: Number(concText) }) };
}
const B = '----x' + randomBytes(8).toString('hex');
const body = Buffer.concat([Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="file"; filename="upload.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`), randomBytes(Number(sizeText)), Buffer.from(`\r\n--${B}--\r\n`)]);
const post = (s) => new Promise((res, rej) => { const r = http.request({ port: s.port, host: '127.0.0.1', method: 'POST', path: '/upload', agent: s.agent, headers: { 'content-type': `multipart/form-data; boundary=${B}`, 'content-length': body.length } }, (m) => { m.resume(); m.on('end', () => (m.statusCode === 200 ? res() : rej(new Error(`${s.id}: ${m.statusCode}`)))); }); r.on('error', rej); r.end(body); });
const control = async (s, route, method = 'GET') => (await fetch(`http://127.0.0.1:${s.control}${route}`, { method })).json();
const servers = [];
for (const id of ids) servers.push(await start(id));
const cpu = Object.fromEntries(ids.map((i) => [i, []]));
for (let b = 0; b < Number(batches); b++) {
  for (const s of b % 2 ? [...servers].reverse() : servers) {
    await control(s, '/baseline', 'POST');
    let sent = 0;
    await Promise.all(Array.from({ length: Number(concText) }, async () => { while (sent < Number(perBatch)) { sent++; await post(s); } }));
    cpu[s.id].push(((await control(s, '/stats')).cpu * 1e6) / Number(perBatch));
    // Its sockets would idle through the other servers' batches, past the server's keep-alive
    // timeout, and a request on one the server was closing would fail (ECONNRESET, EPIPE).
    s.agent.destroy();
  }
}
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
for (const id of ids) console.log(`${id.padEnd(26)} ${med(cpu[id]).toFixed(0)} µs CPU per upload (median of ${batches} batches of ${perBatch})`);
for (const s of servers) s.child.kill();
fs.rmSync(root, { recursive: true, force: true });
process.exit(0);
