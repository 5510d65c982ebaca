import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { ClaimedFile } from '../../src/handoff/claim.js';
import type { BackendClaim, SyncSteps } from '../../src/handoff/backend.js';
import type { HandoffTicket } from '../../src/handoff/ticket.js';
import type { KeepOptions } from '../../src/keep/move.js';
import { manager } from '../helpers/roots.js';

// ClaimedFile has one path: every step goes to its backend's claim, and the synchronous steps are
// a capability the backend declares (`sync`). A backend without them is refused with the typed
// error an object store's claim has always given, before any step of the backend runs, and the
// claim stays held. The backend here records what it was asked (a fake: the real backends are
// tested on a real disk and a real gateway in test/process, test/integration and test/s3).

const TICKET: HandoffTicket = { v: 1, id: 'a'.repeat(32), suffix: '.txt', size: 1, createdAt: 0, expiresAt: Number.MAX_SAFE_INTEGER, digest: undefined, meta: undefined };

function recordingClaim(sync: boolean): { claim: BackendClaim; calls: string[] } {
  const calls: string[] = [];
  let done = false;
  const steps: SyncSteps = {
    consumeSync: () => {
      calls.push('consumeSync');
      done = true;
    },
    releaseSync: () => {
      calls.push('releaseSync');
      done = true;
    },
  };
  const claim: BackendClaim = {
    path: '/somewhere/held.txt',
    get done() {
      return done;
    },
    consume: async () => {
      calls.push('consume');
      done = true;
    },
    release: async () => {
      calls.push('release');
      done = true;
    },
    keep: async (destination: string, options: KeepOptions) => {
      calls.push(`keep ${destination} ${JSON.stringify(options)}`);
      done = true;
      return destination;
    },
    dispose: async () => void calls.push('dispose'),
    disposeSync: () => void calls.push('disposeSync'),
    ...(sync ? { sync: steps } : {}),
  };
  return { claim, calls };
}

describe('ClaimedFile over a backend claim', () => {
  it('a backend without sync steps: consumeSync() and releaseSync() are refused as a store claim is, nothing is asked of the backend, the claim stays held', async () => {
    const { claim, calls } = recordingClaim(false);
    const claimed = new ClaimedFile(claim, TICKET);
    expect(() => claimed.consumeSync()).toThrow(
      expect.objectContaining({
        code: 'ERR_TEMPFILE_STORE',
        reason: 'sync',
        message: 'consumeSync() cannot reach the object store this claim lives in: use `await claimed.consume()` (or `await using`).',
      }),
    );
    expect(() => claimed.releaseSync()).toThrow(
      expect.objectContaining({
        code: 'ERR_TEMPFILE_STORE',
        reason: 'sync',
        message: 'releaseSync() cannot reach the object store this claim lives in: use `await claimed.release()` (or `await using`).',
      }),
    );
    expect(calls).toEqual([]);
    expect(claimed.disposed).toBe(false);
    await claimed.consume();
    expect(calls).toEqual(['consume']);
    expect(claimed.disposed).toBe(true);
  });

  it('a backend with sync steps: consumeSync() and releaseSync() are its own, and no asynchronous step is taken for them', () => {
    const consumed = recordingClaim(true);
    new ClaimedFile(consumed.claim, TICKET).consumeSync();
    expect(consumed.calls).toEqual(['consumeSync']);
    const released = recordingClaim(true);
    new ClaimedFile(released.claim, TICKET).releaseSync();
    expect(released.calls).toEqual(['releaseSync']);
  });

  it('`using` and `await using` end the claim through the backend, whatever it is', async () => {
    for (const sync of [true, false]) {
      const { claim, calls } = recordingClaim(sync);
      {
        using claimed = new ClaimedFile(claim, TICKET);
        void claimed;
      }
      {
        await using claimed = new ClaimedFile(claim, TICKET);
        void claimed;
      }
      expect(calls, `sync: ${sync}`).toEqual(['disposeSync', 'dispose']);
    }
  });

  it('keep() with a bad destination or options rejects (never throws) and asks nothing of the backend; a good one is resolved before the backend gets it', async () => {
    const { claim, calls } = recordingClaim(true);
    const claimed = new ClaimedFile(claim, TICKET);
    let pending: Promise<string> | undefined;
    expect(() => {
      pending = claimed.keep('');
    }).not.toThrow();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION' });
    await expect(claimed.keep('/tmp/x', { overwrite: 'yes' } as unknown as KeepOptions)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION' });
    expect(calls).toEqual([]);
    await expect(claimed.keep('relative/name.txt')).resolves.toBe(`${process.cwd()}/relative/name.txt`);
    expect(calls).toEqual([`keep ${process.cwd()}/relative/name.txt {"overwrite":false}`]);
  });

  it('a claim of the shared disk declares its sync steps: consumeSync() deletes the file on a real disk', async () => {
    const mgr = manager();
    try {
      const file = await mgr.write(Buffer.from('x'), { suffix: '.txt' });
      const ticket = await file.handoff({ ttlMs: 60_000 });
      const claimed = await mgr.claim(ticket);
      claimed.consumeSync();
      expect(claimed.disposed).toBe(true);
      await expect(mgr.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_NOT_FOUND' });
    } finally {
      await mgr.close();
    }
  });
});

describe('mgr.claim(): the ticket checked once, before its backend is asked', () => {
  it('an expired ticket whose entry is still there touches nothing in it, even on a manager that claims first (whose file system is not probed yet)', async () => {
    const sender = manager();
    const file = await sender.write(Buffer.from('x'), { suffix: '.txt' });
    const ticket = await file.handoff({ ttlMs: 1 });
    while (Date.now() <= ticket.expiresAt) await sleep(2); // past its expiry; no sweep runs
    const handoff = path.join(sender.root, 'handoff');
    const [entry] = fs.readdirSync(handoff);
    const entryDir = path.join(handoff, entry!);
    const before = { names: fs.readdirSync(entryDir).sort(), ctimeMs: fs.statSync(entryDir).ctimeMs };
    // A fresh copy of the library, as in a process that has not used this root: no probe of it remembered.
    vi.resetModules();
    const fresh = await import('../../src/index.js');
    const claimer = new fresh.TempFileManager({ root: sender.root, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    try {
      await expect(claimer.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_EXPIRED' });
      expect({ names: fs.readdirSync(entryDir).sort(), ctimeMs: fs.statSync(entryDir).ctimeMs }).toEqual(before);
    } finally {
      await claimer.close();
      await sender.close();
    }
  });
});

// docs/backends.md shows the contract for whoever writes a third backend: its block must name what
// src/handoff/backend.ts declares, member for member.
function interfaces(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const match of text.matchAll(/^(?:export )?interface (\w+)[^{]*\{\n([\s\S]*?)^\}/gm)) {
    const members = [...match[2]!.matchAll(/^ {2}(?:readonly )?(\w+)\??[(:]/gm)].map((m) => m[1]!);
    found.set(match[1]!, members.sort());
  }
  return found;
}

describe('docs/backends.md', () => {
  it('shows the members of every interface of the contract as src/handoff/backend.ts declares them', () => {
    const source = interfaces(fs.readFileSync(new URL('../../src/handoff/backend.ts', import.meta.url), 'utf8'));
    const page = fs.readFileSync(new URL('../../docs/backends.md', import.meta.url), 'utf8');
    const block = /^```ts\n([\s\S]*?)^```/m.exec(page)?.[1] ?? '';
    const shown = interfaces(block);
    for (const name of ['HandoffSource', 'ClaimPlace', 'LocalFile', 'HandoffBackend', 'BackendClaim', 'SyncSteps', 'StreamHandoff']) {
      expect(source.get(name), `${name} in src/handoff/backend.ts`).toBeDefined();
      expect(shown.get(name), `${name} in docs/backends.md`).toEqual(source.get(name));
    }
    expect(shown.get('StoreBackend')).toEqual(['handOffStream', 'location', 'parseLocation', 'sweep']);
  });
});
