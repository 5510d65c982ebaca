// The CLI's text output shows a Windows path as it is, and a name still cannot forge a line or
// drive the terminal: every control or invisible format character is escaped, and a backslash is
// escaped only where it would read as the start of such an escape, so the output reads back to
// exactly one name.
import { describe, expect, it } from 'vitest';
import { printable } from '../../src/cli/cli.js';

/** Reads printable()'s output back: `\xNN` and `\u{N}` are escapes; any other backslash is itself. */
function readBack(shown: string): string {
  return shown.replace(/\\x([0-9a-fA-F]{2})|\\u\{([0-9a-fA-F]+)\}/g, (_m, byte: string | undefined, point: string | undefined) =>
    String.fromCodePoint(parseInt(byte ?? point!, 16)),
  );
}

const HOSTILE = [
  'evil\n  removed 999 orphaned sessions\u001b[2J\u202e\r',
  'session_\\x0a', // a real backslash, then the text of an escape
  'session_\\\n', // a real backslash, then a real newline
  '\\u{202e}',
  '\\\\x41',
  'a\\',
  '\\',
  'C:\\x64\\data',
  'tab\there\u0085\u2028\u2029\u200b',
];

describe('printable', () => {
  it('shows a Windows path as it is, each backslash once', () => {
    const swept = 'swept C:\\Users\\ana\\AppData\\Local\\Temp\\tempfile-manager-ana\\session_1a2b';
    expect(printable(swept)).toBe(swept);
    expect(printable('\\\\server\\share\\tmp\\u-root')).toBe('\\\\server\\share\\tmp\\u-root');
  });

  it('shows a Linux name holding a backslash as it is, unless the backslash would start an escape', () => {
    expect(printable('/tmp/root/a\\b')).toBe('/tmp/root/a\\b');
    expect(printable('/tmp/root/a\\x0a')).toBe('/tmp/root/a\\x5cx0a');
  });

  it.each(HOSTILE)('escapes %j so that no control or format character is printed, and it reads back to the name', (name) => {
    const shown = printable(name);
    // eslint-disable-next-line no-control-regex
    expect(shown).not.toMatch(/[\u0000-\u001f\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]/u);
    expect(readBack(shown)).toBe(name);
  });

  it('no two names print alike', () => {
    const names = [...HOSTILE, 'session_\n', 'session_\\x5cx0a', 'C:\\x5cx64\\data', 'C:d\\data'];
    const shown = names.map(printable);
    expect(new Set(shown).size).toBe(names.length);
  });
});
