import { it, type TestContext } from 'vitest';

/** True when this process runs as root (uid 0). */
export const isRoot = process.getuid?.() === 0;

/**
 * Skips the test when this process is not root and `CI` is unset, so that `npm test` passes on
 * a developer's machine. Under CI (which runs as root) a missing privilege fails the test
 * instead: a test that needs root never skips there.
 */
export function needsRoot(ctx: TestContext, what: string): void {
  if (isRoot) return;
  if (process.env.CI) throw new Error(`${what} needs root, and CI is set: run CI as root.`);
  ctx.skip(`${what} needs root (CI runs it as root)`);
}

/**
 * `it`, skipped when this process is not root and `CI` is unset (as {@link needsRoot}); for tests
 * that make PID namespaces (`unshare`), also as `itAsRoot.each`. Under CI it always runs.
 */
export const itAsRoot = it.skipIf(!isRoot && !process.env.CI);
