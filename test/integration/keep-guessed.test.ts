import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { manager, scratchDir } from '../helpers/roots.js';
import { eachNeeds, MOUNTING } from '../helpers/privileges.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

// An attacker who guesses the staging name (the test hands it the next random part): the
// staging file is created O_CREAT | O_EXCL | O_NOFOLLOW, so a symlink planted at that name is
// neither followed nor reused; keep() draws another name.
const guessed = vi.hoisted(() => ({ next: undefined as string | undefined }));
vi.mock(import('../../src/base/random-name.js'), async (importOriginal) => {
  const names = await importOriginal();
  return {
    ...names,
    randomName: () => {
      const name = guessed.next ?? names.randomName();
      guessed.next = undefined;
      return name;
    },
  };
});

describe('a staging name guessed in advance', () => {
  eachNeeds(MOUNTING);
  it.each([false, true])('a symlink planted there is not written through (overwrite: %s)', async (overwrite) => {
    const mgr = manager();
    const dest = mountTmpfs(8);
    const victim = path.join(scratchDir(), 'victim');
    fs.writeFileSync(victim, 'victim bytes');
    const file = mgr.file();
    fs.writeFileSync(file.path, 'kept bytes');
    const random = 'ab'.repeat(16);
    const planted = path.join(dest, `.kept.bin.tfm-keep-${random}.partial`);
    fs.symlinkSync(victim, planted);
    guessed.next = random;
    await file.keep(path.join(dest, 'kept.bin'), { overwrite });
    expect(guessed.next).toBeUndefined(); // the guess was drawn
    expect(fs.readFileSync(victim, 'utf8')).toBe('victim bytes');
    expect(fs.readlinkSync(planted)).toBe(victim);
    expect(fs.readFileSync(path.join(dest, 'kept.bin'), 'utf8')).toBe('kept bytes');
    expect(fs.readdirSync(dest).sort()).toEqual([path.basename(planted), 'kept.bin'].sort());
  });
});
