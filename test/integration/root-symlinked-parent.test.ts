// macOS as it is: os.tmpdir() is /var/folders/..., and /var is a symbolic link to /private/var,
// owned by root in a directory only root may write. A root below such a link is taken, and every
// promise holds there: the root check, the pinning, the sweep. A link another user could change
// (their own link in a sticky directory, any link in a directory others may write, a link in a
// directory another user owns) could point the root anywhere: a root below one is refused.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TempFileManager, UnsafeRootError } from '../../src/index.js';
import { RootChangedError } from '../../src/errors.js';
import { sessionLockPath } from '../../src/base/layout.js';
import { hostId } from '../../src/owner/process-identity.js';
import { needs } from '../helpers/privileges.js';
import { deadSessionNameHere, markedRoot, scratchDir } from '../helpers/roots.js';

const NOBODY = 65534;
const cli = path.join(import.meta.dirname, '../../dist/cli.js');
const savedTmpdir = process.env['TMPDIR'];
const managers: TempFileManager[] = [];

afterEach(async () => {
  for (const mgr of managers.splice(0)) await mgr.close().catch(() => {});
  if (savedTmpdir === undefined) delete process.env['TMPDIR'];
  else process.env['TMPDIR'] = savedTmpdir;
});

/** `<system>/private/var/folders/zz/T` and `<system>/var` -> `private/var`, as macOS lays them out. */
function macosLayout(): { system: string; tmpdir: string; realTmpdir: string } {
  const system = scratchDir();
  fs.chmodSync(system, 0o755);
  const realTmpdir = path.join(system, 'private/var/folders/zz/T');
  fs.mkdirSync(realTmpdir, { recursive: true, mode: 0o700 });
  fs.symlinkSync('private/var', path.join(system, 'var'));
  return { system, tmpdir: path.join(system, 'var/folders/zz/T'), realTmpdir };
}

function open(options: ConstructorParameters<typeof TempFileManager>[0] = {}): TempFileManager {
  const mgr = new TempFileManager({ sweepOnStart: false, sweepIntervalMs: 0, exitHook: false, ...options });
  managers.push(mgr);
  return mgr;
}

/**
 * A symbolic link named `name` to `target` in a sticky directory `tmp` of `system` (made 1777 if
 * new, as /tmp is), given to `owner` (root's when left out).
 */
function linkInStickyTmp(system: string, name: string, target: string, owner?: number): string {
  const sticky = path.join(system, 'tmp');
  if (!fs.existsSync(sticky)) {
    fs.mkdirSync(sticky);
    fs.chmodSync(sticky, 0o1777);
  }
  const link = path.join(sticky, name);
  fs.symlinkSync(target, link);
  if (owner !== undefined) fs.lchownSync(link, owner, owner);
  return link;
}

function refusal(run: () => unknown): UnsafeRootError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(UnsafeRootError);
    return error as UnsafeRootError;
  }
  throw new Error('the root was taken');
}

describe('a root below a symlinked parent, as /var on macOS', () => {
  it('the default root under TMPDIR=/var/folders/... is taken; files, keep() and close() work through the link', async () => {
    const { tmpdir, realTmpdir } = macosLayout();
    process.env['TMPDIR'] = tmpdir;
    const mgr = open();
    expect(mgr.root.startsWith(tmpdir)).toBe(true);
    const file = await mgr.write(Buffer.from('hello'));
    expect(fs.realpathSync(file.path).startsWith(realTmpdir)).toBe(true);
    const kept = path.join(tmpdir, 'kept.txt');
    await file.keep(kept);
    expect(fs.readFileSync(path.join(realTmpdir, 'kept.txt'), 'utf8')).toBe('hello');
    const other = mgr.file('.bin');
    fs.writeFileSync(other.path, 'x');
    await mgr.close();
    expect(fs.readdirSync(mgr.root).filter((name) => name.startsWith('session_'))).toEqual([]);
  });

  it('the sweep removes a dead session there and nothing outside the root', async () => {
    const { tmpdir, realTmpdir } = macosLayout();
    fs.writeFileSync(path.join(realTmpdir, 'neighbour.txt'), 'not ours');
    process.env['TMPDIR'] = tmpdir;
    const mgr = open();
    const dead = path.join(mgr.root, deadSessionNameHere(hostId()));
    fs.mkdirSync(dead);
    fs.writeFileSync(path.join(dead, 'left-over'), 'x');
    fs.mkdirSync(sessionLockPath(dead));
    const report = await mgr.sweep();
    expect(report.errors).toEqual([]);
    expect(fs.existsSync(dead)).toBe(false);
    expect(fs.readFileSync(path.join(realTmpdir, 'neighbour.txt'), 'utf8')).toBe('not ours');
  });

  it('the pinning holds: the root swapped for a symlink after start is RootChangedError, and nothing lands in the target', async () => {
    const { tmpdir, system } = macosLayout();
    process.env['TMPDIR'] = tmpdir;
    const mgr = open();
    await mgr.write(Buffer.from('a'));
    const elsewhere = path.join(system, 'elsewhere');
    fs.mkdirSync(elsewhere, { mode: 0o700 });
    fs.renameSync(mgr.root, `${mgr.root}.moved`);
    fs.symlinkSync(elsewhere, mgr.root);
    await new Promise((resolve) => setImmediate(resolve));
    await expect(mgr.write(Buffer.from('b'))).rejects.toBeInstanceOf(RootChangedError);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
  });
});

describe('a root below a symlink another user could change', () => {
  it("refuses a root below another user's link in a sticky directory (a link planted in /tmp)", (ctx) => {
    needs(ctx, { root: 'giving a symbolic link to another user (lchown)' });
    const { system } = macosLayout();
    const link = linkInStickyTmp(system, 'work', path.join(system, 'private/var/folders/zz/T'), NOBODY);
    const root = path.join(link, 'root');
    const error = refusal(() => open({ root }));
    expect(error.reason).toBe('symlinked-parent');
    expect(error.path).toBe(root);
    expect(error.message).toContain(link);
    expect(error.message).toMatch(/uid 65534/);
    expect(error.message).toMatch(/real path/);
    expect(fs.existsSync(path.join(system, 'private/var/folders/zz/T/root'))).toBe(false); // nothing was made through it
  });

  it('refuses a root below a link in a directory others may write, even a link of root', (ctx) => {
    needs(ctx, { root: 'a directory of root that others may write in' });
    const { system } = macosLayout();
    const open777 = path.join(system, 'shared');
    fs.mkdirSync(open777);
    fs.chmodSync(open777, 0o777);
    const link = path.join(open777, 'var');
    fs.symlinkSync(path.join(system, 'private/var'), link);
    const error = refusal(() => open({ root: path.join(link, 'folders/zz/T/root') }));
    expect(error.reason).toBe('symlinked-parent');
    expect(error.message).toMatch(/mode 777/);
  });

  it('refuses a root below a link in a directory another user owns', (ctx) => {
    needs(ctx, { root: 'a directory owned by another user' });
    const { system } = macosLayout();
    const theirs = path.join(system, 'home-of-nobody');
    fs.mkdirSync(theirs, { mode: 0o755 });
    fs.chownSync(theirs, NOBODY, NOBODY);
    const link = path.join(theirs, 'var');
    fs.symlinkSync(path.join(system, 'private/var'), link);
    const error = refusal(() => open({ root: path.join(link, 'folders/zz/T/root') }));
    expect(error.reason).toBe('symlinked-parent');
    expect(error.message).toMatch(/owned by uid 65534/);
  });

  it('follows a chain: a safe link whose target passes through an unsafe one is refused', (ctx) => {
    needs(ctx, { root: 'giving a symbolic link to another user (lchown)' });
    const { system } = macosLayout();
    const planted = linkInStickyTmp(system, 'planted', path.join(system, 'private/var'), NOBODY);
    fs.symlinkSync('tmp/planted', path.join(system, 'data'));
    const error = refusal(() => open({ root: path.join(system, 'data/folders/zz/T/root') }));
    expect(error.message).toContain(planted);
  });

  it('the CLI refuses to sweep such a root (exit 3) and leaves what is there', (ctx) => {
    needs(ctx, { root: 'giving a symbolic link to another user (lchown)' });
    const { system, realTmpdir } = macosLayout();
    const root = markedRoot(path.join(realTmpdir, 'root'));
    const dead = path.join(root, deadSessionNameHere(hostId()));
    fs.mkdirSync(dead);
    const link = linkInStickyTmp(system, 'work', realTmpdir, NOBODY);
    const run = spawnSync(process.execPath, [cli, 'sweep', '--root', path.join(link, 'root')], { encoding: 'utf8' });
    expect(run.status).toBe(3);
    expect(run.stderr).toContain(link);
    expect(fs.existsSync(dead)).toBe(true);
  });

  it("takes a root below root's own link in a sticky directory, as the system's /tmp links are", async () => {
    const { system } = macosLayout();
    const link = linkInStickyTmp(system, 'var', path.join(system, 'private/var'));
    const mgr = open({ root: path.join(link, 'folders/zz/T/root') });
    const file = await mgr.write(Buffer.from('ok'));
    expect(fs.readFileSync(file.path, 'utf8')).toBe('ok');
  });
});
