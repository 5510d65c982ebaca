import type * as ChildProcess from 'node:child_process';
import type * as Crypto from 'node:crypto';
import { createRequire } from 'node:module';
import type * as StreamPromises from 'node:stream/promises';
import type * as WorkerThreads from 'node:worker_threads';

// The built-in modules a process that imports the library may never need, loaded at their first
// use: each one is code Node compiles and keeps for the process's life (node:crypto, 2.7 MiB of
// resident memory; node:child_process 2.8; node:worker_threads 2.1), paid by every process that
// imports the library, not only by the one that makes a file (docs/benchmarks.md, "Liveness").
interface Builtins {
  'node:child_process': typeof ChildProcess;
  'node:crypto': typeof Crypto;
  'node:stream/promises': typeof StreamPromises;
  'node:worker_threads': typeof WorkerThreads;
}

type Loader = (id: string) => unknown;
let loader: Loader | undefined;
const loaded = new Map<string, unknown>();

/** The built-in module `id`, loaded at its first call. @internal */
export function builtin<K extends keyof Builtins>(id: K): Builtins[K] {
  let module = loaded.get(id);
  if (module === undefined) {
    loader ??= typeof process.getBuiltinModule === 'function' ? (name) => process.getBuiltinModule(name) : createRequire('/');
    module = loader(id);
    loaded.set(id, module);
  }
  return module as Builtins[K];
}
