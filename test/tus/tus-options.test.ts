// tusStore()'s expirationMs: 0, or 1 s to a year; the range is said where a user reads the option.
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { tusStore } from '../../src/tus/index.js';
import { manager } from '../helpers/roots.js';

const repo = path.resolve(import.meta.dirname, '../..');

it('expirationMs of 1 to 999 is refused naming the option and its range; 0 and 1000 are taken; docs/tus.md and the reference say so', async () => {
  const mgr = manager();
  for (const expirationMs of [1, 999]) {
    await expect(tusStore({ manager: mgr, expirationMs })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'expirationMs', message: expect.stringMatching(/1000|1,000|1 s/) });
  }
  for (const expirationMs of [0, 1000]) await expect(tusStore({ manager: mgr, expirationMs })).resolves.toBeDefined();
  expect(fs.readFileSync(path.join(repo, 'docs/tus.md'), 'utf8')).toContain('`0`: never; else 1000 (1 s)');
  expect(fs.readFileSync(path.join(repo, 'docs/api/tempfile-manager/tus.md'), 'utf8')).toContain('0: never; else 1000 (1 s) to a year');
});

it('a 5xx the store answers carries no server path and no system call\'s text: a namingFunction that repeats an id', async () => {
  const { Server } = await import('@tus/server');
  const http = await import('node:http');
  const mgr = manager();
  const { datastore, locker } = await tusStore({ manager: mgr });
  const server = new Server({ path: '/files', datastore, locker, namingFunction: () => 'fixed-id' });
  const listener = http.createServer((req, res) => void server.handle(req, res));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(listener.address() as { port: number }).port}/files`;
    const create = () => fetch(url, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '10' } });
    expect((await create()).status).toBe(201);
    const again = await create();
    expect(again.status).toBe(500);
    const body = await again.text();
    expect(body).not.toMatch(/\/proc\/|\/tmp\/|EEXIST|mkdir|fd\/\d+/);
    expect(body).not.toContain(mgr.root);
  } finally {
    listener.closeAllConnections();
    await new Promise((resolve) => listener.close(resolve));
  }
});
