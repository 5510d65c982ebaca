// Arguments of the wrong type to the callback and stream APIs: each is an InvalidOptionError
// (ERR_TEMPFILE_INVALID_OPTION) naming the argument, showing what was given and saying what is
// accepted, never a raw TypeError from deeper down. withClaim() checks its callback before it
// claims: a bad callback never takes (or even asks for) the ticket's lease.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type TempFile, type TempFileManager } from '../../src/index.js';
import { InvalidOptionError } from '../../src/errors.js';
import { manager } from '../helpers/roots.js';
import { lastingFds } from '../helpers/fault-plan.js';

type Call = (mgr: TempFileManager, file: TempFile) => unknown;

const CASES: ReadonlyArray<readonly [label: string, call: Call, option: string, shown: RegExp, accepted: RegExp]> = [
  ['mgr.withScope(42)', (mgr) => mgr.withScope(42 as never), 'fn', /the number 42/, /function/],
  ['mgr.withScope()', (mgr) => mgr.withScope(undefined as never), 'fn', /undefined/, /function/],
  ['scope.withScope(42)', (mgr) => mgr.scope().withScope(42 as never), 'fn', /the number 42/, /function/],
  ['scope.withScope({})', (mgr) => mgr.scope().withScope({} as never), 'fn', /an object/, /function/],
  ['createReadStream(null)', (_mgr, file) => file.createReadStream(null as never), 'options', /null/, /\{ start, end, highWaterMark, signal \}/],
  ['createReadStream("utf8")', (_mgr, file) => file.createReadStream('utf8' as never), 'options', /a string/, /object/],
  ['createReadStream(5)', (_mgr, file) => file.createReadStream(5 as never), 'options', /the number 5/, /object/],
  ['createReadStream({ start: "1" })', (_mgr, file) => file.createReadStream({ start: '1' as never }), 'start', /a string/, /whole number/],
  ['createReadStream({ end: -1 })', (_mgr, file) => file.createReadStream({ end: -1 }), 'end', /-1/, /whole number/],
  ['createReadStream({ highWaterMark: 0 })', (_mgr, file) => file.createReadStream({ highWaterMark: 0 }), 'highWaterMark', /0/, /at least 1/],
  ['createReadStream({ stat: 1 })', (_mgr, file) => file.createReadStream({ stat: 1 } as never), 'stat', /stat/, /did you mean `start`\?/],
  ['createWriteStream({ apend: true })', (_mgr, file) => file.createWriteStream({ apend: true } as never), 'apend', /apend/, /did you mean `append`\?/],
  ['createReadStream({ signal: {} })', (_mgr, file) => file.createReadStream({ signal: {} as never }), 'signal', /an object/, /AbortSignal/],
  ['createWriteStream(null)', (_mgr, file) => file.createWriteStream(null as never), 'options', /null/, /\{ append, highWaterMark, signal \}/],
  ['createWriteStream("a")', (_mgr, file) => file.createWriteStream('a' as never), 'options', /a string/, /object/],
  ['createWriteStream(7)', (_mgr, file) => file.createWriteStream(7 as never), 'options', /the number 7/, /object/],
  ['createWriteStream({ append: "yes" })', (_mgr, file) => file.createWriteStream({ append: 'yes' as never }), 'append', /a string/, /true or false/],
  ['sweep(7)', (mgr) => mgr.sweep(7 as never), 'options', /got 7\b/, /\{ dryRun: true \}/],
  ['sweep({ dryRun: "yes" })', (mgr) => mgr.sweep({ dryRun: 'yes' as never }), 'dryRun', /"yes"/, /true or false/],
  ['sweep({ onProgress: 1 })', (mgr) => mgr.sweep({ onProgress: 1 as never }), 'onProgress', /got 1\b/, /function/],
  ['sweep({ dryrun: true })', (mgr) => mgr.sweep({ dryrun: true } as never), 'dryrun', /dryrun/, /dryRun/],
  ['createWriteStream({ highWaterMark: "x" })', (_mgr, file) => file.createWriteStream({ highWaterMark: 'x' as never }), 'highWaterMark', /a string/, /at least 1/],
];

describe('arguments of the wrong type', () => {
  it.each(CASES)('%s is an InvalidOptionError naming it, showing it and saying what is accepted', async (_label, call, option, shown, accepted) => {
    const mgr = manager();
    const file = mgr.file('.txt');
    fs.writeFileSync(file.path, 'kept as it was');
    let thrown: unknown;
    try {
      await call(mgr, file);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(InvalidOptionError);
    const err = thrown as InvalidOptionError;
    expect(err.code).toBe('ERR_TEMPFILE_INVALID_OPTION');
    expect(err.option).toBe(option);
    expect(err.message).toMatch(shown);
    expect(err.message).toMatch(accepted);
    expect(fs.readFileSync(file.path, 'utf8')).toBe('kept as it was');
  });

  it.each([null, 42, 'run', {}])('withClaim(ticket, %j) refuses the callback before it claims: a held ticket is not asked for', async (fn) => {
    const mgr = manager();
    const ticket = await (await mgr.write('payload')).handoff({ ttlMs: 60_000 });
    await using held = await mgr.claim(ticket); // another holder: claiming first would be an AlreadyClaimedError
    await expect(mgr.withClaim(ticket, fn as never)).rejects.toSatisfy(
      (err: unknown) => err instanceof InvalidOptionError && err.option === 'fn' && /withClaim\(\)/.test(err.message) && /function/.test(err.message),
    );
    expect(held.disposed).toBe(false);
  });

  it('withClaim(badTicket, null) names the callback, not the ticket: nothing is read before the callback is checked', async () => {
    const mgr = manager();
    await expect(mgr.withClaim('not a ticket', null as never)).rejects.toBeInstanceOf(InvalidOptionError);
  });
});

it('sweep() on a closed manager is a ManagerClosedError, and opens nothing', async () => {
  const mgr = manager();
  mgr.file();
  await mgr.close();
  const before = fs.readdirSync('/proc/self/fd').length;
  await expect(mgr.sweep()).rejects.toMatchObject({ code: 'ERR_TEMPFILE_MANAGER_CLOSED' });
  // At most as many: the process's beat thread may end meanwhile, and its descriptors with it.
  expect(await lastingFds()).toBeLessThanOrEqual(before);
});

it('claim() on a closed manager is a ManagerClosedError, whatever the ticket', async () => {
  const mgr = manager();
  const ticket = await mgr.file().handoff({ ttlMs: 60_000 });
  await mgr.close();
  await expect(mgr.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_MANAGER_CLOSED' });
  await expect(mgr.claim('not a ticket')).rejects.toMatchObject({ code: 'ERR_TEMPFILE_MANAGER_CLOSED' });
});
