import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DestinationExistsError, InvalidOptionError } from '../../src/index.js';
import { manager, scratchDir } from '../helpers/roots.js';

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

  it('falls back to copy and delete across devices (/tmp to /dev/shm)', async () => {
    const mgr = manager();
    const shm = fs.mkdtempSync('/dev/shm/tfm-keep-');
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
