// Builds the package (`npm run build`) and fails if the build printed a warning: a clean build
// prints only tsup's progress lines (`CLI`, `ESM`, `CJS` and the file sizes), the declarations'
// (`DTS`, scripts/build-declarations.mjs) and strip-internal's count. Anything else, such as a
// rollup or esbuild warning, is printed again and fails the check. `npm run lint` runs it.
//
//   node scripts/check-build.mjs
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const EXPECTED = [/^> /, /^(CLI|ESM|CJS|DTS) /, /^strip-internal: \d+ internal members removed/];

/** The lines of a build's output (stdout and stderr) that are not a clean build's. */
export function buildWarnings(output) {
  return output
    .split('\n')
    .map((line) => line.trimEnd())
    .filter((line) => line !== '' && !EXPECTED.some((shape) => shape.test(line)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const build = spawnSync('npm', ['run', 'build'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
  const output = `${build.stdout}\n${build.stderr}`;
  process.stdout.write(output);
  if (build.status !== 0) {
    console.error(`check-build: the build failed (exit ${build.status ?? build.signal})`);
    process.exit(1);
  }
  const warnings = buildWarnings(output);
  if (warnings.length > 0) {
    console.error(`check-build: the build printed ${warnings.length} line(s) a clean build does not:\n${warnings.map((w) => `  ${w}`).join('\n')}`);
    process.exit(1);
  }
  console.log('check-build: the build printed no warning');
}
