// .ci/run's step bookkeeping runs before anything else in CI: a slip there fails the run at once,
// with nothing tested. Its prelude (everything before the first step) runs here with two steps and
// a failing command: the run must fail with the command's status and still print where the time went.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

const ci = fs.readFileSync(path.join(import.meta.dirname, '../../.ci/run'), 'utf8');

it("runs .ci/run's prelude: each step is timed, and a failure still prints the timings", () => {
  const prelude = ci.slice(0, ci.indexOf('\nstep "'));
  expect(prelude).toContain('step() {');
  // The first step spends 1.2 s of CPU time (whatever the machine's load makes of it in wall time).
  const burn = `"${process.execPath}" -e 'const s = process.cpuUsage(); while (process.cpuUsage(s).user < 1.2e6);'`;
  const script = `${prelude.replace(/^cd .*$/m, '')}\nstep first\n${burn}\nstep second\nexit 7\n`;
  const run = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(7);
  // Each step's wall time, then its processes' CPU time.
  expect(run.stdout).toMatch(/==> first[\s\S]*==> second[\s\S]*==> timings\n\s+\d+s\s+\d+s cpu {2}first\n\s+\d+s\s+\d+s cpu {2}second\n\s+\d+s {2}total/);
  expect(Number(/(\d+)s cpu {2}first/.exec(run.stdout)?.[1])).toBeGreaterThanOrEqual(1);
});
