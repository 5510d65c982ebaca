// `npm install` warns of no engine: every package the lockfile installs (an optional one npm
// leaves out where its engines refuse) declares a Node range that takes the Node this suite runs
// on, whichever of 20, 22, 24 and 26 that is.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { expect, it } from 'vitest';

const semver = createRequire(import.meta.url)('semver') as { satisfies(version: string, range: string): boolean };
const repo = path.resolve(import.meta.dirname, '../..');

it(`every package in package-lock.json takes this Node, ${process.version} (no EBADENGINE warning on install)`, () => {
  const lock = JSON.parse(fs.readFileSync(path.join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean }> };
  const nodes = [process.versions.node];
  const refused: string[] = [];
  for (const [where, entry] of Object.entries(lock.packages)) {
    const range = !Array.isArray(entry.engines) ? entry.engines?.node : undefined;
    if (where === '' || range === undefined || entry.optional) continue;
    for (const node of nodes) if (!semver.satisfies(node, range)) refused.push(`${where} (node ${range}) refuses ${node}`);
  }
  expect(refused).toEqual([]);
});
