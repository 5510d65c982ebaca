// A user who imports tempfile-manager/tus without @tus/server (an optional peer: npm does not
// install it) gets a typed error from tusStore() naming the package and the command that installs
// it, in the ES module build and the CommonJS build alike. The built package is copied into a
// scratch node_modules with its dependencies, but not @tus/server. Needs `npm run build`.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchPackage } from '../helpers/scratch-package.js';

let scratch: string;

beforeAll(() => {
  scratch = scratchPackage('tfm-tus-peer-', 'tus.js');
  const modules = path.join(scratch, 'node_modules');
  expect(fs.existsSync(path.join(modules, '@tus/server'))).toBe(false);
  const make = (load: string) => `
${load}
const root = ${JSON.stringify(path.join(scratch, 'root'))};
const manager = new TempFileManager({ root, sweepOnStart: false });
tusStore({ manager }).then(
  () => console.log(JSON.stringify({ made: true })),
  (error) => console.log(JSON.stringify({ code: error.code, name: error.name, message: error.message, isTempFileError: isTempFileError(error), peer: error.peer, install: error.install })),
).finally(() => manager.close());`;
  fs.writeFileSync(path.join(scratch, 'esm.mjs'), make("import { tusStore } from 'tempfile-manager/tus';\nimport { TempFileManager, isTempFileError } from 'tempfile-manager';"));
  fs.writeFileSync(path.join(scratch, 'cjs.cjs'), make("const { tusStore } = require('tempfile-manager/tus');\nconst { TempFileManager, isTempFileError } = require('tempfile-manager');"));
});

afterAll(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

function run(file: string): Record<string, unknown> {
  const out = execFileSync(process.execPath, [file], { cwd: scratch, encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

describe('tempfile-manager/tus without @tus/server installed', () => {
  for (const file of ['esm.mjs', 'cjs.cjs']) {
    it(`tusStore() rejects with MissingPeerError naming the package and the install command (${file})`, () => {
      const result = run(file);
      expect(result).toMatchObject({ code: 'ERR_TEMPFILE_MISSING_PEER', name: 'MissingPeerError', isTempFileError: true, peer: '@tus/server', install: 'npm install @tus/server' });
      expect(result['message']).toContain('tempfile-manager/tus needs the package @tus/server');
    });
  }
});
