import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidNameError, TempFileManager, UnsafeRootError } from '../../src/index.js';
import {
  entryName,
  formatOwnerToken,
  heldName,
  LAYOUT_FORMAT,
  MAX_SUFFIX_BYTES,
  parseEntryName,
  parseRootEntry,
  parseSessionName,
  ROOT_MARKER,
  sessionName,
} from '../../src/base/layout.js';
import { processIdentity } from '../../src/owner/process-identity.js';
import { freshRoot, listTree, manager, scratchDir } from '../helpers/roots.js';

const CLI = path.join(import.meta.dirname, '../../dist/cli.js');
const HEX32 = 'ab'.repeat(16);
const HEX16 = 'cd'.repeat(8);

/** Names a user may well have in a directory, shaped like the library's own without being them. */
const LOOKALIKES = [
  '.tmp-build',
  `${HEX32}_1`,
  `web-01_2024_01_05_${HEX16}`,
  `web-01_2024_01_05_${HEX16}.lock`,
  `session_web-01_2024_01_05_${HEX16}x`,
  `session_${HEX16}`,
  'session_',
  'handoff.lock',
  `${ROOT_MARKER}.bak`,
];

function fillWithLookalikes(dir: string): void {
  for (const name of LOOKALIKES) {
    fs.mkdirSync(path.join(dir, name));
    fs.writeFileSync(path.join(dir, name, 'precious.txt'), 'keep me');
  }
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'keep me too');
}

function runCli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('the layout module', () => {
  it('parses back every name it builds, and nothing else', () => {
    const owner = { ...processIdentity('host-a.example'), created: Date.now(), random: HEX16 };
    expect(parseSessionName(sessionName(owner))).toEqual(owner);
    expect(parseRootEntry(`${sessionName(owner)}.lock`)).toMatchObject({ kind: 'session-lock', owner });
    expect(parseEntryName(entryName(HEX32, 1_700_000_000_000))).toEqual({ id: HEX32, expiresAt: 1_700_000_000_000 });
    for (const name of LOOKALIKES) expect(parseRootEntry(name)).toEqual({ kind: 'foreign' });
    expect(parseEntryName(`${HEX32}_1`)).toBeUndefined();
  });

  it('derives the longest suffix from the longest owner token a held name must carry', () => {
    const longest = formatOwnerToken({ host: 'h'.repeat(64), pid: 4_294_967_295, start: 's'.repeat(40), created: 8.64e15, random: HEX16 });
    // Within the name limit only while the bound the suffix is derived from holds the longest token.
    expect(Buffer.byteLength(heldName(longest, 'x'.repeat(MAX_SUFFIX_BYTES)))).toBeLessThanOrEqual(255);
  });
});

describe('suffixes a claim can carry', () => {
  it('a 64-character hostId with the longest suffix hands off and claims; one byte more is refused before any disk access', async () => {
    const suffix = `.${'s'.repeat(MAX_SUFFIX_BYTES - 1)}`;
    const mgr = manager({ hostId: 'h'.repeat(64) });
    const file = await mgr.write('payload', { suffix });
    const ticket = await file.handoff({ ttlMs: 60_000 });
    const claimed = await mgr.claim(ticket);
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('payload');
    expect(claimed.path).not.toContain('/proc/');
    await claimed.consume();

    const tooLong = `${suffix}s`;
    const before = listTree(mgr.root);
    expect(() => mgr.file(tooLong)).toThrow(InvalidNameError);
    await expect(mgr.write('x', { suffix: tooLong })).rejects.toThrow(InvalidNameError);
    expect(() => mgr.dir(tooLong)).toThrow(InvalidNameError);
    expect(listTree(mgr.root)).toEqual(before);
  });
});

describe('foreign roots and foreign names', () => {
  afterEach(() => {
    for (const key of ['root', 'overwrite', 'dryRun', 'prefix', 'suffix', 'graceMs', 'staleMs', 'verifyDigest']) {
      delete (Object.prototype as Record<string, unknown>)[key];
    }
  });

  it('a root the manager made carries a marker with the format version', () => {
    const mgr = manager();
    expect(fs.readFileSync(path.join(mgr.root, ROOT_MARKER), 'utf8')).toBe(`tempfile-manager root\nformat ${LAYOUT_FORMAT}\n`);
  });

  it('a marker left empty (its writer died between creating and writing it) is completed by the next manager', () => {
    const root = path.join(scratchDir(), 'root');
    fs.mkdirSync(root, { mode: 0o700 });
    fs.writeFileSync(path.join(root, '.tempfile-manager'), '');
    const mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
    expect(fs.readFileSync(path.join(root, '.tempfile-manager'), 'utf8')).toBe('tempfile-manager root\nformat 1\n');
    mgr.closeSync();
  });

  it('eight processes starting managers on one fresh root at once all start, 20 rounds', async () => {
    const dist = path.join(import.meta.dirname, '../../dist/index.js');
    const script = `const { TempFileManager } = await import(process.argv[1]); new TempFileManager({ root: process.argv[2], sweepOnStart: false, exitHook: false }).file().removeSync();`;
    for (let round = 0; round < 20; round++) {
      const root = path.join(scratchDir(), 'root');
      const runs = Array.from({ length: 8 }, () => new Promise<number | null>((resolve) => {
        spawn(process.execPath, ['--input-type=module', '-e', script, dist, root], { stdio: 'inherit' }).on('exit', resolve);
      }));
      expect(await Promise.all(runs)).toEqual(Array(8).fill(0));
    }
  }, 120_000);

  it('the CLI refuses a directory without the marker (exit 4) and touches nothing in it', () => {
    const dir = scratchDir();
    fillWithLookalikes(dir);
    const before = listTree(dir);
    for (const args of [['sweep'], ['sweep', '--dry-run'], ['ls']]) {
      const result = runCli(...args, '--root', dir, '--grace-ms', '0');
      expect(result.status, result.stderr).toBe(4);
      expect(result.stderr).toMatch(/no \.tempfile-manager marker/);
    }
    expect(listTree(dir)).toEqual(before);
  });

  it('sweep() refuses a root whose marker was removed or is of another format', async () => {
    const mgr = manager();
    fs.rmSync(path.join(mgr.root, ROOT_MARKER));
    await expect(mgr.sweep()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_UNSAFE_ROOT', reason: 'not-a-manager-root' });
    fs.writeFileSync(path.join(mgr.root, ROOT_MARKER), 'tempfile-manager root\nformat 999\n');
    await expect(mgr.sweep()).rejects.toThrow(/format 999/);
    expect(() => new TempFileManager({ root: mgr.root, sweepOnStart: false, exitHook: false })).toThrow(UnsafeRootError);
  });

  it('in a marked root, names that are not the library\'s are reported as foreign and never removed', async () => {
    const mgr = manager({ graceMs: 0 });
    fillWithLookalikes(mgr.root);
    fs.mkdirSync(path.join(mgr.root, 'handoff'), { mode: 0o700 });
    fillWithLookalikes(path.join(mgr.root, 'handoff'));
    const before = listTree(mgr.root);
    const report = await mgr.sweep();
    expect(listTree(mgr.root)).toEqual(before);
    expect(report.foreign).toEqual(expect.arrayContaining([path.join(mgr.root, '.tmp-build'), path.join(mgr.root, 'handoff', `${HEX32}_1`)]));
    expect(report.foreign).toHaveLength(2 * (LOOKALIKES.length + 1));
    const cli = runCli('sweep', '--root', mgr.root, '--grace-ms', '0');
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toContain('that the library did not make');
    expect(listTree(mgr.root)).toEqual(before);
  });

  it('the CLI shows control characters in names escaped, so a name cannot forge a report line or drive the terminal', () => {
    const mgr = manager();
    const evil = 'evil\n  removed 999 orphaned sessions\u001b[2J\u202e\r';
    fs.mkdirSync(path.join(mgr.root, evil));
    const result = runCli('sweep', '--root', mgr.root);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f\u202e]/);
    expect(result.stdout).not.toMatch(/^\s*removed 999/m);
    expect(result.stdout).toContain('evil\\x0a  removed 999 orphaned sessions\\x1b[2J\\u{202e}\\x0d');
    const json = runCli('sweep', '--root', mgr.root, '--json');
    expect(JSON.parse(json.stdout).foreign).toEqual([path.join(mgr.root, evil)]);
  });

  it('options inherited from a polluted Object.prototype are never obeyed', async () => {
    const victim = scratchDir();
    fs.writeFileSync(path.join(victim, 'keep.txt'), 'victim');
    const root = freshRoot();
    const proto = Object.prototype as Record<string, unknown>;
    proto.root = victim;
    proto.prefix = '../';
    proto.suffix = '/../../x';
    proto.graceMs = 0;
    proto.dryRun = true;
    proto.overwrite = true;
    const mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
    expect(mgr.root).toBe(root);
    const file = mgr.file({});
    expect(path.dirname(file.path)).toBe(mgr.sessionPath);
    expect(path.basename(file.path)).toMatch(/^[0-9a-f]{32}$/);
    const existing = path.join(victim, 'keep.txt');
    await expect(file.keep(existing, {})).rejects.toMatchObject({ code: 'ERR_TEMPFILE_DESTINATION_EXISTS' });
    expect(fs.readFileSync(existing, 'utf8')).toBe('victim');
    const report = await mgr.sweep({});
    expect(report.dryRun).toBe(false);
    await mgr.close();
  });
});
