// What a newcomer reads when an option is wrong: every message names the option, shows the value
// it got (cut short) and says what is accepted. One bad value for every option of the public
// option types, and the cases users met: `maxBytes: -1`, `handoff()` with nothing, `accept:
// ['png']`, `hash: 'sha-256'`, a root under /proc, a root whose parent this user may not write
// in, a root too long for the names below it, the CLI's `--dryrun` and its sweep summary. And
// messages that name the right culprit: a full keep() destination is not the root's volume, and
// a keep() cut short by close() was not replaced.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';

import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { InvalidNameError, NoSpaceError, TempFileError, TempFileManager, type TempFileManagerOptions } from '../../src/index.js';
import { InvalidOptionError, ManagerClosedError } from '../../src/errors.js';
import { MAX_NAME_BYTES, MAX_SUFFIX_BYTES } from '../../src/base/layout.js';
import { RANDOM_NAME_LENGTH } from '../../src/base/random-name.js';

/** The longest root this system takes, as the refusal of a longer one states it (docs/options.md: PATH_MAX less the names below it). */
function maxRootBytes(): number {
  try {
    new TempFileManager({ root: `/tmp/${'r'.repeat(5000)}` });
  } catch (err) {
    const stated = /must be at most (\d+) bytes long here/.exec((err as Error).message)?.[1];
    if (stated !== undefined) return Number(stated);
  }
  throw new Error('a root of 5000 bytes was not refused for its length');
}
import { resolveUploadOptions } from '../../src/uploads/upload-options.js';
import { toDestinationError } from '../../src/keep/destination-error.js';
import { describe as describeValue } from '../../src/base/names.js';
import { itNeeds, MOUNTING, needs, nodeFor } from '../helpers/privileges.js';
import { freshRoot, layOver, manager, scratchDir } from '../helpers/roots.js';
import type { FsLayer } from '../helpers/fs-layer.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

const execFileAsync = promisify(execFile);
const repo = path.join(import.meta.dirname, '../..');
const cli = path.join(repo, 'dist/cli.js');

/** What a message must hold: the option's name, the bad value as shown, and what is accepted. */
interface Expect {
  readonly option: string;
  readonly shows: string;
  readonly accepted: string;
  readonly type?: typeof TempFileError;
}

async function caught(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('it did not throw');
}

function checkMessage(error: unknown, e: Expect): void {
  expect(error).toBeInstanceOf(e.type ?? InvalidOptionError);
  const message = (error as Error).message;
  expect(message).toContain(e.option);
  expect(message).toContain(e.shows);
  expect(message).toContain(e.accepted);
  if (error instanceof InvalidOptionError) expect(error.option).toBe(e.option);
  expect(message).not.toMatch(/\bgot an? (number|string|undefined|boolean)\b/);
}

const managerCases: [string, TempFileManagerOptions | unknown, Expect][] = [
  ['root', { root: 42 }, { option: 'root', shows: 'got 42', accepted: 'path' }],
  ['prefix', { prefix: 'a/b' }, { option: 'prefix', shows: '"a/b"', accepted: 'letters, digits', type: InvalidNameError }],
  ['prefix, a Windows device name', { prefix: 'aux.' }, { option: 'prefix', shows: '"aux."', accepted: 'choose another prefix, such as "aux-"', type: InvalidNameError }],
  ['staleMs', { staleMs: 5 }, { option: 'staleMs', shows: 'got 5', accepted: 'from 2000 to 2147483647' }],
  ['graceMs', { graceMs: '60s' }, { option: 'graceMs', shows: 'got "60s"', accepted: 'from 0 to' }],
  ['sweepOnStart', { sweepOnStart: 'yes' }, { option: 'sweepOnStart', shows: 'got "yes"', accepted: 'true or false' }],
  ['sweepIntervalMs', { sweepIntervalMs: 10 }, { option: 'sweepIntervalMs', shows: 'got 10', accepted: '0 (never) or from 1000' }],
  ['exitHook', { exitHook: 1 }, { option: 'exitHook', shows: 'got 1', accepted: 'true or false' }],
  ['maxLiveBytes', { maxLiveBytes: -1 }, { option: 'maxLiveBytes', shows: 'got -1', accepted: 'at least 0' }],
  ['minFreeBytes', { minFreeBytes: Number.NaN }, { option: 'minFreeBytes', shows: 'got NaN', accepted: 'at least 0' }],
  ['hostId', { hostId: 'web 1' }, { option: 'hostId', shows: 'got "web 1"', accepted: 'letters, digits, dots or dashes' }],
  ['fs, not an option', { fs: {} }, { option: 'fs', shows: 'unknown option `fs`', accepted: 'The options are: `root`' }],
  ['an unknown option', { stalems: 5000 }, { option: 'stalems', shows: 'stalems', accepted: 'staleMs' }],
  [
    'root, too long for the names below it',
    { root: `/tmp/${'r'.repeat(4000)}` },
    { option: 'root', shows: '"/tmp/rrrr', accepted: `at most ${maxRootBytes()} bytes` },
  ],
];

describe('new TempFileManager(options)', () => {
  for (const [name, options, e] of managerCases) {
    it(`${name}: ${describeValue(options)}`, async () => {
      checkMessage(await caught(() => new TempFileManager({ root: freshRoot(), sweepOnStart: false, exitHook: false, ...(options as object) })), e);
    });
  }
  it('options that are not an object (a string) is shown', async () => {
    checkMessage(await caught(() => new TempFileManager('root' as never)), { option: 'options', shows: 'got "root"', accepted: 'object' });
  });

  it('a root too long is refused before anything is made, with the limit, its reason and what to do', async () => {
    const parent = scratchDir();
    const root = path.join(parent, 'r'.repeat(4000 - parent.length));
    const error = (await caught(() => new TempFileManager({ root, sweepOnStart: false, exitHook: false }))) as InvalidOptionError;
    expect(error.code).toBe('ERR_TEMPFILE_INVALID_OPTION');
    expect(error.message.length).toBeLessThan(600);
    expect(error.message).toContain(`(${Buffer.byteLength(root)} bytes)`);
    expect(error.message).toMatch(/choose a shorter `root`/);
    expect(fs.readdirSync(parent)).toEqual([]);
  });

  it('a root of exactly the longest length works: the longest names the library builds below it fit', async () => {
    const limit = maxRootBytes();
    let root = scratchDir();
    for (let left = limit - Buffer.byteLength(root); left > 0; left = limit - Buffer.byteLength(root)) {
      const step = Math.min(200, left - 1);
      root = path.join(root, 'd'.repeat(left - 1 - step === 1 ? step - 1 : step));
    }
    expect(Buffer.byteLength(root)).toBe(limit);
    fs.mkdirSync(path.dirname(root), { recursive: true });
    const mgr = manager({ root, hostId: 'h'.repeat(64) });
    // The longest names: a file name of 255 bytes in the session, and a handed-off file held
    // under the longest suffix a handoff takes, by an owner of the longest host id.
    const suffix = `.${'s'.repeat(MAX_SUFFIX_BYTES - 1)}`;
    const longest = await mgr.write('longest name', { prefix: 'p'.repeat(MAX_NAME_BYTES - RANDOM_NAME_LENGTH - MAX_SUFFIX_BYTES), suffix });
    expect(Buffer.byteLength(path.basename(longest.path))).toBe(MAX_NAME_BYTES);
    expect(fs.readFileSync(longest.path, 'utf8')).toBe('longest name'); // the path handed out works
    const ticket = await (await mgr.write('held', { suffix })).handoff({ ttlMs: 60_000 });
    await using claimed = await mgr.claim(ticket);
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('held');
    await claimed.consume();
    await expect(caught(() => manager({ root: `${root}x` }))).resolves.toBeInstanceOf(InvalidOptionError);
  });

  it('a long value is cut short', async () => {
    const error = (await caught(() => new TempFileManager({ hostId: 'h'.repeat(10_000) }))) as Error;
    expect(error.message.length).toBeLessThan(400);
    expect(error.message).toContain('hhhh');
  });

  it('a root under /proc, whose parent exists, is not said to lack its parent', async (ctx) => {
    if (!fs.existsSync('/proc/self')) ctx.skip(); // platform without procfs
    const error = (await caught(() => new TempFileManager({ root: '/proc/tfm-root', sweepOnStart: false, exitHook: false }))) as Error;
    expect(error).toBeInstanceOf(TempFileError);
    expect(error.message).not.toMatch(/does not exist/);
    expect(error.message).toContain('/proc/tfm-root');
    expect(error.message).toContain('/proc');
    expect(error.message).toMatch(/choose another `root`/);
  });

  it('EACCES on the root\'s parent names the parent, not "the root directory"', (ctx) => {
    needs(ctx, { root: 'running a child as the user nobody' });
    if (!fs.existsSync(path.join(repo, 'dist/index.js'))) throw new Error('run `npm run build` first');
    const parent = path.join(scratchDir(), 'closed');
    fs.mkdirSync(parent, { mode: 0o755 }); // root's, so nobody may not create in it
    fs.chmodSync(path.dirname(parent), 0o755);
    const root = path.join(parent, 'root');
    const script = `import { TempFileManager } from ${JSON.stringify(path.join(repo, 'dist/index.js'))};
try { new TempFileManager({ root: ${JSON.stringify(root)}, sweepOnStart: false, exitHook: false }); console.log('{}'); }
catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const child = spawnSync(nodeFor(65534), ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 30_000, cwd: '/' });
    const result = JSON.parse(child.stdout.trim()) as { code?: string; message?: string };
    expect(result.code, child.stderr).toBe('ERR_TEMPFILE_IO');
    expect(result.message).toContain('EACCES');
    expect(result.message).toContain(`${parent}`);
    expect(result.message).not.toContain('of the root directory');
    expect(result.message).toMatch(/choose another `root`/);
  });
});

describe('write(source, options)', () => {
  const cases: [string, unknown, Expect][] = [
    ['suffix', { suffix: 'a/b' }, { option: 'suffix', shows: '"a/b"', accepted: 'letters, digits', type: InvalidNameError }],
    ['prefix', { prefix: 7 }, { option: 'prefix', shows: 'got 7', accepted: 'string', type: InvalidNameError }],
    ['maxBytes', { maxBytes: -1 }, { option: 'maxBytes', shows: 'got -1', accepted: 'at least 0' }],
    ['signal', { signal: 'abort' }, { option: 'signal', shows: 'got "abort"', accepted: 'AbortSignal' }],
    ['onProgress', { onProgress: 1 }, { option: 'onProgress', shows: 'got 1', accepted: 'function' }],
    ['hash', { hash: 'sha-257' }, { option: 'hash', shows: '"sha-257"', accepted: "'sha256'" }],
    ['accept, an item', { accept: ['png'] }, { option: 'accept', shows: '"png"', accepted: "'image/png'" }],
    ['accept, not an array', { accept: 'image/png' }, { option: 'accept', shows: 'got "image/png"', accepted: 'array' }],
    ['an unknown option', { maxbytes: 1 }, { option: 'maxbytes', shows: 'maxbytes', accepted: 'maxBytes' }],
    ['options that are not an object', 5, { option: 'options', shows: 'got 5', accepted: 'object' }],
  ];
  for (const [name, options, e] of cases) {
    it(`${name}: ${describeValue(options)}`, async () => {
      checkMessage(await caught(() => manager().write('x', options as never)), e);
    });
  }

  it("hash: 'sha-256' and 'SHA-256', which node:crypto's createHash() takes, are taken", async () => {
    for (const hash of ['sha-256', 'SHA-256', 'sha256']) {
      await using file = await manager().write('abc', { hash });
      expect(file.digest).toBe('sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    }
  });
});

describe('handoff(options), claim(ticket, options), keep(destination, options)', () => {
  const handoffCases: [string, unknown, Expect][] = [
    ['no options at all', undefined, { option: 'ttlMs', shows: 'got undefined', accepted: 'from 1 to' }],
    ['ttlMs', { ttlMs: -5 }, { option: 'ttlMs', shows: 'got -5', accepted: 'from 1 to' }],
    ['meta', { ttlMs: 1000, meta: 'job-1' }, { option: 'meta', shows: 'got "job-1"', accepted: 'plain JSON object' }],
    ['an unknown option', { ttl: 1000 }, { option: 'ttl', shows: 'ttl', accepted: 'ttlMs' }],
  ];
  for (const [name, options, e] of handoffCases) {
    it(`handoff(): ${name}: ${describeValue(options)}`, async () => {
      const file = manager().file('.bin');
      checkMessage(await caught(() => (file.handoff as (o?: unknown) => Promise<unknown>)(options)), e);
    });
  }

  const claimCases: [string, unknown, Expect][] = [
    ['verifyDigest', { verifyDigest: 'yes' }, { option: 'verifyDigest', shows: 'got "yes"', accepted: 'true or false' }],
    ['an unknown option', { verify: true }, { option: 'verify', shows: 'verify', accepted: 'verifyDigest' }],
  ];
  for (const [name, options, e] of claimCases) {
    it(`claim(): ${name}: ${describeValue(options)}`, async () => {
      const mgr = manager();
      const ticket = await mgr.file('.bin').handoff({ ttlMs: 60_000 });
      checkMessage(await caught(() => mgr.claim(ticket, options as never)), e);
      // Nothing was taken: the ticket is still claimable.
      await using claimed = await mgr.claim(ticket);
      expect(fs.existsSync(claimed.path)).toBe(true);
    });
  }

  const keepCases: [string, string | number, unknown, Expect][] = [
    ['overwrite', 'kept.bin', { overwrite: 'no' }, { option: 'overwrite', shows: 'got "no"', accepted: 'true or false' }],
    ['an unknown option', 'kept.bin', { overWrite: true }, { option: 'overWrite', shows: 'overWrite', accepted: 'overwrite' }],
    ['destination', 42, {}, { option: 'destination', shows: 'got 42', accepted: 'path' }],
  ];
  for (const [name, destination, options, e] of keepCases) {
    it(`keep(): ${name}: ${describeValue(options)}`, async () => {
      const file = manager().file('.bin');
      const to = typeof destination === 'string' ? path.join(scratchDir(), destination) : destination;
      checkMessage(await caught(() => file.keep(to as never, options as never)), e);
      expect(fs.existsSync(file.path)).toBe(true);
    });
  }
});

describe('messages that name the right culprit', () => {
  itNeeds(MOUNTING)('keep() to a full destination says the destination is full, not the root', async () => {
    const mgr = manager();
    const dest = mountTmpfs(1);
    fill(dest);
    const file = await mgr.write(Buffer.alloc(256 * 1024, 7));
    const target = path.join(dest, 'kept.bin');
    const error = (await caught(() => file.keep(target))) as NoSpaceError;
    expect(error).toBeInstanceOf(NoSpaceError);
    expect(error.path).toBe(target);
    expect(error.message).toContain(target);
    expect(error.message).toMatch(/destination/);
    expect(error.message).not.toMatch(/`root`/);
    expect(fs.existsSync(file.path)).toBe(true); // the file is still the handle's
  });

  itNeeds(MOUNTING)('close() while a keep() across file systems copies: the keep() rejects with ManagerClosedError', async () => {
    const copying = pausedCopies();
    const mgr = manager({ fs: copying.fs });
    const file = await mgr.write(Buffer.alloc(1024 * 1024, 1));
    const target = path.join(mountTmpfs(8), 'kept.bin');
    layOver(copying.fs, [path.dirname(target)]); // the staging file is made at the destination
    const keeping = caught(() => file.keep(target));
    await copying.inFlight;
    await mgr.close();
    copying.resume();
    const error = (await keeping) as TempFileError;
    expect(error).toBeInstanceOf(ManagerClosedError);
    expect(error.message).toContain('keep()');
    expect(error.message).toContain(target);
    expect(fs.readdirSync(path.dirname(target))).toEqual([]); // neither the file nor its staging copy
  });

  it('close() while a keep() on the same file system is about to link: ManagerClosedError too', async () => {
    const linking = pausedLinks();
    const mgr = manager({ fs: linking.fs });
    const file = await mgr.write('x');
    const target = path.join(scratchDir(), 'kept.bin');
    const keeping = caught(() => file.keep(target));
    await linking.inFlight;
    await mgr.close();
    linking.resume();
    expect(await keeping).toBeInstanceOf(ManagerClosedError);
    expect(fs.existsSync(target)).toBe(false);
  });
});

/** node:fs, except that the first `link` waits until `resume()`: `inFlight` resolves when it has started waiting. */
function pausedLinks(): { fs: FsLayer; inFlight: Promise<void>; resume: () => void } {
  let started!: () => void;
  let resume!: () => void;
  const inFlight = new Promise<void>((resolve) => (started = resolve));
  const resumed = new Promise<void>((resolve) => (resume = resolve));
  const link = (async (...args: Parameters<typeof fs.promises.link>) => {
    started();
    await resumed;
    return fs.promises.link(...args);
  }) as typeof fs.promises.link;
  return { fs: { ...fs, promises: { ...fs.promises, link } }, inFlight, resume };
}

/** Fills a file system with one file until it is full. */
function fill(dir: string): void {
  const fd = fs.openSync(path.join(dir, 'filler'), 'w');
  try {
    for (;;) fs.writeSync(fd, Buffer.alloc(64 * 1024));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * node:fs, except that the first write to a cross-device keep()'s staging file waits until
 * `resume()`: `inFlight` resolves when it has started waiting.
 */
function pausedCopies(): { fs: FsLayer; inFlight: Promise<void>; resume: () => void } {
  let started!: () => void;
  let resume!: () => void;
  const inFlight = new Promise<void>((resolve) => (started = resolve));
  const resumed = new Promise<void>((resolve) => (resume = resolve));
  let paused = false;
  const open = (async (...args: Parameters<typeof fs.promises.open>) => {
    const handle = await fs.promises.open(...args);
    if (!String(args[0]).includes('.tfm-keep-') || paused) return handle;
    paused = true;
    const write = handle.write.bind(handle) as (...a: unknown[]) => Promise<unknown>;
    return Object.assign(handle, {
      write: async (...a: unknown[]) => {
        started();
        await resumed;
        return write(...a);
      },
    });
  }) as typeof fs.promises.open;
  return { fs: { ...fs, promises: { ...fs.promises, open } }, inFlight, resume };
}

describe('the upload options (upload(), saveUploads())', () => {
  const cases: [string, unknown, Expect][] = [
    ['field', { field: '' }, { option: 'field', shows: 'got ""', accepted: 'non-empty string' }],
    ['array', { array: 5 }, { option: 'array', shows: 'got 5', accepted: 'non-empty string' }],
    ['maxCount', { array: 'photos', maxCount: -1 }, { option: 'maxCount', shows: 'got -1', accepted: 'at least 0' }],
    ['fields', { fields: 'avatar' }, { option: 'fields', shows: 'got "avatar"', accepted: 'non-empty array' }],
    ['fields, a maxCount', { fields: [{ name: 'a' }, { name: 'b', maxCount: -1 }] }, { option: 'fields', shows: '`fields[1].maxCount`', accepted: 'whole number of at least 0' }],
    ['maxBytes', { maxBytes: -1 }, { option: 'maxBytes', shows: 'got -1', accepted: 'at least 0' }],
    ['maxFiles', { maxFiles: 1.5 }, { option: 'maxFiles', shows: 'got 1.5', accepted: 'whole number' }],
    ['maxFields', { maxFields: -1 }, { option: 'maxFields', shows: 'got -1', accepted: 'at least 0' }],
    ['maxParts', { maxParts: '10' }, { option: 'maxParts', shows: 'got "10"', accepted: 'whole number' }],
    ['maxFieldNameBytes', { maxFieldNameBytes: Number.NaN }, { option: 'maxFieldNameBytes', shows: 'got NaN', accepted: 'at least 0' }],
    ['maxFieldBytes', { maxFieldBytes: -1 }, { option: 'maxFieldBytes', shows: 'got -1', accepted: 'at least 0' }],
    ['accept', { accept: ['png'] }, { option: 'accept', shows: '"png"', accepted: "'image/png'" }],
    ['hash', { hash: 'sha-257' }, { option: 'hash', shows: '"sha-257"', accepted: "'sha256'" }],
    ['onProgress', { onProgress: 'log' }, { option: 'onProgress', shows: 'got "log"', accepted: 'function' }],
    ['drain', { drain: { timeoutMs: -1 } }, { option: 'drain', shows: '-1', accepted: 'timeoutMs' }],
    ['an unknown option', { feild: 'video' }, { option: 'feild', shows: 'feild', accepted: 'field' }],
  ];
  for (const [name, options, e] of cases) {
    it(`${name}: ${describeValue(options)}`, async () => {
      checkMessage(await caught(() => resolveUploadOptions(options, 'upload()')), e);
    });
  }
});

describe('the CLI', () => {
  async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await execFileAsync(cli, args, { encoding: 'utf8', timeout: 30_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      return err as { code: number; stdout: string; stderr: string };
    }
  }

  it('--dryrun: "did you mean --dry-run?"', async () => {
    const { code, stderr } = await run('sweep', '--dryrun', '--root', freshRoot());
    expect(code).toBe(2);
    expect(stderr).toContain("'--dryrun'");
    expect(stderr).toContain('did you mean `--dry-run`?');
  });

  it('sweep does not count a handoff entry\'s files as those of orphaned sessions', async () => {
    const mgr = manager();
    const file = mgr.file('.bin');
    fs.writeFileSync(file.path, 'x');
    await file.handoff({ ttlMs: 1 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const { code, stdout } = await run('sweep', '--root', mgr.root);
    expect(code).toBe(0);
    expect(stdout).not.toMatch(/0 orphaned sessions: 1 file/);
    expect(stdout).toContain('removed 0 orphaned sessions and 1 expired or consumed handoff entry: 1 file, 1 B');
  });
});

it('describe() shows the value itself, cut short', () => {
  expect(describeValue(-1)).toBe('-1');
  expect(describeValue(undefined)).toBe('undefined');
  expect(describeValue('png')).toBe('"png"');
  expect(describeValue('x'.repeat(500)).length).toBeLessThan(80);
});

describe('messages in the words of the platform', () => {
  const held = (code: string) => Object.assign(new Error(`${code}: operation not permitted`), { code, syscall: 'rename' });
  const rows: [string, NodeJS.Platform, string, RegExp, RegExp][] = [
    ['keep() onto a file held open, win32 EPERM', 'win32', 'EPERM', /close it .*Explorer's preview pane.*antivirus.*docs\/windows-macos\.md/, /owner and mode|chmod/],
    ['keep() onto a file held open, win32 EBUSY', 'win32', 'EBUSY', /close it .*antivirus/, /owner and mode|See `cause`/],
    ['keep() onto a file not writable, linux EPERM', 'linux', 'EPERM', /check the owner and mode of/, /antivirus|Explorer/],
    ['keep() onto a file not writable, darwin EACCES', 'darwin', 'EACCES', /check the owner and mode of/, /antivirus|Explorer/],
  ];
  for (const [name, platform, code, says, neverSays] of rows) {
    it(name, () => {
      const destination = platform === 'win32' ? 'C:\\Users\\ana\\report.pdf' : '/srv/report.pdf';
      const error = toDestinationError('keep the file at', destination, held(code), platform);
      expect(error.code).toBe('ERR_TEMPFILE_IO');
      expect(error.message).toContain(`Could not keep the file at ${destination}: ${code}.`);
      expect(error.message).toMatch(says);
      expect(error.message).not.toMatch(neverSays);
    });
  }
});

describe('a refusal outside HTTP says what happened, with no status line', () => {
  it('write() over maxBytes: "the data is larger than 10 bytes", the status in statusCode only', async () => {
    const mgr = manager();
    const error = await caught(() => mgr.write('x'.repeat(20), { maxBytes: 10 }));
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_SIZE_LIMIT', statusCode: 413, message: 'the data is larger than 10 bytes' });
    expect((error as TempFileError).advice).toMatch(/maxBytes/);
    await mgr.close();
  });
});
