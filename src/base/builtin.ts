import { createRequire } from 'node:module';

// Node's built-in modules, reached through process.getBuiltinModule(), never an ES module import:
// importing one as an ES module builds its namespace, which reads every export (node:fs's
// `promises` getter loads streams and readline): +2.3 MiB of resident memory for node:fs alone,
// +3.2 for node:http, paid by every process that imports the library (docs/benchmarks.md,
// "Liveness"). Those a process may never need (node:crypto, 2.7 MiB; node:child_process 2.8;
// node:worker_threads 2.1) are loaded at their first use, by the function that needs them.
interface Builtins {
  'node:async_hooks': typeof import('node:async_hooks');
  'node:child_process': typeof import('node:child_process');
  'node:crypto': typeof import('node:crypto');
  'node:diagnostics_channel': typeof import('node:diagnostics_channel');
  'node:fs': typeof import('node:fs');
  'node:http': typeof import('node:http');
  'node:module': typeof import('node:module');
  'node:os': typeof import('node:os');
  'node:path': typeof import('node:path');
  'node:stream': typeof import('node:stream');
  'node:stream/promises': typeof import('node:stream/promises');
  'node:util': typeof import('node:util');
  'node:worker_threads': typeof import('node:worker_threads');
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
