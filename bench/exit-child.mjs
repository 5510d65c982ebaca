// Child of exit-hook.mjs: holds `count` live temp files, prints the paths that must be gone once
// it is dead, and waits for SIGTERM. argv: mode root count. Mode `mgr`: files from `mgr.file()`,
// removed by the default exit hook. Mode `bare`: raw files in one directory, removed by a bare
// SIGTERM handler that then dies of the signal again; its files are named like the library's.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TempFileManager } from '../dist/index.js';

const [mode, root, count] = process.argv.slice(2);
const { O_CREAT, O_EXCL, O_WRONLY } = fs.constants;

function managed() {
  const mgr = new TempFileManager({ root, sweepOnStart: false });
  const files = Array.from({ length: Number(count) }, () => mgr.file());
  return { paths: [mgr.sessionPath, `${mgr.sessionPath}.lock`], files };
}

function bare() {
  const dir = fs.mkdtempSync(path.join(root, 'bare-'));
  for (let i = 0; i < Number(count); i++) {
    // Named as the library names its files (128 random bits in hex), so both directories are alike.
    fs.closeSync(fs.openSync(path.join(dir, randomBytes(16).toString('hex')), O_CREAT | O_EXCL | O_WRONLY, 0o600));
  }
  process.on('SIGTERM', function onTerm() {
    fs.rmSync(dir, { recursive: true, force: true });
    process.removeListener('SIGTERM', onTerm);
    process.kill(process.pid, 'SIGTERM');
  });
  return { paths: [dir] };
}

const held = mode === 'mgr' ? managed() : mode === 'bare' ? bare() : undefined;
if (!held) throw new Error(`unknown mode ${mode}`);
console.log(JSON.stringify({ paths: held.paths }));
setInterval(() => {}, 60_000);
