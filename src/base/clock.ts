// The process's monotonic clock, in milliseconds: what every timeout, rate and stale check of the
// library measures on. `process.hrtime()` rather than `performance.now()`: reading the global
// `performance` loads node:perf_hooks (0.6 MiB resident), which a manager at rest has no use for.

/** Milliseconds on the process's monotonic clock (an arbitrary origin; only differences mean anything). @internal */
export function monotonicMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}
