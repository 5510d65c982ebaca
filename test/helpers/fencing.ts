import fs from 'node:fs';
import path from 'node:path';
import { AlreadyClaimedError, type ClaimedFile, type HandoffTicket, type TempFileManager } from '../../src/index.js';

/** Every step a claim can take. */
export const STEPS = ['consume', 'consumeSync', 'release', 'keep', 'asyncDispose', 'dispose'] as const;
/** What the claimer that took an entry over may have done with it since. */
export const SINCE = ['holds it', 'released it', 'consumed it', 'kept it', 'let it expire, swept'] as const;
export type Step = (typeof STEPS)[number];
export type Since = (typeof SINCE)[number];

/** Every step after every "since": the cases of the fencing matrix. */
export const FENCE_CASES = STEPS.flatMap((step) => SINCE.map((since) => ({ step, since })));

/** Takes one step through a claim; resolves with the error, or undefined. */
export async function step(claimed: ClaimedFile, which: Step, dest: string): Promise<unknown> {
  try {
    if (which === 'consume') await claimed.consume();
    else if (which === 'consumeSync') claimed.consumeSync();
    else if (which === 'release') await claimed.release();
    else if (which === 'keep') await claimed.keep(dest);
    else if (which === 'asyncDispose') await claimed[Symbol.asyncDispose]();
    else claimed[Symbol.dispose]();
    return undefined;
  } catch (err) {
    return err;
  }
}

/** Every path under `dir` with its content: what "changes nothing" is checked against. */
export function snapshot(dir: string): Record<string, string> {
  if (!fs.existsSync(dir)) return {};
  const out: Record<string, string> = {};
  for (const name of (fs.readdirSync(dir, { recursive: true }) as string[]).sort()) {
    const full = path.join(dir, name);
    out[name] = fs.lstatSync(full).isFile() ? fs.readFileSync(full, 'utf8') : '<dir>';
  }
  return out;
}

/** Claims until the holder is judged dead (from another host: by its heartbeat). */
export async function takeOver(mgr: TempFileManager, ticket: HandoffTicket): Promise<ClaimedFile> {
  for (const until = Date.now() + 30_000; ; ) {
    try {
      return await mgr.claim(ticket);
    } catch (err) {
      if (!(err instanceof AlreadyClaimedError) || Date.now() > until) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Does what `since` says with an entry taken over; `expiredBy` is when short-lived entries expire. */
export async function actOnTaken(taken: ClaimedFile, since: Since, keptAt: string): Promise<void> {
  if (since === 'released it' || since === 'let it expire, swept') await taken.release();
  if (since === 'consumed it') await taken.consume();
  if (since === 'kept it') await taken.keep(keptAt);
}
