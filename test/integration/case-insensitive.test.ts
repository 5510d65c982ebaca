// macOS as it is: on APFS's default, two names differing in case are one file. Through a layer that
// folds case on every path, the names the library makes (random parts, sessions, handoff entries,
// keep()'s staging names) never meet, a keep() onto another case of an existing name is refused as
// the existing file it is, and the sweep takes no foreign name for one of its own.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DestinationExistsError } from '../../src/errors.js';
import { sessionLockPath } from '../../src/base/layout.js';
import { hostId } from '../../src/owner/process-identity.js';
import { caseFoldingFs } from '../helpers/case-folding-fs.js';
import { deadSessionNameHere, manager, markedRoot, freshRoot, scratchDir } from '../helpers/roots.js';

const folding = caseFoldingFs();
const folded = (name: string) => name.toLowerCase();

describe('a case-insensitive file system (folding layer)', () => {
  it('the layer folds: a name created in one case cannot be created again in another, and is read through it', () => {
    const dir = scratchDir();
    fs.writeFileSync(path.join(dir, 'Report.PDF'), 'first');
    expect(() => folding.openSync(path.join(dir, 'report.pdf'), fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY)).toThrow(/EEXIST/);
    expect(folding.statSync(path.join(dir, 'REPORT.pdf')).size).toBe(5);
  });

  it('files, directories and handoff entries made there never share a name, whatever the case', async () => {
    const mgr = manager({ fs: folding });
    const worker = manager({ fs: folding, root: mgr.root });
    const names: string[] = [];
    for (let i = 0; i < 300; i++) {
      const file = await mgr.write(Buffer.from(`file ${i}`));
      names.push(file.path);
    }
    for (let i = 0; i < 30; i++) names.push((await mgr.dir()).path);
    const tickets = [];
    for (let i = 0; i < 20; i++) tickets.push(await (await mgr.write(Buffer.from(`job ${i}`))).handoff({ ttlMs: 60_000 }));
    names.push(...fs.readdirSync(path.join(mgr.root, 'handoff')).map((entry) => path.join(mgr.root, 'handoff', entry)));
    names.push(...fs.readdirSync(mgr.root).map((entry) => path.join(mgr.root, entry)));
    expect(new Set(names.map(folded)).size).toBe(names.length);
    for (let i = 0; i < 300; i++) expect(fs.readFileSync(names[i]!, 'utf8')).toBe(`file ${i}`);
    for (let i = 0; i < tickets.length; i++) {
      await using claimed = await worker.claim(tickets[i]!);
      expect(fs.readFileSync(claimed.path, 'utf8')).toBe(`job ${i}`);
    }
  });

  it('keep() onto another case of an existing file is DestinationExistsError: the existing file and the temp file stay', async () => {
    const mgr = manager({ fs: folding });
    const dir = scratchDir();
    fs.writeFileSync(path.join(dir, 'Report.pdf'), 'the user\'s own');
    const file = await mgr.write(Buffer.from('new'));
    await expect(file.keep(path.join(dir, 'report.PDF'))).rejects.toBeInstanceOf(DestinationExistsError);
    expect(fs.readdirSync(dir)).toEqual(['Report.pdf']);
    expect(fs.readFileSync(path.join(dir, 'Report.pdf'), 'utf8')).toBe('the user\'s own');
    expect(fs.readFileSync(file.path, 'utf8')).toBe('new');
  });

  it('the sweep removes a dead session and leaves a foreign name that differs from a session name only in case', async () => {
    const root = markedRoot(freshRoot());
    const dead = path.join(root, deadSessionNameHere(hostId()));
    fs.mkdirSync(dead);
    fs.writeFileSync(path.join(dead, 'left'), 'x');
    fs.mkdirSync(sessionLockPath(dead));
    const lookalike = path.join(root, deadSessionNameHere(hostId(), 'fedcba9876543210').replace('session_', 'SESSION_'));
    fs.mkdirSync(lookalike);
    fs.writeFileSync(path.join(lookalike, 'precious'), 'not the library\'s');
    const entries = path.join(root, 'handoff');
    fs.mkdirSync(entries, { mode: 0o700 });
    const foreignEntry = path.join(entries, `ENTRY_${'a'.repeat(32)}_1`);
    fs.mkdirSync(foreignEntry);
    fs.writeFileSync(path.join(foreignEntry, 'data'), 'not the library\'s');
    const mgr = manager({ fs: folding, root });
    const report = await mgr.sweep();
    expect(report.errors).toEqual([]);
    expect(fs.existsSync(dead)).toBe(false);
    expect(fs.readFileSync(path.join(lookalike, 'precious'), 'utf8')).toBe('not the library\'s');
    expect(fs.readFileSync(path.join(foreignEntry, 'data'), 'utf8')).toBe('not the library\'s');
  });
});
