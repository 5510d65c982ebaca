import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { repo, repoFiles } from '../helpers/repo-files.js';

const normalize = (code: string) => code.split('\n').map((line) => line.trim()).filter(Boolean).join('\n');

function sources(dir: string): string[] {
  return repoFiles(dir)
    .filter((file) => /\.(m?js|ts)$/.test(file))
    .map((file) => normalize(fs.readFileSync(path.join(repo, file), 'utf8')));
}

it('every JavaScript or TypeScript block of the README is code that an example or a test runs', () => {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```(?:js|ts|javascript|typescript)\n([\s\S]*?)```/g)].map((m) => normalize(m[1]!));
  expect(blocks.length).toBeGreaterThan(0);
  const code = [...sources('examples'), ...sources('test')];
  for (const block of blocks) expect(code.some((file) => file.includes(block)), block).toBe(true);
});

it('the use case of docs/scoped-files.md (once the README\'s) is the code test/native/readme.test.mjs runs', () => {
  const page = fs.readFileSync(path.join(repo, 'docs/scoped-files.md'), 'utf8');
  const section = page.slice(page.indexOf('\n## A use case'), page.indexOf('\n## ', page.indexOf('\n## A use case') + 1));
  const blocks = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => normalize(m[1]!));
  expect(blocks).toHaveLength(1);
  const code = normalize(fs.readFileSync(path.join(repo, 'test/native/readme.test.mjs'), 'utf8'));
  expect(code.includes(blocks[0]!), blocks[0]).toBe(true);
});
