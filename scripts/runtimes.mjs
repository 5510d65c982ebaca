#!/usr/bin/env node
// Runs the library on Bun and Deno, over the built dist/ (build first: npm run build). Both come
// from the npm registry, the only network this needs: the latest Bun (@oven/bun-linux-x64) and the
// latest Deno 2 (@deno/linux-x64-glibc), packed with `npm pack` into $TFM_RUNTIMES_CACHE (default
// <os.tmpdir()>/tempfile-manager-runtimes), one directory per version. Linux x64 only. Then:
//
//   - the portable suite (test/portable/, node:test) under `bun test` and `deno test -A`;
//   - its liveness test (test/portable/liveness-starts.test.mjs) again on each without /proc
//     (TEMPFILE_MANAGER_NO_PROC=1, as scripts/portable.mjs --no-proc runs it on Node): with /proc
//     the sweeper, of the same PID namespace, judges a blocked owner by /proc alone; without it,
//     by its pid and its heartbeat, which the beat thread must beat while the event loop is blocked;
//   - the README's quick start (test/native/quick-start.test.mjs, the code as printed) on each;
//   - test/runtimes/ under Node's runner, which starts processes on Bun and Deno: the exit hook on
//     SIGINT, SIGTERM, SIGHUP, an uncaught error and an unhandled rejection; a handoff from Bun
//     claimed on Deno, handed on and claimed on Node; Express's upload() and handleUpload() on
//     Bun.serve and Deno.serve (a file whole, a chunked body over maxBytes, a client gone
//     mid-body, a refused type); Deno's permissions.
//
//   node scripts/runtimes.mjs
//
// Every step runs, each printed with its time; the exit status is 1 if any failed. Nothing skips
// but one case on Deno: the portable suite's Ctrl+C with signal-exit (test/portable/exit-hook.test.mjs),
// whose handlers are not proven to run after the hook there (the platform table of docs/platforms.md).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const cache = path.resolve(process.env.TFM_RUNTIMES_CACHE || path.join(os.tmpdir(), 'tempfile-manager-runtimes'));
// Only a hang reaches this: each step takes seconds to a minute.
const STEP_BOUND_MS = 5 * 60_000;

const RUNTIMES = {
  bun: { spec: '@oven/bun-linux-x64@latest', binary: 'package/bin/bun' },
  deno: { spec: '@deno/linux-x64-glibc@2', binary: 'package/deno' },
};

function seconds(since) {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

/** The highest version of `spec` on the registry (`npm view` lists every one a range matches). */
function latestVersion(spec) {
  const listed = JSON.parse(execFileSync('npm', ['view', spec, 'version', '--json'], { encoding: 'utf8' }));
  const versions = (Array.isArray(listed) ? listed : [listed]).filter((version) => /^\d+\.\d+\.\d+$/.test(version));
  const byNumber = (a, b) => a.split('.').reduce((order, part, i) => order || Number(part) - Number(b.split('.')[i]), 0);
  const latest = versions.sort(byNumber).at(-1);
  if (!latest) throw new Error(`npm view ${spec}: no release version among ${JSON.stringify(listed)}`);
  return latest;
}

/** The binary of `name` at its latest version, packed from the registry unless cached. */
function fetchRuntime(name) {
  const { spec, binary } = RUNTIMES[name];
  const packageName = spec.slice(0, spec.lastIndexOf('@'));
  const version = latestVersion(spec);
  const dir = path.join(cache, `${name}-${version}`);
  const exe = path.join(dir, binary);
  if (fs.existsSync(exe)) return { exe, version };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const packed = JSON.parse(execFileSync('npm', ['pack', `${packageName}@${version}`, '--json', '--pack-destination', dir], { encoding: 'utf8' }));
  const tarball = path.join(dir, packed[0].filename);
  execFileSync('tar', ['xzf', tarball, '-C', dir]);
  fs.rmSync(tarball);
  fs.chmodSync(exe, 0o755);
  return { exe, version };
}

/**
 * Runs a step to its end with inherited output, bounded; resolves with its exit status. SIGINT
 * gets its default action back: a process started in the background of a non-interactive shell
 * inherits it ignored, which Node resets and Bun and Deno keep (the suites send it).
 */
function run(command, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn('env', ['--default-signal=INT', command, ...args], { cwd: repo, stdio: 'inherit', env: { ...process.env, NO_COLOR: '1', ...env } });
    const bound = setTimeout(() => {
      process.stderr.write(`runtimes: ${command} ${args.join(' ')} passed ${STEP_BOUND_MS / 60_000} min; killed\n`);
      child.kill('SIGKILL');
    }, STEP_BOUND_MS);
    child.on('close', (code, signal) => {
      clearTimeout(bound);
      resolve(signal === 'SIGKILL' ? 124 : (code ?? 1));
    });
  });
}

const LIVENESS_TEST = 'test/portable/liveness-starts.test.mjs';
const NO_PROC = { TEMPFILE_MANAGER_NO_PROC: '1' };

function steps(bun, deno) {
  const runtimes = JSON.stringify({ bun: bun.exe, deno: deno.exe });
  return [
    // Bun's runner gives each test 5 s unless told: the liveness test blocks an owner for 15 s.
    [`Bun ${bun.version}: the portable suite (bun test)`, bun.exe, ['test', '--timeout', '180000', 'test/portable/']],
    [`Bun ${bun.version}: the README's quick start`, bun.exe, ['test', 'test/native/quick-start.test.mjs']],
    [`Deno ${deno.version}: the portable suite (deno test -A)`, deno.exe, ['test', '-A', 'test/portable/']],
    // Without /proc a live owner is judged by its heartbeat: this is the run that proves the beat thread on each runtime.
    [`Bun ${bun.version}: the liveness test without /proc (TEMPFILE_MANAGER_NO_PROC=1)`, bun.exe, ['test', '--timeout', '180000', LIVENESS_TEST], NO_PROC],
    [`Deno ${deno.version}: the liveness test without /proc (TEMPFILE_MANAGER_NO_PROC=1)`, deno.exe, ['test', '-A', LIVENESS_TEST], NO_PROC],
    // --no-check: Deno's type check does not resolve the package's own name from inside it (the
    // quick start imports 'tempfile-manager', as a user's code does); its runtime does.
    [`Deno ${deno.version}: the README's quick start`, deno.exe, ['test', '-A', '--no-check', 'test/native/quick-start.test.mjs']],
    [
      `Bun ${bun.version} and Deno ${deno.version} from Node's runner: the exit hook, a handoff Bun → Deno → Node, the upload routes, Deno's permissions`,
      process.execPath,
      ['--test', '--test-concurrency=1', ...fs.readdirSync(path.join(repo, 'test', 'runtimes')).filter((name) => name.endsWith('.test.mjs')).sort().map((name) => `test/runtimes/${name}`)],
      { TFM_RUNTIMES: runtimes },
    ],
  ];
}

async function main() {
  const started = Date.now();
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`runtimes: Linux x64 only (the npm packages of Bun and Deno fetched here), not ${process.platform} ${process.arch}`);
  if (!fs.existsSync(path.join(repo, 'dist', 'index.js'))) throw new Error('runtimes: no dist/: run npm run build first');
  const bun = fetchRuntime('bun');
  const deno = fetchRuntime('deno');
  console.log(`runtimes: Bun ${bun.version} and Deno ${deno.version} ready in ${cache} (${seconds(started)})`);
  const results = [];
  for (const [name, command, args, env] of steps(bun, deno)) {
    const stepStarted = Date.now();
    console.log(`\n--- ${name}`);
    const status = await run(command, args, env);
    results.push(`${status === 0 ? 'passed' : `FAILED (status ${status})`}  ${seconds(stepStarted).padStart(7)}  ${name}`);
  }
  console.log(`\nruntimes:\n${results.join('\n')}\nruntimes: ${seconds(started)} in all`);
  return results.every((line) => line.startsWith('passed')) ? 0 : 1;
}

process.exitCode = await main();
