// End-to-end check, on a fresh default root (TMPDIR set to a new directory): producer.mjs hands a
// file off and worker.mjs claims it from its ticket; a claimer SIGKILLed mid-claim leaves the
// entry, and worker.mjs then takes it over and consumes it; a producer SIGKILLed mid-write leaves
// its session, which one sweep removes. docs/handoff.md shows the two files as they are here.
// Exits non-zero on failure.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const here = import.meta.dirname;
const repo = path.join(here, '../..');
const tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-check-handoff-two-files-'));
const env = { ...process.env, TMPDIR: tmpdir };
const root = path.join(tmpdir, `tempfile-manager-${process.getuid?.() ?? 'user'}`);
const run = async (file, args = []) => (await promisify(execFile)(process.execPath, [path.join(here, file), ...args], { env, cwd: here, timeout: 60_000 })).stdout;

/** A process of `code` (an ES module run in this directory) killed with SIGKILL once it printed `ready`. */
async function killedAfterReady(code, args = []) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, ...args], { env, cwd: here, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  for await (const chunk of child.stdout) {
    out += chunk;
    if (out.includes('ready')) break;
  }
  assert.match(out, /ready/, 'the process got ready before it ended');
  const ended = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal)));
  child.kill('SIGKILL');
  assert.equal(await ended, 'SIGKILL');
  return /ready (\S+)/.exec(out)?.[1];
}

const sessions = () => fs.readdirSync(root).filter((name) => name.startsWith('session_'));
const entries = () => fs.readdirSync(path.join(root, 'handoff'));

try {
  const ticket = (await run('producer.mjs')).trim();
  assert.equal(JSON.parse(ticket).v, 1, 'the producer printed a ticket');
  assert.equal(entries().length, 1, 'the entry waits in <root>/handoff/');
  assert.match(await run('worker.mjs', [ticket]), /^worker \d+ read: report of /m);
  assert.deepEqual(entries(), [], 'the worker consumed the entry');
  console.log('ok  producer.mjs handed off, worker.mjs claimed and consumed');

  const second = (await run('producer.mjs')).trim();
  await killedAfterReady(
    "import { TempFileManager } from 'tempfile-manager'; const claimed = await new TempFileManager().claim(process.argv[1]); console.log('ready', claimed.path); setInterval(() => {}, 1000);",
    [second],
  );
  assert.equal(entries().length, 1, 'a worker SIGKILLed mid-claim leaves the entry');
  assert.match(await run('worker.mjs', [second]), /^worker \d+ read: report of /m);
  assert.deepEqual(entries(), [], 'the next worker took it over and consumed it');
  console.log('ok  a worker SIGKILLed mid-claim: the next worker took the entry over');

  const left = await killedAfterReady("import { TempFileManager } from 'tempfile-manager'; const file = new TempFileManager().file('.txt'); console.log('ready', file.path); setInterval(() => {}, 1000);");
  assert.ok(left && fs.existsSync(left), 'a producer SIGKILLed mid-write leaves its file in its session');
  await promisify(execFile)(process.execPath, [path.join(repo, 'dist/cli.js'), 'sweep', '--root', root], { env, timeout: 60_000 });
  assert.deepEqual(sessions(), [], 'one sweep removed it, and the session the killed claimer left');
  console.log('ok  a producer SIGKILLed mid-write: one sweep removed its session');

  const page = fs.readFileSync(path.join(repo, 'docs/handoff.md'), 'utf8');
  for (const file of ['producer.mjs', 'worker.mjs']) {
    const shown = new RegExp(`<!-- examples/handoff-two-files/${file} -->\\s*\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(page)?.[1];
    assert.equal(shown, fs.readFileSync(path.join(here, file), 'utf8'), `docs/handoff.md shows ${file} as it is`);
  }
  console.log('handoff-two-files: check passed');
} finally {
  fs.rmSync(tmpdir, { recursive: true, force: true });
}
