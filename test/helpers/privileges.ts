import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeEach, it, type TestContext } from 'vitest';
import { LIBFAKETIME } from './child.js';

/** True when this process runs as root (uid 0). */
export const isRoot = process.getuid?.() === 0;

/** What a test needs beyond Node. Each field that is set must hold, or the test cannot run. */
export interface Needs {
  /** Why it needs root, e.g. `'mounting a tmpfs'`; unset when it does not. */
  readonly root?: string;
  /** Commands it runs: names looked up on the PATH, or absolute paths that must be executable. */
  readonly command?: string | readonly string[];
  /** Files it reads or preloads (absolute paths), e.g. libfaketime. */
  readonly file?: string | readonly string[];
  /** The Debian packages that give the commands and files, named in the reason. */
  readonly package?: string;
}

const list = (value: string | readonly string[] | undefined): readonly string[] =>
  value === undefined ? [] : typeof value === 'string' ? [value] : value;

// Looked up once per command and per file in a test process.
const found = new Map<string, string | undefined>();

function executable(candidate: string): boolean {
  try {
    fs.accessSync(candidate, fs.constants.X_OK);
    return fs.statSync(candidate).isFile();
  } catch {
    return false;
  }
}

/** The absolute path `command` runs from: itself when absolute, else its first match on the PATH. */
export function whereIs(command: string): string | undefined {
  if (found.has(command)) return found.get(command);
  const where = path.isAbsolute(command)
    ? executable(command) ? command : undefined
    : (process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir, command)).find((c) => path.isAbsolute(c) && executable(c));
  found.set(command, where);
  return where;
}

const files = new Map<string, boolean>();
function exists(file: string): boolean {
  let known = files.get(file);
  if (known === undefined) files.set(file, (known = fs.existsSync(file)));
  return known;
}

/** Why a test with these needs cannot run here, or `undefined` when it can. */
export function missing(what: Needs): string | undefined {
  const lacking: string[] = [];
  if (what.root !== undefined && !isRoot) lacking.push(`root (${what.root})`);
  const commands = list(what.command).filter((command) => whereIs(command) === undefined);
  if (commands.length > 0) lacking.push(`${commands.join(', ')} on the PATH`);
  const files = list(what.file).filter((file) => !exists(file));
  if (files.length > 0) lacking.push(files.join(', '));
  if (lacking.length === 0) return undefined;
  const install = commands.length + files.length > 0 && what.package ? ` (Debian: apt-get install ${what.package})` : '';
  return `needs ${lacking.join(' and ')}${install}`;
}

/**
 * Lets the test run only where what it needs is here. Where something is missing and `CI` is
 * unset (a developer's machine, a container run as root without the system packages), the test
 * skips and one line says why on the console (vitest's reporter does not show a skip's reason);
 * under `CI` it throws instead: CI installs every package and runs as root, so nothing skips there.
 */
export function needs(ctx: TestContext, what: Needs): void {
  const reason = missing(what);
  if (reason !== undefined) cannotRun(ctx, reason);
}

/**
 * What {@link needs} does once it knows why the test cannot run here (`reason`, e.g. `'needs
 * node.exe 22 in /tmp/...'`): skips with a printed line where `CI` is unset, throws under `CI`.
 */
export function cannotRun(ctx: TestContext, reason: string): void {
  if (process.env.CI) throw new Error(`this test ${reason}, and CI is set: CI must provide it (.ci/run installs the packages and runs as root)`);
  console.warn(`skipped: "${ctx.task.name}" ${reason}; CI=1 runs it`);
  ctx.skip(reason);
}

/** {@link needs} for every test of the enclosing `describe` (a `beforeEach`). */
export function eachNeeds(what: Needs): void {
  beforeEach((ctx) => needs(ctx, what));
}

type Body = (ctx: TestContext) => unknown;
type Timeout = number | undefined;

/**
 * `it`, for a test that {@link needs} what `what` names: it skips (printing why) where that is
 * missing and `CI` is unset, and fails where it is missing under `CI`. `.for(cases)` is `it.for`.
 */
export function itNeeds(what: Needs) {
  const test = (name: string, body: Body, timeout?: Timeout) =>
    it(name, async (ctx) => {
      needs(ctx, what);
      await body(ctx);
    }, timeout);
  test.for =
    <T>(cases: readonly T[]) =>
    (name: string, body: (value: T, ctx: TestContext) => unknown, timeout?: Timeout) =>
      it.for(cases)(name, { timeout }, async (value, ctx) => {
        needs(ctx, what);
        await body(value, ctx);
      });
  return test;
}

/** Root, to mount a file system (`mount -t tmpfs`, `mount --bind`) and to unmount it. */
export const MOUNTING: Needs = { root: 'mounting a file system', command: ['mount', 'umount'], package: 'mount' };

/** Root and `unshare` (util-linux), for a child in a PID namespace of its own: another machine, as pids go. */
export const PID_NAMESPACE: Needs = { root: 'making a PID namespace', command: 'unshare', package: 'util-linux' };

/** Root and `chattr` (e2fsprogs), to make a file immutable (`chattr +i`), even for root. */
export const CHATTR: Needs = { root: 'chattr +i', command: 'chattr', package: 'e2fsprogs' };

/**
 * libfaketime, preloaded to set a child's clock apart (test/helpers/child.ts). The `faketime`
 * command comes with it: a PATH without it hides the package (scripts/fresh-machine.sh --as-root).
 */
export const FAKETIME: Needs = { command: 'faketime', file: LIBFAKETIME, package: 'faketime' };

/** @deprecated Use {@link needs} with `{ root: what }`: the same, with the reason printed. */
export function needsRoot(ctx: TestContext, what: string): void {
  needs(ctx, { root: what });
}

/**
 * The node binary a child of another uid can run: this one, or a copy of it where every uid can
 * read it (`npx node@22` keeps its binary under root's home, closed to others, whatever HOME says).
 */
export function nodeFor(uid: number | undefined): string {
  if (uid === undefined || uid === process.getuid?.() || runnableByAll(process.execPath)) return process.execPath;
  const copy = path.join(os.tmpdir(), `tfm-node-${process.version}`);
  if (!trustedCopy(copy)) {
    fs.copyFileSync(process.execPath, `${copy}.${process.pid}`);
    fs.chmodSync(`${copy}.${process.pid}`, 0o755);
    fs.renameSync(`${copy}.${process.pid}`, copy);
  }
  return copy;
}

/** Whether every user may run `file`: it and each directory above it are open to others. */
function runnableByAll(file: string): boolean {
  for (let at = file; ; at = path.dirname(at)) {
    if ((fs.statSync(at).mode & 0o001) === 0) return false;
    if (at === path.dirname(at)) return true;
  }
}

// A copy in the shared temp directory is run only if this user made it and nobody else can
// change it: another user could plant a program at that name.
function trustedCopy(copy: string): boolean {
  try {
    const stats = fs.lstatSync(copy);
    return stats.isFile() && stats.uid === process.getuid?.() && (stats.mode & 0o022) === 0;
  } catch {
    return false;
  }
}
