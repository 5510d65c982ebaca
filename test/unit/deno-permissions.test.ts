// Deno's permissions as the library reads them, with `Deno.permissions` stubbed: all of them or a
// refusal naming --allow-all. The real thing runs on Deno in scripts/runtimes.mjs
// (test/runtimes/deno-permissions.test.mjs).
import { afterEach, describe, expect, it } from 'vitest';
import { requireDenoAllAccess } from '../../src/base/deno-permissions.js';
import { FileSystemError, InvalidOptionError, toFileSystemError } from '../../src/base/errors.js';

type Status = { state: string; partial?: boolean };
const holder = globalThis as { Deno?: unknown };

function stubDeno(statuses: Record<string, Status>): void {
  holder.Deno = {
    permissions: {
      querySync: ({ name }: { name: string }): Status => {
        const status = statuses[name];
        if (!status) throw new TypeError(`The provided value "${name}" is not a valid permission name`);
        return status;
      },
    },
  };
}

const ALL = ['read', 'write', 'net', 'env', 'sys', 'run', 'ffi', 'import'];
const granted = (names: string[]): Record<string, Status> => Object.fromEntries(names.map((name) => [name, { state: 'granted' }]));

afterEach(() => {
  delete holder.Deno;
});

/** The permissions requireDenoAllAccess() names as withheld in its refusal; none when it does not refuse. */
function withheld(): string[] {
  try {
    requireDenoAllAccess();
    return [];
  } catch (err) {
    const names = /not granted in full: ([^)]*)\)/.exec((err as Error).message)?.[1];
    return names === undefined ? [`unexpected refusal: ${(err as Error).message}`] : names.split(', ');
  }
}

describe("Deno's permissions", () => {
  it('none withheld outside Deno', () => {
    expect(withheld()).toEqual([]);
    expect(() => requireDenoAllAccess()).not.toThrow();
  });

  it('all granted (--allow-all, or every --allow-* flag): nothing withheld', () => {
    stubDeno(granted(ALL));
    expect(withheld()).toEqual([]);
  });

  it('a permission this Deno does not know is not asked for', () => {
    stubDeno(granted(ALL.filter((name) => name !== 'import')));
    expect(withheld()).toEqual([]);
  });

  it('--allow-read --allow-write --allow-env --allow-sys: refused, naming --allow-all and what is withheld', () => {
    stubDeno({ ...granted(['read', 'write', 'env', 'sys']), net: { state: 'prompt' }, run: { state: 'prompt' }, ffi: { state: 'prompt' }, import: { state: 'prompt' } });
    expect(withheld()).toEqual(['net', 'run', 'ffi', 'import']);
    const refusal = (() => {
      try {
        requireDenoAllAccess();
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(refusal).toBeInstanceOf(InvalidOptionError);
    expect(refusal).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: '--allow-all' });
    expect((refusal as Error).message).toMatch(/not granted in full: net, run, ffi, import\)/);
    expect((refusal as Error).message).toMatch(/--allow-all \(-A\) and no --deny-\* flag/);
  });

  it('-A with a deny flag: a denied or partial permission is withheld', () => {
    stubDeno({ ...granted(ALL), net: { state: 'denied' }, read: { state: 'granted', partial: true } });
    expect(withheld()).toEqual(['read', 'net']);
  });

  it("Deno's NotCapable met later (a permission revoked): a FileSystemError whose syscallCode is NotCapable, naming --allow-all", () => {
    const notCapable = Object.assign(new Error('Requires all access to "/proc/self/fd", run again with the --allow-all flag'), { name: 'NotCapable' });
    const error = toFileSystemError('open the root', '/srv/tmp', notCapable);
    expect(error).toBeInstanceOf(FileSystemError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'NotCapable', cause: notCapable });
    expect(error.message).toMatch(/^Could not open the root \/srv\/tmp: NotCapable\. Deno refused it\. .*--allow-all \(-A\)/);
  });
});
