// `npm run bench`: every suite (or those named by `--only a,b`) on the current Node, each
// saved to bench/results/node-<major>/<suite>.md; then the summary in docs/benchmarks.md and how
// each suite runs in bench/README.md (bench/report.mjs); `--report` rebuilds those two alone.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createSuite } from './create.mjs';
import { exitHookSuite } from './exit-hook.mjs';
import { runInfo, writeDoc, writeReport } from './report.mjs';
import { azureHandoffSuite, baselineSuite, gateSuite, livenessSuite, browserToBucketSuite, handoffSuite, intakeSuite, s3DirectSuite, s3HandoffSuite, spoolSuite, sweepHandoffSuite, tusSuite, uploadsSuite } from './standalone-suites.mjs';
import { sweepSuite } from './sweep.mjs';
import { writeSuite } from './write.mjs';

// In this order: mass deletes put ext4 in its slow-create mode for a minute or more (see
// settle.mjs), so the suites that delete most come last, the sweep's million files at the end.
const SUITES = [gateSuite, createSuite, writeSuite, spoolSuite, handoffSuite, livenessSuite, s3HandoffSuite, azureHandoffSuite, s3DirectSuite, browserToBucketSuite, uploadsSuite, tusSuite, baselineSuite, intakeSuite, exitHookSuite, sweepSuite, sweepHandoffSuite];

const { values } = parseArgs({ options: { only: { type: 'string' }, report: { type: 'boolean' } } });
if (values.report) {
  // Rebuilds docs/benchmarks.md and bench/README.md from the saved results alone (after a suite run by its own script).
  console.log(`wrote ${writeDoc(SUITES)}`);
  process.exit(0);
}
const only = values.only?.split(',').map((s) => s.trim());
const unknown = only?.filter((id) => !SUITES.some((s) => s.id === id)) ?? [];
if (unknown.length > 0) {
  console.error(`Unknown suite ${unknown.join(', ')}: pick from ${SUITES.map((s) => s.id).join(', ')}.`);
  process.exit(2);
}
const selected = SUITES.filter((s) => !only || only.includes(s.id));

const started = Date.now();
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tempfile-manager-bench-'));
try {
  console.log(`Node ${process.version}, bench root ${root}, suites: ${selected.map((s) => s.id).join(', ')}`);
  for (const suite of selected) {
    const suiteStarted = Date.now();
    console.log(`\n## ${suite.title}`);
    const dir = path.join(root, suite.id);
    fs.mkdirSync(dir, { mode: 0o700 });
    const section = await suite.run(dir, runInfo());
    fs.rmSync(dir, { recursive: true, force: true });
    const doc = section === undefined ? 'nothing' : writeReport(SUITES, suite, section);
    console.log(`\n${suite.title}: ${((Date.now() - suiteStarted) / 1000).toFixed(0)} s, wrote ${doc}.`);
  }
  console.log(`\nDone in ${((Date.now() - started) / 1000).toFixed(0)} s.`);
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
