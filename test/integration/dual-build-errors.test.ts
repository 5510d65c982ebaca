// Two copies of the library in one process (its ES module build and its CommonJS build, as when
// a dependency requires it and the app imports it): an error made by one copy keeps its code when
// it surfaces through the other copy. Runs test/fixtures/dual-build-errors.mjs, which loads the
// real dist/ files: a read stream of one copy's file replaced by a hard link, a source throwing
// one copy's error, a write aborted with one copy's DisposedError, and one copy's object store
// swept by the other copy's manager.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';

const fixture = path.join(import.meta.dirname, '../fixtures/dual-build-errors.mjs');
let dir: string | undefined;

afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it("keeps each error's code whichever copy made it", () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-dual-errors-'));
  const out = execFileSync(process.execPath, [fixture, path.join(dir, 'root')], { encoding: 'utf8', timeout: 60_000 });
  const seen = {
    replacedStream: { code: 'ERR_TEMPFILE_REPLACED', name: 'TempFileReplacedError' },
    throwingSource: { code: 'ERR_TEMPFILE_SIZE_LIMIT', name: 'SizeLimitError' },
    disposedReason: { code: 'ERR_TEMPFILE_ABORTED', scopeDisposed: true },
    storeSweep: { code: 'ERR_TEMPFILE_STORE', name: 'StoreError', reason: 'denied' },
  };
  expect(JSON.parse(out)).toEqual({ 'cjs->esm': seen, 'esm->cjs': seen });
});
