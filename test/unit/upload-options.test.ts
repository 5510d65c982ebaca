// Upload options are read from the caller's own properties: a polluted Object.prototype must not
// lift a limit, add a type rule or change the drain bounds of every upload.
import { afterEach, describe, expect, it } from 'vitest';
import { resolveUploadOptions } from '../../src/uploads/upload-options.js';

const POLLUTION = {
  maxBytes: Number.MAX_SAFE_INTEGER,
  maxFiles: 1000,
  maxFieldBytes: Number.MAX_SAFE_INTEGER,
  accept: ['image/png'],
  hash: 'sha256',
  maxCount: 99,
  drain: { maxBytes: 0, timeoutMs: 0 },
  timeoutMs: 1,
};

afterEach(() => {
  for (const key of Object.keys(POLLUTION)) delete (Object.prototype as Record<string, unknown>)[key];
});

function pollute(): void {
  for (const [key, value] of Object.entries(POLLUTION)) {
    Object.defineProperty(Object.prototype, key, { value, configurable: true, writable: true, enumerable: false });
  }
}

describe('upload options and a polluted Object.prototype', () => {
  it('a single field: the defaults hold', () => {
    const clean = resolveUploadOptions({ field: 'file' }, 'upload()');
    pollute();
    const spec = resolveUploadOptions({ field: 'file' }, 'upload()');
    expect(spec).toEqual(clean);
    expect(spec).toMatchObject({ maxBytes: 100 * 1024 * 1024, maxFiles: 10, accept: undefined, hash: undefined });
  });

  it('named fields: each field spec is read from its own properties', () => {
    const clean = resolveUploadOptions({ fields: [{ name: 'a' }, { name: 'b', maxCount: 2 }] }, 'upload()');
    pollute();
    const spec = resolveUploadOptions({ fields: [{ name: 'a' }, { name: 'b', maxCount: 2 }] }, 'upload()');
    expect(spec).toEqual(clean);
    expect(spec.rule).toEqual({ kind: 'fields', maxCounts: new Map([['a', 1], ['b', 2]]) });
  });

  it('drain bounds given without one of them: the default fills it, not the prototype', () => {
    pollute();
    const spec = resolveUploadOptions({ field: 'file', drain: { maxBytes: 1024 } }, 'upload()');
    expect(spec.drain).toEqual({ maxBytes: 1024, timeoutMs: 10_000 });
  });
});
