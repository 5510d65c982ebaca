#!/usr/bin/env node
// Azurite, Microsoft's emulator of Azure Blob Storage, for the Azure store's tests: installed from
// the npm registry into a cache of its own (it is no dependency of the package: 360 MB, and it
// needs Node 22 or later, while the package's tooling runs on Node 20), and run on a Node of 22 or
// later (this one's, else `npx -y node@22`'s). docs/azure.md says why an emulator and what it shows.
//
//   node scripts/azurite.mjs install        install azurite@VERSION into the cache (idempotent)
//   node scripts/azurite.mjs start [dir]    start one on a free port of 127.0.0.1 and print its state as JSON;
//                                           it runs until killed (its pid is in the state)
//
// The tests start their own (test/azure/server.ts, through startAzurite() below), each file on a
// data directory of its own, and kill it after. The cache: $TEMPFILE_MANAGER_AZURITE_DIR (default
// <os.tmpdir()>/tempfile-manager-azurite). The account is Azurite's well-known development account,
// whose key its README publishes: a throwaway emulator's, on 127.0.0.1 only.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const VERSION = '3.37.0';
export const DIR = path.resolve(process.env.TEMPFILE_MANAGER_AZURITE_DIR || path.join(os.tmpdir(), 'tempfile-manager-azurite'));
export const MAIN = path.join(DIR, 'node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js');
export const ACCOUNT = 'devstoreaccount1';
export const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const say = (line) => console.error(`azurite: ${line}`);

/** Whether azurite@VERSION is in the cache. */
export function installed() {
  try {
    return JSON.parse(fs.readFileSync(path.join(DIR, 'node_modules', 'azurite', 'package.json'), 'utf8')).version === VERSION && fs.existsSync(MAIN);
  } catch {
    return false;
  }
}

/** Installs azurite@VERSION into the cache with npm (about 30 s the first time). */
export function install() {
  if (installed()) return;
  fs.mkdirSync(DIR, { recursive: true });
  say(`installing azurite@${VERSION} into ${DIR}`);
  execFileSync('npm', ['install', '--prefix', DIR, '--no-audit', '--no-fund', '--no-save', '--loglevel=error', `azurite@${VERSION}`], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (!installed()) throw new Error(`npm installed no azurite@${VERSION} into ${DIR}`);
}

let node22;

/** A Node of 22 or later: this one, else the registry's node@22 through npx. */
export function nodeForAzurite() {
  if (Number(process.versions.node.split('.')[0]) >= 22) return process.execPath;
  node22 ??= execFileSync('npx', ['-y', 'node@22', '-p', 'process.execPath'], { encoding: 'utf8' }).trim();
  return node22;
}

/**
 * Starts Azurite's blob service on 127.0.0.1 (`port` 0: a free one, which it reports), its data in
 * `location`. Resolves once it answers, with its endpoint, the account and key, and its process.
 */
export async function startAzurite({ location, port = 0, startTimeoutMs = 60_000 } = {}) {
  if (!installed()) throw new Error(`azurite@${VERSION} is not installed in ${DIR}: run node scripts/azurite.mjs install`);
  fs.mkdirSync(location, { recursive: true });
  const args = [MAIN, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', location, '--silent', '--skipApiVersionCheck', '--disableTelemetry', '--loose'];
  const child = spawn(nodeForAzurite(), args, { stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  let output = '';
  const started = performance.now();
  const listening = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Azurite did not start within ${startTimeoutMs} ms: ${output}`)), startTimeoutMs);
    const read = (chunk) => {
      output += chunk;
      const found = /listens on (http:\/\/127\.0\.0\.1:(\d+))/.exec(output);
      if (found) {
        clearTimeout(timer);
        resolve(Number(found[2]));
      }
    };
    child.stdout.setEncoding('utf8').on('data', read);
    child.stderr.setEncoding('utf8').on('data', read);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`Azurite exited (${signal ?? code}) before it listened: ${output}`));
    });
  });
  child.stdout.resume();
  child.stderr.resume();
  const endpoint = `http://127.0.0.1:${listening}/${ACCOUNT}`;
  await answers(endpoint, startTimeoutMs);
  return { endpoint, port: listening, account: ACCOUNT, key: KEY, location, child, pid: child.pid, startMs: Math.round(performance.now() - started) };
}

/** Waits until `endpoint` answers HTTP (any status). */
async function answers(endpoint, timeoutMs) {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const req = http.get(`${endpoint}?comp=list`, { timeout: 2000 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    if (performance.now() > until) throw new Error(`Azurite at ${endpoint} does not answer`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [command, dir] = process.argv.slice(2);
  if (command === 'install') {
    install();
    nodeForAzurite();
    say(`azurite@${VERSION} ready in ${DIR}; it runs on ${nodeForAzurite()}`);
  } else if (command === 'start') {
    install();
    const started = await startAzurite({ location: dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-azurite-')) });
    const { child, ...state } = started;
    console.log(JSON.stringify(state));
    child.unref();
    child.stdout.destroy();
    child.stderr.destroy();
    process.exit(0);
  } else {
    console.error('usage: node scripts/azurite.mjs install | start [data-dir]');
    process.exit(2);
  }
}
