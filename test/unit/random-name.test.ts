// The random part of every name is lowercase hex: a name the library makes is the same name on a
// case-insensitive file system (APFS, NTFS) and to every tool there, and loses none of its 128 bits
// to case folding (a mixed-case alphabet such as base64url would: 22 characters of 38 folded
// symbols carry about 115 bits, not 132).
import { expect, it } from 'vitest';
import { randomName, RANDOM_NAME_LENGTH } from '../../src/base/random-name.js';

it('random names are 32 lowercase hex digits, so case folding changes none of them', () => {
  const drawn = Array.from({ length: 10_000 }, () => randomName());
  for (const name of drawn) {
    expect(name).toMatch(/^[0-9a-f]{32}$/);
    expect(name.toUpperCase().toLowerCase()).toBe(name);
  }
  expect(RANDOM_NAME_LENGTH).toBe(32);
  expect(new Set(drawn.map((name) => name.toLowerCase())).size).toBe(drawn.length);
});

it("draws from the kernel's generator without loading node:crypto, and a process holding a file loads none (its cost at rest)", async () => {
  const { execFileSync } = await import('node:child_process');
  const path = await import('node:path');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-random-'));
  const index = path.join(import.meta.dirname, '../../dist/index.js');
  const script = `const { TempFileManager } = await import(${JSON.stringify(index)});
const mgr = new TempFileManager({ root: ${JSON.stringify(path.join(root, 'r'))}, exitHook: false });
const file = await mgr.file();
console.log(process.moduleLoadList.includes('NativeModule crypto'));
await mgr.close();`;
  try {
    const loaded = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }).trim();
    expect(loaded).toBe(process.platform === 'win32' ? 'true' : 'false');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
