// The use case of docs/scoped-files.md, run as it is printed there (Node 24 natively; Node 20 after
// TypeScript compiles it, see test/integration/using-compiled.test.ts). test/integration/readme.test.ts
// checks that the page still shows exactly this code.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-readme-'));
const TMP_ROOT = path.join(scratch, 'root');
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

// The user's own rendering code, stubbed.
async function renderPages(json, dir) {
  const { pages } = JSON.parse(fs.readFileSync(json, 'utf8'));
  for (let i = 1; i <= pages; i++) fs.writeFileSync(path.join(dir, `page-${i}.png`), `page ${i}`);
}
async function assemblePdf(dir, pdf) {
  fs.writeFileSync(pdf, `%PDF ${fs.readdirSync(dir).length} pages`);
}

// README: use case
import { TempFileManager } from 'tempfile-manager';

const mgr = new TempFileManager({ root: TMP_ROOT }); // checked: 0700, ours, not a symlink

export async function renderInvoice(request, destination) {
  await using job = mgr.scope();                 // all of it goes when this returns or throws
  const upload = await job.write(request, { suffix: '.json', maxBytes: 1024 ** 2 });
  const pages = job.dir();                       // sync: an empty directory, 0700
  await renderPages(upload.path, pages.path);    // your code: writes page-*.png there
  const pdf = job.file('.pdf');                  // sync: an empty file, 0600, O_EXCL
  await assemblePdf(pages.path, pdf.path);
  return pdf.keep(destination);                  // moved out for good; never overwrites
}
// README: end

test('the README use case renders, keeps the PDF, and leaves nothing behind, also on throw', async () => {
  const destination = path.join(scratch, 'invoice.pdf');
  const kept = await renderInvoice(Readable.from([JSON.stringify({ pages: 3 })]), destination);
  assert.equal(kept, destination);
  assert.equal(fs.readFileSync(destination, 'utf8'), '%PDF 3 pages');
  await assert.rejects(renderInvoice(Readable.from(['not json']), path.join(scratch, 'never.pdf')), SyntaxError);
  assert.equal(fs.existsSync(path.join(scratch, 'never.pdf')), false);
  assert.deepEqual(fs.readdirSync(mgr.sessionPath), []);
  await mgr.close();
  assert.deepEqual(fs.readdirSync(TMP_ROOT), ['.tempfile-manager']);
});
