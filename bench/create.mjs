// The contenders: one create+dispose each, files and directories.
import fs from 'node:fs';
import path from 'node:path';
import tmp from 'tmp';
import { TempFileManager } from '../dist/index.js';

const { O_CREAT, O_EXCL, O_WRONLY } = fs.constants;
const RAW_FLAGS = O_CREAT | O_EXCL | O_WRONLY;
const NODE_MAJOR = process.versions.node.split('.')[0];

/** A fresh 0700 directory under the bench root, one per contender. */
function subdir(root, name) {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { mode: 0o700 });
  return dir;
}

// tempy picks its directory once, at import, from os.tmpdir(): point TMPDIR at the contender's
// directory while importing it, so that it runs its default path (no per-call `rootDirectory`
// mkdir) and still writes under the bench root.
async function importTempy(dir) {
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    const { temporaryFile } = await import('tempy');
    if (!temporaryFile().startsWith(fs.realpathSync(dir))) throw new Error('tempy ignored TMPDIR');
    return temporaryFile;
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

/** Raw fs create + unlink; `unlink` returns a promise for the async twin. */
function rawFile(dir, unlink = fs.unlinkSync) {
  let n = 0;
  return () => {
    const p = path.join(dir, `f${n++}`);
    fs.closeSync(fs.openSync(p, RAW_FLAGS, 0o600));
    return unlink(p);
  };
}

/** File contenders; the first is the baseline of the ratios. */
export async function fileContenders(root) {
  const sync = new TempFileManager({ root: path.join(root, 'mgr-sync') });
  const async = new TempFileManager({ root: path.join(root, 'mgr-async') });
  const tmpDir = subdir(root, 'tmp');
  const temporaryFile = await importTempy(subdir(root, 'tempy'));
  return [
    {
      id: 'raw',
      name: 'raw fs: `openSync(O_CREAT|O_EXCL|O_WRONLY, 0o600)` + `closeSync` + `unlinkSync`',
      short: 'raw fs',
      baseline: true,
      op: rawFile(subdir(root, 'raw')),
    },
    {
      id: 'mgr-sync',
      name: '`mgr.file()` + `removeSync()`',
      op: () => sync.file().removeSync(),
      close: () => sync.close(),
    },
    {
      id: 'mgr-async',
      name: '`mgr.file()` + `await remove()`',
      async: true,
      op: () => async.file().remove(),
      close: () => async.close(),
    },
    {
      id: 'raw-async',
      name: 'raw fs, async unlink: `openSync` + `closeSync` + `await fs.promises.unlink`',
      async: true,
      op: rawFile(subdir(root, 'raw-async'), fs.promises.unlink),
    },
    {
      id: 'tmp',
      name: '`tmp.fileSync()` + `removeCallback()`',
      op: () => tmp.fileSync({ tmpdir: tmpDir }).removeCallback(),
    },
    {
      id: 'tempy',
      name: 'tempy `temporaryFile()` + `writeFileSync(p, "")` + `unlinkSync`',
      op: () => {
        const p = temporaryFile();
        fs.writeFileSync(p, '');
        fs.unlinkSync(p);
      },
    },
  ];
}

/** Directory contenders; the first is the baseline of the ratios. */
export function dirContenders(root) {
  const mgr = new TempFileManager({ root: path.join(root, 'mgr-dir') });
  const rawPrefix = path.join(subdir(root, 'mkdtemp'), 'd-');
  const disposablePrefix = path.join(subdir(root, 'mkdtemp-disposable'), 'd-');
  return [
    {
      id: 'mkdtemp',
      name: '`fs.mkdtempSync()` + `fs.rmSync({ recursive: true })`',
      short: 'mkdtempSync',
      baseline: true,
      op: () => fs.rmSync(fs.mkdtempSync(rawPrefix), { recursive: true }),
    },
    {
      id: 'mgr-dir',
      name: '`mgr.dir()` + `removeSync()`',
      op: () => mgr.dir().removeSync(),
      close: () => mgr.close(),
    },
    {
      id: 'mkdtemp-disposable',
      name: '`fs.mkdtempDisposableSync()` + `[Symbol.dispose]()`',
      unavailable: typeof fs.mkdtempDisposableSync === 'function' ? undefined : `n/a on Node ${NODE_MAJOR}`,
      op: () => fs.mkdtempDisposableSync(disposablePrefix)[Symbol.dispose](),
    },
  ];
}

export async function closeAll(contenders) {
  for (const c of contenders) await c.close?.();
}
