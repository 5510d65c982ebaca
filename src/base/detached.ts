import { builtin } from './builtin.js';
const { AsyncResource } = builtin('node:async_hooks');

// Made when the library is loaded, in the context of its import: no request's, no caller's.
// Timers and background work started through it carry this context, not the one of whoever
// made the first manager, so they neither run in a caller's AsyncLocalStorage store nor keep
// that store reachable. (AsyncResource works alike on Node 20's async_hooks-based stores and on
// the AsyncContextFrame of Node 24.)
const outside = new AsyncResource('tempfile-manager:background', { requireManualDestroy: true });

/**
 * Runs `fn` in the async context the library was loaded in, not the caller's: what `fn` starts
 * (a timer, a promise chain) runs there, and keeps no caller's stores alive. @internal
 */
export function detached<T>(fn: () => T): T {
  return outside.runInAsyncScope(fn);
}

/**
 * The async context of the caller, captured now: the function returned runs its argument in it
 * (as `AsyncLocalStorage.snapshot()` does), whatever context it is called from. @internal
 */
export function captureContext(): <R>(fn: () => R) => R {
  const here = new AsyncResource('tempfile-manager:span', { requireManualDestroy: true });
  return (fn) => here.runInAsyncScope(fn);
}
