import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { setAsideName } from '../../src/base/layout.js';
import { freshRoot, manager, markedRoot } from '../helpers/roots.js';

// A closed session that another handle held a file in (Windows) is set aside at the top of the
// root as `.removing_<32 hex>`: nobody's, so every sweep removes it, the library's and the CLI's.
// A name that only looks like one is foreign, and stays.

const cli = path.join(import.meta.dirname, '../../dist/cli.js');
const execFileAsync = promisify(execFile);

/** A set-aside session with a tree in it, and a foreign look-alike beside it. */
function plantSetAside(root: string): { setAside: string; lookAlike: string } {
  markedRoot(root);
  const setAside = path.join(root, setAsideName('0123456789abcdef0123456789abcdef'));
  fs.mkdirSync(path.join(setAside, 'work', 'deep'), { recursive: true });
  fs.writeFileSync(path.join(setAside, 'work', 'deep', 'held.log'), 'x'.repeat(100));
  fs.writeFileSync(path.join(setAside, 'upload.bin'), 'y');
  const lookAlike = path.join(root, '.removing_mine');
  fs.writeFileSync(lookAlike, 'not the library’s');
  return { setAside, lookAlike };
}

describe('the sweep of set-aside sessions', () => {
  it('mgr.sweep() removes a set-aside session whatever its age, leaves a look-alike as foreign; a dry run removes nothing', async () => {
    const root = freshRoot();
    const { setAside, lookAlike } = plantSetAside(root);
    const mgr = manager({ root });
    const dry = await mgr.sweep({ dryRun: true });
    expect(dry).toMatchObject({ setAsideRemoved: 1, errors: [] });
    expect(fs.existsSync(setAside)).toBe(true);
    const report = await mgr.sweep();
    expect(report).toMatchObject({ setAsideRemoved: 1, filesRemoved: 2, errors: [], foreign: [lookAlike] });
    expect(fs.existsSync(setAside)).toBe(false);
    expect(fs.readFileSync(lookAlike, 'utf8')).toBe('not the library’s');
  });

  it('the CLI sweep removes it and says so', async () => {
    const root = freshRoot();
    const { setAside, lookAlike } = plantSetAside(root);
    const { stdout } = await execFileAsync(cli, ['sweep', '--root', root], { encoding: 'utf8' });
    expect(stdout).toMatch(/removed 1 closed session set aside while another handle held a file in it/);
    expect(fs.existsSync(setAside)).toBe(false);
    expect(fs.existsSync(lookAlike)).toBe(true);
    const planted = plantSetAside(freshRoot());
    const json = await execFileAsync(cli, ['sweep', '--json', '--root', path.dirname(planted.setAside)], { encoding: 'utf8' });
    expect(JSON.parse(json.stdout)).toMatchObject({ setAsideRemoved: 1 });
  });
});
