// The exit hook: time from SIGTERM to death of a child holding live temp files, the library's
// exit hook against a bare `process.on('SIGTERM')` handler doing `fs.rmSync()`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { formatInt, formatRatio, ROOT_MARKER, sampleInterleaved, stats, table, targetsTable } from './lib.mjs';
import { flush } from './settle.mjs';

const CHILD = fileURLToPath(new URL('./exit-child.mjs', import.meta.url));

const params = { rounds: 7, files: 10_000, maxRatio: 1.1 };

const CONTENDERS = [
  {
    id: 'bare',
    name: "bare handler: `process.on('SIGTERM')` → `fs.rmSync(dir, { recursive: true, force: true })`, re-raise",
    baseline: true,
  },
  { id: 'mgr', name: '`mgr.file()` × 10,000, default exit hook (signal-exit)' },
];

export const METHOD = `- Each sample is a child process (\`bench/exit-child.mjs\`) holding ${formatInt(params.files)} live,
  empty temp files: made through \`mgr.file()\` with the default exit hook, or made with raw
  \`fs\` in one directory, named like the library's (128 random bits in hex), with a bare SIGTERM
  handler that removes it with \`fs.rmSync()\`, removes itself and sends SIGTERM again. Both
  children import the library.
- All children are started (and make their files) before the first sample, so that no child
  creates files after another one's deletes (ext4's slow-create mode, see settle.mjs); then
  \`sync\`. Samples are interleaved, with \`sync\` and a 150 ms settle before each.
- The parent sends SIGTERM and stops the clock at the child's \`'exit'\` event. Every sample must
  die of SIGTERM (no exit code) and leave nothing: no session directory, no lock, no files.
- The exit hook never removes by path: it opens the session directory with O_NOFOLLOW and
  removes its entries through that descriptor, \`/proc/<pid>/fd/<fd>\`, so a directory swapped
  for a symlink meanwhile cannot send it outside the root (docs/security.md). On Node 20 and 22
  it unlinks each entry through \`/proc/<pid>/fd/<fd>/<name>\`, four more path components than a
  plain unlink, where \`fs.rmSync()\` is JavaScript that \`lstat\`s every entry first. On Node 24
  \`fs.rmSync()\` is native code (\`std::filesystem::remove_all\`, \`unlinkat\` relative to the
  directory), and the exit hook hands it a directory without subdirectories (and without a mount
  point under the root) as \`/proc/<pid>/fd/<fd>/.\`: one call for all its files, through the
  same descriptor.`;

/** Starts a child of `mode` in a root of its own and waits until it holds its files. */
async function start(mode, root) {
  const dir = fs.mkdtempSync(path.join(root, `${mode}-`));
  const child = spawn(process.execPath, [CHILD, mode, dir, String(params.files)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: process.hrtime.bigint() })),
  );
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const { value, done } = await lines.next();
  if (done) throw new Error(`the ${mode} child ended before reporting: ${JSON.stringify(await exited)}`);
  return { mode, dir, child, exited, paths: JSON.parse(value).paths };
}

/** Sends SIGTERM to a started child; resolves { ms } once it is dead, after checking what it left. */
async function terminate({ mode, dir, child, exited, paths }) {
  const sent = process.hrtime.bigint();
  child.kill('SIGTERM');
  const { code, signal, at } = await exited;
  if (signal !== 'SIGTERM' || code !== null) throw new Error(`the ${mode} child ended with ${code ?? signal}`);
  // The root marker stays by design: it says the directory is a manager's root.
  const left = [...paths.filter((p) => fs.existsSync(p)), ...fs.readdirSync(dir).filter((name) => name !== ROOT_MARKER)];
  if (left.length > 0) throw new Error(`the ${mode} child left ${left.join(', ')}`);
  fs.rmSync(dir, { recursive: true });
  return { ms: Number(at - sent) / 1e6 };
}

async function runExitHook(root) {
  const children = { bare: [], mgr: [] };
  for (let i = 0; i < params.rounds; i++) {
    for (const { id } of CONTENDERS) children[id].push(await start(id, root));
  }
  const results = await sampleInterleaved(CONTENDERS, {
    rounds: params.rounds,
    before: flush,
    sample: (c) => terminate(children[c.id].pop()),
  });
  const measured = results.map((r) => ({ ...r, time: stats(r.samples, 'ms') }));
  console.log(`\nSIGTERM to death, ${formatInt(params.files)} live files\n\n${exitTable(measured)}`);
  return measured;
}

function exitTable(results) {
  const base = results.find((r) => r.baseline);
  const rows = results.map((r) => [
    r.name,
    formatInt(r.time.median),
    `${formatInt(r.time.min)} – ${formatInt(r.time.max)}`,
    formatRatio(r.time.median / base.time.median),
  ]);
  return table(['Child', 'ms SIGTERM → exit (median)', 'min – max', 'time vs bare'], rows, ['l', 'r', 'r', 'r']);
}

function renderExitHook(results, info) {
  const ratio = results.find((r) => r.id === 'mgr').time.median / results.find((r) => r.baseline).time.median;
  return [
    `### Exit hook (Node ${process.version})`,
    '',
    `${info} ${params.rounds} samples per child, each holding ${formatInt(params.files)} live files.`,
    '',
    `#### SIGTERM to death with ${formatInt(params.files)} live temp files`,
    '',
    exitTable(results),
    '',
    '#### Targets',
    '',
    targetsTable([[`exit hook within ${params.maxRatio}x of the bare handler`, formatRatio(ratio), ratio <= params.maxRatio]]),
    '',
  ].join('\n');
}

/** The suite, as run.mjs drives it. */
export const exitHookSuite = {
  id: 'exit-hook',
  title: 'Exit hook',
  method: METHOD,
  run: async (root, info) => renderExitHook(await runExitHook(root), info),
};
