import { builtin } from './builtin.js';
const { formatWithOptions } = builtin('node:util');

// The library's own debug lines, read as the `debug` package reads them (DEBUG=tempfile-manager:*,
// comma- or space-separated patterns, `*` for any run of characters, `-` to leave one out), without
// loading it: `debug` costs 8 MiB of memory at rest in every process that imports the library,
// requires `tty` at load (which an ESM bundle cannot do) and reads the environment at import
// (which Deno without env access refuses before the library can say what it needs).

/** A debug log line writer: `printf`-like, a no-op unless its namespace is enabled. */
export interface Logger {
  (format: string, ...args: unknown[]): void;
  /** Whether this logger writes (its namespace matches `DEBUG`). */
  readonly enabled: boolean;
}

/** A debug logger under `tempfile-manager:<area>`; enable with `DEBUG=tempfile-manager:*`. */
export function logger(area: string): Logger {
  const namespace = `tempfile-manager:${area}`;
  let enabled: boolean | undefined;
  const isEnabled = () => (enabled ??= namespaceEnabled(namespace, readDebugVariable()));
  const log = (format: string, ...args: unknown[]): void => {
    if (!isEnabled()) return;
    process.stderr.write(`${new Date().toISOString()} ${namespace} ${formatWithOptions({ colors: false }, format, ...args)}\n`);
  };
  Object.defineProperty(log, 'enabled', { get: isEnabled });
  return log as Logger;
}

/** Whether `namespace` matches the `DEBUG` value `patterns`, as the `debug` package decides it. */
function namespaceEnabled(namespace: string, patterns: string): boolean {
  let enabled = false;
  for (const pattern of patterns.split(/[\s,]+/)) {
    if (pattern === '') continue;
    const skip = pattern.startsWith('-');
    const glob = skip ? pattern.slice(1) : pattern;
    if (!globMatches(glob, namespace)) continue;
    if (skip) return false;
    enabled = true;
  }
  return enabled;
}

function globMatches(glob: string, text: string): boolean {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*?');
  return new RegExp(`^${escaped}$`).test(text);
}

// Read on the first line logged, never at import; a runtime that withholds the environment
// (Deno without --allow-env) logs nothing rather than failing the caller.
function readDebugVariable(): string {
  try {
    return process.env.DEBUG ?? '';
  } catch {
    return '';
  }
}
