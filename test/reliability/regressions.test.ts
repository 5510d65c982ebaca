// The bugs the reliability suite found, one minimal reproduction each. They fail until src/ is
// fixed; each says in its name what must hold. (The properties and the fault matrix find the same
// bugs among thousands of inputs; these make each one plain.)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BadTicketError, InvalidNameError, LeaseLostError, parseTicket, TempFileError, TempFileManager, type TempFileManagerOptions } from '../../src/index.js';
import { FileSystemError, InvalidOptionError } from '../../src/errors.js';
import { main } from '../../src/cli/cli.js';
import { FaultPlanFs, lastingFds } from '../helpers/fault-plan.js';
import { layOver, type TestManagerOptions } from '../helpers/roots.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const dirs: string[] = [];
const managers: TempFileManager[] = [];

afterAll(async () => {
  for (const mgr of managers) await mgr.close().catch(() => {});
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function scratch(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-regress-'));
  dirs.push(dir);
  return dir;
}

/** A manager on `root`; with `fs`, that layer is laid over the root's parent until the test ends. */
function manager(root: string, { fs: layer, ...options }: TestManagerOptions = {}): TempFileManager {
  if (layer) layOver(layer, [path.dirname(root)]);
  const mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false, ...options });
  managers.push(mgr);
  return mgr;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('handoff and claim', () => {
  it('claim() with a ticket whose suffix is wrong leaves the genuine entry claimable (takeData removes the entry)', async () => {
    const root = path.join(scratch(), 'root');
    const mgr = manager(root);
    const ticket = await (await mgr.write('precious', { suffix: '.bin' })).handoff({ ttlMs: 60_000 });
    expect(await rejection(mgr.claim({ ...ticket, suffix: '.txt' }))).toBeInstanceOf(TempFileError);
    const claimed = await mgr.claim(ticket); // HandoffNotFoundError today: the entry was deleted
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('precious');
    await claimed.consume();
  });

  it('handoff() reports a failure to check an existing handoff/ as a typed error (openHandoffDir)', async () => {
    const root = path.join(scratch(), 'root');
    const earlier = manager(root);
    await (await earlier.write('earlier')).handoff({ ttlMs: 60_000 }); // handoff/ exists now
    const plan = new FaultPlanFs();
    const mgr = manager(root, { fs: plan.fs });
    const file = await mgr.write('payload');
    // The check of the opened directory's owner and mode, through its descriptor.
    plan.record({ where: { method: 'lstatSync', path: (p) => p.endsWith('/.'), code: 'EIO' } });
    const error = await rejection(file.handoff({ ttlMs: 60_000 }));
    plan.stop();
    expect(plan.injected).toBeDefined();
    expect(error).toBeInstanceOf(FileSystemError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EIO' });
    expect(file.disposed).toBe(false);
  });

  it('sweep() never removes an entry under a live lease, even when the lstat of its held file fails (EMFILE)', async () => {
    const root = path.join(scratch(), 'root');
    const worker = manager(root);
    const ticket = await (await worker.write('in work')).handoff({ ttlMs: 100 });
    const claimed = await worker.claim(ticket);
    await sleep(150); // past its expiry, still claimed: a long job
    const plan = new FaultPlanFs();
    const sweeper = manager(root, { fs: plan.fs });
    plan.record({ where: { method: 'promises.lstat', path: (p) => path.basename(p).startsWith('held_'), code: 'EMFILE' } });
    await sweeper.sweep();
    plan.stop();
    expect(plan.injected).toBeDefined();
    expect(fs.existsSync(claimed.path), 'the claimed file after the sweep').toBe(true);
    await claimed.consume();
  });

  it('consume() that fails with a spurious ENOENT without a takeover is an I/O error that a retry completes', async () => {
    const root = path.join(scratch(), 'root');
    const producer = manager(root);
    const ticket = await (await producer.write('work')).handoff({ ttlMs: 60_000 });
    const plan = new FaultPlanFs();
    const worker = manager(root, { fs: plan.fs });
    const claimed = await worker.claim(ticket);
    // A small held file on a local disk is unlinked inline, any other in the thread pool.
    plan.record({ where: { method: ['unlinkSync', 'promises.unlink'], path: (p) => p === claimed.path, code: 'ENOENT' } });
    const error = await rejection(claimed.consume());
    plan.stop();
    // Nobody took the entry over (its file is still ours): not a lost lease, a failed step.
    expect(error).not.toBeInstanceOf(LeaseLostError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'ENOENT' });
    expect(claimed.disposed).toBe(false);
    await claimed.consume();
    await expect(manager(root).claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
  });

  it('a claim that fails after taking the entry (its lstat fails) gives it back at once: the next claim takes it', async () => {
    const root = path.join(scratch(), 'root');
    const ticket = await (await manager(root).write('work')).handoff({ ttlMs: 60_000 });
    const plan = new FaultPlanFs();
    const worker = manager(root, { fs: plan.fs });
    plan.record({ where: { method: 'lstatSync', path: (p) => path.basename(p).startsWith('held_'), code: 'EIO' } });
    await expect(worker.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EIO' });
    plan.stop();
    expect(plan.injected).toBeDefined();
    const claimed = await worker.claim(ticket);
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('work');
    await claimed.consume();
  });

  it('a file written with hash "id-rsassa-pkcs1-v1_5-with-sha3-256" is refused, or hands off to a claimable ticket', async () => {
    const mgr = manager(path.join(scratch(), 'root'));
    let file;
    try {
      file = await mgr.write('x', { hash: 'id-rsassa-pkcs1-v1_5-with-sha3-256' });
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidOptionError);
      return;
    }
    const ticket = await file.handoff({ ttlMs: 60_000 });
    await (await mgr.claim(ticket)).consume(); // BadTicketError today: the digest's name has '_'
  });

  it('handoff({ meta: new Date() }) is refused, or hands off to a claimable ticket', async () => {
    const mgr = manager(path.join(scratch(), 'root'));
    const file = await mgr.write('x');
    let ticket;
    try {
      ticket = await file.handoff({ ttlMs: 60_000, meta: new Date(0) as never });
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidOptionError);
      return;
    }
    await (await mgr.claim(ticket)).consume(); // BadTicketError today: meta became a string
  });

  it('parseTicket() refuses a BigInt version with BadTicketError, not a TypeError (JSON.stringify in the message)', () => {
    expect(thrown(() => parseTicket({ v: 1n, id: 'a'.repeat(32), suffix: '', size: 0, createdAt: 0, expiresAt: 1 }))).toBeInstanceOf(BadTicketError);
  });

  it('parseTicket() refuses a meta whose toJSON() returns undefined with BadTicketError, not a TypeError', async () => {
    const mgr = manager(path.join(scratch(), 'root'));
    const ticket = await (await mgr.write('x')).handoff({ ttlMs: 60_000 });
    expect(thrown(() => parseTicket({ ...ticket, meta: { toJSON: () => undefined } }))).toBeInstanceOf(BadTicketError);
    expect(await rejection(mgr.claim({ ...ticket, meta: { toJSON: () => undefined } } as never))).toBeInstanceOf(BadTicketError);
  });
});

describe('faults where a file or a session is made', () => {
  it('mgr.file() whose close fails leaves no descriptor and removes the file it made', async () => {
    const root = path.join(scratch(), 'root');
    const plan = new FaultPlanFs();
    const mgr = manager(root, { fs: plan.fs });
    mgr.file().removeSync(); // the session is open: only the file's own calls remain
    const before = await lastingFds();
    // Its only close: the new file's, by its descriptor (the plan shows it as fd:<n>).
    plan.record({ where: { method: 'closeSync', path: () => true, code: 'EIO' } });
    const error = thrown(() => mgr.file('.bin'));
    plan.stop();
    expect(plan.injected).toBeDefined();
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EIO' });
    expect(await lastingFds()).toBe(before);
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
  });

  it('write() whose fstat of its new file fails removes that file', async () => {
    const root = path.join(scratch(), 'root');
    const plan = new FaultPlanFs();
    const mgr = manager(root, { fs: plan.fs });
    mgr.file().removeSync();
    // The new file's fstat, by a descriptor of the callback open (the plan shows it by the file's
    // path), not the fstat of the session's heartbeat, which may beat meanwhile.
    plan.record({ where: { method: 'fstatSync', path: (p) => p.endsWith('.bin'), code: 'EIO' } });
    const error = await rejection(mgr.write('data', { suffix: '.bin' }));
    plan.stop();
    expect(plan.injected).toBeDefined();
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EIO' });
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
  });

  it('handoff() whose check of the staged file fails puts the file back at its path: nothing is lost', async () => {
    const root = path.join(scratch(), 'root');
    const plan = new FaultPlanFs();
    const mgr = manager(root, { fs: plan.fs });
    const file = await mgr.write('precious', { suffix: '.bin' });
    plan.record({ where: { method: 'lstatSync', path: (p) => /\.handoff_[0-9a-f]+\/data\.bin$/.test(p), code: 'EIO' } });
    const error = await rejection(file.handoff({ ttlMs: 60_000 }));
    plan.stop();
    expect(plan.injected).toBeDefined();
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EIO' });
    expect(fs.readFileSync(file.path, 'utf8')).toBe('precious');
    const ticket = await file.handoff({ ttlMs: 60_000 });
    const claimed = await manager(root).claim(ticket);
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('precious');
    await claimed.consume();
  });

  it('a spurious ENOENT from the swap check is an I/O error for that call, not a lasting RootChangedError', async () => {
    const root = path.join(scratch(), 'root');
    const plan = new FaultPlanFs();
    const mgr = manager(root, { fs: plan.fs });
    mgr.file().removeSync();
    await new Promise((resolve) => setImmediate(resolve)); // the next run of JavaScript checks again
    plan.record({ where: { method: 'lstatSync', path: (p) => p === mgr.sessionPath, code: 'ENOENT' } });
    const error = thrown(() => mgr.file());
    plan.stop();
    expect(plan.injected).toBeDefined();
    expect(error).toBeInstanceOf(FileSystemError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'ENOENT' });
    mgr.file().removeSync();
  });

  it('a session directory really removed is still a lasting RootChangedError (two looks agree)', async () => {
    const root = path.join(scratch(), 'root');
    const mgr = manager(root);
    mgr.file().removeSync();
    fs.rmSync(mgr.sessionPath, { recursive: true });
    await new Promise((resolve) => setImmediate(resolve));
    expect(thrown(() => mgr.file())).toMatchObject({ code: 'ERR_TEMPFILE_ROOT_CHANGED', change: 'missing' });
    expect(thrown(() => mgr.file())).toMatchObject({ code: 'ERR_TEMPFILE_ROOT_CHANGED' });
  });

  it.each(['openSync', 'lstatSync'] as const)(
    'a first use whose open of the new session directory fails (%s) leaves no session nor lock, and the next use opens it',
    async (method) => {
      const root = path.join(scratch(), 'root');
      const plan = new FaultPlanFs();
      const mgr = manager(root, { fs: plan.fs });
      const session = mgr.sessionPath;
      const at = method === 'openSync' ? (p: string) => p === session : (p: string) => p === `${session}/.`;
      plan.record({ normalize: (p) => p, where: { method, path: at, code: 'EIO' } });
      const error = await rejection(mgr.write('data'));
      plan.stop();
      expect(plan.injected).toBeDefined();
      expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EIO' });
      // The thread's live signal stays, held until close().
      expect(fs.readdirSync(root).filter((n) => n !== '.tempfile-manager' && !n.startsWith('live_'))).toEqual([]);
      const file = await mgr.write('again');
      expect(fs.readFileSync(file.path, 'utf8')).toBe('again');
    },
  );

  it('a first use whose capability probe fails leaves the manager usable: the next use opens the session again', async () => {
    const root = path.join(scratch(), 'root');
    const plan = new FaultPlanFs();
    const mgr = manager(root, { fs: plan.fs });
    plan.record({ where: { method: 'mkdirSync', path: (p) => path.basename(p).startsWith('.probe'), code: 'EIO' } });
    const error = await rejection(mgr.write('data'));
    plan.stop();
    expect(plan.injected).toBeDefined();
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO' });
    await new Promise((resolve) => setImmediate(resolve)); // a later run of JavaScript: the swap check looks again
    const file = await mgr.write('again');
    expect(fs.readFileSync(file.path, 'utf8')).toBe('again');
  });
});

describe('options', () => {
  it.each([42, {}, 'fs'])('new TempFileManager({ fs: %o }) is an InvalidOptionError naming `fs`', (bad) => {
    const options = { root: path.join(scratch(), 'root'), fs: bad, sweepOnStart: false, exitHook: false };
    const error = thrown(() => new TempFileManager(options as TempFileManagerOptions));
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ option: 'fs' });
  });

  it('staleMs of 2^32 ms is refused, or does not make the lock refresh every millisecond', async () => {
    const warnings: string[] = [];
    const listeners = process.listeners('warning');
    process.removeAllListeners('warning');
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      let mgr: TempFileManager;
      try {
        mgr = manager(path.join(scratch(), 'root'), { staleMs: 2 ** 32 });
      } catch (err) {
        expect(err).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'staleMs' });
        return;
      }
      const file = mgr.file();
      await sleep(30);
      file.removeSync();
      await mgr.close();
      expect(warnings).toEqual([]); // TimeoutOverflowWarning, every 1 ms, today
    } finally {
      process.off('warning', onWarning);
      for (const l of listeners) process.on('warning', l);
    }
  });

  const hostile = () => Object.create(null) as object; // String(it) throws
  it.each(['staleMs', 'graceMs', 'maxLiveBytes', 'minFreeBytes'])('a null-prototype object as `%s` is an InvalidOptionError, not a TypeError', (key) => {
    const error = thrown(() => new TempFileManager({ root: path.join(scratch(), 'root'), sweepOnStart: false, exitHook: false, [key]: hostile() }));
    expect(error).toBeInstanceOf(InvalidOptionError);
  });

  it.each(['maxBytes', 'hash'])('write() with a null-prototype object as `%s` is an InvalidOptionError, not a TypeError', async (key) => {
    const mgr = manager(path.join(scratch(), 'root'));
    expect(await rejection(mgr.write('x', { [key]: hostile() }))).toBeInstanceOf(InvalidOptionError);
  });

  it('handoff() with a null-prototype object as `ttlMs` is an InvalidOptionError, not a TypeError', async () => {
    const file = manager(path.join(scratch(), 'root')).file();
    expect(await rejection(file.handoff({ ttlMs: hostile() as never }))).toBeInstanceOf(InvalidOptionError);
  });

  it('write() refuses an unsafe suffix before any disk access (today: after a statfs)', async () => {
    const plan = new FaultPlanFs();
    const mgr = manager(path.join(scratch(), 'root'), { fs: plan.fs });
    mgr.file().removeSync();
    plan.record();
    const error = await rejection(mgr.write('x', { suffix: '../escape' }));
    const calls = plan.stop();
    expect(error).toBeInstanceOf(InvalidNameError);
    expect(calls.map((c) => c.key)).toEqual([]);
  });

  it('write() accepts "RSA-SHA256", which crypto.getHashes() lists (the check lower-cases only one side)', async () => {
    const mgr = manager(path.join(scratch(), 'root'));
    const file = await mgr.write('x', { hash: 'RSA-SHA256' });
    expect(file.digest).toMatch(/^rsa-sha256:[0-9a-f]{64}$/);
  });
});

describe('the CLI', () => {
  function sink() {
    const chunks: string[] = [];
    return { stream: { write: (s: string) => (chunks.push(String(s)), true) } as unknown as NodeJS.WriteStream, text: () => chunks.join('') };
  }

  it.each([
    ['ls', 'below a file'],
    ['sweep', 'below a file'],
    ['ls', 'with a NUL'],
  ])('`%s --root <a path %s>` ends with a documented exit code and a message; main() never throws', async (command, kind) => {
    const parent = scratch();
    fs.writeFileSync(path.join(parent, 'a-file'), '');
    const root = kind === 'below a file' ? path.join(parent, 'a-file', 'root') : path.join(parent, 'a\0b');
    const out = sink();
    const err = sink();
    const code = await main([command, '--root', root], out.stream as never, err.stream as never); // rejects today (ENOTDIR, ERR_INVALID_ARG_VALUE)
    expect([0, 1, 2, 3, 4]).toContain(code);
    if (code !== 0) expect(err.text()).toMatch(/^tempfile-manager: /);
  });
});
