// `npm run bench`: create+dispose speed of files and directories, syscalls per file, and the
// report in docs/benchmarks.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { closeAll, dirContenders, fileContenders } from './create.mjs';
import { sampleRoundRobin, speedTable } from './lib.mjs';
import { renderSection, writeReport } from './report.mjs';
import { Settler } from './settle.mjs';
import { countSyscalls, straceProblem, syscallTable } from './syscalls.mjs';

const params = {
  samples: 7,
  fileOps: 5000,
  dirOps: 2000,
  warmup: 500,
  syscallOps: 10_000,
  waitBudgetMs: 90_000,
};

async function suite(title, contenders, ops, settler) {
  const { samples, warmup } = params;
  try {
    const results = await sampleRoundRobin(contenders, { samples, ops, warmup, settler });
    console.log(`\n${title}\n\n${speedTable(results)}`);
    return results;
  } finally {
    await closeAll(contenders);
  }
}

async function syscalls(files, root) {
  const problem = straceProblem();
  if (problem) {
    console.log(`\nSyscalls: skipped, ${problem}.`);
    return { straceProblem: problem };
  }
  const results = await countSyscalls(files, root, params.syscallOps);
  console.log(`\nSyscalls per file\n\n${syscallTable(results)}`);
  return { syscalls: results };
}

const started = Date.now();
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tempfile-manager-bench-'));
try {
  console.log(`Node ${process.version}, bench root ${root}`);
  const settler = new Settler(fs.mkdtempSync(path.join(root, 'probe-')), params.waitBudgetMs);
  const files = await suite('Files: create + dispose', await fileContenders(root), params.fileOps, settler);
  const dirs = await suite('Directories: create + dispose', dirContenders(root), params.dirOps, settler);
  console.log(`\nWaited ${settler.waitedMs / 1000} s for slow mode; ${settler.slowSamples} samples started in it.`);
  const counts = await syscalls(files, root);
  const doc = writeReport(renderSection({ files, dirs, params, settler, ...counts }));
  console.log(`\nWrote ${doc} in ${((Date.now() - started) / 1000).toFixed(0)} s.`);
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
