import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { describe, expect } from 'vitest';
import { TempFileReplacedError } from '../../src/errors.js';
import type { FsLayer } from '../helpers/fs-layer.js';
import { fixture } from '../helpers/child.js';
import { itNeeds, nodeFor } from '../helpers/privileges.js';
import { layOver, manager, scratchDir } from '../helpers/roots.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

// A keep() into a directory that another uid can write to (0777, no sticky bit): that uid
// (nobody, a real process) renames away what keep() put there and plants its own file, or a
// symlink to a root-only secret, under the same name. It strikes at two instants, which the
// manager's `fs` option makes deterministic: while the copy runs (the staging name, right after
// keep() created it) and right after the file took its final name (before the source goes).
// Whatever it does, keep() must not report success with the attacker's object in place, and
// must not remove our file: it rejects with TempFileReplacedError and the file stays with its
// handle, whole.

const NOBODY = 65534;
const KEPT = 'kept.bin';

interface Attacker {
  strike(name: string, plant: 'symlink' | 'file'): Promise<void>;
  stop(): Promise<void>;
}

function startAttacker(victim: string): Attacker {
  const child = spawn(nodeFor(NOBODY), [fixture('dest-dir-attacker.mjs')], { uid: NOBODY, gid: NOBODY, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const ended = new Promise((resolve) => child.on('close', resolve));
  return {
    async strike(name, plant) {
      child.stdin!.write(`${JSON.stringify({ name, plant, victim })}\n`);
      const { value, done } = await lines.next();
      if (done) throw new Error('the attacker ended');
      const answer = JSON.parse(value) as { done: boolean; error?: string };
      if (!answer.done) throw new Error(`the attack failed: ${answer.error}`);
    },
    async stop() {
      child.stdin!.end();
      await ended;
    },
  };
}

type When = 'mid-copy' | 'placed';

/** node:fs, with the attacker let in at `when` of a keep() into `destDir`. */
function attackedFs(destDir: string, when: When, attack: (name: string) => Promise<void>): { fs: FsLayer; struck: () => boolean } {
  let struck = false;
  const hit = async (name: string) => {
    if (struck) return;
    struck = true;
    await attack(path.join(destDir, path.basename(name)));
  };
  const promises = {
    ...nodeFs.promises,
    open: (async (file: nodeFs.PathLike, ...rest: unknown[]) => {
      const handle = await (nodeFs.promises.open as (...a: unknown[]) => Promise<unknown>)(file, ...rest);
      if (when === 'mid-copy' && String(file).includes('.tfm-keep-')) await hit(String(file));
      return handle;
    }) as typeof nodeFs.promises.open,
    link: (async (from: nodeFs.PathLike, to: nodeFs.PathLike) => {
      await nodeFs.promises.link(from, to);
      if (when === 'placed' && path.basename(String(to)) === KEPT) await hit(String(to));
    }) as typeof nodeFs.promises.link,
    rename: (async (from: nodeFs.PathLike, to: nodeFs.PathLike) => {
      await nodeFs.promises.rename(from, to);
      if (when === 'placed' && path.basename(String(to)) === KEPT) await hit(String(to));
    }) as typeof nodeFs.promises.rename,
  };
  return { fs: { ...nodeFs, promises } as FsLayer, struck: () => struck };
}

/** A directory `nobody` can reach and write to, on the same file system as the root or on a tmpfs. */
function openDirectory(cross: boolean): string {
  const base = cross ? mountTmpfs(64) : scratchDir();
  fs.chmodSync(base, 0o755);
  // A tmpfs is mounted inside a private scratch directory, which nobody must be able to cross; the
  // OS temp directory itself (a scratch directory's parent) is never changed.
  if (path.dirname(base) !== os.tmpdir()) fs.chmodSync(path.dirname(base), 0o755);
  const dir = path.join(base, 'out');
  fs.mkdirSync(dir);
  fs.chmodSync(dir, 0o777); // writable by every uid, no sticky bit
  return dir;
}

const CASES = [
  // Across file systems: the staging name swapped mid-copy, or the final name swapped after the link/rename.
  ...(['mid-copy', 'placed'] as const).flatMap((when) =>
    [false, true].flatMap((overwrite) => (['symlink', 'file'] as const).map((plant) => ({ cross: true, when, overwrite, plant }))),
  ),
  // On one file system, link + unlink: the final name swapped after the link.
  ...(['symlink', 'file'] as const).map((plant) => ({ cross: false, when: 'placed' as const, overwrite: false, plant })),
];

describe('keep() into a directory another uid can write to', () => {
  itNeeds({ root: 'running an attacker as nobody, and mounting a tmpfs', command: ['mount', 'umount'], package: 'mount' }).for(CASES)(
    '%o: rejects with TempFileReplacedError, removes nothing of ours, and the file stays with its handle',
    async ({ cross, when, overwrite, plant }) => {
      const destDir = openDirectory(cross);
      const secretDir = scratchDir();
      const secret = path.join(secretDir, 'secret');
      fs.writeFileSync(secret, 'root-only secret\n', { mode: 0o600 });
      const attacker = startAttacker(secret);
      try {
        const hooked = attackedFs(destDir, when, (name) => attacker.strike(name, plant));
        const mgr = manager({ fs: hooked.fs });
        layOver(hooked.fs, [destDir]); // keep()'s staging file is made there
        expect(fs.statSync(destDir).dev !== fs.statSync(mgr.root).dev).toBe(cross);
        const payload = randomBytes(3 * 1024 * 1024 + 17);
        const file = await mgr.write(payload);
        const target = path.join(destDir, KEPT);

        const outcome = await file.keep(target, { overwrite }).then(
          (at) => `resolved ${at}`,
          (err: unknown) => err,
        );
        expect(hooked.struck()).toBe(true);
        expect(outcome).toBeInstanceOf(TempFileReplacedError);
        const error = outcome as TempFileReplacedError;
        expect(error.code).toBe('ERR_TEMPFILE_REPLACED');
        expect(error.message).toContain(destDir);
        // Our file was not removed: it is still the handle's, whole, and can be kept elsewhere.
        expect(fs.readFileSync(file.path).equals(payload)).toBe(true);
        expect(file.disposed).toBe(false);
        expect(fs.readFileSync(secret, 'utf8')).toBe('root-only secret\n');
        // Nothing of ours is left under a name of that directory but where the attacker moved it.
        const ours = fs.readdirSync(destDir).filter((name) => !name.endsWith('.stolen') && fs.lstatSync(path.join(destDir, name)).uid !== NOBODY);
        expect(ours).toEqual([]);
        if (cross) {
          // (On one file system the attacker holds a second name of our inode, under which it
          // moved the kept name: the library then refuses that file as a hard link.)
          const safe = path.join(scratchDir(), 'safe.bin');
          await file.keep(safe);
          expect(fs.readFileSync(safe).equals(payload)).toBe(true);
        }
      } finally {
        await attacker.stop();
      }
    },
  );
});
