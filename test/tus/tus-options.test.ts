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
