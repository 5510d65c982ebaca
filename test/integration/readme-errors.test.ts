// The error table (docs/errors.md, linked from the README) is the package's error codes, both ways:
// every TempFileError subclass of tempfile-manager/errors has its row (code and class), and every
// row names an exported class with that code. The page names the classes the main entry exports,
// and only those.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import * as catalogue from '../../src/errors.js';
import * as main from '../../src/index.js';

const repo = path.join(import.meta.dirname, '../..');

it('docs/errors.md\'s error table lists every code of every exported TempFileError subclass, and nothing else', () => {
  const errorsSource = ['errors.ts', 'error-class.ts', 'common-errors.ts'].map((file) => fs.readFileSync(path.join(repo, 'src/base', file), 'utf8')).join('\n');
  // Each class's code as declared (`declare readonly code: 'ERR_...'`): read from the source, as
  // the constructors take different arguments.
  const declared = new Map(
    [...errorsSource.matchAll(/export class (\w+) extends \w+ \{\s*(?:\/\*\*[\s\S]*?\*\/\s*)?declare readonly code: '(ERR_TEMPFILE_\w+)'/g)].map((m) => [m[1]!, m[2]!]),
  );
  const exported = Object.entries(catalogue)
    .filter(([, value]) => typeof value === 'function' && value.prototype instanceof catalogue.TempFileError)
    .map(([name]) => name)
    .sort();
  expect(exported.length).toBeGreaterThan(20);
  const fromPackage = exported.map((name) => {
    expect(declared.has(name), `${name} declares its code in src/base/`).toBe(true);
    return `${declared.get(name)} ${name}`;
  });

  const section = fs.readFileSync(path.join(repo, 'docs/errors.md'), 'utf8');
  const fromPage = [...section.matchAll(/^\| `(ERR_TEMPFILE_\w+)` \| `(\w+)` \|/gm)].map((m) => `${m[1]} ${m[2]}`);
  expect(fromPage.slice().sort((a, b) => a.split(' ')[1]!.localeCompare(b.split(' ')[1]!))).toEqual(
    fromPackage.slice().sort((a, b) => a.split(' ')[1]!.localeCompare(b.split(' ')[1]!)),
  );
});

it('docs/errors.md names the error classes of the main entry, each of them also in tempfile-manager/errors', () => {
  const classes = (module: object) => Object.entries(module).filter(([, value]) => typeof value === 'function' && value.prototype instanceof catalogue.TempFileError);
  const fromMain = classes(main);
  for (const [name, value] of fromMain) expect((catalogue as Record<string, unknown>)[name], name).toBe(value);
  expect(main.TempFileError).toBe(catalogue.TempFileError);
  expect(main.isTempFileError).toBe(catalogue.isTempFileError);

  const page = fs.readFileSync(path.join(repo, 'docs/errors.md'), 'utf8');
  const section = page.slice(0, page.indexOf('| code | class | when |'));
  const sentence = section.slice(section.indexOf('The main entry exports the classes'), section.indexOf('Every\nclass below'));
  const named = [...sentence.matchAll(/`(\w+Error)`/g)].map((m) => m[1]).sort();
  expect(named).toEqual(fromMain.map(([name]) => name).sort());
});

it('docs/errors.md\'s error handling block runs as written: a keep() onto a taken name is a DestinationExistsError of tempfile-manager/errors', () => {
  const fixture = path.join(repo, 'test/fixtures/docs/readme-errors.mjs');
  const page = fs.readFileSync(path.join(repo, 'docs/errors.md'), 'utf8');
  const block = /```ts\n(import \{ isTempFileError \} from 'tempfile-manager';\nimport \{ DestinationExistsError \}[\s\S]*?)```/.exec(page)?.[1];
  expect(block, 'the error handling block of docs/errors.md').toBeDefined();
  expect(fs.readFileSync(fixture, 'utf8')).toContain(block!);
  const out = execFileSync(process.execPath, [fixture], { encoding: 'utf8' });
  expect(out).toMatch(/^already there: .*videos\/latest\.mkv$/m);
  expect(out).toContain('kept before: true');
});
