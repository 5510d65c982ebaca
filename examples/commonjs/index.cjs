// tempfile-manager from CommonJS: require() loads the package's CJS build, with the same API and
// the same errors as the ESM one. Writes a report into a scope, keeps it, and shows a refused
// option; prints what it did and what is left under the root.
//   node examples/commonjs/index.cjs        (EXAMPLE_ROOT=dir to choose the root)
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { TempFileManager, isTempFileError } = require('tempfile-manager');

async function main() {
  const root = process.env.EXAMPLE_ROOT ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-commonjs-'));
  const mgr = new TempFileManager({ root });
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-commonjs-out-'));
  try {
    const kept = await mgr.withScope(async (scope) => {
      const csv = await scope.write('id,total\n1,20\n2,22\n', { suffix: '.csv', hash: 'sha256' });
      const work = scope.dir(); // removed with the scope, whatever it holds
      fs.writeFileSync(path.join(work.path, 'part-1.txt'), 'scratch');
      const report = scope.file('.txt');
      const lines = fs.readFileSync(csv.path, 'utf8').trim().split('\n').length - 1;
      fs.writeFileSync(report.path, `${lines} rows, ${csv.digest}\n`);
      return report.keep(path.join(outDir, 'report.txt')); // moved out: the scope no longer owns it
    });
    console.log(`kept ${path.basename(kept)}: ${fs.readFileSync(kept, 'utf8').trim()}`);
    try {
      new TempFileManager({ root, staleMs: 10 });
    } catch (err) {
      if (!isTempFileError(err)) throw err;
      console.log(`refused: ${err.code}: ${err.message}`);
    }
  } finally {
    await mgr.close();
    fs.rmSync(outDir, { recursive: true, force: true });
  }
  console.log(`left under the root: ${leftUnder(root)}`);
  if (process.env.EXAMPLE_ROOT === undefined) fs.rmSync(root, { recursive: true, force: true });
}

function leftUnder(root) {
  const names = fs.readdirSync(root, { recursive: true }).filter((name) => name !== '.tempfile-manager' && name !== 'handoff');
  return names.length === 0 ? 'nothing' : names.join(', ');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
