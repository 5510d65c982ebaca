// The library's whole public surface, driven once, for the system-call audit (audit.mjs runs it
// under strace). What the "user" does itself (planting files, reading results) is bracketed by
// markers, so that the audit judges only the calls the library makes.
// Usage: node workload.mjs <package dir> <work dir>
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

const [packageDir, work] = process.argv.slice(2);
const lib = await import(pathToFileURL(path.join(packageDir, 'dist/index.js')).href);
const { TempFileManager } = lib;

// A failing access() of a name no file has: strace shows it, nothing else does.
const mark = (what) => {
  try {
    fs.accessSync(`/tempfile-manager-audit-marker/${what}`);
  } catch {
    // expected: the name does not exist
  }
};
/** Runs `fn` as the user: its calls are not the library's. Sync only, on this thread. */
const asUser = (fn) => {
  mark('user-begin');
  try {
    return fn();
  } finally {
    mark('user-end');
  }
};
const expectError = async (what, fn) => {
  try {
    await fn();
  } catch (err) {
    if (err && typeof err.code === 'string' && err.code.startsWith('ERR_TEMPFILE_')) return;
    throw new Error(`${what}: expected a typed error, got ${err}`);
  }
  throw new Error(`${what}: expected a typed error, got none`);
};

const root = path.join(work, 'root');
const dest = path.join(work, 'dest');
asUser(() => fs.mkdirSync(dest, { mode: 0o700 }));

/** A manager, made between markers: the constructor names the root by its path to check it. */
const managerOf = (options) => {
  mark('construct-begin');
  try {
    return new TempFileManager({ root, sweepOnStart: false, ...options });
  } finally {
    mark('construct-end');
  }
};
const mgr = managerOf();

// Scoped files and directories, sync and async disposal.
{
  const file = mgr.file('.txt');
  asUser(() => fs.writeFileSync(file.path, 'hello'));
  await new Promise((resolve, reject) => {
    const stream = file.createReadStream();
    stream.on('data', () => {}).on('end', resolve).on('error', reject);
  });
  await new Promise((resolve, reject) => {
    const stream = file.createWriteStream({ append: true });
    stream.on('finish', resolve).on('error', reject);
    stream.end(' world');
  });
  await file.remove();
  const sync = mgr.file();
  sync[Symbol.dispose]();
  const dir = mgr.dir();
  asUser(() => {
    fs.mkdirSync(path.join(dir.path, 'a/b'), { recursive: true });
    fs.writeFileSync(path.join(dir.path, 'a/b/c.bin'), 'x');
    fs.symlinkSync('/etc', path.join(dir.path, 'a/link'));
  });
  await dir.remove();
}

// Streaming writes: bytes, a stream, an iterable; limits; a scope.
{
  const small = await mgr.write(Buffer.from('small'), { suffix: '.bin', hash: 'sha256' });
  const big = await mgr.write(Readable.from([Buffer.alloc(1 << 20, 1), Buffer.alloc(1 << 20, 2)]), { maxBytes: 4 << 20 });
  await expectError('maxBytes', () => mgr.write(Buffer.alloc(2048), { maxBytes: 1024 }));
  await small.remove();
  await big.remove();
  await mgr.withScope(async (scope) => {
    scope.file();
    scope.dir();
    await scope.write(Buffer.from('in a scope'));
    const nested = scope.scope();
    nested.file();
  });
}

// keep(): on one file system, refused over an existing name, a FIFO and a symlink at the destination.
{
  const kept = await mgr.write(Buffer.from('kept'));
  await kept.keep(path.join(dest, 'kept.txt'));
  const refused = await mgr.write(Buffer.from('refused'));
  await expectError('keep over a file', () => refused.keep(path.join(dest, 'kept.txt')));
  asUser(() => fs.symlinkSync('/etc/passwd', path.join(dest, 'link')));
  await expectError('keep over a symlink', () => refused.keep(path.join(dest, 'link')));
  await refused.keep(path.join(dest, 'kept.txt'), { overwrite: true });
}

// Handoff, claim, consume, release, keep from a claim.
{
  const claimer = managerOf();
  const tickets = [];
  for (let i = 0; i < 3; i++) {
    const file = await mgr.write(Buffer.from(`job ${i}`), { suffix: '.job', hash: 'sha256' });
    tickets.push(await file.handoff({ ttlMs: 60_000 }));
  }
  const first = await claimer.claim(tickets[0], { verifyDigest: true });
  await expectError('a second claimer', () => mgr.claim(tickets[0]));
  await first.release();
  const again = await claimer.claim(tickets[0]);
  await again.consume();
  const second = await claimer.claim(tickets[1]);
  await second.keep(path.join(dest, 'claimed.job'));
  const third = await claimer.claim(tickets[2]);
  third.consumeSync();
  await expectError('a consumed ticket', () => claimer.claim(tickets[2]));
  await claimer.close();
}

// An expired handoff and an orphaned session, swept.
{
  const file = await mgr.write(Buffer.from('expires'));
  await file.handoff({ ttlMs: 1 });
  await sleep(20);
  const sweeper = managerOf({ graceMs: 0, staleMs: 2000 });
  await sweeper.sweep();
  await sweeper.close();
}

// tempfile-manager/tus behind @tus/server on a real port: an upload made, PATCHed in two requests
// (the second finishes it, kept by onUploadFinish), a second one terminated; through a second store
// whose uploads expire after 1 s, a third partly written, expired and swept. The first store's
// uploads do not expire within the workload, however slowly a loaded machine runs it under strace.
// The requests are this process's own HTTP client: they make no file-system call.
{
  const { tusStore } = await import(pathToFileURL(path.join(packageDir, 'dist/tus.js')).href);
  const { Server } = await import('@tus/server');
  const http = await import('node:http');
  const kept = await tusStore({ manager: mgr, onUploadFinish: (file) => file.keep(path.join(dest, 'tus.bin')) });
  const expiring = await tusStore({ manager: mgr, expirationMs: 1000 });
  const servers = { '/files': new Server({ path: '/files', ...kept }), '/expiring': new Server({ path: '/expiring', ...expiring }) };
  const server = http.createServer((req, res) => void servers[req.url.startsWith('/expiring') ? '/expiring' : '/files'].handle(req, res));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const send = (url, method, headers, body) => fetch(url, { method, headers: { 'Tus-Resumable': '1.0.0', ...headers }, body });
  const create = async (base) => new URL((await send(base, 'POST', { 'Upload-Length': '8' })).headers.get('location'), base).href;
  const patch = (url, offset, text) => send(url, 'PATCH', { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' }, text);
  const upload = await create(`${origin}/files`);
  await patch(upload, 0, 'abcd');
  await send(upload, 'HEAD', {});
  const last = await patch(upload, 4, 'efgh');
  if (last.status !== 204) throw new Error(`tus: the last PATCH was answered ${last.status}, not 204: ${await last.text()}`);
  const terminated = await create(`${origin}/files`);
  await send(terminated, 'DELETE', {});
  // Its bytes counted against the quota: stats() looks at the upload on disk, before and after the sweep.
  await patch(await create(`${origin}/expiring`), 0, 'ab');
  mgr.stats();
  await sleep(1100);
  await mgr.sweep();
  mgr.stats();
  await new Promise((resolve) => server.close(resolve));
}

// Close: the session and what is left in it.
mgr.file();
mgr.dir();
await mgr.write(Buffer.from('left for close()'));
await mgr.close();

// The exit hook: a manager left open when the process exits.
const last = managerOf();
last.file();
await last.write(Buffer.from('left for the exit hook'));
mark('workload-end');
process.exit(0);
