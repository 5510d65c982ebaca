import fs from 'node:fs';

/** Polls `check` every 10 ms until it holds; throws after `ms`. */
export async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The names in a manager's session directory (none when it was never created). */
export function sessionFiles(mgr: { sessionPath: string }): string[] {
  return fs.existsSync(mgr.sessionPath) ? fs.readdirSync(mgr.sessionPath) : [];
}
