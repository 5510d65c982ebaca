// The presign routes take the store from the caller: loading tempfile-manager/express or
// tempfile-manager/fastify, and making the routes, loads no AWS SDK (an optional peer that an app
// without a bucket never installs). Over the built package (npm test builds first), in processes
// of their own, ESM and CommonJS, each refusing any @aws-sdk module it is asked for.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

const repo = path.join(import.meta.dirname, '../..');

/** A store with the presign methods, none called: making the routes must not need more. */
const STORE = `const calls = () => { throw new Error('not called'); };
const store = { presignUpload: calls, presignMultipart: calls, signPart: calls, listParts: calls, completeMultipart: calls, abortMultipart: calls, confirmUpload: calls };`;

const ESM_HOOK = `export async function resolve(specifier, context, next) {
  if (specifier.startsWith('@aws-sdk/')) throw new Error('imported ' + specifier);
  return next(specifier, context);
}`;

function run(args: string[]): { status: number | null; output: string } {
  const { status, stdout, stderr } = spawnSync(process.execPath, args, { cwd: repo, encoding: 'utf8', timeout: 60_000 });
  return { status, output: `${stdout}${stderr}` };
}

it('ESM: tempfile-manager/express and /fastify, their presign routes made, import no @aws-sdk module', () => {
  const script = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(ESM_HOOK)}));
${STORE}
const express = await import('tempfile-manager/express');
const fastify = await import('tempfile-manager/fastify');
express.presignUploads({ store, maxBytes: 1000 });
express.confirmUpload({ store, ttlMs: 1000 });
fastify.confirmUpload({ store, ttlMs: 1000 });
if (typeof fastify.presignUploads !== 'function') throw new Error('no presignUploads');
console.log('no @aws-sdk');`;
  const { status, output } = run(['--input-type=module', '-e', script]);
  expect(output).toContain('no @aws-sdk');
  expect(status).toBe(0);
});

it('CommonJS: the same, requiring no @aws-sdk module', () => {
  const script = `const Module = require('node:module');
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request.startsWith('@aws-sdk/')) throw new Error('required ' + request);
  return load.call(this, request, ...rest);
};
${STORE}
const express = require('tempfile-manager/express');
const fastify = require('tempfile-manager/fastify');
express.presignUploads({ store, maxBytes: 1000 });
express.confirmUpload({ store, ttlMs: 1000 });
fastify.confirmUpload({ store, ttlMs: 1000 });
if (typeof fastify.presignUploads !== 'function') throw new Error('no presignUploads');
console.log('no @aws-sdk');`;
  const { status, output } = run(['-e', script]);
  expect(output).toContain('no @aws-sdk');
  expect(status).toBe(0);
});
