// The Node versions CI runs the whole suite on are the ones the README, the platform table of
// docs/platforms.md and package.json's engines name; Node 26, the Active LTS line, is among them, with the native
// `using` tests and the examples; the object-store tests run on the machine's Node.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

const repo = path.join(import.meta.dirname, '../..');
const read = (file: string) => fs.readFileSync(path.join(repo, file), 'utf8');
const ci = read('.ci/run');
const readme = read('README.md');
const platforms = read('docs/platforms.md');

/**
 * The machine's Node, which CI's plain `npm test` runs on: the first `node` on the PATH that is not
 * one `npx node@N` fetched (this suite may itself run on one of those, also through a fresh
 * machine's PATH, which links it as its `node`); where there is none, the oldest Node the
 * package's engines admit, which the machine's is.
 */
function machineMajor(): number {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const node = path.join(dir, 'node');
    let real: string;
    try {
      real = fs.realpathSync(node);
    } catch {
      continue;
    }
    if (real.includes('/_npx/')) continue;
    return Number(execFileSync(real, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim());
  }
  const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
  return Number(/\d+/.exec(engines)?.[0]);
}

/**
 * The majors CI runs the whole suite on: the machine's Node (the fresh machine as nobody), the
 * Node a fresh machine is given as its own (`nodeN=$(npx -y node@N -p process.execPath)` then
 * `FRESH_NODE="$nodeN" scripts/fresh-machine.sh`), and `npx -y node@N node_modules/vitest/vitest.mjs
 * run` or `"$nodeN" node_modules/vitest/vitest.mjs run` (at most leaving out `test/s3`, which runs
 * on the machine's Node, `test/azure` and `test/contract`, which run on Node 22 beside Azurite).
 */
function wholeSuiteMajors(): number[] {
  const fetched = new Map([...ci.matchAll(/^(node\d+)=\$\(npx -y node@(\d+) -p process\.execPath\)$/gm)].map((m) => [m[1]!, Number(m[2])]));
  const fresh = [...fetched]
    .filter(([name]) => new RegExp(`^(?:[A-Z_]+=\\S+ )*FRESH_NODE="\\$${name}" scripts/fresh-machine\\.sh`, 'm').test(ci))
    .map(([, major]) => major);
  // The whole suite leaves out at most the object-store tests: "${suite_elsewhere[@]}" names them.
  expect(ci).toMatch(/^suite_elsewhere=\(--exclude 'test\/s3\/\*\*' --exclude 'test\/azure\/\*\*' --exclude 'test\/contract\/\*\*'\)$/m);
  const wholeRun = /(?:npx -y node@(\d+)|"\$(node\d+)") node_modules\/vitest\/vitest\.mjs run(?: --maxWorkers="\$repeat_workers")?(?: "\$\{suite_elsewhere\[@\]\}")?\s*$/gm;
  const others = [...ci.matchAll(wholeRun)].map((m) => (m[1] !== undefined ? Number(m[1]) : fetched.get(m[2]!))).filter((major) => major !== undefined);
  return [...new Set([machineMajor(), ...fresh, ...others])].sort((a, b) => a - b);
}

it('CI runs the whole suite on Node 22, 24 and 26, the native using tests on 24 and 26, and the examples on 26', () => {
  expect(wholeSuiteMajors()).toEqual(expect.arrayContaining([22, 24, 26]));
  expect(ci, 'the object-store tests run on the machine\'s Node').toMatch(/^TEMPFILE_MANAGER_S3_ROUNDS=200 npm run test:s3$/m);
  expect(ci).toMatch(/for major in 24 26; do[\s\S]*node@\$major" --test test\/native[\s\S]*done/);
  expect(ci).toMatch(/^npx -y node@26 scripts\/check-examples\.mjs$/m);
});

it('the README, the platform table of docs/platforms.md and engines name the versions CI tests', () => {
  const majors = wholeSuiteMajors();
  const list = `${majors.slice(0, -1).join(', ')} and ${majors.at(-1)}`;
  expect(readme).toContain(`Node.js ${list}; Bun and Deno 2 run it too. ESM and CommonJS.`);
  const table = [...platforms.matchAll(/^\| Linux, Node ([\d, and]+) \| yes \|/gm)].flatMap((m) => (m[1] ?? '').split(/, | and /).map(Number));
  expect(table).toEqual(majors);
  const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
  expect(engines).toBe('^20.4.0 || ^22.0.0 || >=24.0.0');
  for (const major of majors) expect(major === 20 || major === 22 || major >= 24, `engines ${engines} admits Node ${major}`).toBe(true);
});
