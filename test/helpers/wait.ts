import fs from 'node:fs';

/**
 * Polls `check` every 10 ms until it holds; throws after `ms`. The default is long: a check that
 * holds returns at once, and a machine loaded at twice its cores makes timers fire late.
 */
export async function until(check: () => boolean, ms = 30_000, what = 'the condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${ms / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The names in a manager's session directory (none when it was never created). */
export function sessionFiles(mgr: { sessionPath: string }): string[] {
  return fs.existsSync(mgr.sessionPath) ? fs.readdirSync(mgr.sessionPath) : [];
}
