// Many writes at once in one scope, or under one signal: no process warning (each write used to add
// an 'abort' listener to its scope's signal, and the 11th printed MaxListenersExceededWarning).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempScope, upload } from '../../src/adapters/express.js';
import tempFiles from '../../src/adapters/fastify.js';
import { filePart, formEnd, rawForm } from '../helpers/http-clients.js';
import { manager } from '../helpers/roots.js';
import { sessionFiles, until } from '../helpers/wait.js';

let warnings: Error[] = [];
const onWarning = (warning: Error) => warnings.push(warning);
beforeEach(() => {
  warnings = [];
  process.on('warning', onWarning);
});
afterEach(() => {
  process.off('warning', onWarning);
});

/** Warnings are emitted on the next tick: let them through before looking. */
const settled = () => new Promise((resolve) => setTimeout(resolve, 50));

/** `count` sources that stay open until `release()`: every write is in flight at once. */
function heldSources(count: number) {
  const sources = Array.from({ length: count }, () => new PassThrough());
  for (const source of sources) source.write('first bytes ');
  return {
    sources,
    release: () => {
      for (const [i, source] of sources.entries()) source.end(`and the end of ${i}`);
    },
  };
}

describe('many writes at once', () => {
  it('100 concurrent writes in one scope print no warning, and all 100 are stopped by its disposal', async () => {
    const mgr = manager();
    const scope = mgr.scope();
    const { sources } = heldSources(100);
    const writes = sources.map((source) => scope.write(source).then(() => 'written', (error: { code?: string }) => error.code));
    await until(() => sessionFiles(mgr).length === 100);
    await scope.remove();
    expect(await Promise.all(writes)).toEqual(Array.from({ length: 100 }, () => 'ERR_TEMPFILE_ABORTED'));
    await settled();
    expect(warnings.map(String)).toEqual([]);
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it('100 concurrent writes under one caller signal print no warning, and all end written', async () => {
    const mgr = manager();
    const scope = mgr.scope();
    const signal = new AbortController().signal;
    const { sources, release } = heldSources(100);
    const writes = sources.map((source) => scope.write(source, { signal }));
    await until(() => sessionFiles(mgr).length === 100);
    release();
    const files = await Promise.all(writes);
    expect(files.map((file) => file.size)).toEqual(sources.map((_, i) => `first bytes and the end of ${i}`.length));
    await settled();
    expect(warnings.map(String)).toEqual([]);
    await scope.remove();
  });

  const elevenFiles = () => rawForm(`${Array.from({ length: 11 }, (_, i) => filePart('photos', `p${i}.bin`, `bytes of ${i}`)).join('')}${formEnd}`);

  it('an 11-file upload through Express prints no warning', async () => {
    const mgr = manager();
    const app = express();
    app.use(tempScope(mgr));
    app.post('/upload', upload({ array: 'photos', maxCount: 20, maxFiles: 20 }), (req, res) => {
      res.json((req.files as { size: number }[]).map((file) => file.size));
    });
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const form = elevenFiles();
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/upload`, { method: 'POST', body: form.body, headers: form.headers });
      expect(response.status).toBe(200);
      expect(await response.json()).toHaveLength(11);
    } finally {
      server.closeAllConnections();
      server.close();
    }
    await until(() => sessionFiles(mgr).length === 0);
    await settled();
    expect(warnings.map(String)).toEqual([]);
  });

  it('an 11-file upload through Fastify prints no warning', async () => {
    const mgr = manager();
    const app = Fastify();
    await app.register(tempFiles, { manager: mgr });
    app.post('/upload', async (request) => {
      const { files } = await request.saveUploads({ array: 'photos', maxCount: 20, maxFiles: 20 });
      return files.map((file) => file.size);
    });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const form = elevenFiles();
      const response = await fetch(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/upload`, { method: 'POST', body: form.body, headers: form.headers });
      expect(response.status).toBe(200);
      expect(await response.json()).toHaveLength(11);
    } finally {
      await app.close();
    }
    await until(() => sessionFiles(mgr).length === 0);
    await settled();
    expect(warnings.map(String)).toEqual([]);
  });
});
