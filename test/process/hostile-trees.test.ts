import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { TempFileManager, type SweepReport } from '../../src/index.js';
import { MountPointError } from '../../src/errors.js';
import { fixture } from '../helpers/child.js';
import { eachNeeds, MOUNTING, nodeFor } from '../helpers/privileges.js';
import { freshRoot, layeredManager, scratchDir } from '../helpers/roots.js';

// Trees that fight removal: mount points inside a temp dir, directories the owner cannot write
// or read, trees deeper than any stack. Every removal path is tried on the real disk: the
// sweep, remove(), removeSync(), close(), closeSync(), the exit hook and the CLI.

const IS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;
const CLI = path.join(import.meta.dirname, '../../dist/cli.js');
const HOUR = 3_600_000;

interface Made {
  session: string;
  dir: string;
  pid: number;
}
type Outcome = { ok: true } | { error: { name: string; code: string; message: string; paths?: string[] } };

interface Child {
  made: Made;
  next(): Promise<unknown>;
  send(line: string): void;
  kill(signal: NodeJS.Signals): void;
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

async function startRemoval(root: string, tree: string, action: string, options: { uid?: number; depth?: number; nofile?: number } = {}): Promise<Child> {
  const args = [fixture('removal-child.mjs'), root, tree, action, String(options.depth ?? 6000)];
  const node = nodeFor(options.uid);
  const command = options.nofile ? 'prlimit' : node;
  const argv = options.nofile ? [`--nofile=${options.nofile}`, node, ...args] : args;
  const child = spawn(command, argv, {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(options.uid !== undefined && { uid: options.uid, gid: options.uid }),
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<unknown> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`the child ended early: ${(await ended).stderr}`);
    return JSON.parse(value as string);
  };
  const made = (await next()) as Made;
  return { made, next, send: (line) => child.stdin.write(`${line}\n`), kill: (signal) => child.kill(signal), ended };
}

/** A root for a child that runs as `uid`: its parent directory is that uid's. */
function rootFor(uid: number | undefined): string {
  const parent = scratchDir();
  if (uid !== undefined) fs.chownSync(parent, uid, uid);
  return path.join(parent, 'root');
}

/** Makes an orphan's session stale at once: its owner is dead, and its lock an hour old. */
function ageLock(session: string): void {
  const then = new Date(Date.now() - HOUR);
  fs.utimesSync(`${session}.lock`, then, then);
}

async function sweepInProcess(root: string): Promise<SweepReport> {
  const mgr = new TempFileManager({ root, graceMs: 0, sweepOnStart: false, exitHook: false });
  try {
    return await mgr.sweep();
  } finally {
    await mgr.close();
  }
}

function sweepWithCli(root: string): { status: number | null; report: SweepReport } {
  const run = spawnSync(process.execPath, [CLI, 'sweep', '--root', root, '--grace-ms', '0', '--json'], { encoding: 'utf8' });
  return { status: run.status, report: JSON.parse(run.stdout) as SweepReport };
}

async function orphan(root: string, tree: string, depth?: number): Promise<Made> {
  const child = await startRemoval(root, tree, 'orphan', { depth });
  await child.next(); // waiting
  child.kill('SIGKILL');
  await child.ended;
  ageLock(child.made.session);
  return child.made;
}

// ---------------------------------------------------------------------------------------------
// Mount points

const mounted: string[] = [];

afterEach(() => {
  for (const target of mounted.splice(0).reverse()) spawnSync('umount', ['-l', target]);
});

type MountKind = 'bind' | 'tmpfs';

const NO_PROC = /^(1|true|yes)$/i.test(process.env['TEMPFILE_MANAGER_NO_PROC'] ?? '');

/** A fresh tmpfs, unmounted after the test. */
function tmpfsDir(): string {
  const target = path.join(scratchDir(), 'tmpfs');
  fs.mkdirSync(target);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m,mode=0700', 'tmpfs', target]);
  mounted.push(target);
  return target;
}

/** Mounts a file system of `kind` at `target` (made here) holding `precious`; returns that file. */
function mountInside(kind: MountKind, target: string): string {
  fs.mkdirSync(target, { recursive: true });
  if (kind === 'bind') {
    // Without /proc a mount is told by st_dev alone (docs/security.md): bind another file system.
    const source = path.join(NO_PROC ? tmpfsDir() : scratchDir(), 'bound');
    fs.mkdirSync(path.join(source, 'deeper'), { recursive: true });
    fs.writeFileSync(path.join(source, 'deeper', 'precious'), 'precious');
    execFileSync('mount', ['--bind', source, target]);
  } else {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', target]);
    fs.mkdirSync(path.join(target, 'deeper'));
    fs.writeFileSync(path.join(target, 'deeper', 'precious'), 'precious');
  }
  mounted.push(target);
  return path.join(target, 'deeper', 'precious');
}

/** Like {@link mountInside}, with `precious` at the top of the mount: a tree of files only, as an entry holds. */
function mountFlat(kind: MountKind, target: string): string {
  const source = kind === 'bind' ? path.join(NO_PROC ? tmpfsDir() : scratchDir(), 'bound') : undefined;
  if (source) {
    fs.mkdirSync(source);
    fs.writeFileSync(path.join(source, 'precious'), 'precious');
    execFileSync('mount', ['--bind', source, target]);
  } else {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', target]);
    fs.writeFileSync(path.join(target, 'precious'), 'precious');
  }
  mounted.push(target);
  return path.join(target, 'precious');
}

function expectSurvived(precious: string): void {
  expect(fs.readFileSync(precious, 'utf8')).toBe('precious');
}

const KINDS: MountKind[] = ['bind', 'tmpfs'];

describe('a mount point inside a temp dir is never crossed', () => {
  eachNeeds(MOUNTING);
  describe.each(KINDS)('a %s mount', (kind) => {
    it.each(['remove', 'removeSync', 'close', 'closeSync'] as const)('%s() removes the rest and throws MountPointError', async (action) => {
      const root = freshRoot();
      const child = await startRemoval(root, 'plain', action);
      const target = path.join(child.made.dir, 'sub', 'mnt');
      const precious = mountInside(kind, target);
      fs.writeFileSync(path.join(child.made.dir, 'sub', 'beside'), 'x');
      child.send('go');
      const outcome = (await child.next()) as Outcome;
      await child.ended;
      expect(outcome).toMatchObject({ error: { name: 'MountPointError', code: 'ERR_TEMPFILE_MOUNT_POINT', paths: [target] } });
      expect((outcome as { error: { message: string } }).error.message).toMatch(/umount/);
      expectSurvived(precious);
      expect(fs.existsSync(path.join(child.made.dir, 'plain'))).toBe(false);
      expect(fs.existsSync(path.join(child.made.dir, 'sub', 'beside'))).toBe(false);
    });

    it('the TempDir itself as the mount point: nothing in it is touched', async () => {
      const root = freshRoot();
      const mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
      const dir = mgr.dir();
      const precious = mountInside(kind, dir.path);
      await expect(dir.remove()).rejects.toBeInstanceOf(MountPointError);
      expectSurvived(precious);
      spawnSync('umount', ['-l', dir.path]);
      await mgr.close();
      expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
    });

    it('the exit hook (SIGTERM) leaves the mounted tree whole', async () => {
      const root = freshRoot();
      const child = await startRemoval(root, 'plain', 'exit');
      const precious = mountInside(kind, path.join(child.made.dir, 'mnt'));
      child.send('go');
      await child.next(); // waiting
      child.kill('SIGTERM');
      expect((await child.ended).signal).toBe('SIGTERM');
      expectSurvived(precious);
      expect(fs.existsSync(path.join(child.made.dir, 'plain'))).toBe(false);
    });

    it('an expired handoff entry that is, or holds, a mount point: the sweep leaves it, reports it, and removes the others', async () => {
      const root = freshRoot();
      const mgr = new TempFileManager({ root, graceMs: 0, sweepOnStart: false, exitHook: false });
      const entries: string[] = [];
      for (let i = 0; i < 3; i++) {
        const ticket = await (await mgr.write('x', { suffix: '.bin' })).handoff({ ttlMs: 1 });
        const name = fs.readdirSync(path.join(root, 'handoff')).find((entry) => entry.includes(ticket.id))!;
        entries.push(path.join(root, 'handoff', name));
      }
      const atEntry = mountFlat(kind, entries[0]!);
      const inEntry = mountInside(kind, path.join(entries[1]!, 'mnt'));
      await new Promise((resolve) => setTimeout(resolve, 5));
      const report = await mgr.sweep();
      expect(report.errors).toEqual([]);
      expect(report.left).toEqual(
        expect.arrayContaining([
          { path: entries[0], reason: 'mount-point' },
          { path: path.join(entries[1]!, 'mnt'), reason: 'mount-point' },
        ]),
      );
      expectSurvived(atEntry);
      expectSurvived(inEntry);
      expect(fs.existsSync(entries[2]!)).toBe(false);
      await mgr.close();
    });

    it('the sweep and the CLI leave it in place and report it as left, not as an error', async () => {
      const root = freshRoot();
      const child = await startRemoval(root, 'plain', 'orphan');
      const target = path.join(child.made.dir, 'a', 'mnt');
      const precious = mountInside(kind, target);
      child.send('go');
      await child.next();
      child.kill('SIGKILL');
      await child.ended;
      ageLock(child.made.session);

      const report = await sweepInProcess(root);
      expect(report.errors).toEqual([]);
      expect(report.left).toEqual([{ path: target, reason: 'mount-point' }]);
      expect(report.sessionsRemoved).toBe(0);
      expectSurvived(precious);
      expect(fs.existsSync(path.join(child.made.dir, 'plain'))).toBe(false);

      const cli = sweepWithCli(root);
      expect(cli.status).toBe(1);
      expect(cli.report.left).toEqual([{ path: target, reason: 'mount-point' }]);
      expectSurvived(precious);

      spawnSync('umount', ['-l', target]);
      expect(await sweepInProcess(root)).toMatchObject({ sessionsRemoved: 1, errors: [], left: [] });
      expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Trees that resist removal: the owner's own read-only and unreadable directories

// Root is not refused by permission bits: the library runs as nobody there.
const AS = IS_ROOT ? NOBODY : undefined;

describe('directories the owner made read-only or unreadable', () => {
  it.each(['remove', 'removeSync', 'close', 'closeSync'] as const)('%s() restores u+rwx and removes them', async (action) => {
    const root = rootFor(AS);
    const child = await startRemoval(root, 'resisting', action, { uid: AS });
    expect(await child.next()).toEqual({ ok: true });
    await child.ended;
    expect(fs.existsSync(child.made.dir)).toBe(false);
  });

  it('the exit hook restores u+rwx and removes them', async () => {
    const root = rootFor(AS);
    const child = await startRemoval(root, 'resisting', 'exit', { uid: AS });
    await child.next();
    child.kill('SIGTERM');
    expect((await child.ended).signal).toBe('SIGTERM');
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
  });

  it('the sweep and the CLI restore u+rwx and remove them', async () => {
    for (const via of ['sweep', 'cli'] as const) {
      const root = rootFor(AS);
      const child = await startRemoval(root, 'resisting', 'orphan', { uid: AS });
      await child.next();
      child.kill('SIGKILL');
      await child.ended;
      ageLock(child.made.session);
      const run = spawnSync(nodeFor(AS), [CLI, 'sweep', '--root', root, '--grace-ms', '0', '--json'], {
        encoding: 'utf8',
        ...(AS !== undefined && { uid: AS, gid: AS }),
      });
      expect(run.status, `${via}: ${run.stderr}`).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ sessionsRemoved: 1, errors: [], left: [] });
      expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
    }
  });

  it('a link planted at a directory name is removed as a link: its target is never chmod-ed', async () => {
    const root = freshRoot();
    const outside = path.join(scratchDir(), 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'precious'), 'precious');
    fs.chmodSync(outside, 0o500);
    const mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
    const dir = mgr.dir();
    fs.symlinkSync(outside, path.join(dir.path, 'looks-like-a-dir'));
    dir.removeSync();
    expect(fs.statSync(outside).mode & 0o7777).toBe(0o500);
    expect(fs.readFileSync(path.join(outside, 'precious'), 'utf8')).toBe('precious');
    fs.chmodSync(outside, 0o700);
    await mgr.close();
  });
});

describe('a directory swapped for a symlink while its permissions are being restored', () => {
  for (const sync of [true, false]) {
    it(`${sync ? 'removeSync' : 'remove'}(): the link is removed, its target keeps its mode and its files`, async () => {
      const outside = path.join(scratchDir(), 'outside');
      fs.mkdirSync(outside);
      fs.writeFileSync(path.join(outside, 'precious'), 'precious');
      fs.chmodSync(outside, 0o500);
      let victim = '';
      let swapped = false;
      // The first open of `victim` finds it unreadable (EACCES), and the attacker swaps it for a
      // symlink right then: what restores its permissions must not follow that link.
      const swapThenRefuse = (p: string): void => {
        if (swapped || !p.endsWith('/victim')) return;
        swapped = true;
        fs.rmdirSync(victim);
        fs.symlinkSync(outside, victim);
        throw Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: 'EACCES' });
      };
      const hostile = {
        ...fs,
        openSync: ((p: fs.PathLike, ...rest: unknown[]) => {
          swapThenRefuse(String(p));
          return (fs.openSync as (...a: unknown[]) => number)(p, ...rest);
        }) as typeof fs.openSync,
        promises: {
          ...fs.promises,
          open: (async (p: fs.PathLike, ...rest: unknown[]) => {
            swapThenRefuse(String(p));
            return (fs.promises.open as (...a: unknown[]) => Promise<unknown>)(p, ...rest);
          }) as typeof fs.promises.open,
        },
      };
      const mgr = layeredManager({ root: freshRoot(), fs: hostile, sweepOnStart: false, exitHook: false });
      const dir = mgr.dir();
      victim = path.join(dir.path, 'victim');
      fs.mkdirSync(victim);
      if (sync) dir.removeSync();
      else await dir.remove();
      expect(swapped).toBe(true);
      expect(fs.statSync(outside).mode & 0o7777).toBe(0o500);
      expect(fs.readFileSync(path.join(outside, 'precious'), 'utf8')).toBe('precious');
      expect(fs.existsSync(dir.path)).toBe(false);
      fs.chmodSync(outside, 0o700);
      await mgr.close();
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Depth

/**
 * A root for deep trees: on a tmpfs of its own when root (this disk takes ~2 ms per rmdir, as
 * `rm -rf` finds too; the walk makes the same calls on either file system), else on the disk.
 */
function deepRoot(): string {
  if (!IS_ROOT) return freshRoot();
  return path.join(tmpfsDir(), 'root');
}

describe('a tree 6,000 levels deep', () => {
  it.each(['remove', 'removeSync', 'close', 'closeSync'] as const)('%s() removes it', async (action) => {
    const root = deepRoot();
    const child = await startRemoval(root, 'deep', action);
    const outcome = await child.next();
    const ended = await child.ended;
    expect(ended.stderr).toBe('');
    expect(outcome).toEqual({ ok: true });
    expect(fs.existsSync(child.made.dir)).toBe(false);
  });

  it('the exit hook removes it', async () => {
    const root = deepRoot();
    const child = await startRemoval(root, 'deep', 'exit');
    await child.next();
    child.kill('SIGTERM');
    const ended = await child.ended;
    expect(ended.stderr).toBe('');
    expect(ended.signal).toBe('SIGTERM');
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
  });

  it('the sweep and the CLI remove it', async () => {
    const inProcess = deepRoot();
    await orphan(inProcess, 'deep');
    expect(await sweepInProcess(inProcess)).toMatchObject({ sessionsRemoved: 1, dirsRemoved: 6002, errors: [] });
    expect(fs.readdirSync(inProcess)).toEqual(['.tempfile-manager']);

    const byCli = deepRoot();
    await orphan(byCli, 'deep');
    const cli = sweepWithCli(byCli);
    expect(cli.status).toBe(0);
    expect(cli.report).toMatchObject({ sessionsRemoved: 1, errors: [] });
    expect(fs.readdirSync(byCli)).toEqual(['.tempfile-manager']);
  });

  it('needs far fewer descriptors than levels: 6,000 levels with 512 descriptors, sync and async', async () => {
    for (const action of ['removeSync', 'remove'] as const) {
      const root = deepRoot();
      const child = await startRemoval(root, 'deep', action, { nofile: 512 });
      expect(await child.next()).toEqual({ ok: true });
      await child.ended;
      expect(fs.existsSync(child.made.dir)).toBe(false);
    }
  });
});
