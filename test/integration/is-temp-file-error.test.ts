// isTempFileError across the two builds of the package loaded in one process, where instanceof
// fails: an error made by the ES module build is recognised by the CommonJS build's check, and
// the other way round. Runs in a child Node so that the real dist/ files are loaded, nothing else.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isTempFileError, SizeLimitError, TempFileError } from '../../src/index.js';

const dist = path.join(import.meta.dirname, '../../dist');

const script = `
import { createRequire } from 'node:module';
const esm = await import(${JSON.stringify(path.join(dist, 'index.js'))});
const cjs = createRequire(import.meta.url)(${JSON.stringify(path.join(dist, 'index.cjs'))});
const fromEsm = new esm.SizeLimitError(10);
let fromCjs;
try { new cjs.TempFileManager({ root: '', sweepOnStart: false }); } catch (err) { fromCjs = err; }
console.log(JSON.stringify({
  distinctClasses: esm.TempFileError !== cjs.TempFileError,
  esmErrorCjsInstanceof: fromEsm instanceof cjs.TempFileError,
  cjsErrorEsmInstanceof: fromCjs instanceof esm.TempFileError,
  esmErrorByCjsCheck: cjs.isTempFileError(fromEsm),
  cjsErrorByEsmCheck: esm.isTempFileError(fromCjs),
  cjsErrorCode: fromCjs.code,
  plainErrors: [cjs.isTempFileError(new Error('x')), esm.isTempFileError({ code: 'ERR_TEMPFILE_IO' }), esm.isTempFileError(null)],
}));
`;

describe('isTempFileError', () => {
  it('recognises an error of the other build (ESM and CJS in one process), where instanceof fails', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({
      distinctClasses: true,
      esmErrorCjsInstanceof: false,
      cjsErrorEsmInstanceof: false,
      esmErrorByCjsCheck: true,
      cjsErrorByEsmCheck: true,
      cjsErrorCode: 'ERR_TEMPFILE_INVALID_OPTION',
      plainErrors: [false, false, false],
    });
  });

  it('is true for every TempFileError and narrows the type; false for look-alikes', () => {
    const error: unknown = new SizeLimitError(5);
    expect(isTempFileError(error)).toBe(true);
    if (isTempFileError(error)) expect(error.code).toBe('ERR_TEMPFILE_SIZE_LIMIT');
    expect(isTempFileError(new TempFileError('ERR_TEMPFILE_IO', 'x'))).toBe(true);
    const lookalike = Object.assign(new Error('x'), { code: 'ERR_TEMPFILE_IO', name: 'TempFileError' });
    expect(isTempFileError(lookalike)).toBe(false);
    expect(isTempFileError('ERR_TEMPFILE_IO')).toBe(false);
    expect(Object.keys(new SizeLimitError(5))).not.toContain(Symbol.for('tempfile-manager.error'));
  });
});
