import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { expect, it } from 'vitest';

// The native `using` tests (test/native), compiled by TypeScript for runtimes without the
// syntax (Node 20), then run in a child process against the built package.
it.each([
  ['using.test.mjs', 5],
  ['readme.test.mjs', 1],
  ['quick-start.test.mjs', 3],
])('%s passes when compiled by TypeScript', (name, tests) => {
  const source = fs.readFileSync(path.join(import.meta.dirname, '../native', name), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  });
  expect(outputText).not.toMatch(/^\s*(await )?using /m);
  const outDir = path.join(import.meta.dirname, '../.build');
  fs.mkdirSync(outDir, { recursive: true });
  const compiled = path.join(outDir, name);
  fs.writeFileSync(compiled, outputText);
  const run = spawnSync(process.execPath, ['--test', '--test-reporter=tap', compiled], { encoding: 'utf8' });
  expect(run.stderr).toBe('');
  expect(run.stdout).toMatch(new RegExp(`^# pass ${tests}$`, 'm'));
  expect(run.stdout).toMatch(/^# fail 0$/m);
  expect(run.status).toBe(0);
});
