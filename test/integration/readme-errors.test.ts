// The README's error table is the package's error codes, both ways: every exported TempFileError
// subclass has its row (code and class), and every row names an exported class with that code.
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import * as pkg from '../../src/index.js';

const repo = path.join(import.meta.dirname, '../..');

it('the README\'s error table lists every code of every exported TempFileError subclass, and nothing else', () => {
  const errorsSource = fs.readFileSync(path.join(repo, 'src/base/errors.ts'), 'utf8');
  // Each class's code as declared (`declare readonly code: 'ERR_...'`): read from the source, as
  // the constructors take different arguments.
  const declared = new Map(
    [...errorsSource.matchAll(/export class (\w+) extends \w+ \{\s*(?:\/\*\*[\s\S]*?\*\/\s*)?declare readonly code: '(ERR_TEMPFILE_\w+)'/g)].map((m) => [m[1]!, m[2]!]),
  );
  const exported = Object.entries(pkg)
    .filter(([, value]) => typeof value === 'function' && value.prototype instanceof pkg.TempFileError)
    .map(([name]) => name)
    .sort();
  expect(exported.length).toBeGreaterThan(20);
  const fromPackage = exported.map((name) => {
    expect(declared.has(name), `${name} declares its code in src/base/errors.ts`).toBe(true);
    return `${declared.get(name)} ${name}`;
  });

  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Errors\n'), readme.indexOf('\n## ', readme.indexOf('\n## Errors\n') + 1));
  const fromReadme = [...section.matchAll(/^\| `(ERR_TEMPFILE_\w+)` \| `(\w+)` \|/gm)].map((m) => `${m[1]} ${m[2]}`);
  expect(fromReadme.slice().sort((a, b) => a.split(' ')[1]!.localeCompare(b.split(' ')[1]!))).toEqual(
    fromPackage.slice().sort((a, b) => a.split(' ')[1]!.localeCompare(b.split(' ')[1]!)),
  );
});
