// Names Windows refuses or reads as another, refused before anything touches the disk. A prefix or
// suffix becomes a file name the library makes, in a root that may be shared between hosts: it is
// refused on every platform. A keep() destination is the user's own path: it is checked by the
// rules of the platform it is used on, given as a value, so that Linux checks win32's rules.
import { describe, expect, it } from 'vitest';
import { InvalidNameError, InvalidOptionError } from '../../src/base/errors.js';
import { resolveDestination } from '../../src/keep/move.js';
import { validateNamePart } from '../../src/base/names.js';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { TempFileManager } from '../../src/index.js';
import { scratchDir } from '../helpers/roots.js';
import { windowsPathProblem } from '../../src/base/windows-names.js';

const RESERVED = ['CON', 'conin$', 'CONOUT$', 'prn', 'Aux', 'nul', 'COM1', 'com9', 'LPT1', 'lpt9', 'COM¹', 'com²', 'LPT³', 'COM0', 'LPT0'];

describe('prefix and suffix, on every platform', () => {
  it.each(RESERVED.flatMap((name) => [`${name}.`, `${name}.tmp-`, `${name} .x`]))('refuses the prefix %j: the file name would start with a device name', (prefix) => {
    const error = catchError(() => validateNamePart(prefix, 'prefix'));
    expect(error).toBeInstanceOf(InvalidNameError);
    expect(error.code).toBe('ERR_TEMPFILE_INVALID_NAME');
    expect(error.message).toContain('prefix');
    expect(error.message).toContain(JSON.stringify(prefix));
    expect(error.message).toMatch(/reserves for a device/);
    expect(error.message).toMatch(/choose another prefix/);
  });

  it.each(['.pdf.', '.pdf ', '.', ' ', '.tar. '])('refuses the suffix %j: Windows strips a trailing dot or space', (suffix) => {
    const error = catchError(() => validateNamePart(suffix, 'suffix'));
    expect(error).toBeInstanceOf(InvalidNameError);
    expect(error.message).toContain(JSON.stringify(suffix));
    expect(error.message).toMatch(/ends with a dot or a space/);
  });

  it.each(['a:b', 'x<y', 'x>y', 'q"', 'a|b', 'w?', 's*', 'tab\t'])('refuses %j in a prefix or suffix (characters Windows refuses, alternate data streams)', (part) => {
    expect(() => validateNamePart(part, 'suffix')).toThrow(InvalidNameError);
    expect(() => validateNamePart(part, 'prefix')).toThrow(InvalidNameError);
  });

  it.each(['con', 'CON-', 'aux_', 'com10.', 'lpt', 'nul-', 'console.', 'upload-', 'com1x.'])('accepts the prefix %j: random characters follow it before any dot', (prefix) => {
    expect(validateNamePart(prefix, 'prefix')).toBe(prefix);
  });

  it.each(['.con', '.aux.txt', '.nul', ' .pdf'])('accepts the suffix %j: the random part comes before it', (suffix) => {
    expect(validateNamePart(suffix, 'suffix')).toBe(suffix);
  });
});

describe('keep() destinations on win32', () => {
  it.each([
    ['a device name', 'C:\\Users\\ana\\CON', /reserves for a device \(CON\)/],
    ['a device name with an extension', 'C:\\Users\\ana\\aux.txt', /reserves for a device \(AUX\)/],
    ['a device name in any case, with a space', 'C:\\Users\\ana\\nUl .tar.gz', /reserves for a device \(NUL\)/],
    ['a superscript COM', 'C:\\Users\\ana\\COM³.log', /reserves for a device \(COM³\)/],
    ['the console input', 'C:\\Users\\ana\\conin$.txt', /reserves for a device \(CONIN\$\)/],
    ['a superscript LPT directory', 'D:\\jobs\\lpt¹\\out.bin', /reserves for a device \(LPT¹\)/],
    ['a trailing dot', 'C:\\Users\\ana\\report.pdf.', /ends with a dot or a space/],
    ['a trailing space', 'C:\\Users\\ana\\report.pdf ', /ends with a dot or a space/],
    ['a directory with a trailing dot', 'C:\\Users\\ana.\\report.pdf', /ends with a dot or a space/],
    ['an alternate data stream', 'C:\\Users\\ana\\report.pdf:hidden', /alternate data stream/],
    ['a wildcard', 'C:\\Users\\ana\\*.pdf', /character Windows refuses/],
    ['a pipe', 'C:\\Users\\ana\\a|b.pdf', /character Windows refuses/],
    ['a quote', 'C:\\Users\\ana\\"x".pdf', /character Windows refuses/],
    ['a control character', 'C:\\Users\\ana\\a\u0001b.pdf', /character Windows refuses/],
    ['a device path', '\\\\.\\PhysicalDrive0', /device namespace/],
    ['a path of 260 characters', `C:\\${'d'.repeat(250)}\\${'f'.repeat(6)}`, /260/],
  ])('refuses %s: %j', (_label, destination, reason) => {
    const error = catchError(() => resolveDestination(destination, 'win32'));
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error.code).toBe('ERR_TEMPFILE_INVALID_OPTION');
    expect((error as InvalidOptionError).option).toBe('destination');
    expect(error.message).toMatch(/destination/);
    expect(error.message).toContain(destination.slice(0, 20).replace(/[\u0001]/g, '\\u0001'));
    expect(error.message).toMatch(reason);
    expect(error.message).toMatch(/[Cc]hoose|[Rr]emove|[Ss]horten/);
  });

  it.each([
    'C:\\Users\\ana\\report.pdf',
    'C:\\Users\\ana\\console.txt',
    'C:\\Users\\ana\\com10',
    'C:\\Users\\ana\\.auxiliary',
    'D:\\data\\auxiliary.bin',
    '\\\\server\\share\\kept\\x.bin',
    `C:\\${'d'.repeat(250)}\\${'f'.repeat(5)}`, // 259 characters: the most MAX_PATH takes
    `\\\\?\\C:\\${'d'.repeat(300)}\\x.bin`, // the long-path prefix: the caller asked for it
  ])('accepts %j', (destination) => {
    expect(resolveDestination(destination, 'win32')).toBe(destination);
  });

  it('leaves a Linux path alone on Linux, where CON and a trailing dot are plain names', () => {
    expect(resolveDestination('/srv/kept/CON.', 'linux')).toBe('/srv/kept/CON.');
    expect(windowsPathProblem('/srv/kept/aux.txt', 'darwin')).toBeUndefined();
    expect(windowsPathProblem('C:\\x\\aux.txt', 'win32')).toMatch(/AUX/);
  });
});

function catchError(run: () => unknown): Error & { code?: string } {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('it did not throw');
}

/**
 * What `new TempFileManager({ root })` throws in a process whose `process.platform` says win32
 * (the library reads it once, at load): `{ code, option, message }`, or `null` when it made one.
 * Run in a scratch directory: a root that passes is made there, under its Windows name.
 */
function rootOnWin32(root: string): { code: string; option: string; message: string } | null {
  const index = path.join(import.meta.dirname, '../../dist/index.js');
  const script = `Object.defineProperty(process, 'platform', { value: 'win32' });
const { TempFileManager } = await import(${JSON.stringify(index)});
try { new TempFileManager({ root: ${JSON.stringify(root)}, exitHook: false, sweepOnStart: false }); console.log('null'); }
catch (e) { console.log(JSON.stringify({ code: e.code, option: e.option, message: e.message })); }
process.exit(0);`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: scratchDir(), encoding: 'utf8' })) as never;
}

describe('the root on win32', () => {
  it.each([
    ['C:\\Temp\\root.', /ends with a dot or a space/],
    ['C:\\Temp\\aux', /reserves for a device \(AUX\)/],
    ['C:\\Temp\\nul.d\\root', /reserves for a device \(NUL\)/],
    ['C:\\Temp\\root:x', /alternate data stream/],
  ])('refuses %j before anything is made', (root, reason) => {
    const error = rootOnWin32(root);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'root' });
    expect(error?.message).toContain(root);
    expect(error?.message).toMatch(reason);
    expect(error?.message).toMatch(/choose another `root`/);
  });

  it('does not refuse a root past 259 characters: Node.js reaches it with the long-path prefix', () => {
    // On this Linux the name cannot be made (its one segment is past NAME_MAX): what matters is
    // that the option is taken, where a length refusal would be ERR_TEMPFILE_INVALID_OPTION.
    expect(rootOnWin32(`C:\\${'d'.repeat(300)}`)).toMatchObject({ code: 'ERR_TEMPFILE_IO' });
    expect(windowsPathProblem(`C:\\${'d'.repeat(300)}`, 'win32', Infinity)).toBeUndefined();
  });

  it('takes the same names on Linux, where they are plain', () => {
    for (const name of ['aux', 'root.']) {
      const made = path.join(scratchDir(), name);
      expect(new TempFileManager({ root: made, exitHook: false, sweepOnStart: false }).root).toBe(made);
    }
  });
});
