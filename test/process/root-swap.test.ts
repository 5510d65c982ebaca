import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { TempFileManager, type TempDir, type TempFile } from '../../src/index.js';
import { procFd } from '../../src/disk/proc.js';
import { ROOT_MARKER, rootMarkerContent } from '../../src/base/layout.js';
import { nextJson, startChild, type ChildReport } from '../helpers/child.js';
import { deadSessionName, freshRoot, scratchDir } from '../helpers/roots.js';

// The attacker: a process of the same user renames the root away (`mv root root.old`) and puts a
// symlink to a victim directory in its place (`ln -s /victim root`). The victim holds a directory
// named like the live session, with files named like the live temp files and files of its own.
// Whatever the manager does next, the victim stays byte for byte as it was, and every call that
// would create or remove through the root fails with ERR_TEMPFILE_ROOT_CHANGED.

const ROOT_CHANGED = 'ERR_TEMPFILE_ROOT_CHANGED';

function hashTree(dir: string): string {
  const hash = createHash('sha256');
  for (const rel of fs.readdirSync(dir, { recursive: true }).map(String).sort()) {
    const stat = fs.lstatSync(path.join(dir, rel));
    hash.update(`${rel}:${stat.mode}:${stat.ino}:${stat.isFile() ? fs.readFileSync(path.join(dir, rel), 'hex') : ''}\n`);
  }
  return hash.digest('hex');
}

interface Swapped {
  /** The directory the root's path now leads to. */
  readonly victim: string;
  /** Where the real root went. */
  readonly moved: string;
  /** The victim's tree before any call. */
  readonly before: string;
  /** The victim's twin of the session directory. */
  readonly victimSession: string;
}

/**
 * Builds the victim (a twin of the session holding files named like `names`, a file of its own,
 * a dead-looking session and a root marker for the sweep to be tempted by) and swaps the root for
 * a symlink to it.
 */
function swapRootNow(root: string, sessionPath: string, names: readonly string[]): Swapped {
  const victim = scratchDir();
  const victimSession = path.join(victim, path.basename(sessionPath));
  fs.mkdirSync(victimSession);
  for (const name of names) {
    fs.mkdirSync(path.dirname(path.join(victimSession, name)), { recursive: true });
    fs.writeFileSync(path.join(victimSession, name), `the victim's ${name}`);
  }
  fs.writeFileSync(path.join(victimSession, 'not-the-librarys'), 'keep me');
  fs.writeFileSync(path.join(victim, ROOT_MARKER), rootMarkerContent());
  const dead = path.join(victim, deadSessionName('elsewhere'));
  fs.mkdirSync(dead);
  fs.writeFileSync(path.join(dead, 'old'), 'an old file of the victim');
  fs.utimesSync(dead, new Date(0), new Date(0));
  const moved = `${root}.old`;
  fs.renameSync(root, moved);
  fs.symlinkSync(victim, root);
  return { victim, moved, before: hashTree(victim), victimSession };
}

/**
 * {@link swapRootNow}, then a turn of the event loop: the swap then happens, as another process's
 * would, while the app is not in the middle of a run of JavaScript that already checked the root.
 */
async function swapRoot(root: string, sessionPath: string, names: readonly string[]): Promise<Swapped> {
  const swapped = swapRootNow(root, sessionPath, names);
  await new Promise((resolve) => setImmediate(resolve));
  return swapped;
}

function newManager(root: string): TempFileManager {
  return new TempFileManager({ root, staleMs: 2000, graceMs: 0, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
}

/** The settled outcome of `call`: its error code, or 'ok'. */
async function outcome(call: () => unknown): Promise<string> {
  try {
    await call();
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

/** A manager with a file and a directory (holding a file) in its session. */
function populated(): { root: string; mgr: TempFileManager; file: TempFile; dir: TempDir; names: string[] } {
  const root = freshRoot();
  const mgr = newManager(root);
  const file = mgr.file('.bin');
  fs.writeFileSync(file.path, 'ours');
  const dir = mgr.dir();
  fs.writeFileSync(path.join(dir.path, 'inner'), 'ours too');
  const names = [path.basename(file.path), `${path.basename(dir.path)}/inner`];
  return { root, mgr, file, dir, names };
}

const handleRemovals = {
  'file.remove()': (h: { file: TempFile }) => h.file.remove(),
  'file.removeSync()': (h: { file: TempFile }) => h.file.removeSync(),
  'file disposal (using)': (h: { file: TempFile }) => h.file[Symbol.dispose](),
  'file disposal (await using)': (h: { file: TempFile }) => h.file[Symbol.asyncDispose](),
  'dir.remove()': (h: { dir: TempDir }) => h.dir.remove(),
  'dir.removeSync()': (h: { dir: TempDir }) => h.dir.removeSync(),
};

for (const [name, remove] of Object.entries(handleRemovals)) {
  it(`${name} after the root is swapped for a symlink: refused, typed, and the victim's same-named file is untouched`, async () => {
    const h = populated();
    const swapped = await swapRoot(h.root, h.mgr.sessionPath, h.names);
    expect(await outcome(() => remove(h))).toBe(ROOT_CHANGED);
    expect(hashTree(swapped.victim)).toBe(swapped.before);
    // The real file, which moved with the root, is still the handle's: close() removes it.
    expect(h.file.disposed || h.dir.disposed).toBe(false);
    await h.mgr.close().catch(() => {});
    expect(hashTree(swapped.victim)).toBe(swapped.before);
  });
}

it('the error names the root, says what changed and what to do', async () => {
  const h = populated();
  await swapRoot(h.root, h.mgr.sessionPath, h.names);
  const err = await h.file.remove().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: ROOT_CHANGED, name: 'RootChangedError', path: h.root });
  expect((err as Error).message).toContain(h.root);
  expect((err as Error).message).toMatch(/symbolic link/);
  expect((err as Error).message).toMatch(/new TempFileManager/);
  await h.mgr.close().catch(() => {});
});

const creations = {
  'mgr.file()': (mgr: TempFileManager) => mgr.file('.bin'),
  'mgr.dir()': (mgr: TempFileManager) => mgr.dir(),
  'mgr.write()': (mgr: TempFileManager) => mgr.write('payload', { suffix: '.bin' }),
  'scope.file()': (mgr: TempFileManager) => mgr.scope().file('.bin'),
  'file.handoff()': async (_mgr: TempFileManager, file?: TempFile) => file!.handoff({ ttlMs: 60_000 }),
};

for (const [name, create] of Object.entries(creations)) {
  it(`${name} after the root is swapped for a symlink: refused, typed, and nothing appears in the victim`, async () => {
    const h = populated();
    const swapped = await swapRoot(h.root, h.mgr.sessionPath, h.names);
    expect(await outcome(() => create(h.mgr, h.file))).toBe(ROOT_CHANGED);
    // And it stays refused.
    expect(await outcome(() => create(h.mgr, h.file))).toBe(ROOT_CHANGED);
    expect(hashTree(swapped.victim)).toBe(swapped.before);
    await h.mgr.close().catch(() => {});
    expect(hashTree(swapped.victim)).toBe(swapped.before);
  });
}

it('a root swapped after the manager is made but before its first file: the session is not made in the victim', async () => {
  const root = freshRoot();
  const mgr = newManager(root);
  const swapped = await swapRoot(root, mgr.sessionPath, ['planted']);
  expect(await outcome(() => mgr.file('.bin'))).toBe(ROOT_CHANGED);
  expect(await outcome(() => mgr.write('payload'))).toBe(ROOT_CHANGED);
  expect(hashTree(swapped.victim)).toBe(swapped.before);
  await mgr.close().catch(() => {});
  expect(hashTree(swapped.victim)).toBe(swapped.before);
  // Nothing of a session was left in the real root either.
  expect(fs.readdirSync(swapped.moved).filter((n) => n.startsWith('session_'))).toEqual([]);
});

it('scope disposal after the root is swapped: refused, typed, the victim untouched', async () => {
  const root = freshRoot();
  const mgr = newManager(root);
  const scope = mgr.scope();
  const file = scope.file('.bin');
  const dir = scope.dir();
  fs.writeFileSync(path.join(dir.path, 'inner'), 'ours');
  const swapped = await swapRoot(root, mgr.sessionPath, [path.basename(file.path), `${path.basename(dir.path)}/inner`]);
  expect(await outcome(() => scope[Symbol.asyncDispose]())).toBe(ROOT_CHANGED);
  expect(hashTree(swapped.victim)).toBe(swapped.before);
  await mgr.close().catch(() => {});
  expect(hashTree(swapped.victim)).toBe(swapped.before);
});

for (const how of ['close()', 'closeSync()'] as const) {
  it(`${how} after the root is swapped: removes its own session (moved with the root), never the victim's twin`, async () => {
    const h = populated();
    const session = path.basename(h.mgr.sessionPath);
    const swapped = await swapRoot(h.root, h.mgr.sessionPath, h.names);
    expect(await outcome(() => (how === 'close()' ? h.mgr.close() : h.mgr.closeSync()))).toBe(ROOT_CHANGED);
    expect(h.mgr.closed).toBe(true);
    expect(hashTree(swapped.victim)).toBe(swapped.before);
    const left = fs.readdirSync(swapped.moved);
    if (procFd()) {
      // Reached through the descriptors the manager holds: the real session and its lock are gone.
      expect(left.filter((n) => n.startsWith(session))).toEqual([]);
    } else {
      // Without /proc the real session cannot be reached by path any more: it is left for a sweep
      // of the real root (docs/security.md), and nothing is removed by the swapped path.
      expect(left).toContain(session);
    }
  });
}

it('a swap in the middle of a run of JavaScript that already checked the root: what it creates and removes lands in its own session, never in the victim', async () => {
  const h = populated();
  const swapped = swapRootNow(h.root, h.mgr.sessionPath, h.names);
  if (procFd()) {
    // Noticed by the first call of the next run; until then calls go through the descriptors.
    const late = h.mgr.file('.late');
    expect(fs.readdirSync(path.join(swapped.moved, path.basename(h.mgr.sessionPath)))).toContain(path.basename(late.path));
    h.file.removeSync();
    expect(fs.readdirSync(path.join(swapped.moved, path.basename(h.mgr.sessionPath)))).not.toContain(path.basename(h.file.path));
  } else {
    // Without /proc the path is all there is: every call checks it first.
    expect(await outcome(() => h.mgr.file('.late'))).toBe(ROOT_CHANGED);
    expect(await outcome(() => h.file.removeSync())).toBe(ROOT_CHANGED);
  }
  expect(hashTree(swapped.victim)).toBe(swapped.before);
  await new Promise((resolve) => setImmediate(resolve));
  expect(await outcome(() => h.mgr.file('.later'))).toBe(ROOT_CHANGED);
  await h.mgr.close().catch(() => {});
  expect(hashTree(swapped.victim)).toBe(swapped.before);
});

it('claim() and sweep() after the root is swapped: refused, typed, the victim untouched', async () => {
  const root = freshRoot();
  const mgr = newManager(root);
  const ticket = await (await mgr.write('handed off', { suffix: '.bin' })).handoff({ ttlMs: 60_000 });
  const swapped = await swapRoot(root, mgr.sessionPath, ['planted']);
  // The victim holds an entry of the same ticket, for a claim through the path to take.
  const entry = fs.readdirSync(path.join(swapped.moved, 'handoff'))[0]!;
  fs.mkdirSync(path.join(swapped.victim, 'handoff', entry), { recursive: true });
  fs.writeFileSync(path.join(swapped.victim, 'handoff', entry, 'data.bin'), 'handed off');
  const before = hashTree(swapped.victim);
  expect(await outcome(() => mgr.claim(ticket))).toBe(ROOT_CHANGED);
  expect(await outcome(() => mgr.sweep())).toBe(ROOT_CHANGED);
  expect(hashTree(swapped.victim)).toBe(before);
  await mgr.close().catch(() => {});
  expect(hashTree(swapped.victim)).toBe(before);
});

it('the exit hook of a process whose root was swapped, on process.exit(0): its own session goes, the victim is untouched', async () => {
  const root = freshRoot();
  const running = startChild('root-swap-child.mjs', [root]);
  const report = await nextJson<ChildReport>(running);
  const names = report.files.map((file) => path.relative(report.session, file));
  const swapped = await swapRoot(root, report.session, [...names.slice(0, 2), `${names[2]}/inner`]);
  running.child.stdin!.write('go\n');
  const { code } = await nextJson<{ code: string }>(running);
  const ended = await running.ended;
  expect(ended.code, ended.stderr).toBe(0);
  expect(code).toBe(ROOT_CHANGED);
  expect(hashTree(swapped.victim)).toBe(swapped.before);
  const left = fs.readdirSync(swapped.moved);
  if (procFd()) expect(left.filter((n) => n.startsWith(path.basename(report.session)))).toEqual([]);
  else expect(left).toContain(path.basename(report.session));
});
