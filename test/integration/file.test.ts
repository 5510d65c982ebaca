import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { DisposedError, TempFile } from '../../src/index.js';
import { FileSystemError, ManagerClosedError } from '../../src/errors.js';
import { parseSessionName } from '../../src/base/layout.js';
import { manager, scratchDir } from '../helpers/roots.js';

describe('mgr.file()', () => {
  it('creates an empty 0600 file in the session, named prefix + 32 hex + suffix', () => {
    const mgr = manager({ prefix: 'up-' });
    const file = mgr.file('.mkv');
    const stat = fs.lstatSync(file.path);
    expect(stat.isFile()).toBe(true);
    expect(stat.size).toBe(0);
    expect(stat.mode & 0o777).toBe(0o600);
    expect(path.dirname(file.path)).toBe(mgr.sessionPath);
    expect(path.basename(file.path)).toMatch(/^up-[0-9a-f]{32}\.mkv$/);
  });

  it('takes { prefix, suffix }, and the prefix replaces the manager prefix', () => {
    const file = manager({ prefix: 'm-' }).file({ prefix: 'own-', suffix: '.pdf' });
    expect(path.basename(file.path)).toMatch(/^own-[0-9a-f]{32}\.pdf$/);
  });

  it('is synchronous and creates the session lazily, with its lock beside it', () => {
    const mgr = manager();
    expect(fs.readdirSync(mgr.root)).toEqual(['.tempfile-manager']);
    const file = mgr.file();
    expect(file).toBeInstanceOf(TempFile);
    // Beside them, with /proc, the thread's live signal (a FIFO it holds open: docs/crash-recovery.md).
    const names = fs.readdirSync(mgr.root);
    const live = names.filter((name) => /^live_[0-9a-f]{16}$/.test(name));
    expect(live).toHaveLength(mgr.stats().liveness === 'live-signal' ? 1 : 0);
    for (const name of live) expect(fs.lstatSync(path.join(mgr.root, name)).isFIFO()).toBe(true);
    expect(names.sort()).toEqual(
      ['.tempfile-manager', path.basename(mgr.sessionPath), `${path.basename(mgr.sessionPath)}.lock`, ...live].sort(),
    );
    if (process.platform === 'linux' && !process.env['TEMPFILE_MANAGER_NO_PROC']) expect(mgr.stats().liveness).toBe('live-signal');
    expect(fs.lstatSync(mgr.sessionPath).mode & 0o777).toBe(0o700);
  });

  it('names the session after host, pid, process start time, creation time and a random part', () => {
    const before = Date.now();
    const mgr = manager();
    mgr.file();
    expect(path.basename(mgr.sessionPath)).toMatch(/^session_/);
    const { host, pid, thread, start, created, random } = parseSessionName(path.basename(mgr.sessionPath))!;
    expect(host).toMatch(/^[A-Za-z0-9.-]+$/);
    expect(pid).toBe(process.pid);
    if (process.env.TEMPFILE_MANAGER_NO_PROC) {
      expect(thread).toBeUndefined(); // the portable path: the process's start time in epoch ms
      expect(start).toMatch(/^\d+$/);
    } else {
      expect(thread).toBe(process.pid); // the main thread's kernel thread id is the pid
      expect(start).toMatch(/^[0-9a-f]{8}\.[0-9a-z]+\.\d+$/); // Linux: boot id, PID namespace, start ticks from /proc
    }
    expect(created).toBeGreaterThanOrEqual(before);
    expect(created).toBeLessThanOrEqual(Date.now());
    expect(random).toMatch(/^[0-9a-f]{16}$/);
  });

  it('gives 10,000 distinct names from one manager', () => {
    const mgr = manager();
    const paths = new Set<string>();
    for (let i = 0; i < 10_000; i++) paths.add(mgr.file().path);
    expect(paths.size).toBe(10_000);
    expect(fs.readdirSync(mgr.sessionPath)).toHaveLength(10_000);
  });

  it('round-trips bytes through createWriteStream and createReadStream', async () => {
    await using file = manager().file('.bin');
    await pipeline(async function* () { yield 'hello '; yield 'world'; }, file.createWriteStream());
    const chunks: Buffer[] = [];
    for await (const chunk of file.createReadStream()) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello world');
    await pipeline(async function* () { yield '!'; }, file.createWriteStream({ append: true }));
    expect(fs.readFileSync(file.path, 'utf8')).toBe('hello world!');
  });

  it('refuses to write through a symlink swapped in at its path', async () => {
    const outside = path.join(scratchDir(), 'victim.txt');
    fs.writeFileSync(outside, 'precious');
    const file = manager().file();
    fs.unlinkSync(file.path);
    fs.symlinkSync(outside, file.path);
    // A typed error naming the public path (it was a raw ELOOP naming /proc/<pid>/fd/<fd>/<name>).
    const refused = { code: 'ERR_TEMPFILE_IO', syscallCode: 'ELOOP', path: file.path };
    await expect(pipeline(async function* () { yield 'evil'; }, file.createWriteStream())).rejects.toMatchObject(refused);
    const read = file.createReadStream();
    await expect(new Promise((_, reject) => read.on('error', reject))).rejects.toMatchObject(refused);
    await file.remove();
    expect(fs.readFileSync(outside, 'utf8')).toBe('precious');
    expect(fs.existsSync(file.path)).toBe(false);
  });
});

describe('disposal', () => {
  it('removes the file at the end of a `using` block, on return and on throw', () => {
    const mgr = manager();
    let kept = '';
    {
      using file = mgr.file();
      kept = file.path;
      expect(fs.existsSync(kept)).toBe(true);
    }
    expect(fs.existsSync(kept)).toBe(false);
    expect(() => {
      using file = mgr.file();
      kept = file.path;
      throw new Error('boom');
    }).toThrow('boom');
    expect(fs.existsSync(kept)).toBe(false);
  });

  it('removes the file at the end of an `await using` block, on return and on throw', async () => {
    const mgr = manager();
    let kept = '';
    const work = async (fail: boolean) => {
      await using file = mgr.file();
      kept = file.path;
      fs.writeFileSync(file.path, 'data');
      if (fail) throw new Error('boom');
    };
    await work(false);
    expect(fs.existsSync(kept)).toBe(false);
    await expect(work(true)).rejects.toThrow('boom');
    expect(fs.existsSync(kept)).toBe(false);
  });

  it('is idempotent and quiet when the file is already gone', async () => {
    const file = manager().file();
    fs.unlinkSync(file.path);
    await file.remove();
    await file.remove();
    file.removeSync();
    file[Symbol.dispose]();
    await file[Symbol.asyncDispose]();
    expect(file.disposed).toBe(true);
  });

  it('throws a typed error on use after dispose, and still tells its path', async () => {
    const file = manager().file();
    await file.remove();
    expect(() => file.createWriteStream()).toThrow(DisposedError);
    expect(() => file.createReadStream()).toThrow(DisposedError);
    await expect(file.keep(path.join(scratchDir(), 'x'))).rejects.toMatchObject({ code: 'ERR_TEMPFILE_DISPOSED' });
    expect(file.path).toContain(path.sep);
  });

  it('removes only the link when the file was swapped for a symlink to an outside file', async () => {
    const outside = path.join(scratchDir(), 'victim.txt');
    fs.writeFileSync(outside, 'precious');
    const file = manager().file();
    fs.unlinkSync(file.path);
    fs.symlinkSync(outside, file.path);
    await file.remove();
    expect(fs.existsSync(file.path)).toBe(false);
    expect(fs.readFileSync(outside, 'utf8')).toBe('precious');
  });
});

describe('manager close', () => {
  it('removes the session and its lock, disposes every handle, and is idempotent', async () => {
    const mgr = manager();
    const file = mgr.file();
    const dir = mgr.dir();
    fs.writeFileSync(path.join(dir.path, 'inner'), 'x');
    await mgr.close();
    await mgr.close();
    mgr.closeSync();
    expect(fs.readdirSync(mgr.root)).toEqual(['.tempfile-manager']);
    expect(file.disposed).toBe(true);
    expect(dir.disposed).toBe(true);
    expect(mgr.closed).toBe(true);
    expect(() => mgr.file()).toThrow(ManagerClosedError);
    expect(() => mgr.scope()).toThrow(ManagerClosedError);
  });

  it('closes with `await using` and with `using`', async () => {
    const root = path.join(scratchDir(), 'root');
    const { TempFileManager } = await import('../../src/index.js');
    {
      await using mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
      mgr.file();
    }
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
    {
      using mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
      mgr.dir();
    }
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
  });

  it('touches nothing when closed before first use', async () => {
    const mgr = manager();
    await mgr.close();
    expect(fs.readdirSync(mgr.root)).toEqual(['.tempfile-manager']);
  });
});

describe('remove() failures', () => {
  // A small file is unlinked inline, a larger one in the thread pool (local-disk.ts).
  it.each([
    ['unlinkSync', 0],
    ['unlink', 1024 * 1024],
  ] as const)('reports a real failure (%s, a file of %i bytes) with a typed error and keeps the handle live for a retry', async (method, bytes) => {
    const { FaultyFs } = await import('../helpers/faulty-fs.js');
    const faulty = new FaultyFs();
    const file = manager({ fs: faulty.fs }).file();
    fs.writeFileSync(file.path, Buffer.alloc(bytes));
    faulty.fail(method, 'EIO');
    const error = await file.remove().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(FileSystemError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EIO', path: file.path });
    expect(file.disposed).toBe(false);
    expect(fs.existsSync(file.path)).toBe(true);
    await file.remove();
    expect(fs.existsSync(file.path)).toBe(false);
  });
});

describe('a keep() or handoff() returned from an `await using` block', () => {
  // `return file.keep(dest)` hands back the promise: the block's disposal runs while the move is
  // in flight, and must not remove the file under it.
  async function keptFromScope(mgr: ReturnType<typeof manager>, destination: string): Promise<string> {
    await using scope = mgr.scope();
    const file = scope.file('.pdf');
    fs.writeFileSync(file.path, '%PDF');
    return file.keep(destination);
  }

  it('keeps the file, also when the disposal runs first', async () => {
    const mgr = manager();
    for (let round = 0; round < 50; round++) {
      const destination = path.join(scratchDir(), 'kept.pdf');
      expect(await keptFromScope(mgr, destination)).toBe(destination);
      expect(fs.readFileSync(destination, 'utf8')).toBe('%PDF');
    }
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
  });

  it('hands off the file; a failed keep leaves it to the disposal', async () => {
    const mgr = manager();
    const ticket = await (async () => {
      await using scope = mgr.scope();
      const file = await scope.write('payload');
      return file.handoff({ ttlMs: 60_000 });
    })();
    await using claimed = await mgr.claim(ticket);
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('payload');

    const existing = path.join(scratchDir(), 'taken.pdf');
    fs.writeFileSync(existing, 'mine');
    const refused = (async () => {
      await using scope = mgr.scope();
      const file = scope.file('.pdf');
      fs.writeFileSync(file.path, '%PDF');
      return await file.keep(existing);
    })();
    await expect(refused).rejects.toMatchObject({ code: 'ERR_TEMPFILE_DESTINATION_EXISTS' });
    expect(fs.readFileSync(existing, 'utf8')).toBe('mine');
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
  });
});
