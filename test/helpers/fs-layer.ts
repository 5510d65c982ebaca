import nodeFs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The library calls `node:fs` itself (src/disk/fs.ts): a test reaches it with a layer over that
// module object. `layFs()` patches the methods the library calls, on `fs` and `fs.promises`, for
// the test's duration: a call whose path is under a directory of a layer goes to that layer, any
// other to the real file system. Several layers may be laid at once (tests of one file run
// concurrently, each with its own scratch disk): each call finds the layer of the disk its path
// is under, the last one laid where two cover it. Paths through `/proc/<pid>/fd/<fd>` (pinned
// directories) are resolved by their link; calls on a descriptor go to the layer whose call opened
// it. The test's own calls (a readFileSync of a temp file, a layer's call of the real method) are
// the real file system's, as they were when the layer was an option of the manager.

/** The sync and callback methods of `node:fs` the library calls. */
const METHODS = [
  'open', 'write', 'close', 'read', 'ftruncate', 'openSync', 'closeSync', 'writeSync', 'readSync', 'mkdirSync', 'fstatSync',
  'readdirSync', 'lstatSync', 'unlinkSync', 'rmSync', 'fchmodSync', 'futimesSync', 'chmodSync', 'opendirSync', 'rmdirSync',
  'linkSync', 'renameSync', 'statSync', 'utimesSync', 'symlinkSync', 'readlinkSync', 'realpathSync', 'statfsSync',
  'createReadStream', 'createWriteStream',
] as const;
/** The methods of `fs.promises` the library calls. */
const PROMISE_METHODS = ['unlink', 'rm', 'rmdir', 'mkdir', 'lstat', 'link', 'rename', 'copyFile', 'open', 'readdir', 'statfs', 'opendir'] as const;
/** The methods whose first argument is a descriptor. */
const FD_METHODS = new Set<string>(['write', 'close', 'read', 'ftruncate', 'closeSync', 'writeSync', 'readSync', 'fstatSync', 'fchmodSync', 'futimesSync']);
/** The methods that take two paths. */
const TWO_PATHS = new Set<string>(['linkSync', 'renameSync', 'symlinkSync', 'link', 'rename', 'copyFile']);

type Method = (typeof METHODS)[number];
type PromiseMethod = (typeof PROMISE_METHODS)[number];
type AnyFn = (...args: unknown[]) => unknown;

/**
 * What a layer gives: the part of `node:fs` the library uses, with the methods it changes. A
 * layer built as `{ ...realFs, openSync: ..., promises: { ...realFs.promises, open: ... } }`
 * calls the real file system for the rest. `platform: 'win32'` is kept for the Windows layer
 * (windows-holds.test.ts plays Windows' removal rules by a module mock, see there).
 */
export type FsLayer = Pick<typeof nodeFs, Method> & {
  readonly promises: Pick<typeof nodeFs.promises, PromiseMethod>;
  readonly platform?: NodeJS.Platform;
};

/** How deep the running code is in calls of the real file system: Node's own calls inside them are real too. */
let inReal = 0;

/** The real method `real`, during whose run Node's calls through `node:fs` (rmSync's readdirSync...) skip the layers. */
function realCall(real: AnyFn): AnyFn {
  return function (this: unknown, ...args: unknown[]): unknown {
    inReal += 1;
    try {
      return real.apply(this, args);
    } finally {
      inReal -= 1;
    }
  };
}

/** `node:fs`'s own methods, put back when the last layer is lifted. */
const originals = {
  sync: Object.fromEntries(METHODS.map((name) => [name, nodeFs[name]])) as Record<Method, unknown>,
  promises: Object.fromEntries(PROMISE_METHODS.map((name) => [name, nodeFs.promises[name]])) as Record<PromiseMethod, unknown>,
};

/** The real `node:fs`, as it was before any layer: what layers build on. */
export const realFs: FsLayer = {
  ...(Object.fromEntries(METHODS.map((name) => [name, realCall(nodeFs[name] as AnyFn)])) as Pick<typeof nodeFs, Method>),
  promises: Object.fromEntries(PROMISE_METHODS.map((name) => [name, nodeFs.promises[name]])) as Pick<typeof nodeFs.promises, PromiseMethod>,
};

interface Laid {
  readonly layer: FsLayer;
  readonly owns: (canonicalPath: string) => boolean;
}

const laid = new Set<Laid>();
/** Descriptors a layer's open gave, and that layer: their calls go to it until they are closed. */
const fdLayer = new Map<number, Laid>();
const PROC_FD = /^\/proc\/(self|\d+)\/fd\/(\d+)(\/.*)?$/;

/** The real path a path of the library names: one through `/proc/<pid>/fd/<fd>` resolved by its link. */
export function canonical(file: string): string {
  const match = PROC_FD.exec(file);
  if (!match) return path.resolve(file);
  const [, pid, fd, rest] = match;
  try {
    return path.resolve((realFs.readlinkSync(`/proc/${pid}/fd/${fd}`) as string) + (rest ?? ''));
  } catch {
    return path.resolve(file);
  }
}

function pathOf(arg: unknown): string | undefined {
  if (typeof arg === 'string') return arg;
  if (Buffer.isBuffer(arg)) return arg.toString();
  if (arg instanceof URL) return arg.pathname;
  return undefined;
}

function layerOfPath(arg: unknown): Laid | undefined {
  const file = pathOf(arg);
  if (file === undefined || laid.size === 0) return undefined;
  const where = canonical(file);
  return [...laid].reverse().find((entry) => entry.owns(where)); // the last laid over a disk takes its calls
}

const TEST_DIR = fileURLToPath(new URL('..', import.meta.url));
const THIS_FILE = fileURLToPath(import.meta.url);

/** Whether the code that made this call is a test's (under test/, this file aside), not the library's or Node's. */
/**
 * The `limit` nearest call sites above `below`, structured, not the stack's text: formatting a
 * stack on every fs call costs more than the call.
 */
export function callSites(limit: number, below: (...args: never[]) => unknown): NodeJS.CallSite[] {
  const savedLimit = Error.stackTraceLimit;
  const prepare = Error.prepareStackTrace;
  Error.stackTraceLimit = limit;
  Error.prepareStackTrace = (_error, sites) => sites;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  Error.captureStackTrace(holder, below);
  const sites = holder.stack ?? []; // formatted on this first read, by the hook above
  Error.stackTraceLimit = savedLimit;
  Error.prepareStackTrace = prepare;
  return sites;
}

function calledByTest(): boolean {
  for (const site of callSites(8, calledByTest)) {
    const at = site.getFileName();
    if (at === undefined || at === null || !(at.startsWith('/') || at.startsWith('file://'))) continue; // node:internal, <anonymous>
    const file = at.startsWith('file://') ? fileURLToPath(at) : at;
    if (file === THIS_FILE) continue;
    return file.startsWith(TEST_DIR);
  }
  return false;
}

function layerOf(name: string, args: unknown[]): Laid | undefined {
  if (inReal > 0) return undefined;
  const entry = FD_METHODS.has(name)
    ? typeof args[0] === 'number' ? fdLayer.get(args[0]) : undefined
    : (layerOfPath(args[0]) ?? (TWO_PATHS.has(name) ? layerOfPath(args[1]) : undefined));
  return entry === undefined || calledByTest() ? undefined : entry;
}

const dispatchers = new WeakSet<AnyFn>();

/** The layer's own method, or the real one where the layer holds a dispatcher (built over a patched fs). */
function target(own: unknown, real: unknown): AnyFn {
  return (typeof own === 'function' && !dispatchers.has(own as AnyFn) ? own : real) as AnyFn;
}

function remember(entry: Laid, name: string, args: unknown[]): unknown[] {
  if (name === 'open') {
    const callback = args[args.length - 1] as AnyFn;
    args[args.length - 1] = (err: unknown, fd: number) => {
      if (!err) fdLayer.set(fd, entry);
      callback(err, fd);
    };
  }
  return args;
}

function forget(name: string, args: unknown[]): void {
  if ((name === 'close' || name === 'closeSync') && typeof args[0] === 'number') fdLayer.delete(args[0]);
}

function syncDispatcher(name: Method): AnyFn {
  const real = realFs[name] as AnyFn;
  const dispatch = function (this: unknown, ...args: unknown[]): unknown {
    const entry = layerOf(name, args);
    if (!entry) return real.apply(this, args);
    forget(name, args);
    const result = target(entry.layer[name], real).apply(entry.layer, remember(entry, name, args));
    if (name === 'openSync' && typeof result === 'number') fdLayer.set(result, entry);
    return result;
  };
  dispatchers.add(dispatch);
  return dispatch;
}

function promiseDispatcher(name: PromiseMethod): AnyFn {
  const real = realFs.promises[name] as AnyFn;
  const dispatch = function (this: unknown, ...args: unknown[]): unknown {
    const entry = layerOf(name, args);
    if (!entry) return real.apply(this, args);
    return target(entry.layer.promises[name], real).apply(entry.layer.promises, args);
  };
  dispatchers.add(dispatch);
  return dispatch;
}

const patched = {
  sync: Object.fromEntries(METHODS.map((name) => [name, syncDispatcher(name)])) as Record<Method, AnyFn>,
  promises: Object.fromEntries(PROMISE_METHODS.map((name) => [name, promiseDispatcher(name)])) as Record<PromiseMethod, AnyFn>,
};

function patch(on: boolean): void {
  const fsObject = nodeFs as unknown as Record<string, unknown>;
  const promises = nodeFs.promises as unknown as Record<string, unknown>;
  for (const name of METHODS) fsObject[name] = on ? patched.sync[name] : originals.sync[name];
  for (const name of PROMISE_METHODS) promises[name] = on ? patched.promises[name] : originals.promises[name];
}

/**
 * Lays `layer` over `node:fs` for the calls under `dirs` (or for which `dirs` says yes, given
 * the real path), until the returned function lifts it: a test lays it through its
 * {@link TestDisk} (test/helpers/roots.ts), whose end lifts it.
 */
export function layFs(layer: FsLayer, dirs: readonly string[] | ((canonicalPath: string) => boolean)): () => void {
  const roots = typeof dirs === 'function' ? [] : dirs.map((dir) => canonical(dir));
  const owns = typeof dirs === 'function' ? dirs : (where: string) => roots.some((root) => where === root || where.startsWith(root + path.sep));
  const entry: Laid = { layer, owns };
  if (laid.size === 0) patch(true);
  laid.add(entry);
  let lifted = false;
  const lift = () => {
    if (lifted) return;
    lifted = true;
    laid.delete(entry);
    for (const [fd, owner] of fdLayer) if (owner === entry) fdLayer.delete(fd);
    if (laid.size === 0) patch(false);
  };
  return lift;
}
