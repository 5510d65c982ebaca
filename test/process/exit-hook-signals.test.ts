import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nextJson, startChild } from '../helpers/child.js';
import { freshRoot } from '../helpers/roots.js';
import { until } from '../helpers/wait.js';

// Enough files that removing them takes the hook a second or more, loaded machine or not.
const FILES = 40_000;
const ATTEMPTS = 3;

interface Report {
  /** The small session, removed first: once it is gone, the hook has started. */
  readonly marker: string;
  /** The large session, removed next. */
  readonly session: string;
}

type Ending = { code: number | null; signal: NodeJS.Signals | null; stderr: string };

/**
 * Sends `first`, waits until the hook has demonstrably started, sends `second`. Returns how the
 * child ended, or undefined when the hook had already finished by the time `second` was sent
 * (then nothing was tested, and the caller tries again).
 */
async function secondSignalDuringHook(root: string, first: NodeJS.Signals, second: NodeJS.Signals): Promise<{ report: Report; ended: Ending } | undefined> {
  const running = startChild('second-signal-child.mjs', [root, String(FILES)]);
  const report = await nextJson<Report>(running);
  running.child.kill(first);
  await until(() => !fs.existsSync(report.marker), 60_000);
  running.child.kill(second);
  const duringRemoval = fs.existsSync(report.session);
  const ended = await running.ended;
  return duringRemoval ? { report, ended } : undefined;
}

describe('a second signal during the exit hook', () => {
  it.for([
    ['SIGINT', 'SIGINT'],
    ['SIGINT', 'SIGTERM'],
    ['SIGTERM', 'SIGHUP'],
  ] as const)('%s, then %s while a large session is removed: the removal ends, and the process dies of the first', { timeout: 300_000 }, async ([first, second]) => {
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const root = freshRoot();
      const outcome = await secondSignalDuringHook(root, first, second);
      if (!outcome) {
        console.warn(`the hook was done before ${second} was sent (attempt ${attempt}): trying again`);
        continue;
      }
      expect(outcome.ended).toMatchObject({ code: null, signal: first, stderr: '' });
      expect(fs.existsSync(outcome.report.session)).toBe(false);
      expect(fs.existsSync(`${outcome.report.session}.lock`)).toBe(false);
      expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
      return;
    }
    expect.fail(`in ${ATTEMPTS} attempts, the hook never ran long enough to receive a second signal`);
  });
});
