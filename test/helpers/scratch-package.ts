import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const repo = path.join(import.meta.dirname, '../..');
const installed = path.join(repo, 'node_modules');

/**
 * The built package as a user installs it, in a scratch `node_modules` outside the repository (so
 * that no `node_modules` above it holds an optional peer): `dist/` and package.json copied, each
 * dependency and each of `alsoInstalled` linked where it really is, nothing else. Returns the
 * scratch directory; the caller removes it. Needs `npm run build`, and `builtEntry` in `dist/`.
 */
export function scratchPackage(prefix: string, builtEntry: string, alsoInstalled: readonly string[] = []): string {
  if (!fs.existsSync(path.join(repo, 'dist', builtEntry))) throw new Error('run `npm run build` first');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const modules = path.join(scratch, 'node_modules');
  const own = path.join(modules, 'tempfile-manager');
  fs.mkdirSync(own, { recursive: true });
  fs.cpSync(path.join(repo, 'dist'), path.join(own, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(repo, 'package.json'), path.join(own, 'package.json'));
  const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  // Links: each resolves its own dependencies from where it really is; the copied package
  // resolves its imports from the scratch node_modules only.
  for (const name of [...Object.keys(pkg.dependencies), ...alsoInstalled]) {
    fs.mkdirSync(path.dirname(path.join(modules, name)), { recursive: true });
    fs.symlinkSync(fs.realpathSync(path.join(installed, name)), path.join(modules, name), 'dir');
  }
  return scratch;
}
