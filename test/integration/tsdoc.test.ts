// Every public member of the package says what it throws (scripts/check-tsdoc.mjs): a doc comment
// with a `@throws` tag on every exported function, and on every public constructor, method and
// getter of every exported class of the three entry points. And the check can fail: a fixture
// with each kind of member it must flag, and each it must skip.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
// @ts-expect-error: a plain script of the project, without types
import { checkTsdoc } from '../../scripts/check-tsdoc.mjs';
import { scratchDir } from '../helpers/roots.js';

interface Member {
  file: string;
  line: number;
  name: string;
  why: string | undefined;
}
type Check = (options?: { entries?: string[]; project?: string | null; cwd?: string }) => { members: Member[]; problems: Member[] };

const repo = path.join(import.meta.dirname, '../..');
const script = path.join(repo, 'scripts/check-tsdoc.mjs');
const check = checkTsdoc as Check;

it('every public member of the package has a doc comment with a @throws tag', () => {
  const { members, problems } = check();
  expect(problems.map((p) => `${p.file}:${p.line} ${p.name} (${p.why})`)).toEqual([]);
  // A walk that found nothing would pass anything: the members of each entry point, inherited ones
  // and disposers included, are there; internal, private and protected ones are not.
  const names = members.map((m) => m.name);
  expect(names.length).toBeGreaterThan(80);
  expect(names).toEqual(
    expect.arrayContaining([
      'TempFileManager.constructor',
      'TempFileManager.get sessionPath',
      'TempFileManager.[Symbol.asyncDispose]',
      'TempFile.keep',
      'DiskHandle.remove',
      'TempScope.withScope',
      'ClaimedFile.releaseSync',
      'parseTicket',
      'isTempFileError',
      'TempFileError.constructor',
      'tempScope',
      'upload',
      'deferContinue',
      'tempFiles',
    ]),
  );
  for (const hidden of ['TempFile.account', 'TempFile.get identity', 'DiskHandle.abandon', 'DiskHandle.moveOut', 'TempScope.adopt', 'ClaimedFile.constructor', 'ClaimedFile.begin']) {
    expect(names, hidden).not.toContain(hidden);
  }
});

// The package itself is checked once, in process, above: the command is held to its answer on a
// file that passes.
it('node scripts/check-tsdoc.mjs exits 0 on a file whose every public member says what it throws, counting them', () => {
  const dir = scratchDir();
  const file = path.join(dir, 'documented.ts');
  fs.writeFileSync(file, '/** Says what it throws. @throws Never. */\nexport function one(): void {}\n/** Too. @throws {RangeError} When told to. */\nexport const two = (): void => {};\n/** Not public. @internal */\nexport function hidden(): void {}\n');
  const run = spawnSync(process.execPath, [script, file], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  expect(run.stdout).toBe('2 public members, each with a @throws tag.\n');
});

const FIXTURE = `\
/** Says what it throws. @throws Never. It returns its argument. */
export function good(x: number): number {
  return x;
}
/** Documented, but not what it throws. */
export function noThrows(): void {}
export function noDoc(): void {}
/** Not public. @internal */
export function hidden(): void {}
/** A constant that can be called is a function of the API. */
export const callable = (): void => {};
/** A constant that cannot be called is not checked. */
export const value = 1;
/** An interface is not checked. */
export interface Shape {
  area(): number;
}

/** A class. */
export class Widget {
  /** @throws Never. */
  constructor() {}
  /** A getter, documented, but not what it throws. */
  get size(): number {
    return 1;
  }
  /**
   * Says what it throws, on a line of its own.
   * @throws {@link Error} always.
   */
  run(): void {
    throw new Error('run');
  }
  /** A \`@throws\` in code is not a tag. */
  quoted(): void {}
  missing(): void {}
  /** @internal */
  internal(): void {}
  private secret(): void {}
  protected guarded(): void {}
  #own(): void {}
  /** A property is not checked. */
  readonly field = 1;
  /** @throws Never. */
  static make(): Widget {
    return new Widget();
  }
  /** A static one, not documented as it should be. */
  static build(): Widget {
    return new Widget();
  }
}

/** Not public, with all its members. @internal */
export class Hidden {
  open(): void {}
}

class Base {
  /** Documented where it is declared, but not what it throws. */
  inherited(): void {}
}

/** Public: its inherited members are too. */
export class Derived extends Base {}
`;

const EXPECTED = [
  'fixture.ts:6 noThrows (no @throws tag)',
  'fixture.ts:7 noDoc (no doc comment)',
  'fixture.ts:11 callable (no @throws tag)',
  'fixture.ts:24 Widget.get size (no @throws tag)',
  'fixture.ts:35 Widget.quoted (no @throws tag)',
  'fixture.ts:36 Widget.missing (no doc comment)',
  'fixture.ts:49 Widget.build (no @throws tag)',
  'fixture.ts:61 Base.inherited (no @throws tag)',
];

function fixture(): { dir: string; file: string } {
  const dir = scratchDir();
  const file = path.join(dir, 'fixture.ts');
  fs.writeFileSync(file, FIXTURE);
  return { dir, file };
}

it('the check fails on each member without a doc comment or without a @throws tag, and only on those', () => {
  const { dir, file } = fixture();
  const { members, problems } = check({ entries: [file], project: null, cwd: dir });
  expect(problems.map((p) => `${p.file}:${p.line} ${p.name} (${p.why})`)).toEqual(EXPECTED);
  expect(members.filter((m) => m.why === undefined).map((m) => m.name)).toEqual(['good', 'Widget.constructor', 'Widget.run', 'Widget.make']);
});

it('node scripts/check-tsdoc.mjs exits 1 on such a fixture, listing file:line name', () => {
  const { dir, file } = fixture();
  const run = spawnSync(process.execPath, [script, file], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  expect(run.status).toBe(1);
  const listed = run.stderr.split('\n').filter((line) => line.startsWith('fixture.ts:'));
  expect(listed).toEqual(EXPECTED);
});

// Docs by reference: a forwarder inherits its target's docs, and the errors many calls share are
// described once and linked. Each reference must lead somewhere that passes the check itself.
const REFERENCES = `\
/**
 * The errors every call that touches the disk can throw.
 * @throws Never. A type: nothing runs.
 */
export type SharedErrors = Error;

/** A class with the docs. */
export class Scope {
  /**
   * Makes a file.
   * @throws {@link Error} when the disk fails.
   */
  file(): void {}
  /** Documented, but not what it throws. */
  bare(): void {}
  /**
   * Links to the shared section.
   * @throws See {@link SharedErrors}.
   */
  shared(): void {}
}

/** A class that forwards. */
export class Manager {
  /** {@inheritDoc Scope.file} */
  file(): void {}
  /** {@inheritDoc Scope.nothing} */
  dangling(): void {}
  /** {@inheritDoc Nowhere.file} */
  nowhere(): void {}
  /** {@inheritDoc Scope.bare} */
  bare(): void {}
  /** {@inheritDoc Manager.loop} */
  loop(): void {}
  /**
   * Links to a section that is not there.
   * @throws See {@link MissingErrors}.
   */
  missing(): void {}
  /** Neither a \`@throws\` nor an inheritDoc. */
  neither(): void {}
}
`;

function referencesFixture(): { dir: string; file: string } {
  const dir = scratchDir();
  const file = path.join(dir, 'references.ts');
  fs.writeFileSync(file, REFERENCES);
  return { dir, file };
}

it('{@inheritDoc Class.member} stands for a @throws when the member exists and passes; a dangling one, or one of a member without @throws, is refused', () => {
  const { dir, file } = referencesFixture();
  const { members, problems } = check({ entries: [file], project: null, cwd: dir });
  const why = Object.fromEntries(problems.map((p) => [p.name, p.why]));
  expect(members.filter((m) => m.why === undefined).map((m) => m.name)).toEqual(['Scope.file', 'Scope.shared', 'Manager.file']);
  expect(why['Manager.dangling']).toBe('{@inheritDoc Scope.nothing} names nothing: no such class member in scope');
  expect(why['Manager.nowhere']).toBe('{@inheritDoc Nowhere.file} names nothing: no such class member in scope');
  expect(why['Manager.bare']).toBe('{@inheritDoc Scope.bare} names a member that fails the check (no @throws tag)');
  expect(why['Manager.loop']).toBe('{@inheritDoc Manager.loop} goes round in a circle');
  expect(why['Manager.neither']).toBe('no @throws tag');
  expect(why['Scope.bare']).toBe('no @throws tag');
});

it('a @throws that links to the shared errors section passes; a link to nothing is refused', () => {
  const { dir, file } = referencesFixture();
  const { problems } = check({ entries: [file], project: null, cwd: dir });
  expect(problems.map((p) => p.name)).not.toContain('Scope.shared');
  expect(problems.find((p) => p.name === 'Manager.missing')?.why).toBe(
    '@throws See {@link MissingErrors} names nothing in scope: export or import MissingErrors, or fix the name',
  );
});

it('node scripts/check-tsdoc.mjs exits 1 on a dangling {@inheritDoc}, naming the reference', () => {
  const { dir, file } = referencesFixture();
  const run = spawnSync(process.execPath, [script, file], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  expect(run.status).toBe(1);
  expect(run.stderr).toContain('references.ts:28 Manager.dangling ({@inheritDoc Scope.nothing} names nothing: no such class member in scope)');
  expect(run.stderr).not.toMatch(/Manager\.file\b/);
});
