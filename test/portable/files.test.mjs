// The public contract's platform-sensitive paths in one process, over the built package: it runs
// on any node (no native binary), Windows' own node.exe under Wine included (scripts/portable.mjs).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { TempFileManager } from '../../dist/index.js';
import { scratch, win32 } from './helpers.mjs';

const parent = scratch(after, 'files');
let roots = 0;
function newManager() {
  return new TempFileManager({ root: path.join(parent, `root${roots++}`), sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
}

/** Every name under `dir`, relative to it, with `/` between the parts on every platform. */
function tree(dir) {
  return fs.readdirSync(dir, { recursive: true }).map((name) => String(name).split(path.sep).join('/')).sort();
}

test('file() and dir() make an empty file and an empty directory with the prefix and suffix asked for, inside the session', async () => {
  const mgr = newManager();
  const file = mgr.file({ prefix: 'report-', suffix: '.pdf' });
  const dir = mgr.dir('.d');
  const plain = mgr.file();
  for (const made of [file, dir, plain]) assert.equal(path.dirname(made.path), mgr.sessionPath, `${made.path} is in the session`);
  assert.match(path.basename(file.path), /^report-.+\.pdf$/);
  assert.match(path.basename(dir.path), /\.d$/);
  assert.equal(fs.statSync(file.path).size, 0);
  assert.ok(fs.statSync(dir.path).isDirectory());
  assert.deepEqual(fs.readdirSync(dir.path), []);
  assert.notEqual(file.path, plain.path);
  await mgr.close();
  assert.equal(fs.existsSync(mgr.sessionPath), false, 'close() removes the session');
});

test('withScope removes its files when the callback returns and when it throws', async () => {
  const mgr = newManager();
  let kept;
  const result = await mgr.withScope(async (scope) => {
    const file = scope.file('.txt');
    fs.writeFileSync(file.path, 'x');
    const dir = scope.dir();
    fs.mkdirSync(path.join(dir.path, 'a', 'b'), { recursive: true });
    fs.writeFileSync(path.join(dir.path, 'a', 'b', 'c'), 'x');
    kept = [file.path, dir.path];
    return 'done';
  });
  assert.equal(result, 'done');
  for (const made of kept) assert.equal(fs.existsSync(made), false, `${made} is gone on return`);
  await assert.rejects(
    mgr.withScope(async (scope) => {
      kept = [scope.file().path, (await scope.write('bytes')).path];
      throw new Error('boom');
    }),
    /boom/,
  );
  for (const made of kept) assert.equal(fs.existsSync(made), false, `${made} is gone on throw`);
  assert.deepEqual(fs.readdirSync(mgr.sessionPath), []);
  await mgr.close();
});

test('write() streams to a new file; past maxBytes it throws a typed error and leaves nothing', async () => {
  const mgr = newManager();
  const chunks = function* () {
    for (let i = 0; i < 64; i++) yield Buffer.alloc(16 * 1024, i);
  };
  const file = await mgr.write(chunks(), { suffix: '.bin' });
  assert.equal(fs.statSync(file.path).size, 64 * 16 * 1024);
  assert.match(file.path, /\.bin$/);
  await file.remove();
  const before = tree(mgr.sessionPath);
  const refused = await mgr.write(chunks(), { maxBytes: 100_000 }).then(
    () => assert.fail('a write past maxBytes resolved'),
    (err) => err,
  );
  assert.equal(refused.code, 'ERR_TEMPFILE_SIZE_LIMIT');
  assert.match(refused.message, /100000 bytes/, 'the message names the limit');
  assert.deepEqual(tree(mgr.sessionPath), before, 'nothing is left of the refused write');
  await mgr.close();
});

// On Linux an open file is unlinked at once. Windows 10 and later on NTFS remove the name at once
// too (POSIX delete semantics); Wine, FAT volumes, network shares and a file an antivirus holds
// without delete sharing keep the name until the last handle closes: the library then moves it
// aside under its root. Either way the name is gone when remove() resolves.
test('remove() of a file that another handle holds open: the name is gone, the holder still reads it, the session then ends clean', async () => {
  const mgr = newManager();
  const file = await mgr.write('held bytes', { suffix: '.txt' });
  const held = fs.openSync(file.path, 'r');
  try {
    await file.remove();
    assert.equal(fs.existsSync(file.path), false, 'the name is gone once remove() resolves');
    const buffer = Buffer.alloc(10);
    fs.readSync(held, buffer, 0, 10, 0);
    assert.equal(buffer.toString(), 'held bytes', 'the holder still reads its bytes');
  } finally {
    fs.closeSync(held);
  }
  await mgr.close();
  assert.equal(fs.existsSync(mgr.sessionPath), false, 'close() removes the session');
});

test('remove() of a directory with a file held open inside: the directory is gone once it resolves', async () => {
  const mgr = newManager();
  const dir = mgr.dir();
  const inner = path.join(dir.path, 'inner.txt');
  fs.writeFileSync(inner, 'held');
  const held = fs.openSync(inner, 'r');
  try {
    await dir.remove();
    assert.equal(fs.existsSync(dir.path), false, 'the directory is gone once remove() resolves');
  } finally {
    fs.closeSync(held);
  }
  await mgr.close();
  assert.equal(fs.existsSync(mgr.sessionPath), false, 'close() removes the session');
});

// Linux renames over a file open elsewhere. Windows refuses while another handle is open (a
// sharing violation, as Wine shows): the error must say to close that handle, not to chmod.
test('keep() with overwrite onto a destination open elsewhere: kept, or (win32) a typed error that says to close the other handle, nothing lost', async (t) => {
  const mgr = newManager();
  const dest = path.join(parent, 'kept-held.txt');
  fs.writeFileSync(dest, 'old');
  const file = await mgr.write('new', { suffix: '.txt' });
  const held = fs.openSync(dest, 'r');
  let outcome;
  try {
    outcome = await file.keep(dest, { overwrite: true }).then(
      (kept) => ({ kept }),
      (err) => ({ err }),
    );
  } finally {
    fs.closeSync(held);
  }
  if (outcome.kept !== undefined) {
    t.diagnostic(`kept over the held destination (${process.platform})`);
    assert.equal(fs.readFileSync(dest, 'utf8'), 'new');
  } else {
    const { err } = outcome;
    t.diagnostic(`refused: ${err.code}: ${err.message}`);
    assert.ok(win32, `only Windows refuses a rename over an open file; here: ${err.stack}`);
    assert.match(err.code, /^ERR_TEMPFILE_/);
    assert.match(err.message, /close/i, 'the message says to close the other handle');
    assert.doesNotMatch(err.message, /chmod|owner and mode/i, 'not POSIX advice');
    assert.equal(fs.readFileSync(dest, 'utf8'), 'old', 'the destination is untouched');
    assert.equal(fs.readFileSync(file.path, 'utf8'), 'new', 'the file is not lost');
  }
  await mgr.close();
});
