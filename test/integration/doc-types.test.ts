// The TypeScript of the README and docs/*.md compiles as a reader copies it, under the README's
// tsconfig (strict): each block a module beside one file declaring what fragments take as given
// (scripts/doc-snippets.mjs). Against this checkout's declarations (built here:
// test/helpers/declarations.ts) and this TypeScript; `npm run check:consumers` does the same
// against the packed package with several TypeScript versions.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script of the repo, without declarations
import { docSnippets, explainErrors, writeSnippetProject } from '../../scripts/doc-snippets.mjs';
import { declarationsPackage } from '../helpers/declarations.js';
import { scratchDir } from '../helpers/roots.js';

const repo = path.join(import.meta.dirname, '../..');

interface SnippetProject {
  configs: string[];
  files: Map<string, { page: string; line: number }>;
}

it('every TypeScript block of the README and docs/, and the README\'s JavaScript, type-checks under the README\'s tsconfig', () => {
  const pages = new Set((docSnippets(repo) as { page: string }[]).map((s) => s.page));
  expect([...pages]).toEqual(expect.arrayContaining(['README.md', 'docs/handoff.md', 'docs/scoped-files.md', 'docs/streaming-writes.md']));

  const project = path.join(scratchDir(), 'snippets');
  const { configs, files } = writeSnippetProject(repo, project) as SnippetProject;
  // This checkout's declarations as the installed package; the rest (express, fastify, @types/node) as installed here.
  const modules = path.join(project, 'node_modules');
  fs.mkdirSync(modules);
  for (const entry of fs.readdirSync(path.join(repo, 'node_modules'))) fs.symlinkSync(path.join(repo, 'node_modules', entry), path.join(modules, entry));
  fs.symlinkSync(declarationsPackage(), path.join(modules, 'tempfile-manager'));
  for (const config of configs) {
    const tsc = spawnSync(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', config], { encoding: 'utf8', timeout: 120_000 });
    expect(tsc.status, `${path.basename(config)}:\n${explainErrors(`${tsc.stdout}${tsc.stderr}`, files)}`).toBe(0);
  }
});
