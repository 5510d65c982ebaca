// The client's file name of an upload is hostile input: what is kept of it (a ticket's
// meta.filename) and the suffix taken from it are checked against names built to break them.
import { describe, expect, it } from 'vitest';
import { clientFileName, uploadSuffix, withClientName } from '../../src/uploads/client-name.js';
import { validateNamePart } from '../../src/base/names.js';

const PNG = { mime: 'image/png', ext: 'png' };

/** What every kept name must be, whatever was sent. */
function expectSafe(name: string | undefined): void {
  if (name === undefined) return;
  expect(name).not.toMatch(/[/\\\u0000-\u001f\u007f-\u009f<>:"|?*\u202e\u200b]/u);
  expect(name).not.toMatch(/^[.\s]|[.\s]$/u);
  expect(name).not.toMatch(/^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/i);
  expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
  expect(name.isWellFormed()).toBe(true);
}

describe('clientFileName', () => {
  it.each([
    ['../../evil.png.exe', 'evil.png.exe'],
    ['C:\\Users\\x\\report.csv', 'report.csv'],
    ['a/b', 'b'],
    ['..', undefined],
    ['.', undefined],
    ['/', undefined],
    ['', undefined],
    ['.bashrc', 'bashrc'],
    ['CON', '_CON'],
    ['con.txt', '_con.txt'],
    ['LPT1', '_LPT1'],
    ['console.log', 'console.log'],
    ['a\u0000b\u0001c\u001b[31m.txt', 'a_b_c_[31m.txt'],
    ['invoice\u202Efdp.exe', 'invoice_fdp.exe'],
    ['photo .', 'photo'],
    ['e\u0301t\u00e9.jpg', '\u00e9t\u00e9.jpg'],
    ['\ud800lone.txt', '\ufffdlone.txt'],
    ['..\uff0f..\uff0fetc\uff0fpasswd', '_.._etc_passwd'],
    ['a\u2215b\u2044c\u29f8d\uff3ce.txt', 'a_b_c_d_e.txt'],
    ['\u2100.txt', '_.txt'],
    ['x\uff1ay.txt', 'x_y.txt'],
    ['con .txt', '_con .txt'],
    ['CON\u3000.txt', '_CON\u3000.txt'],
    ['nul\u00a0\u00a0.tar.gz', '_nul\u00a0\u00a0.tar.gz'],
    ['\uff23\uff2f\uff2e.txt', '_\uff23\uff2f\uff2e.txt'],
    ['conference .txt', 'conference .txt'],
  ])('%j is kept as %j', (sent, kept) => {
    const name = clientFileName(sent);
    expect(name).toBe(kept);
    expectSafe(name);
  });

  it('leaves no character that NFKC turns into a slash, a backslash or a character Windows refuses', () => {
    const name = clientFileName('a\uff0fb\uff3cc\ufe68d\u2100e\u2101f\uff1cg\uff1fh.txt');
    expectSafe(name);
    expect(name!.normalize('NFKC')).not.toMatch(/[/\\<>:"|?*]/u);
  });

  it('treats a plain ASCII name as any other: what Windows refuses becomes _, device names get their _', () => {
    expect(clientFileName('a<b>c:d"e|f?g*h.txt')).toBe('a_b_c_d_e_f_g_h.txt');
    expect(clientFileName(' ..report 2024.csv.. ')).toBe('report 2024.csv');
    expect(clientFileName('con .txt')).toBe('_con .txt');
    expect(clientFileName('LPT1')).toBe('_LPT1');
    // The same names with one character beyond ASCII take the careful path, to the same end.
    expect(clientFileName('a<b>c:d"e|f?g*h.txté')).toBe('a_b_c_d_e_f_g_h.txté');
    expect(clientFileName('con .tété')).toBe('_con .tété');
  });

  it('cuts a long name in its stem and keeps its extension', () => {
    for (const stem of ['a'.repeat(10_000), '\u00e9'.repeat(5_000), '\ud83d\ude00'.repeat(2_500)]) {
      const name = clientFileName(`${stem}.pdf`);
      expectSafe(name);
      expect(name).toMatch(/\.pdf$/u);
      expect(Buffer.byteLength(name!)).toBeGreaterThan(250);
      expect(uploadSuffix(undefined, `${stem}.pdf`)).toBe('.pdf');
    }
  });

  it('cuts a 10 KB name to 255 bytes, never inside a character', () => {
    for (const sent of ['a'.repeat(10_000), '\u00e9'.repeat(5_000) + '.txt', '\ud83d\ude00'.repeat(2_500)]) {
      const name = clientFileName(sent);
      expectSafe(name);
      expect(Buffer.byteLength(name!)).toBeGreaterThan(250);
    }
  });
});

describe('uploadSuffix', () => {
  it.each([
    [PNG, '../../evil.png.exe', '.png'],
    [undefined, 'report.csv', '.csv'],
    [undefined, 'REPORT.CSV', '.csv'],
    [undefined, 'archive.tar.gz', '.gz'],
    [undefined, 'no-extension', ''],
    [undefined, '.bashrc', ''],
    [undefined, 'a.', ''],
    [undefined, '..', ''],
    [undefined, 'x.p\u0000ng', ''],
    [undefined, 'x.ex e', ''],
    [undefined, `x.${'a'.repeat(17)}`, ''],
    [undefined, 'x.\u00e9', ''],
    [undefined, 'a/b.sh/c', ''],
    [{ mime: 'x/y', ext: '../../x' }, 'r.csv', '.csv'],
  ])('type %j, name %j: %j', (type, name, suffix) => {
    const got = uploadSuffix(type, name);
    expect(got).toBe(suffix);
    if (got !== '') expect(validateNamePart(got, 'suffix')).toBe(got);
  });
});

describe('withClientName', () => {
  it("adds meta.filename, keeps the caller's meta and its own filename, leaves bad options to the core", () => {
    expect(withClientName({ ttlMs: 1 }, 'a.png')).toEqual({ ttlMs: 1, meta: { filename: 'a.png' } });
    expect(withClientName({ ttlMs: 1, meta: { job: 7 } }, 'a.png')).toEqual({ ttlMs: 1, meta: { filename: 'a.png', job: 7 } });
    expect(withClientName({ ttlMs: 1, meta: { filename: 'mine' } }, 'a.png')).toEqual({ ttlMs: 1, meta: { filename: 'mine' } });
    expect(withClientName({ ttlMs: 1 }, undefined)).toEqual({ ttlMs: 1 });
    for (const bad of [undefined, null, 5, [], { ttlMs: 1, meta: 'x' }, { ttlMs: 1, meta: { big: 'x'.repeat(4090) } }]) {
      expect(withClientName(bad, 'a.png')).toBe(bad);
    }
  });
});
