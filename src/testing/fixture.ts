import { TempFileManager } from '../manager/manager.js';
import type { TempScope } from '../handles/scope.js';
import { InvalidOptionError } from '../base/errors.js';
import { describeArgument, ownOptions, validateObject, type NoneLeftOut } from '../base/validators.js';
import { builtin } from '../base/builtin.js';
const { isMainThread } = builtin('node:worker_threads');

/** Options of {@link tempScopeFixture} and {@link tempScopeFor}. */
export interface TestScopeOptions {
  /**
   * The manager whose scopes the tests get. Default: one manager per process and root, made on
   * first use, which first sweeps what dead processes (a killed run) left under the root.
   */
  readonly manager?: TempFileManager;
  /** The root of the default manager. Default: the manager's default root. Not with `manager`. */
  readonly root?: string;
}

/** A vitest fixture: what `test.extend({ tmp: tempScopeFixture() })` takes. */
export type TempScopeFixture = (context: object, use: (scope: TempScope) => Promise<void>) => Promise<void>;

/** What {@link tempScopeFor} needs of a `node:test` test context: its `after()`. */
export interface TestContextWithAfter {
  /** Runs `fn` once the test ended, passed or failed. */
  after(fn: () => unknown): unknown;
}

/** The names of the fixture's options: every key of {@link TestScopeOptions} (`NoneLeftOut`). */
const TEST_SCOPE_OPTION_KEYS = ['manager', 'root'] as const satisfies readonly (keyof TestScopeOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type TestScopeOptionsListed = NoneLeftOut<Exclude<keyof TestScopeOptions, (typeof TEST_SCOPE_OPTION_KEYS)[number]>>;
const OPTIONS: ReadonlySet<string> = new Set<string>(TEST_SCOPE_OPTION_KEYS);

/** The default managers of this process (or thread), by root: each swept once before its first scope. */
const managers = new Map<string, Promise<TempFileManager>>();

/** The roots whose default manager swept already (a later one, in a worker thread, does not sweep again). */
const swept = new Set<string>();

/**
 * In a worker thread (vitest's `pool: 'threads'`), the tests' scopes on each default manager:
 * the manager is closed, its session and lock removed, as soon as none is live, since a worker
 * ended by `worker.terminate()` runs no exit hook. The main thread keeps its managers: its exit
 * hook removes their sessions.
 */
const lent = new Map<string, number>();

/**
 * A fixture for vitest's `test.extend()`: each test that names it gets a fresh scope, removed
 * with everything in it when the test ends, passed or failed. A runner killed mid-test leaves its
 * files in its session; the next run's first use of the fixture sweeps the sessions of dead
 * processes under the root, before any test gets its scope. A test's files live under the root,
 * never in its working directory.
 *
 * @example
 * import { test as base, expect } from 'vitest';
 * import type { TempScope } from 'tempfile-manager';
 * import { tempScopeFixture } from 'tempfile-manager/testing';
 *
 * const test = base.extend<{ tmp: TempScope }>({ tmp: tempScopeFixture() });
 * test('renders', async ({ tmp }) => {
 *   const out = tmp.file('.pdf'); // gone when the test ends
 *   expect(out.path).toContain('.pdf');
 * });
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: bad `options` (an unknown
 * name, `manager` not a TempFileManager, `manager` and `root` both given).
 * @throws In the test, not here: what `new TempFileManager()` and `mgr.sweep()` throw on first
 * use (an unsafe root...), and a {@link RemoveError} from the scope's removal at the end.
 */
export function tempScopeFixture(options?: TestScopeOptions): TempScopeFixture {
  const source = managerSource(options, 'tempScopeFixture()');
  const end = loanEnd(options);
  // vitest reads the fixture's parameters from its source: the first must be a destructuring.
  // eslint-disable-next-line no-empty-pattern
  return async ({}: object, use: (scope: TempScope) => Promise<void>): Promise<void> => {
    const { scope, close } = await borrowScope(source, end);
    try {
      await use(scope);
    } finally {
      await close();
    }
  };
}

/**
 * A scope for one `node:test` test, removed with everything in it by `t.after()` when the test
 * ends, passed or failed; the first call of a process sweeps what dead processes (a killed run)
 * left under the root, as {@link tempScopeFixture} does.
 *
 * @example
 * import { test } from 'node:test';
 * import { tempScopeFor } from 'tempfile-manager/testing';
 *
 * test('renders', async (t) => {
 *   const tmp = await tempScopeFor(t);
 *   const out = tmp.file('.pdf'); // gone when the test ends
 * });
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `t` has no `after()` function,
 * or bad `options`, as {@link tempScopeFixture} says.
 * @throws What `new TempFileManager()` and `mgr.sweep()` throw on first use (an unsafe root...).
 */
export async function tempScopeFor(t: TestContextWithAfter, options?: TestScopeOptions): Promise<TempScope> {
  const after = (t as Partial<TestContextWithAfter> | null | undefined)?.after;
  if (typeof after !== 'function') {
    throw new InvalidOptionError('t', `tempScopeFor(t) takes the test's context, whose after() removes the scope (\`test('name', async (t) => { ... })\`); got ${describeArgument(t)}.`);
  }
  const source = managerSource(options, 'tempScopeFor()');
  const end = loanEnd(options);
  const { scope, close } = await borrowScope(source, end);
  after.call(t, close);
  return scope;
}

/**
 * A scope of the manager `source` lends, and its `close()`: the scope removed, then the manager
 * given back (also when the scope cannot be made).
 */
async function borrowScope(
  source: () => Promise<TempFileManager>,
  end: (manager: TempFileManager) => Promise<void>,
): Promise<{ scope: TempScope; close: () => Promise<void> }> {
  const lent = await source();
  let scope: TempScope;
  try {
    scope = lent.scope();
  } catch (err) {
    await end(lent);
    throw err;
  }
  const close = async (): Promise<void> => {
    try {
      await scope.remove();
    } finally {
      await end(lent);
    }
  };
  return { scope, close };
}

/** Checks `options` at once and returns how to reach the manager: the given one, or the root's default. */
function managerSource(options: TestScopeOptions | undefined, call: string): () => Promise<TempFileManager> {
  validateObject(options, call, OPTIONS, '{ root } or { manager }', describeArgument);
  const { manager, root } = ownOptions(options);
  if (manager !== undefined) {
    if (!isManager(manager)) {
      throw new InvalidOptionError('manager', `${call}: \`manager\` must be a TempFileManager (new TempFileManager({ root })), got ${describeArgument(manager)}.`);
    }
    if (root !== undefined) {
      throw new InvalidOptionError('root', `${call}: give \`manager\` or \`root\`, not both: the manager's root is ${manager.root}.`);
    }
    return () => Promise.resolve(manager);
  }
  return () => lend(root);
}

/** What ends a scope's loan of its manager: nothing for a given manager. */
function loanEnd(options: TestScopeOptions | undefined): (manager: TempFileManager) => Promise<void> {
  const { manager, root } = ownOptions(options);
  return manager !== undefined ? () => Promise.resolve() : (made) => giveBack(root, made);
}

/** The root's default manager, counted (before any wait) as lent to one more scope in a worker thread. */
async function lend(root: string | undefined): Promise<TempFileManager> {
  const key = root ?? '';
  if (isMainThread) return defaultManager(root);
  lent.set(key, (lent.get(key) ?? 0) + 1);
  try {
    return await defaultManager(root);
  } catch (err) {
    lent.set(key, lent.get(key)! - 1);
    throw err;
  }
}

/** One scope on the root's default manager ended: in a worker thread, the last one closes the manager. */
async function giveBack(root: string | undefined, manager: TempFileManager): Promise<void> {
  const key = root ?? '';
  const live = lent.get(key);
  if (live === undefined) return;
  lent.set(key, live - 1);
  if (live > 1) return;
  lent.delete(key);
  managers.delete(key); // the next test makes another, on a new session
  await manager.close();
}

// Not instanceof: a manager of the other build (ESM or CJS) of this package is one too.
function isManager(value: unknown): value is TempFileManager {
  const candidate = value as Partial<TempFileManager> | null;
  return typeof candidate === 'object' && candidate !== null && typeof candidate.scope === 'function' && typeof candidate.sweep === 'function';
}

/** The process's manager on `root`, swept once before it is first used; a failure is retried by the next call. */
function defaultManager(root: string | undefined): Promise<TempFileManager> {
  const key = root ?? '';
  let made = managers.get(key);
  if (!made) {
    made = sweptManager(root);
    managers.set(key, made);
    made.catch(() => managers.delete(key));
  }
  return made;
}

async function sweptManager(root: string | undefined): Promise<TempFileManager> {
  const manager = new TempFileManager({ ...(root !== undefined && { root }), sweepOnStart: false });
  const key = root ?? '';
  if (swept.has(key)) return manager;
  try {
    await manager.sweep();
    swept.add(key);
  } catch (err) {
    await manager.close().catch(() => {});
    throw err;
  }
  return manager;
}
