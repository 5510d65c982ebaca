import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BadTicketError, ClaimedFile, HandoffExpiredError, HandoffMismatchError, HandoffNotFoundError, LeaseLostError, parseTicket, TempFileError, type HandoffTicket } from '../../src/index.js';
import { DestinationExistsError } from '../../src/errors.js';
import { validateNamePart } from '../../src/base/names.js';
import { FaultPlanFs } from '../helpers/fault-plan.js';
import { layeredManager, listTree, manager, scratchDir } from '../helpers/roots.js';
import { boundEntryName } from '../../src/handoff/binding.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function handoffEntries(root: string): string[] {
  const dir = path.join(root, 'handoff');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

async function handedOff(content = 'payload', ttlMs = 60_000) {
  const mgr = manager();
  const file = await mgr.write(content, { suffix: '.bin', hash: 'sha256' });
  const ticket = await file.handoff({ ttlMs, meta: { job: 42, tags: ['a'] } });
  return { mgr, file, ticket };
}

describe('file.handoff()', () => {
  it('moves the file into handoff/ and returns plain, versioned JSON', async () => {
    const { mgr, file, ticket } = await handedOff('payload');
    expect(fs.existsSync(file.path)).toBe(false);
    expect(file.disposed).toBe(true);
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
    expect(ticket).toMatchObject({ v: 1, suffix: '.bin', size: 7, meta: { job: 42, tags: ['a'] } });
    expect(ticket.id).toMatch(/^[0-9a-f]{32}$/);
    expect(ticket.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(ticket.expiresAt - ticket.createdAt).toBe(60_000);
    expect(parseTicket(JSON.parse(JSON.stringify(ticket)))).toEqual(ticket);
    expect(handoffEntries(mgr.root)).toEqual([boundEntryName(ticket)]);
    expect(fs.lstatSync(path.join(mgr.root, 'handoff')).mode & 0o777).toBe(0o700);
  });

  it('outlives the scope that held the file, and the manager', async () => {
    const mgr = manager();
    let ticket: HandoffTicket;
    {
      await using scope = mgr.scope();
      const file = scope.file('.txt');
      fs.writeFileSync(file.path, 'from a scope');
      ticket = await file.handoff({ ttlMs: 60_000 });
    }
    await mgr.close();
    const worker = manager({ root: mgr.root });
    await using claimed = await worker.claim(ticket);
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('from a scope');
    expect(claimed.size).toBe(12);
  });

  it.each([
    [{}, 'ttlMs'],
    [{ ttlMs: 0 }, 'ttlMs'],
    [{ ttlMs: 1.5 }, 'ttlMs'],
    [{ ttlMs: '60s' }, 'ttlMs'],
    [{ ttlMs: 1000, meta: [] }, 'meta'],
    [{ ttlMs: 1000, meta: { big: 'x'.repeat(5000) } }, 'meta'],
    [{ ttlMs: 1000, extra: 1 }, 'extra'],
  ])('refuses options %o and keeps the file', async (options, option) => {
    const file = manager().file();
    await expect(file.handoff(options as never)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option });
    expect(fs.existsSync(file.path)).toBe(true);
    expect(file.disposed).toBe(false);
  });
});

describe('mgr.claim()', () => {
  it('gives path, size and meta; consume() deletes it; a second claim is "not found"', async () => {
    const { mgr, ticket } = await handedOff('consume me');
    {
      await using claimed = await mgr.claim(ticket);
      expect(claimed).toBeInstanceOf(ClaimedFile);
      expect(fs.readFileSync(claimed.path, 'utf8')).toBe('consume me');
      expect(claimed.meta).toEqual({ job: 42, tags: ['a'] });
      expect(claimed.path.endsWith('.bin')).toBe(true);
      await claimed.consume();
    }
    expect(handoffEntries(mgr.root)).toEqual([]);
    await expect(mgr.claim(ticket)).rejects.toBeInstanceOf(HandoffNotFoundError);
  });

  it('disposal without consume() releases it (async and sync `using`): the entry stays for the next claim', async () => {
    const { mgr, ticket } = await handedOff('still here');
    {
      await using claimed = await mgr.claim(ticket);
      expect(claimed.disposed).toBe(false);
    }
    {
      using claimed = await mgr.claim(ticket);
      expect(claimed.disposed).toBe(false);
    }
    expect(handoffEntries(mgr.root)).toEqual([boundEntryName(ticket)]);
    using claimed = await mgr.claim(ticket);
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('still here');
    claimed.consumeSync();
    expect(handoffEntries(mgr.root)).toEqual([]);
  });

  it('keep() moves the file out for good and removes the entry', async () => {
    const { mgr, ticket } = await handedOff('keep me');
    const claimed = await mgr.claim(ticket);
    const taken = path.join(scratchDir(), 'taken.bin');
    fs.writeFileSync(taken, 'occupied');
    await expect(claimed.keep(taken)).rejects.toBeInstanceOf(DestinationExistsError);
    const dest = path.join(scratchDir(), 'kept.bin');
    expect(await claimed.keep(dest)).toBe(dest);
    expect(fs.readFileSync(dest, 'utf8')).toBe('keep me');
    expect(handoffEntries(mgr.root)).toEqual([]);
    await claimed.consume(); // a no-op now
    expect(fs.readFileSync(dest, 'utf8')).toBe('keep me');
  });

  it('an expired entry gets "expired" and is swept; a live one is not', async () => {
    const mgr = manager({ graceMs: 0 });
    const expiring = await (await mgr.write('soon gone')).handoff({ ttlMs: 50 });
    const lasting = await (await mgr.write('stays')).handoff({ ttlMs: 60_000 });
    await sleep(100);
    const error = await mgr.claim(expiring).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandoffExpiredError);
    expect((error as HandoffExpiredError).expiredAt).toBe(expiring.expiresAt);
    const report = await mgr.sweep();
    expect(report.handoffEntriesRemoved).toBe(1);
    expect(handoffEntries(mgr.root)).toEqual([boundEntryName(lasting)]);
  });

  it('never sweeps an entry under a live lease, even past its expiry', async () => {
    const mgr = manager({ graceMs: 0 });
    const ticket = await (await mgr.write('in work')).handoff({ ttlMs: 300 });
    const claimed = await mgr.claim(ticket);
    await sleep(400);
    expect(await mgr.sweep()).toMatchObject({ handoffEntriesRemoved: 0, claimedEntriesSkipped: 1 });
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('in work');
    await claimed.consume();
  });

  it('refuses a file whose size does not match, and one whose digest does not when asked', async () => {
    const { mgr, ticket } = await handedOff('exactly this');
    const dataFile = () => {
      const dir = path.join(mgr.root, 'handoff', boundEntryName(ticket));
      return path.join(dir, fs.readdirSync(dir).find((n) => n.startsWith('data'))!);
    };
    fs.writeFileSync(dataFile(), 'EXACTLY this'); // same size, other bytes
    await (await mgr.claim(ticket)).release(); // size matches: accepted without verifyDigest
    await expect(mgr.claim(ticket, { verifyDigest: true })).rejects.toBeInstanceOf(HandoffMismatchError);
    fs.appendFileSync(dataFile(), '!');
    await expect(mgr.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_MISMATCH' });
    expect(fs.readFileSync(dataFile(), 'utf8')).toBe('EXACTLY this!'); // left for the sweep
  });

  it('a ticket crosses worker_threads through postMessage, and the worker consumes it', async () => {
    const { mgr, ticket } = await handedOff('to a thread');
    const worker = new Worker(path.join(import.meta.dirname, '../fixtures/worker-claim.mjs'), { workerData: { root: mgr.root } });
    const answer = new Promise<{ content?: string; error?: string }>((resolve) => worker.once('message', resolve));
    worker.postMessage(ticket);
    expect(await answer).toEqual({ content: 'to a thread', meta: { job: 42, tags: ['a'] } });
    await worker.terminate();
    expect(handoffEntries(mgr.root)).toEqual([]);
  });
});

describe('a job that throws is retried, never lost', () => {
  const boom = () => new Error('transcode failed');

  /**
   * A second worker's claim: it must get the entry at once, not once the lease went stale (a held
   * lease refuses the claim; one left stale lets it through only after staleMs, 30 s here). The
   * bound is half of that, not a speed: a busy machine may take seconds.
   */
  async function claimAtOnce(root: string, ticket: HandoffTicket): Promise<ClaimedFile> {
    const staleMs = 30_000;
    const worker = manager({ root, staleMs });
    const started = performance.now();
    const claimed = await worker.claim(ticket);
    expect(performance.now() - started).toBeLessThan(staleMs / 2);
    return claimed;
  }

  it('`await using` without consume(): the throw releases the entry; the retry claims it at once, same bytes', async () => {
    const { mgr, ticket } = await handedOff('retry me');
    const thrown = boom();
    const job = async () => {
      await using claimed = await mgr.claim(ticket);
      expect(fs.readFileSync(claimed.path, 'utf8')).toBe('retry me');
      throw thrown;
    };
    await expect(job()).rejects.toBe(thrown);
    const retry = await claimAtOnce(mgr.root, ticket);
    expect(fs.readFileSync(retry.path, 'utf8')).toBe('retry me');
    await retry.consume();
    expect(handoffEntries(mgr.root)).toEqual([]);
  });

  it('sync `using` without consumeSync(): the throw releases the entry synchronously', async () => {
    const { mgr, ticket } = await handedOff('retry me too');
    const claimed = await mgr.claim(ticket);
    const entry = path.join(mgr.root, 'handoff', boundEntryName(ticket));
    const thrown = boom();
    let seen: string[] = [];
    try {
      using held = claimed;
      expect(held.disposed).toBe(false);
      throw thrown;
    } catch (err) {
      expect(err).toBe(thrown);
      seen = fs.readdirSync(entry); // no await since the disposal: it must be done already
    }
    expect(seen).toEqual(['data.bin']);
    expect(claimed.disposed).toBe(true);
    const retry = await claimAtOnce(mgr.root, ticket);
    expect(fs.readFileSync(retry.path, 'utf8')).toBe('retry me too');
    retry.consumeSync();
    expect(handoffEntries(mgr.root)).toEqual([]);
  });

  it('withClaim: resolves with fn\'s value and consumes the entry', async () => {
    const { mgr, ticket } = await handedOff('done');
    const worker = manager({ root: mgr.root });
    const result = await worker.withClaim(ticket, async (claimed) => {
      expect(claimed).toBeInstanceOf(ClaimedFile);
      return fs.readFileSync(claimed.path, 'utf8').toUpperCase();
    });
    expect(result).toBe('DONE');
    expect(handoffEntries(mgr.root)).toEqual([]);
    await expect(worker.claim(ticket)).rejects.toBeInstanceOf(HandoffNotFoundError);
  });

  it('withClaim: fn throws (or returns a rejected promise): fn\'s error is rethrown, the entry is back and claimable at once', async () => {
    const { mgr, ticket } = await handedOff('try again');
    const worker = manager({ root: mgr.root });
    const thrown = boom();
    await expect(worker.withClaim(ticket, () => { throw thrown; })).rejects.toBe(thrown);
    await expect(worker.withClaim(ticket, () => Promise.reject(thrown))).rejects.toBe(thrown);
    expect('releaseError' in thrown).toBe(false);
    const retry = await claimAtOnce(mgr.root, ticket);
    expect(fs.readFileSync(retry.path, 'utf8')).toBe('try again');
    await retry.release();
    expect(await worker.withClaim(ticket, (claimed) => claimed.size)).toBe(9);
    expect(handoffEntries(mgr.root)).toEqual([]);
  });

  it('withClaim: when the release fails too, fn\'s error is rethrown with the release\'s attached as releaseError', async () => {
    const { mgr, ticket } = await handedOff('taken over');
    const thrown = boom();
    const error = await mgr
      .withClaim(ticket, (claimed) => {
        // another claimer took the entry over: our held name is gone
        fs.renameSync(claimed.path, path.join(path.dirname(claimed.path), 'data.bin'));
        throw thrown;
      })
      .catch((e: unknown) => e);
    expect(error).toBe(thrown);
    expect((thrown as Error & { releaseError?: unknown }).releaseError).toBeInstanceOf(LeaseLostError);
  });

  it('withClaim: fn resolves but the consume fails (EIO): rejects with that error and gives the entry back', async () => {
    const { mgr, ticket } = await handedOff('consume fails');
    const plan = new FaultPlanFs();
    const worker = manager({ root: mgr.root, fs: plan.fs });
    // A small held file on a local disk is unlinked inline, any other in the thread pool.
    plan.record({ where: { method: ['unlinkSync', 'promises.unlink'], path: (p) => path.basename(p).startsWith('held_'), code: 'EIO' } });
    const error = await worker.withClaim(ticket, () => 'done').catch((e: unknown) => e);
    plan.stop();
    expect(plan.injected).toBeDefined();
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EIO' });
    expect(fs.readdirSync(path.join(mgr.root, 'handoff', boundEntryName(ticket)))).toEqual(['data.bin']);
    expect(await manager({ root: mgr.root }).withClaim(ticket, (claimed) => fs.readFileSync(claimed.path, 'utf8'))).toBe('consume fails');
  });

  it('withClaim: a claim that fails (not found) rejects with that error and never calls fn', async () => {
    const { mgr, ticket } = await handedOff();
    await mgr.withClaim(ticket, () => undefined);
    let called = false;
    await expect(mgr.withClaim(ticket, () => { called = true; })).rejects.toBeInstanceOf(HandoffNotFoundError);
    expect(called).toBe(false);
  });
});

describe('a polluted Object.prototype', () => {
  it('never lends a parsed ticket (or a claim) its `meta` or `digest`: they are own properties, undefined when absent', async () => {
    const mgr = manager();
    const ticket = await (await mgr.write('plain')).handoff({ ttlMs: 60_000 });
    expect(ticket.meta).toBeUndefined();
    const proto = Object.prototype as Record<string, unknown>;
    try {
      proto.meta = { admin: true };
      proto.digest = 'sha256:' + '0'.repeat(64);
      for (const input of [JSON.stringify(ticket), JSON.parse(JSON.stringify(ticket)) as object]) {
        const parsed = parseTicket(input);
        expect(Object.hasOwn(parsed, 'meta')).toBe(true);
        expect(parsed.meta).toBeUndefined();
        expect(Object.hasOwn(parsed, 'digest')).toBe(true);
        expect(parsed.digest).toBeUndefined();
      }
      // The digest that was not in the ticket is not checked either: the claim takes the entry.
      const claimed = await mgr.claim(JSON.stringify(ticket), { verifyDigest: true });
      expect(claimed.meta).toBeUndefined();
      expect(claimed.ticket.digest).toBeUndefined();
      await claimed.consume();
    } finally {
      delete proto.meta;
      delete proto.digest;
    }
  });
});

describe('tampered tickets', () => {
  const outsideDir = () => {
    const dir = scratchDir();
    fs.writeFileSync(path.join(dir, 'secret'), 'do not touch');
    return dir;
  };

  it('refuses every string field replaced by traversal or an absolute path, touching nothing outside', async () => {
    const { mgr, ticket } = await handedOff('genuine');
    const outside = outsideDir();
    const target = path.join(outside, 'secret');
    const relative = path.relative(path.join(mgr.root, 'handoff'), target);
    const hostile = [target, relative, `../../${relative}`, '..', '/', '\\\\server\\share', 'a/../../b', '.bin/../../x', `${'a'.repeat(32)}/../x`];
    for (const field of ['id', 'suffix', 'digest'] as const) {
      for (const value of hostile) {
        const error = await mgr.claim({ ...ticket, [field]: value }).catch((e: unknown) => e);
        expect(error, `${field}=${value}`).toBeInstanceOf(BadTicketError);
        expect((error as BadTicketError).field).toBe(field);
      }
    }
    expect(fs.readdirSync(outside)).toEqual(['secret']);
    expect(fs.readFileSync(target, 'utf8')).toBe('do not touch');
    // The genuine ticket still works.
    await (await mgr.claim(ticket)).consume();
  });

  it.each([
    ['a wrong version', { v: 2 }, 'v'],
    ['a missing version', { v: undefined }, 'v'],
    ['a string size', { size: '7' }, 'size'],
    ['a negative size', { size: -1 }, 'size'],
    ['a huge size', { size: 2 ** 64 }, 'size'],
    ['a fractional expiry', { expiresAt: 1.5 }, 'expiresAt'],
    ['an expiry before creation', { expiresAt: 1, createdAt: 2 }, 'expiresAt'],
    ['an array meta', { meta: [1] }, 'meta'],
    ['an id of capitals', { id: 'A'.repeat(32) }, 'id'],
    ['a numeric id', { id: 12 }, 'id'],
    ['an extra field', { path: '/etc/passwd' }, 'path'],
    ['a __proto__ field', JSON.parse('{"__proto__": {"polluted": true}}'), '__proto__'],
  ])('refuses %s', async (_label, change, field) => {
    const { mgr, ticket } = await handedOff();
    const tampered = { ...ticket, ...change };
    const error = await mgr.claim(tampered as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadTicketError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_BAD_TICKET', field });
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it.each([null, 42, 'not json', '[]', [], Buffer.from('{}'), 'x'.repeat(20_000), new Date()])('refuses %j as a ticket', async (input) => {
    await expect(manager().claim(input as never)).rejects.toBeInstanceOf(BadTicketError);
  });

  it('property: parseTicket accepts only tickets whose derived names are safe, and throws nothing but BadTicketError', () => {
    const fields = fc.record(
      {
        v: fc.oneof(fc.constant(1), fc.anything()),
        id: fc.oneof(fc.stringMatching(/^[0-9a-f]{32}$/), fc.string(), fc.anything()),
        suffix: fc.oneof(fc.constantFrom('', '.bin', '.tar.gz'), fc.string(), fc.string({ unit: 'binary' }), fc.anything()),
        size: fc.oneof(fc.nat(), fc.double(), fc.anything()),
        createdAt: fc.oneof(fc.nat(), fc.anything()),
        expiresAt: fc.oneof(fc.nat(), fc.anything()),
        digest: fc.oneof(fc.constant('sha256:' + 'a'.repeat(64)), fc.string(), fc.anything()),
        meta: fc.oneof(fc.object(), fc.anything()),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(fields, fc.anything(), fc.json()), (input) => {
        let ticket: HandoffTicket;
        try {
          ticket = parseTicket(input);
        } catch (err) {
          expect(err).toBeInstanceOf(BadTicketError);
          return;
        }
        expect(boundEntryName(ticket)).toMatch(/^entry_[0-9a-f]{32}_[0-9a-z]+_[0-9a-f]{32}$/);
        expect(validateNamePart(ticket.suffix, 'suffix')).toBe(ticket.suffix);
        expect(path.basename(`x${ticket.suffix}`)).toBe(`x${ticket.suffix}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('a forged but well-formed ticket finds nothing, an edited one is refused, and neither touches anything', async () => {
    const { mgr, ticket } = await handedOff();
    const before = listTree(mgr.root);
    await expect(mgr.claim({ ...ticket, id: 'f'.repeat(32) })).rejects.toBeInstanceOf(HandoffNotFoundError);
    for (const edit of [{ expiresAt: ticket.expiresAt + 1 }, { meta: { job: 43, tags: ['a'] } }, { size: ticket.size + 1 }]) {
      await expect(mgr.claim({ ...ticket, ...edit }), JSON.stringify(edit)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_HANDOFF_MISMATCH' });
    }
    expect(listTree(mgr.root)).toEqual(before);
    expect(() => parseTicket({ ...ticket, suffix: '../x' })).toThrow(BadTicketError);
  });
});

// ---------------------------------------------------------------------------------------------
// Fencing: a claim whose entry was taken over by another claimer can do nothing any more.

describe('fencing', () => {
  it('a step that fails for another reason keeps the claim, and names the logical path', async () => {
    const { mgr, ticket } = await handedOff('stays mine');
    const claimed = await mgr.claim(ticket);
    const missingDir = path.join(scratchDir(), 'no', 'such', 'dir', 'x.bin');
    const error = (await claimed.keep(missingDir).catch((e: unknown) => e)) as TempFileError;
    expect(error).toBeInstanceOf(TempFileError);
    expect(error).not.toBeInstanceOf(LeaseLostError);
    expect(error.message).not.toMatch(/\/proc\/(self|\d+)\/fd/);
    expect(claimed.disposed).toBe(false);
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('stays mine');
    await claimed.consume();
  });
});

// ---------------------------------------------------------------------------------------------
// Verification never strands an entry.

describe('verification', () => {
  const hex = 'ab'.repeat(32);

  it('an entry handed off before entries were bound (named without a binding) is claimed with its ticket; its consume leaves nothing', async () => {
    const { mgr, ticket } = await handedOff('from an earlier version');
    const handoff = path.join(mgr.root, 'handoff');
    const unbound = path.join(handoff, boundEntryName(ticket).replace(/_[0-9a-f]{32}$/, ''));
    fs.renameSync(path.join(handoff, boundEntryName(ticket)), unbound);
    const claimed = await mgr.claim(ticket);
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('from an earlier version');
    await claimed.consume();
    expect(fs.readdirSync(handoff)).toEqual([]);
  });

  it('refuses a digest algorithm this Node.js does not have at parse, before any disk access', async () => {
    const { mgr, ticket } = await handedOff('genuine');
    for (const digest of [`nosuchhash:${hex}`, `sha257:${hex}`, `sha-257:${hex}`]) {
      expect(() => parseTicket({ ...ticket, digest }), digest).toThrow(BadTicketError);
      const plan = new FaultPlanFs();
      const probe = layeredManager({ root: path.join(scratchDir(), 'root'), fs: plan.fs, sweepOnStart: false, exitHook: false });
      plan.record();
      await expect(probe.claim({ ...ticket, digest }, { verifyDigest: true })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_BAD_TICKET', field: 'digest' });
      expect(plan.stop()).toEqual([]);
      await expect(mgr.claim({ ...ticket, digest }, { verifyDigest: true })).rejects.toBeInstanceOf(BadTicketError);
    }
    expect(parseTicket({ ...ticket, digest: `sha512-256:${hex}` }).digest).toBe(`sha512-256:${hex}`);
    await (await mgr.claim(ticket, { verifyDigest: true })).consume();
  });

  it.each([
    ['a size mismatch', (p: string) => fs.appendFileSync(p, '!'), {}],
    ['a digest mismatch', (p: string) => fs.writeFileSync(p, 'GENUINE'), { verifyDigest: true }],
  ])('%s gives the entry back: claimable (and refused again) until it expires, then swept', async (_label, tamper, options) => {
    const mgr = manager({ graceMs: 0 });
    const ticket = await (await mgr.write('genuine', { suffix: '.bin', hash: 'sha256' })).handoff({ ttlMs: 1_500 });
    const dir = path.join(mgr.root, 'handoff', boundEntryName(ticket));
    tamper(path.join(dir, 'data.bin'));
    for (let i = 0; i < 3; i++) {
      await expect(mgr.claim(ticket, options)).rejects.toBeInstanceOf(HandoffMismatchError);
      expect(fs.readdirSync(dir)).toEqual(['data.bin']);
    }
    const waiting = await mgr.sweep();
    expect(waiting).toMatchObject({ handoffEntriesRemoved: 0, claimedEntriesSkipped: 0 });
    await sleep(ticket.expiresAt + 100 - Date.now());
    expect((await mgr.sweep()).handoffEntriesRemoved).toBe(1);
    expect(handoffEntries(mgr.root)).toEqual([]);
  });

  it('a read error while hashing gives the entry back; the next claim takes it', async () => {
    const { mgr, ticket } = await handedOff('read me twice');
    const plan = new FaultPlanFs();
    const worker = manager({ root: mgr.root, fs: plan.fs });
    plan.record({ where: { method: 'createReadStream', path: (p) => path.basename(p).startsWith('held_'), code: 'EIO' } });
    const error = (await worker.claim(ticket, { verifyDigest: true }).catch((e: unknown) => e)) as TempFileError;
    plan.stop();
    expect(plan.injected).toBeDefined();
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EIO' });
    expect(error.message).not.toMatch(/\/proc\/(self|\d+)\/fd/);
    const dir = path.join(mgr.root, 'handoff', boundEntryName(ticket));
    expect(fs.readdirSync(dir)).toEqual(['data.bin']);
    const claimed = await worker.claim(ticket, { verifyDigest: true });
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('read me twice');
    await claimed.consume();
  });
});

// The options of handoff() are read and checked once: what the call goes on with is the copy that
// was checked, whatever the caller's object does afterwards.
describe('options are read once', () => {
  it('handoff(): `meta` is serialised once, and the ticket carries that copy', async () => {
    const mgr = manager();
    let reads = 0;
    const meta = {
      toJSON() {
        reads += 1;
        return reads === 1 ? { job: 'checked' } : { job: 'x'.repeat(10_000) };
      },
    };
    // A toJSON() is what JSON sees of an object: the type of meta does not show it.
    const ticket = await (await mgr.write('m')).handoff({ ttlMs: 60_000, meta: meta as unknown as HandoffTicket['meta'] });
    expect(reads).toBe(1);
    expect(ticket.meta).toEqual({ job: 'checked' });
    const claimed = await mgr.claim(ticket);
    expect(claimed.ticket.meta).toEqual({ job: 'checked' });
    await claimed.consume();
  });
});
