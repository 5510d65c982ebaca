// Makes sure the services that `npm run test:e2e` needs are here: redis-server (the bullmq
// example) and Debian's Chromium at /usr/bin/chromium (the browser test). When one is missing
// and this runs as root on a Debian-like system, it installs it with apt-get; otherwise it says
// what to install and exits 1.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

const needs = [
  { pkg: 'redis-server', present: () => onPath('redis-server'), what: 'redis-server on the PATH (test/e2e/bullmq.test.ts)' },
  { pkg: 'chromium', present: () => fs.existsSync('/usr/bin/chromium'), what: '/usr/bin/chromium (test/e2e/browser.test.ts)' },
];

function onPath(command) {
  return !spawnSync(command, ['--version'], { stdio: 'ignore' }).error;
}

const missing = needs.filter((need) => !need.present());
if (missing.length === 0) {
  console.log('e2e services: redis-server and chromium are here');
} else {
  const names = missing.map((need) => need.pkg);
  const canInstall = process.getuid?.() === 0 && onPath('apt-get');
  if (!canInstall) {
    console.error(
      `npm run test:e2e needs ${missing.map((need) => need.what).join(' and ')}, which this machine lacks.\n` +
        `Install ${names.join(' and ')} (Debian/Ubuntu: sudo apt-get install -y ${names.join(' ')}; macOS: brew install redis, ` +
        'and a Chromium at /usr/bin/chromium), then run it again. `npm test` needs neither.',
    );
    process.exit(1);
  }
  console.log(`e2e services: installing ${names.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', ...names]]) {
    const { status } = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (status !== 0) process.exit(status ?? 1);
  }
  const still = missing.filter((need) => !need.present());
  if (still.length > 0) {
    console.error(`apt-get ran, yet ${still.map((need) => need.what).join(' and ')} is still missing.`);
    process.exit(1);
  }
}
