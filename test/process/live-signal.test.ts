import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, type TestContext } from 'vitest';
import { TempFileManager, type HandoffTicket } from '../../src/index.js';
import { nextJson, startChild, type RunningChild } from '../helpers/child.js';
import { itNeeds, PID_NAMESPACE } from '../helpers/privileges.js';
import { freshRoot, scratchDir } from '../helpers/roots.js';

// A claimed file the application hard-links (a backup, a dedupe tool, an archive step) keeps its
// lease against a sweeper that cannot ask /proc about its owner: one without /proc of its own, and
// one in another PID namespace. Its owner's event loop free, or blocked: the owner's thread holds
// its live signal, which the kernel keeps while it lives. And a queue worker that holds nothing
// but the claim it works on starts no thread for it, claim after claim.

const STALE_MS = 2000;
/** Starts a child that is killed when the test ends, however it ends. */
function child(ctx: TestContext, ...args: Parameters<typeof startChild>): RunningChild {
  const started = startChild(...args);
  ctx.onTestFinished(() => void started.child.kill('SIGKILL'));
  return started;
}

async function handOff(root: string, content: string): Promise<HandoffTicket> {
  const producer = new TempFileManager({ root, hostId: 'host-a', sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
  const file = await producer.write(content, { suffix: '.txt' });
  const ticket = await file.handoff({ ttlMs: 600_000 });
  await producer.close();
  return ticket;
}

// The owner runs with /proc whatever this process runs with (CI's no-/proc step runs this file too).
const WITH_PROC = { TEMPFILE_MANAGER_NO_PROC: '' };
const SWEEPERS = [
  ['without /proc (the same host id)', { TEMPFILE_MANAGER_NO_PROC: '1' }, 'host-a', false],
  ['in another PID namespace (another host id, a container\'s)', WITH_PROC, 'host-b', true],
] as const;

// How the owner is judged: by its live signal, or (on a root other hosts share) by its heartbeat
// alone, beaten on its beat thread while its loop is blocked, the held file's inode whatever its links.
const OWNERS = [
  ['holding its live signal', WITH_PROC, 'live-signal', ['free', 'blocked']],
  ['on a root other hosts share (TEMPFILE_MANAGER_SHARED_ROOT=1: its heartbeat alone speaks)', { ...WITH_PROC, TEMPFILE_MANAGER_SHARED_ROOT: '1' }, 'beat-thread', ['blocked']],
] as const;

describe('a claimed file the application hard-links', () => {
  for (const [ownerKind, ownerEnv, liveness, loops] of OWNERS) {
    for (const [sweeper, env, takerHost, pidNamespace] of SWEEPERS) {
      for (const loop of loops) {
        const test = pidNamespace ? itNeeds(PID_NAMESPACE) : it;
        test(`an owner ${ownerKind} keeps its lease against a claimer ${sweeper}, its event loop ${loop}, and consumes it`, async (ctx) => {
          const root = freshRoot();
          const ticket = await handOff(root, 'linked');
          const link = path.join(scratchDir(), 'backup.txt');
          const owner = child(ctx, 'hardlinked-claim.mjs', [root, JSON.stringify(ticket), 'host-a', String(STALE_MS), link], ownerEnv);
          expect(await nextJson(owner)).toEqual({ held: true, liveness });
          expect(fs.statSync(link).nlink).toBe(2);
          if (loop === 'blocked') owner.child.stdin!.write('block\n');
          // Two staleMs and a half of tries: a heartbeat stopped by the link lost the claim within two.
          const taker = child(ctx, 'claim-until.mjs', [root, JSON.stringify(ticket), takerHost, String(STALE_MS), String(2.5 * STALE_MS)], env, { pidNamespace });
          expect(await nextJson(taker)).toMatchObject({ won: false, last: 'ERR_TEMPFILE_ALREADY_CLAIMED' });
          if (loop === 'blocked') owner.child.stdin!.write('\n');
          owner.child.stdin!.write('consume\n');
          expect(await nextJson(owner)).toEqual({ consumed: 'ok', warnings: [] });
          expect(fs.readFileSync(link, 'utf8')).toBe('linked');
        }, 60_000);
      }
    }
  }
});

describe('a queue worker that holds nothing but its claim', () => {
  it('starts no thread at any claim: 40 claims and consumes, the process\'s threads counted while each is held', async (ctx) => {
    const root = freshRoot();
    const tickets: HandoffTicket[] = [];
    for (let i = 0; i < 41; i++) tickets.push(await handOff(root, `job ${i}`));
    const file = path.join(scratchDir(), 'tickets.json');
    fs.writeFileSync(file, JSON.stringify(tickets));
    const worker = child(ctx, 'claim-loop.mjs', [root, file], WITH_PROC);
    const report = await nextJson<{ before: number; most: number; liveness: string }>(worker);
    expect(report.liveness).toBe('live-signal');
    expect(report.most, 'threads while a claim was held, against those before the loop').toBe(report.before);
  }, 60_000);
});
