// A real ClamAV daemon for the tests of the `verify` hook: Debian's clamd, started on a signature
// database of one line (EICAR's md5, so no download is needed), reached over its unix socket with
// the INSTREAM command; and the small client a `verify` hook uses to scan a file.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Needs } from './privileges.js';

/** Debian's clamd (package clamav-daemon), in /usr/sbin. */
export const CLAMD: Needs = { command: 'clamd', package: 'clamav-daemon' };

/** The EICAR test file: every antivirus reports it, and it harms nothing. */
export const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');

/** A clamd of the test's own, and how to stop it. */
export interface Clamd {
  /** Its unix socket. */
  readonly socket: string;
  /** Kills it (SIGKILL) as a crash would: its socket stays, and nothing listens on it any more. */
  crash(): Promise<void>;
  /** Stops it (SIGTERM, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
}

/** Starts clamd on a database that knows EICAR only; resolves once it answers PING. */
export async function startClamd(): Promise<Clamd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-clamd-'));
  const db = path.join(dir, 'db');
  fs.mkdirSync(db);
  fs.writeFileSync(path.join(db, 'local.hdb'), `${createHash('md5').update(EICAR).digest('hex')}:${EICAR.length}:Local.EICAR.Test\n`);
  const socket = path.join(dir, 'clamd.sock');
  const conf = path.join(dir, 'clamd.conf');
  fs.writeFileSync(conf, [`DatabaseDirectory ${db}`, `LocalSocket ${socket}`, 'Foreground yes', `User ${os.userInfo().username}`, `LogFile ${path.join(dir, 'clamd.log')}`, ''].join('\n'));
  const child = spawn('clamd', ['-c', conf], { stdio: 'ignore' });
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = () => stopClamd(child, dir, 'SIGTERM');
  try {
    // The socket's name appears when clamd binds it, a moment before it listens: PING until it answers.
    let pong: string | undefined;
    const deadline = Date.now() + 60_000;
    while (pong === undefined && !exited && Date.now() < deadline) {
      pong = await command(socket, 'zPING\0').catch(() => undefined);
      if (pong === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (exited) throw new Error(`clamd exited at start: ${readLog(dir)}`);
    if (pong !== 'PONG') throw new Error(`clamd answered PING with ${JSON.stringify(pong)} (log: ${readLog(dir)})`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { socket, stop, crash: () => stopClamd(child, undefined, 'SIGKILL') };
}

function readLog(dir: string): string {
  try {
    return fs.readFileSync(path.join(dir, 'clamd.log'), 'utf8');
  } catch {
    return '(no log)';
  }
}

async function stopClamd(child: ChildProcess, dir: string | undefined, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
}

/** Sends `request` on a new connection and resolves with clamd's answer, its trailing NUL cut. */
function command(socket: string, request: string | readonly Buffer[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const conn = net.createConnection(socket);
    conn.on('data', (chunk: Buffer) => chunks.push(chunk));
    conn.on('error', reject);
    conn.on('end', () => resolve(Buffer.concat(chunks).toString('utf8').replace(/\0$/, '')));
    if (typeof request === 'string') conn.end(request);
    else {
      for (const part of request) conn.write(part);
      conn.end();
    }
  });
}

/**
 * Scans a file's bytes with INSTREAM: `zINSTREAM\0`, each chunk after its length (4 bytes, big
 * endian), a zero length. Resolves with the signature's name, or undefined for a clean file;
 * rejects when clamd is unreachable or answers with an error. `signal` closes the connection.
 */
export function scanFile(socket: string, file: string, signal?: AbortSignal): Promise<string | undefined> {
  return scanStream(socket, fs.createReadStream(file, { highWaterMark: 64 * 1024 }), signal);
}

/** {@link scanFile} over any stream of bytes (an object read from a bucket). */
export async function scanStream(socket: string, bytes: AsyncIterable<Buffer> | NodeJS.ReadableStream, signal?: AbortSignal): Promise<string | undefined> {
  const conn = net.createConnection(socket);
  const onAbort = () => conn.destroy(signal?.reason instanceof Error ? signal.reason : new Error('scan aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const answer = new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      conn.on('data', (chunk: Buffer) => chunks.push(chunk));
      conn.on('error', reject);
      conn.on('end', () => resolve(Buffer.concat(chunks).toString('utf8').replace(/\0$/, '')));
    });
    answer.catch(() => {});
    conn.write('zINSTREAM\0');
    for await (const chunk of bytes as AsyncIterable<Buffer>) {
      const size = Buffer.alloc(4);
      size.writeUInt32BE(chunk.length);
      conn.write(size);
      conn.write(chunk);
    }
    conn.end(Buffer.alloc(4));
    const reply = await answer;
    const found = /^stream: (.+) FOUND$/.exec(reply);
    if (found) return found[1];
    if (reply === 'stream: OK') return undefined;
    throw new Error(`clamd answered ${JSON.stringify(reply)}`);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    conn.destroy();
  }
}
