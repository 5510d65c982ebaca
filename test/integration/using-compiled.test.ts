import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { expect, it } from 'vitest';

// The native `using` tests, compiled by TypeScript for runtimes without the syntax (Node 20),
// then run in a child process against the built package.
it('passes the `using` / `await using` tests when compiled by TypeScript', () => {
  const source = fs.readFileSync(path.join(import.meta.dirname, '../native/using.test.mjs'), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  });
  expect(outputText).not.toMatch(/^\s*(await )?using /m);
  const outDir = path.join(import.meta.dirname, '../.build');
  fs.mkdirSync(outDir, { recursive: true });
  const compiled = path.join(outDir, 'using.test.mjs');
  fs.writeFileSync(compiled, outputText);
  const run = spawnSync(process.execPath, ['--test', '--test-reporter=tap', compiled], { encoding: 'utf8' });
  expect(run.stderr).toBe('');
  expect(run.stdout).toMatch(/^# pass 5$/m);
  expect(run.stdout).toMatch(/^# fail 0$/m);
  expect(run.status).toBe(0);
});
