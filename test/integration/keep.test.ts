import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NoSpaceError, TempFileError, type TempFile, type TempFileManager } from '../../src/index.js';
import { DestinationExistsError, FileSystemError, InvalidOptionError } from '../../src/errors.js';
import { keepStagingName } from '../../src/base/layout.js';
import { randomName } from '../../src/base/random-name.js';

const stagingName = (basename: string) => keepStagingName(basename, randomName());
import { manager, scratchDir } from '../helpers/roots.js';
import { eachNeeds, MOUNTING, needs } from '../helpers/privileges.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

/** The documented shape of a cross-device keep()'s staging name (docs/scoped-files.md). */
const STAGING = /^\..*\.tfm-keep-[0-9a-f]{32}\.partial$/;
const MiB = 1024 * 1024;

describe('file.keep()', () => {
  it('moves the file out for good; the handle then owns nothing', async () => {
    const file = manager().file('.pdf');
    fs.writeFileSync(file.path, 'report');
    const destination = path.join(scratchDir(), 'report.pdf');
    expect(await file.keep(destination)).toBe(destination);
    expect(fs.readFileSync(destination, 'utf8')).toBe('report');
    expect(fs.existsSync(file.path)).toBe(false);
    expect(file.disposed).toBe(true);
    await file.remove();
    file.removeSync();
    expect(fs.readFileSync(destination, 'utf8')).toBe('report');
  });

  it('resolves a relative destination against the working directory', async () => {
    const file = manager().file();
    const dir = scratchDir();
    const relative = path.relative(process.cwd(), path.join(dir, 'rel.bin'));
    expect(await file.keep(relative)).toBe(path.join(dir, 'rel.bin'));
  });

  it('refuses to overwrite unless asked, and loses neither file', async () => {
    const file = manager().file();
    fs.writeFileSync(file.path, 'new');
    const destination = path.join(scratchDir(), 'existing.txt');
    fs.writeFileSync(destination, 'old');
    const error = await file.keep(destination).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(DestinationExistsError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_DESTINATION_EXISTS', path: destination });
    expect(fs.readFileSync(destination, 'utf8')).toBe('old');
    expect(fs.readFileSync(file.path, 'utf8')).toBe('new');
    expect(file.disposed).toBe(false);
    await file.keep(destination, { overwrite: true });
    expect(fs.readFileSync(destination, 'utf8')).toBe('new');
    expect(fs.existsSync(file.path)).toBe(false);
  });

  it('refuses a dangling symlink at the destination too', async () => {
    const file = manager().file();
    const destination = path.join(scratchDir(), 'dangling');
    fs.symlinkSync('/nonexistent/target', destination);
    await expect(file.keep(destination)).rejects.toBeInstanceOf(DestinationExistsError);
    expect(fs.lstatSync(destination).isSymbolicLink()).toBe(true);
  });

  it('a keep() interrupted between link and unlink is finished by the retry, not refused', async () => {
    const file = manager().file();
    fs.writeFileSync(file.path, 'linked');
    const destination = path.join(scratchDir(), 'kept.txt');
    fs.linkSync(file.path, destination); // what a crash after link(), before unlink(), leaves
    await file.keep(destination);
    expect(fs.existsSync(file.path)).toBe(false);
    expect(fs.readFileSync(destination, 'utf8')).toBe('linked');
    expect(fs.lstatSync(destination).nlink).toBe(1);
  });

  it('the same, retried with overwrite: the source name does not stay behind', async () => {
    const file = manager().file();
    fs.writeFileSync(file.path, 'linked');
    const destination = path.join(scratchDir(), 'kept.txt');
    fs.linkSync(file.path, destination);
    await file.keep(destination, { overwrite: true }); // rename() of two names of one file does nothing
    expect(fs.existsSync(file.path)).toBe(false);
    expect(fs.readFileSync(destination, 'utf8')).toBe('linked');
  });

  it('refuses a destination that names no file', async () => {
    await expect(manager().file().keep('/')).rejects.toBeInstanceOf(InvalidOptionError);
  });

  it('falls back to copy and delete across devices (the tmpdir to /dev/shm, or to /var/tmp when the tmpdir is a tmpfs)', async () => {
    const mgr = manager();
    const rootDevice = fs.statSync(mgr.root).dev;
    const elsewhere = ['/dev/shm', '/var/tmp'].find((dir) => fs.statSync(dir).dev !== rootDevice)!;
    const shm = fs.mkdtempSync(path.join(elsewhere, 'tfm-keep-'));
    try {
      expect(fs.statSync(shm).dev).not.toBe(fs.statSync(mgr.root).dev);
      const file = mgr.file();
      fs.writeFileSync(file.path, 'across');
      const destination = path.join(shm, 'kept.bin');
      await file.keep(destination);
      expect(fs.readFileSync(destination, 'utf8')).toBe('across');
      expect(fs.existsSync(file.path)).toBe(false);
      const second = mgr.file();
      await expect(second.keep(destination)).rejects.toBeInstanceOf(DestinationExistsError);
      fs.writeFileSync(second.path, 'replaced');
      await second.keep(destination, { overwrite: true });
      expect(fs.readFileSync(destination, 'utf8')).toBe('replaced');
    } finally {
      fs.rmSync(shm, { recursive: true, force: true });
    }
  });

  it('refuses a destination that is not a path string', async () => {
    const file = manager().file();
    for (const bad of ['', 'a\0b', 42, null, ['x'], { toString: () => '/etc/passwd' }]) {
      await expect(file.keep(bad as string)).rejects.toBeInstanceOf(InvalidOptionError);
    }
    expect(fs.existsSync(file.path)).toBe(true);
  });
});

describe('the staging name of a cross-device keep()', () => {
  it('has the documented shape, 128 random bits, and fits in 255 bytes for any basename', () => {
    const seen = new Set<string>();
    for (const base of ['kept.bin', 'a'.repeat(255), 'é'.repeat(127), '😀'.repeat(63) + 'abc', '.hidden']) {
      const name = stagingName(base);
      expect(name).toMatch(STAGING);
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
      expect(name).not.toContain('\uFFFD'); // cut on a character boundary
      seen.add(name);
    }
    expect(stagingName('kept.bin')).toMatch(/^\.kept\.bin\.tfm-keep-[0-9a-f]{32}\.partial$/);
    expect(seen.size).toBe(5);
  });
});

async function fileWith(mgr: TempFileManager, bytes: Buffer | string): Promise<TempFile> {
  const file = mgr.file();
  fs.writeFileSync(file.path, bytes);
  return file;
}

// A real second file system: a tmpfs mounted for the test (root; CI runs as root), so that the
// rename and link from the root really fail with EXDEV.
describe('keep() across file systems (a real tmpfs)', () => {
  eachNeeds(MOUNTING);
  it('copies through a staging name, keeps mode and mtime, removes the source and leaves nothing else', async () => {
    const mgr = manager();
    const dest = mountTmpfs(32);
    expect(fs.statSync(dest).dev).not.toBe(fs.statSync(mgr.root).dev);
    const bytes = randomBytes(3 * MiB + 12345);
    const file = await fileWith(mgr, bytes);
    fs.utimesSync(file.path, new Date('2020-01-02T03:04:05Z'), new Date('2021-02-03T04:05:06Z'));
    const target = path.join(dest, 'kept.bin');
    expect(await file.keep(target)).toBe(target);
    expect(fs.readFileSync(target).equals(bytes)).toBe(true);
    const stat = fs.lstatSync(target);
    expect(stat.mode & 0o777).toBe(0o600);
    expect(stat.nlink).toBe(1);
    expect(stat.mtime.toISOString()).toBe('2021-02-03T04:05:06.000Z');
    expect(fs.existsSync(file.path)).toBe(false);
    expect(file.disposed).toBe(true);
    expect(fs.readdirSync(dest)).toEqual(['kept.bin']);
  });

  it('refuses an existing destination before copying, and replaces it with overwrite', async () => {
    const mgr = manager();
    const dest = mountTmpfs(8);
    const target = path.join(dest, 'kept.bin');
    fs.writeFileSync(target, 'old bytes');
    const file = await fileWith(mgr, 'new bytes');
    const error = await file.keep(target).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(DestinationExistsError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_DESTINATION_EXISTS', path: target });
    expect(fs.readFileSync(target, 'utf8')).toBe('old bytes');
    expect(fs.readFileSync(file.path, 'utf8')).toBe('new bytes');
    expect(file.disposed).toBe(false);
    await file.keep(target, { overwrite: true });
    expect(fs.readFileSync(target, 'utf8')).toBe('new bytes');
    expect(fs.readdirSync(dest)).toEqual(['kept.bin']);
  });

  it('a 255-byte basename: the staging name is cut to fit', async () => {
    const dest = mountTmpfs(8);
    const target = path.join(dest, 'é'.repeat(127) + 'x');
    expect(Buffer.byteLength(path.basename(target))).toBe(255);
    await (await fileWith(manager(), 'long')).keep(target);
    expect(fs.readFileSync(target, 'utf8')).toBe('long');
    expect(fs.readdirSync(dest)).toEqual([path.basename(target)]);
  });

  it('a full file system: NoSpaceError naming the destination, nothing left there, the file still ours', async () => {
    const mgr = manager();
    const dest = mountTmpfs(1);
    const target = path.join(dest, 'big.bin');
    const bytes = randomBytes(3 * MiB);
    const file = await fileWith(mgr, bytes);
    const error = await file.keep(target).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(NoSpaceError);
    expect(error).toMatchObject({ path: target });
    expect(fs.readdirSync(dest)).toEqual([]);
    expect(file.disposed).toBe(false);
    expect(fs.readFileSync(file.path).equals(bytes)).toBe(true);
    const roomy = mountTmpfs(8);
    await file.keep(path.join(roomy, 'big.bin'));
    expect(fs.readFileSync(path.join(roomy, 'big.bin')).equals(bytes)).toBe(true);
  });

  it('a leftover staging name, or a symlink planted at one, never blocks a keep()', async () => {
    const dest = mountTmpfs(8);
    const victim = path.join(scratchDir(), 'victim');
    fs.writeFileSync(victim, 'victim');
    const leftovers = [stagingName('kept.bin'), stagingName('kept.bin')];
    fs.writeFileSync(path.join(dest, leftovers[0]!), 'half a file from a crash');
    fs.symlinkSync(victim, path.join(dest, leftovers[1]!));
    const target = path.join(dest, 'kept.bin');
    await (await fileWith(manager(), 'whole')).keep(target);
    expect(fs.readFileSync(target, 'utf8')).toBe('whole');
    expect(fs.readFileSync(path.join(dest, leftovers[0]!), 'utf8')).toBe('half a file from a crash');
    expect(fs.readFileSync(victim, 'utf8')).toBe('victim');
    expect(fs.readdirSync(dest).sort()).toEqual([...leftovers, 'kept.bin'].sort());
  });

  it('a destination directory reached through a symlink of the caller is followed; the final name never is', async () => {
    const dest = mountTmpfs(8);
    const viaLink = path.join(scratchDir(), 'link-to-volume');
    fs.symlinkSync(dest, viaLink);
    await (await fileWith(manager(), 'through a link')).keep(path.join(viaLink, 'kept.bin'));
    expect(fs.readFileSync(path.join(dest, 'kept.bin'), 'utf8')).toBe('through a link');
  });

  it('a missing destination directory: FileSystemError naming it, the file still ours', async () => {
    const dest = mountTmpfs(8);
    const file = await fileWith(manager(), 'x');
    const error = await file.keep(path.join(dest, 'missing', 'kept.bin')).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(FileSystemError);
    expect(error).toMatchObject({ syscallCode: 'ENOENT', path: path.join(dest, 'missing') });
    expect(file.disposed).toBe(false);
  });

  it('a keep() interrupted after the file took its name is finished by the retry, not refused', async () => {
    const mgr = manager();
    const dest = mountTmpfs(16);
    const bytes = randomBytes(2 * MiB + 7);
    const target = path.join(dest, 'kept.bin');
    // What a crash between placing the file and removing the source leaves: both copies, whole.
    fs.writeFileSync(target, bytes, { mode: 0o600 });
    const file = await fileWith(mgr, bytes);
    await file.keep(target);
    expect(fs.existsSync(file.path)).toBe(false);
    expect(fs.readFileSync(target).equals(bytes)).toBe(true);
    expect(fs.readdirSync(dest)).toEqual(['kept.bin']);
  });

  it('the same size but other bytes, or the same bytes behind a symlink, is still refused', async () => {
    const mgr = manager();
    const dest = mountTmpfs(8);
    const bytes = randomBytes(MiB);
    const other = Buffer.from(bytes);
    other[other.length - 1]! ^= 1;
    const target = path.join(dest, 'kept.bin');
    fs.writeFileSync(target, other);
    const file = await fileWith(mgr, bytes);
    await expect(file.keep(target)).rejects.toBeInstanceOf(DestinationExistsError);
    fs.rmSync(target);
    const twin = path.join(scratchDir(), 'twin');
    fs.writeFileSync(twin, bytes);
    fs.symlinkSync(twin, target);
    await expect(file.keep(target)).rejects.toBeInstanceOf(DestinationExistsError);
    expect(fs.lstatSync(target).isSymbolicLink()).toBe(true);
    expect(fs.existsSync(file.path)).toBe(true);
  });

  it('a claimed file is kept across file systems; its errors name the entry and destination, never /proc', async () => {
    const mgr = manager();
    const dest = mountTmpfs(8);
    const ticket = await (await mgr.write('claimed bytes', { suffix: '.bin' })).handoff({ ttlMs: 60_000 });
    const claimed = await mgr.claim(ticket);
    const missing = path.join(dest, 'missing', 'kept.bin');
    const error = await claimed.keep(missing).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(TempFileError);
    expect(String((error as TempFileError).path)).toBe(path.dirname(missing));
    expect((error as Error).message).not.toContain('/proc/');
    expect(claimed.disposed).toBe(false);
    // The held file swapped for a symlink (a same-uid tamper): refused, the entry named by the
    // digest of its handoff, never by the ticket's id.
    const victim = path.join(scratchDir(), 'victim');
    fs.writeFileSync(victim, 'victim');
    fs.renameSync(claimed.path, `${claimed.path}.away`);
    fs.symlinkSync(victim, claimed.path);
    const tampered = await claimed.keep(path.join(dest, 'tampered.bin')).catch((err: unknown) => err);
    expect(tampered).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'ELOOP', path: expect.stringContaining('<entry of handoff ') });
    expect((tampered as Error).message).not.toContain('/proc/');
    expect(JSON.stringify([(tampered as Error).message, (tampered as TempFileError).path, (tampered as Error).stack])).not.toContain(ticket.id);
    expect(fs.readdirSync(dest)).toEqual([]);
    fs.rmSync(claimed.path);
    fs.renameSync(`${claimed.path}.away`, claimed.path);
    const target = path.join(dest, 'kept.bin');
    expect(await claimed.keep(target)).toBe(target);
    expect(fs.readFileSync(target, 'utf8')).toBe('claimed bytes');
    expect(fs.readdirSync(path.join(mgr.root, 'handoff'))).toEqual([]);
  });
});

// The destination name holds a symlink to a victim file outside: it is never written through.
describe.each([
  { where: 'on the same file system', volume: () => scratchDir() },
  { where: 'across file systems', volume: () => mountTmpfs(8) },
])('a symlink planted at the destination, $where', ({ where, volume }) => {
  it('is refused without overwrite, replaced as a name with it', async (ctx) => {
    if (where !== 'on the same file system') needs(ctx, MOUNTING);
    const mgr = manager();
    const dest = volume();
    const victim = path.join(scratchDir(), 'victim');
    fs.writeFileSync(victim, 'victim bytes');
    const target = path.join(dest, 'kept.bin');
    fs.symlinkSync(victim, target);
    const file = await fileWith(mgr, 'ours');
    await expect(file.keep(target)).rejects.toBeInstanceOf(DestinationExistsError);
    expect(fs.readlinkSync(target)).toBe(victim);
    await file.keep(target, { overwrite: true });
    expect(fs.lstatSync(target).isFile()).toBe(true);
    expect(fs.readFileSync(target, 'utf8')).toBe('ours');
    expect(fs.readFileSync(victim, 'utf8')).toBe('victim bytes');
    expect(fs.readdirSync(dest)).toEqual(['kept.bin']);
  });
});
