// Runs every example's end-to-end check (examples/*/check.mjs) with this Node, one after another.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const examples = path.join(import.meta.dirname, '../examples');
const checks = fs
  .readdirSync(examples)
  .map((name) => path.join(examples, name, 'check.mjs'))
  .filter((file) => fs.existsSync(file));
let failed = 0;
for (const check of checks) {
  const name = path.basename(path.dirname(check));
  console.log(`\n==> example ${name} on Node ${process.version}`);
  const { status, signal } = spawnSync(process.execPath, [check], { stdio: 'inherit', timeout: 600_000 });
  if (status !== 0) {
    failed += 1;
    console.log(`example ${name} failed (exit ${status}${signal ? `, ${signal}` : ''})`);
  }
}
console.log(`\nexamples: ${checks.length - failed} passed, ${failed} failed`);
process.exitCode = failed === 0 && checks.length > 0 ? 0 : 1;
