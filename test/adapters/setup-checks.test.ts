// The adapters' set-up calls check what they are given at once: a missing or wrong `manager`
// and an `onDisposeError` that is not a function are InvalidOptionErrors naming the option and
// showing the value, never a TypeError from a later request.
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { tempScope, upload } from '../../src/adapters/express.js';
import tempFiles from '../../src/adapters/fastify.js';
import { type TempFileManager } from '../../src/index.js';
import { InvalidOptionError } from '../../src/errors.js';
import { manager } from '../helpers/roots.js';

function thrownBy(call: () => unknown): unknown {
  try {
    call();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('set-up checks of the adapters', () => {
  it.each([
    ['tempScope(undefined)', () => tempScope(undefined as never), 'manager', /undefined/],
    ['tempScope({})', () => tempScope({} as never), 'manager', /an object|\{\}/],
    ['tempScope(mgr, { onDisposeError: 1 })', () => tempScope(manager(), { onDisposeError: 1 as never }), 'onDisposeError', /got 1\b/],
    ['upload({ manager: "x" })', () => upload({ manager: 'x' as never }), 'manager', /"x"/],
  ] as const)('%s is an InvalidOptionError naming it', (_label, call, option, shown) => {
    const err = thrownBy(call);
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect(err).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option });
    expect((err as Error).message).toMatch(shown);
    expect((err as Error).message).toMatch(option === 'manager' ? /TempFileManager/ : /function/);
  });

  it.each([
    ['no manager', {}, 'manager'],
    ['a manager without scope()', { manager: { root: '/tmp' } }, 'manager'],
    ['an onDisposeError that is not a function', { onDisposeError: 'log' }, 'onDisposeError'],
  ] as const)('the Fastify plugin registered with %s fails to start with an InvalidOptionError', async (_label, given, option) => {
    const app = Fastify();
    const options = { manager: manager() as TempFileManager, ...given };
    if (!('manager' in given) && option === 'manager') delete (options as { manager?: unknown }).manager;
    await expect(app.register(tempFiles, options as never).ready()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option });
    await app.close();
  });
});
