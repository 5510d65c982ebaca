// The README's first example, with `await using` and with `withScope`, run as printed there
// (Node 24 natively; Node 20 after TypeScript compiles it, see
// test/integration/using-compiled.test.ts). test/integration/readme.test.ts checks that the
// README still shows exactly this code. The manager takes the default root, under a TMPDIR of
// this test's own.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'tfm-quick-start-'));
process.env.TMPDIR = scratch; // the default root goes under it
after(() => rmSync(scratch, { recursive: true, force: true }));

const seen = [];
// The user's own code, stubbed: "renders" a thumbnail by copying the first bytes.
async function makeThumbnail(video, thumb) {
  seen.push(video, thumb);
  if (readdirSync(path.dirname(video)).length !== 2) throw new Error('expected the video and the thumbnail');
  copyFileSync(video, thumb);
  writeFileSync(thumb, 'JPEG of ', { flag: 'r+' });
}

// README: quick start
import fs from 'node:fs/promises';
import { TempFileManager } from 'tempfile-manager';

const mgr = new TempFileManager(); // root: <os.tmpdir()>/tempfile-manager-<uid>, checked, 0700

export async function thumbnail(upload) {
  await using video = await mgr.write(upload, { suffix: '.mp4', maxBytes: 2 ** 30 });
  await using thumb = mgr.file('.jpg');         // an empty file, 0600, a name nobody can guess
  await makeThumbnail(video.path, thumb.path);  // your code
  return await fs.readFile(thumb.path);         // both files are removed on return and on throw
}
// README: without using
export function thumbnailWithoutUsing(upload) {
  return mgr.withScope(async (scope) => {
    const video = await scope.write(upload, { suffix: '.mp4', maxBytes: 2 ** 30 });
    const thumb = scope.file('.jpg');
    await makeThumbnail(video.path, thumb.path);
    return fs.readFile(thumb.path);
  });                                           // the scope's files are removed here
}
// README: end

for (const [name, run] of [['await using', thumbnail], ['withScope', thumbnailWithoutUsing]]) {
  test(`the README's first example (${name}) returns the result and leaves no file, also on throw`, async () => {
    seen.length = 0;
    const bytes = await run(Readable.from(['12345678 the video']));
    assert.equal(bytes.toString(), 'JPEG of  the video');
    assert.equal(path.dirname(mgr.root), scratch);
    assert.equal(path.basename(mgr.root), `tempfile-manager-${process.getuid()}`);
    assert.equal(seen.length, 2);
    assert.deepEqual(readdirSync(mgr.sessionPath), []);
    await assert.rejects(run(Readable.from(['x'.repeat(10)]).map((chunk) => { throw new Error(`bad ${chunk.length}`); })), (err) => err.code === 'ERR_TEMPFILE_SOURCE' && /bad 10/.test(err.cause.message));
    assert.deepEqual(readdirSync(mgr.sessionPath), []);
  });
}

test('the manager closes and leaves the default root empty', async () => {
  await mgr.close();
  assert.deepEqual(readdirSync(mgr.root).filter((name) => name !== 'handoff' && name !== '.tempfile-manager'), []);
});
