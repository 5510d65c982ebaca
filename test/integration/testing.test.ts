// tempfile-manager/testing in this suite itself: a test given a scope by the vitest fixture, whose
// files the next test finds gone; and bad arguments refused at once, typed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test as base } from 'vitest';
import type { TempScope } from '../../src/index.js';
import { tempScopeFixture, tempScopeFor } from '../../src/testing/index.js';
import { TestDisk } from '../helpers/roots.js';

const disk = new TestDisk();
afterAll(() => disk.cleanup());
const manager = disk.manager();
const test = base.extend<{ tmp: TempScope }>({ tmp: tempScopeFixture({ manager }) });

describe('tempScopeFixture() in vitest', () => {
  const made: string[] = [];
  test('gives the test a scope of its own', async ({ tmp }) => {
    made.push((await tmp.write('bytes')).path, tmp.dir().path);
    expect(made.every((p) => fs.existsSync(p) && p.startsWith(manager.root))).toBe(true);
  });
  test("finds the last test's files gone", () => {
    expect(made).toHaveLength(2);
    expect(made.filter((p) => fs.existsSync(p))).toEqual([]);
  });
});

describe('bad arguments', () => {
  const refused = (call: () => unknown, option: string, says: RegExp) =>
    expect(call).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_INVALID_OPTION', option, message: expect.stringMatching(says) }));

  test('are refused when the fixture is made, naming the option and the value', () => {
    refused(() => tempScopeFixture({ roots: '/tmp' } as never), 'roots', /unknown option `roots` \(did you mean `root`\?\)/);
    refused(() => tempScopeFixture({ manager: {} } as never), 'manager', /must be a TempFileManager.*got/);
    refused(() => tempScopeFixture({ manager, root: os.tmpdir() }), 'root', new RegExp(`not both: the manager's root is ${manager.root}`));
  });

  test("tempScopeFor() needs a test's context with after()", async () => {
    await expect(tempScopeFor({} as never)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 't', message: expect.stringMatching(/after\(\).*got/) });
    const ran: (() => unknown)[] = [];
    const scope = await tempScopeFor({ after: (fn) => ran.push(fn) }, { manager });
    const file = scope.file();
    expect(ran).toHaveLength(1);
    await ran[0]!();
    expect(fs.existsSync(file.path)).toBe(false);
    expect(path.dirname(file.path)).toBe(manager.sessionPath);
  });
});
