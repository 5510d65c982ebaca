// `using` and `await using` against the built package. Node 24 runs this file natively
// (`npm run test:native`); on Node 20, test/integration/using-compiled.test.ts compiles it with
// TypeScript first and runs the result.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { TempFileManager } from '../../dist/index.js';

const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-using-'));
const root = path.join(parent, 'root');
after(() => fs.rmSync(parent, { recursive: true, force: true }));

function newManager() {
  return new TempFileManager({ root, sweepOnStart: false, exitHook: false });
}

test('using: a file is removed at the end of the block, on return and on throw', () => {
  const mgr = newManager();
  let seen;
  {
    using file = mgr.file('.txt');
    seen = file.path;
    fs.writeFileSync(file.path, 'x');
    assert.ok(fs.existsSync(seen));
  }
  assert.equal(fs.existsSync(seen), false);
  assert.throws(() => {
    using file = mgr.file();
    seen = file.path;
    throw new Error('boom');
  }, /boom/);
  assert.equal(fs.existsSync(seen), false);
  mgr.closeSync();
});

test('using: a directory tree is removed on throw', () => {
  const mgr = newManager();
  let seen;
  assert.throws(() => {
    using dir = mgr.dir();
    seen = dir.path;
    fs.mkdirSync(path.join(dir.path, 'a/b'), { recursive: true });
    fs.writeFileSync(path.join(dir.path, 'a/b/c'), 'x');
    throw new Error('boom');
  }, /boom/);
  assert.equal(fs.existsSync(seen), false);
  mgr.closeSync();
});

test('await using: files, dirs and scopes are removed on return and on throw', async () => {
  const mgr = newManager();
  const seen = [];
  const work = async (fail) => {
    await using scope = mgr.scope();
    await using file = mgr.file('.bin');
    seen.push(file.path, scope.file().path, scope.dir().path, scope.scope().file().path);
    fs.writeFileSync(file.path, 'data');
    if (fail) throw new Error('boom');
    return 'done';
  };
  assert.equal(await work(false), 'done');
  await assert.rejects(work(true), /boom/);
  assert.equal(seen.length, 8);
  for (const p of seen) assert.equal(fs.existsSync(p), false, p);
  await mgr.close();
});

test('await using: the manager removes its session and lock when the block ends', async () => {
  let session;
  {
    await using mgr = newManager();
    mgr.file();
    session = mgr.sessionPath;
    assert.ok(fs.existsSync(session));
  }
  assert.equal(fs.existsSync(session), false);
  assert.equal(fs.existsSync(`${session}.lock`), false);
});

test('using: the manager closes synchronously, also on throw', () => {
  let session;
  assert.throws(() => {
    using mgr = newManager();
    mgr.dir();
    session = mgr.sessionPath;
    throw new Error('boom');
  }, /boom/);
  assert.equal(fs.existsSync(session), false);
});
