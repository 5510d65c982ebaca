// write()'s `verify` hook, from the side of a file that must not get through: a refusal is typed
// with its status and leaves nothing on disk; a hook that throws, returns nothing or never
// settles is a server error or an abort, never an accept.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TempFile } from '../../src/index.js';
import { AbortedError, InvalidOptionError, VerifyFailedError, VerifyRefusedError } from '../../src/errors.js';
import { manager } from '../helpers/roots.js';
import { sessionFiles } from '../helpers/wait.js';

const never = () => new Promise<never>(() => {});
// A hook that is never given up hangs its write: fail then, well before the suite's own timeout.
const HANG_MS = 30_000;

/** Whether a descriptor of this process is open on `file` (the writer's, if it were not closed yet). */
function openInThisProcess(file: string): boolean {
  return fs.readdirSync('/proc/self/fd').some((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false; // the descriptor readdir itself used, closed since
    }
  });
}

/** The error `write()` rejects with, and that the manager holds nothing afterwards. */
async function refused(options: Parameters<ReturnType<typeof manager>['write']>[1]): Promise<unknown> {
  const mgr = manager();
  const error = await mgr.write('suspicious bytes', options).catch((e: unknown) => e);
  expect(sessionFiles(mgr)).toEqual([]);
  expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
  return error;
}

describe('write(): verify', () => {
  it('runs on the whole file, closed, with its size and digest, before write() resolves; true keeps it', async () => {
    const mgr = manager();
    const seen: { content: string; size: number | undefined; digest: string | undefined; openHere: boolean }[] = [];
    const file = await mgr.write('clean bytes', {
      hash: 'sha256',
      verify: (f: TempFile) => {
        seen.push({ content: fs.readFileSync(f.path, 'utf8'), size: f.size, digest: f.digest, openHere: openInThisProcess(f.path) });
        return true;
      },
    });
    expect(seen).toEqual([{ content: 'clean bytes', size: 11, digest: file.digest, openHere: false }]);
    expect(fs.readFileSync(file.path, 'utf8')).toBe('clean bytes');
  });

  it('a refusal with the hook’s own status: VerifyRefusedError with that status, exposed, nothing kept', async () => {
    const error = await refused({ verify: async () => ({ reason: 'the checksum does not match the header', statusCode: 400 }) });
    expect(error).toBeInstanceOf(VerifyRefusedError);
    expect(error).toMatchObject({
      code: 'ERR_TEMPFILE_VERIFY_REFUSED',
      statusCode: 400,
      expose: true,
      reason: 'the checksum does not match the header',
      message: 'the file was refused: the checksum does not match the header',
    });
  });

  it('false refuses with 422', async () => {
    const error = await refused({ verify: () => false });
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_VERIFY_REFUSED', statusCode: 422, expose: true, message: expect.stringMatching(/^the file was refused: /) });
  });

  it('a hook that throws (a scanner down) is a VerifyFailedError, 503, not exposed, with the cause; nothing kept', async () => {
    const down = Object.assign(new Error('connect ENOENT /run/clamav/clamd.ctl'), { code: 'ENOENT' });
    const error = await refused({ verify: async () => { throw down; } });
    expect(error).toBeInstanceOf(VerifyFailedError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_VERIFY_FAILED', statusCode: 503, expose: false, reason: 'threw', cause: down });
    expect((error as Error).message).toMatch(/clamd\.ctl/);
  });

  it('a hook that never settles is given up after verifyTimeoutMs: VerifyFailedError (timeout), its signal aborted, nothing kept', async () => {
    let signal: AbortSignal | undefined;
    const error = await refused({ verifyTimeoutMs: 50, verify: (_f: TempFile, s: AbortSignal) => { signal = s; return never(); } });
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_VERIFY_FAILED', statusCode: 503, reason: 'timeout' });
    expect((error as Error).message).toMatch(/`verifyTimeoutMs` \(50 ms\)/);
    expect(signal?.aborted).toBe(true);
  }, HANG_MS);

  it('a hook that never settles ends with the write’s signal: AbortedError, nothing kept', async () => {
    const controller = new AbortController();
    let signal: AbortSignal | undefined;
    const error = await refused({
      signal: controller.signal,
      verifyTimeoutMs: 0,
      verify: (_f: TempFile, s: AbortSignal) => {
        signal = s;
        controller.abort();
        return never();
      },
    });
    expect(error).toBeInstanceOf(AbortedError);
    expect(signal?.aborted).toBe(true);
  }, HANG_MS);

  it.for([
    ['nothing (a forgotten return)', undefined],
    ['a string', 'ok'],
    ['a refusal whose status is not a 4xx', { reason: 'fine', statusCode: 200 }],
    ['a refusal without a reason', { statusCode: 403 }],
  ] as const)('a hook that returns %s is not an accept: InvalidOptionError naming verify and the value, nothing kept', async ([, result]) => {
    const error = await refused({ verify: (() => result) as unknown as () => boolean });
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ option: 'verify', statusCode: 500, message: expect.stringMatching(/`verify` returned .*return true to accept/) });
  });

  it('bad options are refused before anything is written, each named with its value', async () => {
    const mgr = manager();
    await expect(mgr.write('x', { verify: 'clamav' as unknown as () => boolean })).rejects.toMatchObject({ option: 'verify', message: expect.stringMatching(/`verify` must be a function .*got .clamav./) });
    await expect(mgr.write('x', { verify: () => true, verifyTimeoutMs: -1 })).rejects.toMatchObject({ option: 'verifyTimeoutMs', message: expect.stringMatching(/`verifyTimeoutMs` must be .*got -1/) });
    await expect(mgr.write('x', { verifyTimeoutMs: 1000 })).rejects.toMatchObject({ option: 'verifyTimeoutMs', message: expect.stringMatching(/goes with `verify`/) });
    expect(sessionFiles(mgr)).toEqual([]);
  });
});
