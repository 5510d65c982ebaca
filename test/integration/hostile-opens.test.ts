import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { TempFile, TempFileManager } from '../../src/index.js';
import { manager, scratchDir } from '../helpers/roots.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { itNeeds, missing, MOUNTING } from '../helpers/privileges.js';

// Each attack is made from the attacker's side with real inodes: a hard link to a file outside
// the root, or a FIFO, where the library expects its own regular file. Every call must settle
// within DEADLINE_MS (an open that blocks on a FIFO pins a thread-pool thread for good) and the
// victim must be left byte for byte.

const DEADLINE_MS = 3000;
const VICTIM = 'precious bytes outside the root\n';

const fifos: string[] = [];

afterEach(() => {
  // A reader the old code left blocked in open() on a FIFO holds a thread-pool thread: a writer
  // opening the FIFO lets it through, so that a failing test does not freeze the next ones.
  for (const fifo of fifos.splice(0)) {
    try {
      fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    } catch {
      // no reader waits on it, or it is gone
    }
  }
});

function mkfifo(at: string): string {
  execFileSync('mkfifo', ['-m', '600', at]);
  fifos.push(at);
  return at;
}

/** The settled outcome of `work`, or a failure naming what hung. */
async function settles<T>(what: string, work: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  try {
    return await Promise.race([work.then((value) => ({ value }), (error: unknown) => ({ error })), hung]);
  } finally {
    clearTimeout(timer);
  }
}

function victimFile(): string {
  const victim = path.join(scratchDir(), 'victim.txt');
  fs.writeFileSync(victim, VICTIM);
  return victim;
}

function expectUntouched(victim: string): void {
  expect(fs.readFileSync(victim, 'utf8')).toBe(VICTIM);
}

/** `unlink(f.path); link(victim, f.path)`: the temp file's name now reaches the victim's inode. */
function hardLinkInPlace(file: TempFile, victim: string): void {
  fs.unlinkSync(file.path);
  fs.linkSync(victim, file.path);
}

function fifoInPlace(file: TempFile): void {
  fs.unlinkSync(file.path);
  mkfifo(file.path);
}

const replaced = (found: RegExp) => ({ code: 'ERR_TEMPFILE_REPLACED', message: expect.stringMatching(found) });

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('a hard link to a file outside the root, in place of a temp file', () => {
  it.each([
    ['truncating', {}],
    ['appending', { append: true }],
  ])('createWriteStream (%s) writes nothing, and fails typed', async (_, options) => {
    const victim = victimFile();
    const file = manager().file('.txt');
    hardLinkInPlace(file, victim);
    const outcome = await settles('createWriteStream', pipeline(async function* () { yield 'evil'; }, file.createWriteStream(options)));
    expect(outcome.error).toMatchObject(replaced(/hard link \(2 links\)/));
    expect((outcome.error as Error).message).toContain(file.path);
    expectUntouched(victim);
    await file.remove();
    expectUntouched(victim);
  });

  it('createReadStream reads none of the victim', async () => {
    const victim = victimFile();
    const file = manager().file('.txt');
    hardLinkInPlace(file, victim);
    const outcome = await settles('createReadStream', readAll(file.createReadStream()));
    expect(outcome.value).toBeUndefined();
    expect(outcome.error).toMatchObject(replaced(/hard link/));
  });

  it('a file of ours that got a second name is refused too', async () => {
    const file = manager().file('.txt');
    const elsewhere = path.join(scratchDir(), 'second-name.txt');
    fs.linkSync(file.path, elsewhere);
    const outcome = await settles('createWriteStream', pipeline(async function* () { yield 'evil'; }, file.createWriteStream()));
    expect(outcome.error).toMatchObject(replaced(/hard link \(2 links\)/));
    expect(fs.readFileSync(elsewhere, 'utf8')).toBe('');
  });

  it('another regular file (inode changed) is refused: a written file at once, a file() once it was opened', async () => {
    const mgr = manager();
    const written = await mgr.write('ours', { suffix: '.txt' }); // its identity is known from its creation
    const made = mgr.file('.txt'); // created with no fstat: its identity is learnt at its first open
    await pipeline(async function* () { yield 'ours'; }, made.createWriteStream());
    for (const file of [written, made]) {
      fs.renameSync(file.path, path.join(scratchDir(), `moved-away-${path.basename(file.path)}`)); // kept alive: its inode number is not reused
      fs.writeFileSync(file.path, 'planted');
      const outcome = await settles('createWriteStream', pipeline(async function* () { yield 'evil'; }, file.createWriteStream({ append: true })));
      expect(outcome.error).toMatchObject(replaced(/another file \(inode changed\)/));
      expect(fs.readFileSync(file.path, 'utf8')).toBe('planted');
    }
  });

  it('a written file swapped for the link is neither handed off nor kept', async () => {
    const victim = victimFile();
    const mgr = manager();
    const file = await mgr.write('uploaded', { suffix: '.txt' });
    hardLinkInPlace(file, victim);
    const handoff = await settles('handoff', file.handoff({ ttlMs: 60_000 }));
    expect(handoff.error).toMatchObject(replaced(/hard link/));
    expect(fs.existsSync(path.join(mgr.root, 'handoff')) ? fs.readdirSync(path.join(mgr.root, 'handoff')) : []).toEqual([]);
    const destination = path.join(scratchDir(), 'kept.txt');
    const kept = await settles('keep', file.keep(destination));
    expect(kept.error).toMatchObject(replaced(/hard link/));
    expect(fs.existsSync(destination)).toBe(false);
    expect(fs.statSync(victim).nlink).toBe(2); // its own name and the temp name, nothing more
    expect(file.disposed).toBe(false);
    await file.remove();
    expectUntouched(victim);
    expect(fs.statSync(victim).nlink).toBe(1);
  });
});

describe('a FIFO where a regular file is expected', () => {
  it('at a keep() destination on the same file system: DestinationExistsError at once', async () => {
    const file = manager().file('.txt');
    fs.writeFileSync(file.path, 'mine');
    const destination = mkfifo(path.join(scratchDir(), 'a.txt'));
    const outcome = await settles('keep', file.keep(destination));
    expect(outcome.error).toMatchObject({ code: 'ERR_TEMPFILE_DESTINATION_EXISTS', path: destination });
    expect(fs.lstatSync(destination).isFIFO()).toBe(true);
    expect(fs.readFileSync(file.path, 'utf8')).toBe('mine');
  });

  itNeeds(MOUNTING)('at a keep() destination on another file system: DestinationExistsError at once', async () => {
    const file = manager().file('.txt');
    fs.writeFileSync(file.path, 'mine');
    const destination = mkfifo(path.join(mountTmpfs(4), 'a.txt'));
    const outcome = await settles('keep', file.keep(destination));
    expect(outcome.error).toMatchObject({ code: 'ERR_TEMPFILE_DESTINATION_EXISTS', path: destination });
    expect(fs.readdirSync(path.dirname(destination))).toEqual(['a.txt']);
    expect(fs.readFileSync(file.path, 'utf8')).toBe('mine');
  });

  it('at a claimed file\'s keep() destination: DestinationExistsError at once', async () => {
    const mgr = manager();
    const ticket = await (await mgr.write('claimed', { suffix: '.txt' })).handoff({ ttlMs: 60_000 });
    const claimed = await mgr.claim(ticket);
    const destination = mkfifo(path.join(scratchDir(), 'a.txt'));
    const outcome = await settles('claimed.keep', claimed.keep(destination));
    expect(outcome.error).toMatchObject({ code: 'ERR_TEMPFILE_DESTINATION_EXISTS' });
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('claimed');
    await claimed.release();
  });

  it.each(['createReadStream', 'createWriteStream'] as const)('at a temp file\'s path: %s fails typed at once', async (method) => {
    const file = manager().file('.txt');
    fifoInPlace(file);
    const work: Promise<unknown> =
      method === 'createReadStream'
        ? readAll(file.createReadStream())
        : pipeline(async function* () { yield 'evil'; }, file.createWriteStream());
    const outcome = await settles(method, work);
    expect(outcome.error).toMatchObject(replaced(/a FIFO/));
    expect((outcome.error as Error).message).toContain(file.path);
    await file.remove();
  });

  it('at a temp file\'s path: keep() on the same file system keeps nothing', async () => {
    const file = manager().file('.txt');
    fifoInPlace(file);
    const destination = path.join(scratchDir(), 'kept.txt');
    const outcome = await settles('keep', file.keep(destination));
    expect(outcome.error).toMatchObject(replaced(/a FIFO/));
    expect(fs.existsSync(destination)).toBe(false);
    expect(file.disposed).toBe(false);
  });

  itNeeds(MOUNTING)('at a temp file\'s path: keep() across file systems keeps nothing', async () => {
    const file = manager().file('.txt');
    fifoInPlace(file);
    const dir = mountTmpfs(4);
    const outcome = await settles('keep', file.keep(path.join(dir, 'kept.txt')));
    expect(outcome.error).toMatchObject(replaced(/a FIFO/));
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('at a temp file\'s path: handoff() hands nothing off', async () => {
    const mgr: TempFileManager = manager();
    const file = mgr.file('.txt');
    fifoInPlace(file);
    const outcome = await settles('handoff', file.handoff({ ttlMs: 60_000 }));
    expect(outcome.error).toMatchObject(replaced(/a FIFO/));
    const handoffDir = path.join(mgr.root, 'handoff');
    expect(fs.existsSync(handoffDir) ? fs.readdirSync(handoffDir) : []).toEqual([]);
    expect(fs.lstatSync(file.path).isFIFO()).toBe(true);
  });
});

describe('umask 000', () => {
  /** Every inode under `dir` (itself included) whose mode lets group or others in. */
  function looseModes(dir: string): string[] {
    const loose: string[] = [];
    const visit = (at: string) => {
      const stat = fs.lstatSync(at);
      if ((stat.mode & 0o077) !== 0) loose.push(`${at} ${(stat.mode & 0o777).toString(8)}`);
      if (stat.isDirectory()) for (const name of fs.readdirSync(at)) visit(path.join(at, name));
    };
    visit(dir);
    return loose;
  }

  it('every file and directory the library makes is 0600 or 0700, whatever the umask', async () => {
    const previous = process.umask(0);
    try {
      const mgr = manager();
      const file = mgr.file('.txt');
      await pipeline(async function* () { yield 'streamed'; }, file.createWriteStream());
      const dir = mgr.dir();
      await using scope = mgr.scope();
      scope.file();
      scope.dir();
      await scope.write('in a scope');
      const written = await mgr.write('written', { suffix: '.bin' });
      const ticket = await written.handoff({ ttlMs: 60_000 });
      const claimed = await mgr.claim(ticket);
      const kept = await (await mgr.write('kept', { suffix: '.bin' })).handoff({ ttlMs: 60_000 });
      // Sessions, their lock, files, dirs, the scope's, handoff/, an entry and a claim: all there now.
      expect(looseModes(mgr.root)).toEqual([]);
      expect(fs.readdirSync(mgr.root).some((name) => name.endsWith('.lock'))).toBe(true);
      await claimed.release();
      // keep() across file systems goes through a staging name, whose inode becomes the kept file.
      const elsewhere = missing(MOUNTING) === undefined ? mountTmpfs(4) : scratchDir();
      fs.chmodSync(elsewhere, 0o700);
      const keptClaim = await mgr.claim(kept);
      await keptClaim.keep(path.join(elsewhere, 'claimed.bin'));
      await (await mgr.write('kept too')).keep(path.join(elsewhere, 'file.bin'));
      expect(looseModes(elsewhere)).toEqual([]);
      expect(looseModes(mgr.root)).toEqual([]);
      dir.removeSync();
      await file.remove();
    } finally {
      process.umask(previous);
    }
  });
});
