// Runs again, under the Node that runs this script, exactly the tests that a vitest JSON report
// says did not pass (skipped where root or a package was missing), test/s3, test/azure and
// test/contract aside (the object-store tests run against the gateway and Azurite in their own steps), and fails unless every one of them passes
// now. CI calls it after each fresh-machine run:
//
//   node scripts/rerun-skipped.mjs <report.json> "<what the report's run lacked>"
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [reportPath, lacked = 'root or a package'] = process.argv.slice(2);
if (!reportPath) throw new Error('usage: node scripts/rerun-skipped.mjs <report.json> [what the run lacked]');

/** `file|fullName` of every test of `report` whose status is not `passed`, test/s3, test/azure and test/contract aside. */
function notPassed(report) {
  const found = new Map();
  for (const file of report.testResults) {
    const name = path.relative(process.cwd(), file.name.replace(/^.*?\/repo\//, `${process.cwd()}/`));
    if (name.startsWith('test/s3/') || name.startsWith('test/azure/') || name.startsWith('test/contract/')) continue;
    for (const test of file.assertionResults) if (test.status !== 'passed') found.set(`${name}|${test.fullName}`, { file: name, fullName: test.fullName });
  }
  return found;
}

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const wanted = notPassed(JSON.parse(fs.readFileSync(reportPath, 'utf8')));
if (wanted.size === 0) {
  console.error(`rerun-skipped: the run of ${reportPath} skipped nothing: ${lacked} is no longer needed by any test`);
  process.exit(1);
}
const files = [...new Set([...wanted.values()].map((test) => test.file))].sort();
console.log(`rerun-skipped: ${wanted.size} tests in ${files.length} files, skipped for want of ${lacked}:`);
for (const file of files) console.log(`  ${file}`);

const pattern = `(?:^|\\s)(?:${[...new Set([...wanted.values()].map((test) => escape(test.fullName)))].join('|')})$`;
const rerunReport = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-rerun-')), 'report.json');
const vitest = path.join('node_modules', 'vitest', 'vitest.mjs');
const run = spawnSync(process.execPath, [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${rerunReport}`, '-t', pattern, ...files], { stdio: 'inherit' });
if (run.status !== 0) process.exit(run.status ?? 1);

const report = JSON.parse(fs.readFileSync(rerunReport, 'utf8'));
const passed = new Set();
for (const file of report.testResults) {
  const name = path.relative(process.cwd(), file.name);
  for (const test of file.assertionResults) if (test.status === 'passed') passed.add(`${name}|${test.fullName}`);
}
const missed = [...wanted.keys()].filter((key) => !passed.has(key));
if (missed.length > 0) {
  console.error(`rerun-skipped: ${missed.length} of the tests skipped there did not pass here:`);
  for (const key of missed) console.error(`  ${key.replace('|', ': ')}`);
  process.exit(1);
}
console.log(`rerun-skipped: all ${wanted.size} pass`);
