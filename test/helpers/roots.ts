import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { TempFileManager, type TempFileManagerOptions } from '../../src/index.js';
import { machineId } from '../../src/owner/process-identity.js';
import { entryName, ROOT_MARKER, rootMarkerContent, sessionName } from '../../src/base/layout.js';
import { canonical, layFs, type FsLayer } from './fs-layer.js';

/** A manager's options in a test: `fs` lays a layer over this test's disk ({@link TestDisk.lay}). */
export type TestManagerOptions = TempFileManagerOptions & { readonly fs?: FsLayer };

/**
 * Scratch directories and managers that belong to one test and go when it ends. The functions
 * below use one per file, cleaned after each test; a file whose tests run concurrently gives each
 * test its own (a fixture), so that one test's end never closes another's managers.
 */
export class TestDisk {
  private readonly parents: string[] = [];
  private readonly managers: TempFileManager[] = [];
  private readonly lifts: (() => void)[] = [];

  /** A fresh directory of this test's own, removed after the test. */
  scratchDir(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-test-'));
    this.parents.push(dir);
    return dir;
  }

  /** A root path that does not exist yet, inside a scratch directory. */
  freshRoot(): string {
    return path.join(this.scratchDir(), 'root');
  }

  /** A manager on a fresh root, closed after the test; with `fs`, on that layer ({@link TestDisk.lay}). */
  manager({ fs: layer, ...options }: TestManagerOptions = {}): TempFileManager {
    if (layer) this.lay(layer);
    const mgr = new TempFileManager({ root: this.freshRoot(), sweepOnStart: false, sweepIntervalMs: 0, exitHook: false, ...options });
    this.managers.push(mgr);
    return mgr;
  }

  /**
   * Lays `layer` over `node:fs` for every call under this test's scratch directories (and under
   * `dirs`), until the test ends or the returned function lifts it.
   */
  lay(layer: FsLayer, dirs: readonly string[] = []): () => void {
    const extra = dirs.map((dir) => canonical(dir));
    const under = (where: string, dir: string) => where === dir || where.startsWith(dir + path.sep);
    const lift = layFs(layer, (where) => this.parents.some((dir) => under(where, canonical(dir))) || extra.some((dir) => under(where, dir)));
    this.lifts.push(lift);
    return lift;
  }

  /** Closes the managers, lifts the layers and removes the scratch directories made so far. */
  async cleanup(): Promise<void> {
    for (const mgr of this.managers.splice(0)) await mgr.close().catch(() => {});
    for (const lift of this.lifts.splice(0)) lift();
    for (const dir of this.parents.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  }
}

const shared = new TestDisk();

afterEach(() => shared.cleanup());

/** A fresh directory of this test's own, removed after the test. */
export function scratchDir(): string {
  return shared.scratchDir();
}

/** A root path that does not exist yet, inside a scratch directory. */
export function freshRoot(): string {
  return shared.freshRoot();
}

/** A manager on a fresh root, closed after the test; with `fs`, on that layer. */
export function manager(options: TestManagerOptions = {}): TempFileManager {
  return shared.manager(options);
}

/**
 * A manager made as `new TempFileManager(options)` (the caller closes it), on the layer `fs` when
 * given: laid over this test's scratch directories and the root's parent until the test ends.
 */
export function layeredManager({ fs: layer, ...options }: TestManagerOptions): TempFileManager {
  if (layer) shared.lay(layer, options.root === undefined ? [] : [path.dirname(options.root)]);
  return new TempFileManager(options);
}

/** Lays `layer` over this test's scratch directories (and `dirs`) until the test ends ({@link TestDisk.lay}). */
export function layOver(layer: FsLayer, dirs: readonly string[] = []): () => void {
  return shared.lay(layer, dirs);
}

/** Every path under `dir`, relative, sorted. */
export function listTree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

/** Makes `root` (and its parents) and marks it as a manager's root, as a manager would. */
export function markedRoot(root: string): string {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(root, ROOT_MARKER), rootMarkerContent());
  return root;
}

/**
 * The name of a session of `host` made `ageMs` ago by a thread of this machine that is gone:
 * pid and thread 4194303 (above any real pid), started at tick 1.
 */
export function deadSessionName(host: string, ageMs = 3_600_000, random = '0123456789abcdef', pid = 4_194_303): string {
  return sessionName({ host, pid, thread: pid, start: `${machineId() ?? '00000000.0'}.1`, created: Date.now() - ageMs, random });
}

/**
 * The name of a dead session of `host` as this process judges sessions: with /proc the thread form
 * of {@link deadSessionName}; without it (`TEMPFILE_MANAGER_NO_PROC=1`) the portable form, a pid
 * of this host and no thread, which is judged by the pid alone.
 */
export function deadSessionNameHere(host: string, random = '0123456789abcdef'): string {
  if (!/^(1|true|yes)$/i.test(process.env['TEMPFILE_MANAGER_NO_PROC'] ?? '')) return deadSessionName(host, 3_600_000, random);
  return sessionName({ host, pid: 4_194_303, start: '1', created: Date.now() - 3_600_000, random });
}

/** A directory outside the root holding what looks like expired, claimable handoff entries. */
export function decoyWithEntries(): string {
  const decoy = scratchDir();
  for (let i = 0; i < 5; i++) {
    const entry = path.join(decoy, entryName(`${i}`.repeat(32), 1));
    fs.mkdirSync(entry);
    fs.writeFileSync(path.join(entry, 'data.bin'), 'victim');
  }
  return decoy;
}
