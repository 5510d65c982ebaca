// What the runtimes suite's files share: the runtimes under test (scripts/runtimes.mjs passes
// their binaries in TFM_RUNTIMES), a process started on any of them, and what is left in a root.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export { eventually, scratch, WAIT_MS } from '../portable/helpers.mjs';
import { WAIT_MS } from '../portable/helpers.mjs';

export const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
export const repo = path.join(fixtures, '..', '..', '..');

/** The binaries of Bun and Deno: `{ bun, deno }`, from scripts/runtimes.mjs. */
export function runtimes() {
  const given = process.env.TFM_RUNTIMES;
  if (!given) throw new Error('TFM_RUNTIMES is not set: run this suite through scripts/runtimes.mjs, which fetches Bun and Deno');
  return { ...JSON.parse(given), node: process.execPath };
}

/**
 * The command line that runs `script` on `runtime`: Deno with all permissions unless `denoFlags`
 * says otherwise. SIGINT gets its default action back: a process started in the background of a
 * non-interactive shell inherits it ignored, which Node resets and Bun and Deno keep.
 */
function commandLine(runtime, script, args, denoFlags) {
  const binary = runtimes()[runtime];
  const run = runtime === 'deno' ? [binary, 'run', ...(denoFlags ?? ['-A']), script] : [binary, script];
  return ['env', '--default-signal=INT', ...run, ...args];
}

/**
 * Starts `fixtures/<name>` (or a path) on `runtime` with piped output. `firstLine()` resolves with
 * its first stdout line, parsed; `ended` with its code, signal and output.
 */
export function startOn(runtime, name, args = [], { denoFlags, env = {} } = {}) {
  const script = path.isAbsolute(name) ? name : path.join(fixtures, name);
  const [command, ...rest] = commandLine(runtime, script, args, denoFlags);
  const proc = spawn(command, rest, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', ...env } });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
  proc.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  const ended = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${runtime} ${name} did not end within ${WAIT_MS} ms; stderr: ${stderr}`));
    }, WAIT_MS);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  const lines = () => stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line));
  const firstLine = async () => {
    while (!stdout.includes('\n')) {
      const outcome = await Promise.race([ended, new Promise((resolve) => proc.stdout.once('data', () => resolve(undefined)))]);
      if (outcome) throw new Error(`${runtime} ${name} ended (${outcome.code ?? outcome.signal}) before its first line; stderr: ${outcome.stderr}`);
    }
    return lines()[0];
  };
  return { proc, ended, firstLine, lines };
}

/** Runs `fixtures/<name>` on `runtime` to its end; resolves with its lines, parsed, code and stderr. */
export async function runOn(runtime, name, args = [], options = {}) {
  const child = startOn(runtime, name, args, options);
  const end = await child.ended;
  return { ...end, lines: child.lines() };
}

/** Every path in the root's sessions and handoff area: what a request or a process left. */
export function leftUnder(root) {
  const left = [];
  for (const name of fs.existsSync(root) ? fs.readdirSync(root) : []) {
    const at = path.join(root, name);
    if (name.startsWith('session_') && fs.lstatSync(at).isDirectory()) left.push(...fs.readdirSync(at).map((entry) => path.join(at, entry)));
    if (name === 'handoff') left.push(...fs.readdirSync(at, { recursive: true }).map((entry) => path.join(at, entry)));
  }
  return left;
}

export const MiB = 1024 * 1024;
export const BOUNDARY = 'tfmRuntimesBoundary7MA4YWxk';

/** The head of a multipart body whose one file part, in field `file`, follows it. */
export const fileHead = (type = 'application/octet-stream') =>
  Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="upload.bin"\r\nContent-Type: ${type}\r\n\r\n`);

/** A whole multipart body of one file part in field `file`. */
export function oneFileForm(bytes, type) {
  const body = Buffer.concat([fileHead(type), bytes, Buffer.from(`\r\n--${BOUNDARY}--\r\n`)]);
  return { body, headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': String(body.length) } };
}

/**
 * A POST of `form` (from oneFileForm) through a keep-alive `agent`: resolves with the answer's
 * status, or status 0 and the error when the request got none.
 */
export function agentPost(agent, port, urlPath, form) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'POST', agent, headers: form.headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode }));
      res.on('error', (err) => resolve({ status: 0, error: err.code ?? err.message }));
    });
    req.on('error', (err) => resolve({ status: 0, error: err.code ?? err.message }));
    req.end(form.body);
  });
}

/** Whether `text` holds a whole HTTP/1.1 response: its head, and its body by length or to its last chunk. */
function wholeResponse(text) {
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd < 0) return false;
  const head = text.slice(0, headEnd);
  const body = text.slice(headEnd + 4);
  const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
  if (length !== undefined) return Buffer.byteLength(body, 'latin1') >= Number(length);
  return /\r\ntransfer-encoding: *chunked/i.test(head) && /(^|\r\n)0\r\n\r\n$/.test(body);
}

/**
 * A raw HTTP/1.1 request: its head is written, then `send(socket, answered)` writes the body.
 * Resolves with the status and text once a whole response arrived (the connection is then
 * dropped: a server may keep it open after refusing a body it did not read) or the connection
 * ended.
 */
export function rawRequest(port, urlPath, headers, send) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    let error;
    const text = () => Buffer.concat(chunks).toString('latin1');
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      if (wholeResponse(text())) socket.destroy();
    });
    socket.on('error', (err) => (error ??= err.code ?? err.message));
    socket.on('end', () => socket.end());
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text())?.[1] ?? 0), text: text(), error }));
    setTimeout(() => socket.destroy(), 30_000).unref(); // an answer that never comes
    socket.write(`POST ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`);
    send(socket, () => chunks.length > 0);
  });
}

/** A chunked upload of `total` bytes of one file, sent until the server answers: resolves with the answer. */
export function chunkedUpload(port, urlPath, total) {
  let sent = 0;
  return rawRequest(port, urlPath, { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}`, 'Transfer-Encoding': 'chunked' }, (socket, answered) => {
    const block = Buffer.alloc(256 * 1024);
    const chunk = (piece) => Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
    const pump = () => {
      while (!answered() && !socket.destroyed && sent < total) {
        const piece = sent === 0 ? fileHead() : block;
        sent += piece.length;
        if (!socket.write(chunk(piece))) return void socket.once('drain', pump);
      }
    };
    pump();
  });
}

/** The JSON body of a raw reply (one JSON object, whether sent whole or in chunks). */
export const jsonBody = (reply) => JSON.parse(reply.text.slice(reply.text.indexOf('{'), reply.text.lastIndexOf('}') + 1));
