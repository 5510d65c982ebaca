// A user who installs Fastify but not @fastify/multipart (an optional peer: npm does not install
// it) gets a typed error from register() naming the package and the command that installs it, in
// the ES module build and the CommonJS build alike. The built package is copied into a scratch
// node_modules with its dependencies and fastify, but not @fastify/multipart. Needs `npm run build`.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchPackage } from '../helpers/scratch-package.js';

let scratch: string;

beforeAll(() => {
  scratch = scratchPackage('tfm-peer-', 'fastify.js', ['fastify']);
  const modules = path.join(scratch, 'node_modules');
  expect(fs.existsSync(path.join(modules, '@fastify/multipart'))).toBe(false);
  const register = (load: string) => `
${load}
const root = ${JSON.stringify(path.join(scratch, 'root'))};
const app = Fastify();
try {
  await app.register(tempFiles, { manager: new TempFileManager({ root, sweepOnStart: false }) });
  await app.ready();
  console.log(JSON.stringify({ registered: true }));
} catch (error) {
  console.log(JSON.stringify({ code: error.code, name: error.name, message: error.message, isTempFileError: isTempFileError(error), peer: error.peer }));
}`;
  fs.writeFileSync(
    path.join(scratch, 'esm.mjs'),
    register(
      "import Fastify from 'fastify';\nimport tempFiles from 'tempfile-manager/fastify';\nimport { TempFileManager, isTempFileError } from 'tempfile-manager';",
    ),
  );
  fs.writeFileSync(
    path.join(scratch, 'cjs.cjs'),
    `(async () => {${register(
      "const Fastify = require('fastify');\nconst tempFiles = require('tempfile-manager/fastify').default;\nconst { TempFileManager, isTempFileError } = require('tempfile-manager');",
    )}\n})();`,
  );
});

afterAll(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

function run(file: string): Record<string, unknown> {
  const out = execFileSync(process.execPath, [file], { cwd: scratch, encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

describe('tempfile-manager/fastify without @fastify/multipart installed', () => {
  for (const file of ['esm.mjs', 'cjs.cjs']) {
    it(`register() throws MissingPeerError naming the package and the install command (${file})`, () => {
      const result = run(file);
      expect(result).toMatchObject({ code: 'ERR_TEMPFILE_MISSING_PEER', name: 'MissingPeerError', isTempFileError: true, peer: '@fastify/multipart' });
      expect(result['message']).toContain('@fastify/multipart');
      expect(result['message']).toContain('npm install @fastify/multipart');
    });
  }
});
