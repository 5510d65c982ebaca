// Property tests over every parser and validator of the public API: name parts, manager
// options, write() and handoff() options, tickets (by mutation of a genuine one) and the CLI's
// arguments. Each property states what must hold for *any* input, not for a list of examples.
import { createHash, getHashes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HandoffExpiredError, InvalidNameError, parseTicket, TempFileError, TempFileManager, UnsafeRootError, type HandoffTicket } from '../../src/index.js';
import { InvalidOptionError } from '../../src/errors.js';
import { main } from '../../src/cli/cli.js';
import { dataName } from '../../src/base/layout.js';
import { MAX_NAME_BYTES, MAX_SUFFIX_BYTES } from '../../src/base/layout.js';
import { validateNameLength, validateNamePart } from '../../src/base/names.js';
import { RANDOM_NAME_LENGTH } from '../../src/base/random-name.js';
import { FaultPlanFs } from '../helpers/fault-plan.js';
import { layeredManager } from '../helpers/roots.js';
import { boundEntryName } from '../../src/handoff/binding.js';

// A fixed seed: the same inputs on every run, so a failure here is a bug, not bad luck.
// FC_SEED=<n> explores other inputs (fast-check prints the seed of any failure to replay it).
fc.configureGlobal({ seed: Number(process.env.FC_SEED ?? 20_261_122) });

const RUNS = { numRuns: 150 };

const scratchDirs: string[] = [];
function scratch(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-prop-'));
  scratchDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of scratchDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** Every path under `dir`, relative, sorted. */
function tree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

// What a name part must never hold, raw or in NFKC form (docs/security.md): separators of any
// platform, NUL and controls, Windows-reserved characters, and invisible format characters.
const FORBIDDEN = /[/\\:\u0000-\u001f\u007f-\u009f<>"|?*\p{Cf}\p{Zl}\p{Zp}]/u;
// Characters that make or fake separators, dots and controls, raw or after NFKC.
const TRICKY = ['/', '\\', ':', '.', '..', '\0', '\n', '\r', '\t', '\u001b', '\u007f', '\u0085', '\u2024', '\u2025', '\uff0e', '\uff0f', '\uff3c', '\ufe52', '\u2215', '\ud800', '\udc00', '\u202e', '\u200b', '\u2028', '\u2029', '\ufeff', '*', '?', '<', '>', '|', '"', 'C:', '\u00e9', 'e\u0301', '\u20ac', '\u{1f600}', ' ', '-', '_', 'a', 'Z', '0'];

// Any JS value, including the awkward ones: null prototypes, boxed values, BigInt, Map, dates...
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.anything({ withNullPrototype: true, withBigInt: true, withBoxedValues: true, withMap: true, withSet: true, withDate: true, withTypedArray: true, withSparseArray: true }) },
  // Values that break careless error messages: String() of these throws.
  { weight: 1, arbitrary: fc.constantFrom<unknown>(Object.create(null), { toString: 0 }, { toString: () => { throw new Error('toString'); } }, { [Symbol.toPrimitive]: () => { throw new Error('toPrimitive'); } }) },
);

const trickyString = fc.array(fc.constantFrom(...TRICKY), { maxLength: 12 }).map((parts) => parts.join(''));
const anyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  trickyString,
  fc.string({ unit: 'grapheme-ascii', minLength: 200, maxLength: 300 }),
);
const anyNamePart: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: anyString },
  anyValue,
  fc.constantFrom<unknown>(Buffer.from('../x'), ['..'], new String('.pdf'), { toString: () => '.pdf' }, Symbol('x'), () => '.pdf', 42n),
);
const safeNamePart = fc.stringMatching(/^[A-Za-z0-9_-]{0,20}(\.[A-Za-z0-9_-]{1,10}){0,3}$/);

// ---------------------------------------------------------------------------------------------

describe('name parts: validateNamePart and validateNameLength', () => {
  it('property: anything is either refused with InvalidNameError or is a single, safe file-name component', () => {
    fc.assert(
      fc.property(anyNamePart, fc.constantFrom('prefix' as const, 'suffix' as const), (value, what) => {
        let accepted: string;
        try {
          accepted = validateNamePart(value, what);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidNameError);
          expect(err).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_NAME' });
          return;
        }
        expect(typeof value).toBe('string');
        expect(accepted).toBe(value);
        expect(accepted.isWellFormed()).toBe(true);
        for (const form of [accepted, accepted.normalize('NFKC')]) {
          expect(form).not.toMatch(FORBIDDEN);
          expect(form.includes('..')).toBe(false);
        }
        const name = `x${accepted}y`;
        expect(path.posix.basename(name)).toBe(name);
        expect(path.win32.basename(name)).toBe(name);
        expect(path.posix.normalize(name)).toBe(name);
      }),
      { numRuns: 1500 },
    );
  });

  it('property: letters, digits, dashes, underscores and single dots are always accepted', () => {
    fc.assert(
      fc.property(safeNamePart, fc.constantFrom('prefix' as const, 'suffix' as const), (value, what) => {
        expect(validateNamePart(value, what)).toBe(value);
      }),
      RUNS,
    );
  });

  it('property: inserting one forbidden character anywhere into an accepted part gets it refused', () => {
    const bad = fc.constantFrom('/', '\\', ':', '\0', '\n', '\u007f', '\u0085', '*', '?', '<', '>', '|', '"', '\uff0f', '\uff3c', '\ud800', '\u202e', '\u2028');
    fc.assert(
      fc.property(safeNamePart, bad, fc.nat(), (value, char, at) => {
        const i = at % (value.length + 1);
        const mutated = value.slice(0, i) + char + value.slice(i);
        expect(caught(() => validateNamePart(mutated, 'suffix'))).toBeInstanceOf(InvalidNameError);
      }),
      RUNS,
    );
  });

  it('property: validateNameLength refuses exactly the names over 255 bytes and the suffixes a claim could not carry', () => {
    const part = fc.oneof(fc.string({ maxLength: 240 }), fc.string({ unit: 'grapheme', maxLength: 120 }), fc.string({ unit: 'binary', maxLength: 120 }));
    fc.assert(
      fc.property(part, part, (prefix, suffix) => {
        const bytes = Buffer.byteLength(prefix) + RANDOM_NAME_LENGTH + Buffer.byteLength(suffix);
        const error = caught(() => validateNameLength(prefix, suffix));
        if (bytes > MAX_NAME_BYTES || Buffer.byteLength(suffix) > MAX_SUFFIX_BYTES) expect(error).toBeInstanceOf(InvalidNameError);
        else expect(error).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });
});

describe('mgr.file(x) as a whole', () => {
  let parent: string;
  let root: string;
  let plan: FaultPlanFs;
  let mgr: TempFileManager;

  beforeAll(() => {
    parent = scratch();
    root = path.join(parent, 'root');
    plan = new FaultPlanFs();
    mgr = layeredManager({ root, prefix: 'm-', fs: plan.fs, sweepOnStart: false, exitHook: false });
    mgr.file().removeSync(); // the session is open: a refused name must cost no disk access at all
    fs.writeFileSync(path.join(parent, 'sentinel'), 'outside');
  });
  afterAll(async () => {
    await mgr.close();
  });

  const nameArgument: fc.Arbitrary<unknown> = fc.oneof(
    { weight: 3, arbitrary: anyNamePart },
    { weight: 3, arbitrary: fc.record({ prefix: anyNamePart, suffix: anyNamePart }, { requiredKeys: [] }) },
    fc.record({ prefix: safeNamePart, suffix: safeNamePart }, { requiredKeys: [] }),
    fc.dictionary(fc.string({ maxLength: 8 }), anyNamePart, { maxKeys: 3 }),
    fc.constantFrom<unknown>(
      undefined,
      null,
      Object.create({ suffix: '/../../x' }) as unknown,
      Object.assign(Object.create(null) as object, { suffix: '.bin' }),
      { suffix: '.bin', toString: () => '../x' },
      new Date(),
      // A getter that turns hostile after its first read: it is read once, then used.
      (() => {
        let reads = 0;
        return {
          get suffix() {
            return reads++ === 0 ? '.ok' : '/../../../escaped';
          },
        };
      })(),
    ),
  );

  it('property: either InvalidNameError before any disk access, or an empty 0600 file in the session named <prefix><32 hex><suffix>', () => {
    fc.assert(
      fc.property(nameArgument, (arg) => {
        plan.record();
        let file;
        try {
          file = mgr.file(arg as never);
        } catch (err) {
          const calls = plan.stop();
          expect(err).toBeInstanceOf(InvalidNameError);
          expect(calls.map((c) => c.key)).toEqual([]);
          return;
        }
        const calls = plan.stop();
        try {
          for (const call of calls) expect(inside(mgr.sessionPath, call.path), call.key).toBe(true);
          expect(path.dirname(file.path)).toBe(mgr.sessionPath);
          const base = path.basename(file.path);
          const given = typeof arg === 'string' ? { suffix: arg } : (arg ?? {}) as { prefix?: string; suffix?: string };
          const prefix = typeof arg === 'object' && arg !== null && given.prefix !== undefined ? given.prefix : 'm-';
          const suffix = file.suffix;
          expect(base.endsWith(suffix)).toBe(true);
          expect(base.startsWith(prefix)).toBe(true);
          expect(base.slice(prefix.length, base.length - suffix.length)).toMatch(/^[0-9a-f]{32}$/);
          const stat = fs.lstatSync(file.path);
          expect(stat.isFile() && stat.size === 0 && (stat.mode & 0o777) === 0o600).toBe(true);
        } finally {
          file.removeSync();
        }
      }),
      { numRuns: 400 },
    );
    // Nothing was ever created outside the root, nor anything but the session inside it.
    expect(fs.readdirSync(parent).sort()).toEqual(['root', 'sentinel']);
    // Beside the session, its lock and the marker: the thread's live signal (docs/crash-recovery.md).
    expect(fs.readdirSync(root).filter((name) => !/^live_[0-9a-f]{16}$/.test(name)).sort()).toEqual(['.tempfile-manager', path.basename(mgr.sessionPath), `${path.basename(mgr.sessionPath)}.lock`].sort());
    expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('new TempFileManager(options)', () => {
  let parent: string;
  const roots: Record<string, { path: () => string; unsafe: boolean }> = {};

  beforeAll(() => {
    parent = scratch();
    let n = 0;
    const fresh = () => path.join(parent, `fresh-${++n}`);
    const file = path.join(parent, 'a-file');
    fs.writeFileSync(file, '');
    const open = path.join(parent, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    const link = path.join(parent, 'link');
    fs.mkdirSync(path.join(parent, 'real'), { mode: 0o700 });
    fs.symlinkSync(path.join(parent, 'real'), link);
    roots.fresh = { path: fresh, unsafe: false };
    roots.existing = { path: () => path.join(parent, 'real'), unsafe: false };
    roots.file = { path: () => file, unsafe: true };
    roots.open = { path: () => open, unsafe: true };
    roots.symlink = { path: () => link, unsafe: true };
    roots.missingParent = { path: () => path.join(parent, 'no', 'such', 'root'), unsafe: true };
  });

  const number = fc.oneof(
    fc.integer({ min: -10, max: 5000 }),
    fc.integer({ min: 0, max: 2 ** 40 }),
    fc.double(),
    fc.constantFrom(0, 1999, 2000, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 1e12, Infinity, -Infinity, NaN, -0),
  );
  const value = (valid: fc.Arbitrary<unknown>) => fc.oneof({ weight: 3, arbitrary: valid }, anyValue);
  const optionsArb = fc.record(
    {
      root: fc.constantFrom('fresh', 'existing', 'file', 'open', 'symlink', 'missingParent', 'empty', 'nul', 'number'),
      prefix: value(fc.oneof(safeNamePart, anyString)),
      staleMs: value(number),
      graceMs: value(number),
      sweepOnStart: value(fc.boolean()),
      exitHook: value(fc.boolean()),
      maxLiveBytes: value(number),
      minFreeBytes: value(fc.constantFrom(0, 1, 1024)),
      hostId: value(fc.oneof(fc.stringMatching(/^[A-Za-z0-9.-]{1,64}$/), fc.string())),
      fs: fc.constantFrom<unknown>(fs, 42, {}, null, 'fs', { mkdirSync: () => undefined }),
      unknownKey: anyValue,
    },
    // `root` always: the default root is shared with everything else on this machine.
    { requiredKeys: ['root'] },
  );

  const oneOption: Record<string, fc.Arbitrary<unknown>> = {
    prefix: value(fc.oneof(safeNamePart, anyString)),
    staleMs: value(number),
    graceMs: value(number),
    sweepOnStart: value(fc.boolean()),
    exitHook: value(fc.boolean()),
    maxLiveBytes: value(number),
    minFreeBytes: value(fc.constantFrom(0, 1, 1024, -1, NaN)),
    hostId: value(fc.oneof(fc.stringMatching(/^[A-Za-z0-9.-]{1,64}$/), fc.string())),
    fs: fc.constantFrom<unknown>(fs, 42, {}, null, 'fs', { mkdirSync: () => undefined }),
  };

  it.each(Object.keys(oneOption))('property: `%s` alone, any value: InvalidOptionError naming it, or a manager that works; nothing else', async (key) => {
    await withWarningsCollected(async (warnings) => {
      await fc.assert(
        fc.asyncProperty(oneOption[key]!, async (val) => {
          const options: Record<string, unknown> = { root: roots.fresh!.path(), sweepOnStart: false, exitHook: false, [key]: val };
          await checkConstruction(options, 'fresh', warnings);
        }),
        { numRuns: 60 },
      );
    });
  });

  it('property: an unknown option, any value: InvalidOptionError naming it', async () => {
    const known = new Set(['root', 'prefix', 'staleMs', 'graceMs', 'sweepOnStart', 'exitHook', 'maxLiveBytes', 'minFreeBytes', 'hostId']);
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 12 }).filter((k) => !known.has(k)), anyValue, async (key, val) => {
        const options = { root: roots.fresh!.path(), sweepOnStart: false, exitHook: false, [key]: val };
        const err = caught(() => new TempFileManager(options as never));
        expect(err).toBeInstanceOf(InvalidOptionError);
        expect((err as InvalidOptionError).option).toBe(key);
      }),
      { numRuns: 60 },
    );
  });

  it('property: all options at once, any values and roots: InvalidOptionError, UnsafeRootError for an unsafe root, or a manager that works', async () => {
    await withWarningsCollected(async (warnings) => {
      await fc.assert(
        fc.asyncProperty(optionsArb, async (spec) => {
          const options: Record<string, unknown> = { ...spec };
          const kind = spec.root as string;
          options.root = kind === 'empty' ? '' : kind === 'nul' ? path.join(parent, 'a\0b') : kind === 'number' ? 7 : roots[kind]!.path();
          if ('unknownKey' in spec) {
            delete options.unknownKey;
            options.colour = spec.unknownKey;
          }
          await checkConstruction(options, kind, warnings);
        }),
        { numRuns: 300 },
      );
    });
  });

  /** Constructs a manager; any error must be one the contract names, and a manager must work quietly. */
  async function checkConstruction(options: Record<string, unknown>, kind: string, warnings: string[]): Promise<void> {
    let mgr: TempFileManager;
    try {
      mgr = new TempFileManager(options as never);
    } catch (err) {
      if (err instanceof InvalidOptionError) {
        expect(Object.keys(options)).toContain(err.option);
        return;
      }
      if (err instanceof InvalidNameError) {
        // The error table documents ERR_TEMPFILE_INVALID_NAME for an unsafe prefix.
        expect(options.prefix).toBeDefined();
        expect(caught(() => validateNamePart(options.prefix, 'prefix'))).toBeInstanceOf(InvalidNameError);
        return;
      }
      if (err instanceof UnsafeRootError) {
        expect(roots[kind]?.unsafe).toBe(true);
        return;
      }
      throw new Error(`new TempFileManager(${describeOptions(options)}) threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    }
    // A manager: it must work, quietly.
    warnings.length = 0;
    try {
      const file = mgr.file('.probe');
      expect(fs.existsSync(file.path)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 3));
      expect(mgr.stats().liveFiles).toBe(1);
      await file.remove();
    } catch (err) {
      throw new Error(`a manager made with ${describeOptions(options)} does not work: ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    } finally {
      await mgr.close().catch(() => {});
    }
    expect(warnings, `warnings of a manager made with ${describeOptions(options)}`).toEqual([]);
  }
});

/**
 * Runs `fn` with process warnings collected instead of printed: a `staleMs` past 2^32 ms makes
 * proper-lockfile's refresh timer overflow to 1 ms, and Node would print that a thousand times.
 */
async function withWarningsCollected(fn: (warnings: string[]) => Promise<void>): Promise<void> {
  const warnings: string[] = [];
  const listeners = process.listeners('warning');
  process.removeAllListeners('warning');
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    await fn(warnings);
  } finally {
    process.off('warning', onWarning);
    for (const l of listeners) process.on('warning', l);
  }
}

function describeOptions(options: Record<string, unknown>): string {
  return inspect({ ...options, ...(options.fs === fs && { fs: '<node:fs>' }) }, { breakLength: Infinity, depth: 2 });
}

// ---------------------------------------------------------------------------------------------

describe('write() and handoff() options', () => {
  let parent: string;
  let root: string;
  let plan: FaultPlanFs;
  let mgr: TempFileManager;
  const CONTENT = 'hello, world';

  beforeAll(() => {
    parent = scratch();
    root = path.join(parent, 'root');
    plan = new FaultPlanFs();
    mgr = layeredManager({ root, prefix: 'w-', fs: plan.fs, sweepOnStart: false, exitHook: false });
    mgr.file().removeSync();
  });
  afterAll(async () => {
    await mgr.close();
  });

  const hashName = fc.oneof(fc.constantFrom(...getHashes()), fc.constantFrom('SHA256', 'Sha512', 'md5', 'sha3-256', 'shake256', 'nope', '', 'sha256 '));
  const writeOptions = fc.record(
    {
      suffix: fc.oneof(safeNamePart, anyNamePart),
      prefix: fc.oneof(safeNamePart, anyNamePart),
      maxBytes: fc.oneof(fc.constantFrom(0, 5, 11, 12, 13, Infinity, -1, NaN), fc.double(), anyValue),
      signal: fc.constantFrom<unknown>(undefined, new AbortController().signal, AbortSignal.abort(), 'signal', {}),
      onProgress: fc.constantFrom<unknown>(undefined, 'f', 1, () => {}),
      hash: fc.oneof(hashName, anyValue),
      extra: anyValue,
    },
    { requiredKeys: [] },
  );

  it('property: write() refuses bad options before any disk access, or writes exactly the bytes under the right name', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(writeOptions, anyValue), async (options) => {
        const progress: number[] = [];
        const opts =
          typeof options === 'object' && options !== null && !Array.isArray(options) && 'onProgress' in options && typeof (options as { onProgress: unknown }).onProgress === 'function'
            ? { ...options, onProgress: (n: number) => progress.push(n) }
            : options;
        plan.record();
        let file;
        try {
          file = await mgr.write(CONTENT, opts as never);
        } catch (err) {
          const calls = plan.stop();
          expect(err).toBeInstanceOf(TempFileError);
          const code = (err as TempFileError).code;
          if (['ERR_TEMPFILE_INVALID_OPTION', 'ERR_TEMPFILE_INVALID_NAME', 'ERR_TEMPFILE_ABORTED'].includes(code)) {
            expect(calls.map((c) => c.key), `${code} came after disk access`).toEqual([]);
          } else {
            // Only the size limit is found while writing; nothing may be left of the file.
            expect(code).toBe('ERR_TEMPFILE_SIZE_LIMIT');
            expect((opts as { maxBytes: number }).maxBytes).toBeLessThan(Buffer.byteLength(CONTENT));
            expect(fs.readdirSync(mgr.sessionPath)).toEqual([]);
          }
          expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
          return;
        }
        plan.stop();
        try {
          const o = (opts ?? {}) as { suffix?: string; prefix?: string; hash?: string };
          expect(fs.readFileSync(file.path, 'utf8')).toBe(CONTENT);
          expect(file.size).toBe(Buffer.byteLength(CONTENT));
          const base = path.basename(file.path);
          expect(path.dirname(file.path)).toBe(mgr.sessionPath);
          expect(base.startsWith(o.prefix ?? 'w-')).toBe(true);
          expect(base.endsWith(o.suffix ?? '')).toBe(true);
          if (o.hash !== undefined) {
            expect(file.digest).toBe(`${o.hash.toLowerCase()}:${createHash(o.hash).update(CONTENT).digest('hex')}`);
          } else expect(file.digest).toBeUndefined();
          if (progress.length > 0) expect(progress.at(-1)).toBe(Buffer.byteLength(CONTENT));
        } finally {
          await file.remove();
        }
      }),
      { numRuns: 300 },
    );
  });

  it('every hash of crypto.getHashes() whose name fits a ticket is accepted by write(), in any case; the rest are refused typed', async () => {
    const wrong: string[] = [];
    for (const hash of getHashes()) {
      const fits = /^[A-Za-z0-9-]{1,32}$/.test(hash);
      for (const name of [hash, hash.toUpperCase()]) {
        try {
          await (await mgr.write(CONTENT, { hash: name })).remove();
          if (!fits) wrong.push(`${name}: accepted`);
        } catch (err) {
          if (fits || (err as TempFileError).code !== 'ERR_TEMPFILE_INVALID_OPTION') wrong.push(`${name}: ${(err as TempFileError).code}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('property: a file written with any accepted hash hands off to a ticket that parseTicket() and claim() accept', async () => {
    await fc.assert(
      fc.asyncProperty(hashName, async (hash) => {
        let file;
        try {
          file = await mgr.write(CONTENT, { hash, suffix: '.bin' });
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidOptionError);
          return;
        }
        const ticket = await file.handoff({ ttlMs: 60_000 });
        expect(() => parseTicket(JSON.parse(JSON.stringify(ticket))), `the ticket of hash ${hash}: ${ticket.digest}`).not.toThrow();
        const claimed = await mgr.claim(ticket, { verifyDigest: true });
        await claimed.consume();
      }),
      { numRuns: 120 },
    );
  });

  const jsonish: fc.Arbitrary<unknown> = fc.oneof(
    { weight: 3, arbitrary: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }) },
    { weight: 1, arbitrary: anyValue },
    { weight: 2, arbitrary: fc.constantFrom<unknown>(
      new Date(0),
      { toJSON: () => 'text' },
      { toJSON: () => undefined },
      { toJSON: () => [1, 2] },
      { nested: { toJSON: () => 5 } },
      { big: 'x'.repeat(5000) },
      { n: 1n },
      Object.create(null) as unknown,
      new Map([[1, 2]]),
      [],
    ) },
  );
  const validTtl = fc.integer({ min: 1, max: 31_622_400_000 });
  const handoffOptions = fc.oneof(
    { weight: 4, arbitrary: fc.record({ ttlMs: validTtl, meta: jsonish }, { requiredKeys: ['ttlMs'] }) },
    {
      weight: 2,
      arbitrary: fc.record(
        {
          ttlMs: fc.oneof(validTtl, fc.constantFrom(0, -1, 1.5, 31_622_400_001, Infinity, NaN, 2 ** 53), anyValue),
          meta: jsonish,
          extra: anyValue,
        },
        { requiredKeys: [] },
      ),
    },
    anyValue,
  );

  it('property: handoff() refuses bad options before any disk access and keeps the file, or gives a ticket that claim() accepts', async () => {
    await fc.assert(
      fc.asyncProperty(handoffOptions, async (options) => {
        const file = await mgr.write(CONTENT, { suffix: '.bin' });
        plan.record();
        let ticket: HandoffTicket;
        try {
          ticket = await file.handoff(options as never);
        } catch (err) {
          const calls = plan.stop();
          try {
            expect(err).toBeInstanceOf(InvalidOptionError);
            expect(calls.map((c) => c.key)).toEqual([]);
            expect(file.disposed).toBe(false);
            expect(fs.readFileSync(file.path, 'utf8')).toBe(CONTENT);
          } finally {
            await file.remove();
          }
          return;
        }
        plan.stop();
        const o = options as { ttlMs: number; meta?: unknown };
        expect(ticket.expiresAt - ticket.createdAt).toBe(o.ttlMs);
        expect(file.disposed).toBe(true);
        let claimed;
        try {
          claimed = await mgr.claim(JSON.stringify(ticket));
        } catch (err) {
          // A ttlMs of a few ms may be over before the claim: that is what expiry is.
          if (err instanceof HandoffExpiredError && Date.now() > ticket.expiresAt) return;
          throw err;
        }
        try {
          expect(fs.readFileSync(claimed.path, 'utf8')).toBe(CONTENT);
          expect(claimed.meta).toEqual(ticket.meta);
        } finally {
          await claimed.consume();
        }
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Tickets: mutate one field of a genuine ticket.

describe('claim() of a mutated ticket', () => {
  const CONTENT = 'the genuine bytes';
  let parent: string;
  let root: string;
  let ticket: HandoffTicket;
  let entryDir: string;
  let mgr: TempFileManager;
  let plan: FaultPlanFs;
  let outsideBefore: string[];

  /** Puts the genuine entry back as handoff() left it, so that every run starts the same. */
  function resetEntry(): void {
    if (fs.existsSync(entryDir) && fs.readdirSync(entryDir).join() === dataName(ticket.suffix)) return;
    fs.rmSync(entryDir, { recursive: true, force: true });
    fs.mkdirSync(entryDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(entryDir, dataName(ticket.suffix)), CONTENT);
  }

  beforeAll(async () => {
    parent = scratch();
    root = path.join(parent, 'root');
    fs.mkdirSync(path.join(parent, 'outside'));
    fs.writeFileSync(path.join(parent, 'outside', 'secret'), 'do not touch');
    plan = new FaultPlanFs();
    mgr = layeredManager({ root, fs: plan.fs, sweepOnStart: false, exitHook: false });
    const file = await mgr.write(CONTENT, { suffix: '.bin', hash: 'sha256' });
    ticket = await file.handoff({ ttlMs: 3_600_000, meta: { job: 7 } });
    entryDir = path.join(root, 'handoff', boundEntryName(ticket));
    outsideBefore = tree(parent).filter((p) => !p.startsWith('root'));
  });
  afterAll(async () => {
    resetEntry();
    const claimed = await mgr.claim(ticket);
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe(CONTENT);
    await claimed.consume();
    await mgr.close();
  });

  const hostile = fc.oneof(
    anyValue,
    fc.string(),
    trickyString,
    fc.constantFrom<unknown>('../../outside/secret', '/etc/passwd', '..', '', ' ', '\0', 'a'.repeat(300), { toJSON: () => undefined }, { toJSON: () => 'x' }),
  );
  const nearby: Record<keyof HandoffTicket, fc.Arbitrary<unknown>> = {
    v: fc.oneof(fc.constantFrom(0, 2, '1', 1.0000001, true), fc.integer()),
    id: fc.oneof(fc.stringMatching(/^[0-9a-f]{32}$/), fc.stringMatching(/^[0-9a-fA-F]{31,33}$/)),
    suffix: fc.oneof(safeNamePart, fc.constantFrom('', '.BIN', '.bi', 'n', '.bin.bin', '.txt')),
    size: fc.oneof(fc.nat(), fc.integer({ min: -2, max: 2 }).map((d) => ticket.size + d), fc.constantFrom(2 ** 53, -1, 1.5)),
    digest: fc.oneof(fc.stringMatching(/^[a-z0-9-]{1,32}:[0-9a-f]{16,256}$/), fc.constantFrom('sha256:' + '0'.repeat(64))),
    createdAt: fc.oneof(fc.nat(), fc.constantFrom(Date.now(), 2 ** 53)),
    expiresAt: fc.oneof(fc.nat(), fc.integer({ min: -5, max: 5 }).map((d) => ticket.expiresAt + d)),
    meta: fc.oneof(fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }), fc.constantFrom<unknown>(new Date(0), [], null)),
    // A shared-disk ticket made to name an object store: a store this manager was not given.
    store: fc.oneof(
      fc.record({ kind: fc.constantFrom<unknown>('s3', 'S3', 'gcs'), bucket: fc.oneof(fc.stringMatching(/^[a-z0-9][a-z0-9.-]{1,10}[a-z0-9]$/), fc.string()), prefix: fc.oneof(fc.constantFrom('', 'a/', '../', '/'), fc.string()) }),
      fc.constantFrom<unknown>(null, [], 's3://bucket'),
    ),
  };

  const OUTCOMES = ['ERR_TEMPFILE_BAD_TICKET', 'ERR_TEMPFILE_HANDOFF_NOT_FOUND', 'ERR_TEMPFILE_HANDOFF_EXPIRED', 'ERR_TEMPFILE_HANDOFF_MISMATCH', 'ERR_TEMPFILE_STORE'];

  async function claimMutated(mutated: unknown): Promise<void> {
    resetEntry();
    plan.record();
    let claimed;
    try {
      claimed = await mgr.claim(mutated as never);
    } catch (err) {
      const calls = plan.stop();
      for (const call of calls) expect(inside(root, call.path), `${call.key} is outside the root`).toBe(true);
      expect(err, `${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`).toBeInstanceOf(TempFileError);
      expect(OUTCOMES).toContain((err as TempFileError).code);
      // Nothing lost: the genuine entry is intact and free for the next claimer.
      expect(fs.existsSync(entryDir), `the genuine entry was deleted by a claim refused with ${(err as TempFileError).code}`).toBe(true);
      expect(fs.readdirSync(entryDir), 'the genuine entry after a refused claim').toEqual([dataName(ticket.suffix)]);
      expect(fs.readFileSync(path.join(entryDir, dataName(ticket.suffix)), 'utf8')).toBe(CONTENT);
      return;
    }
    const calls = plan.stop();
    for (const call of calls) expect(inside(root, call.path), `${call.key} is outside the root`).toBe(true);
    // A mutation the ticket format allows (meta, digest, createdAt): the genuine bytes, given back.
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe(CONTENT);
    await claimed.release();
  }

  for (const field of Object.keys(nearby) as Array<keyof HandoffTicket>) {
    it(`property: a ticket whose \`${field}\` is replaced gets a typed error or the genuine bytes, and touches nothing outside the root`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(nearby[field], hostile), fc.boolean(), async (value, asJson) => {
          const mutated = { ...ticket, [field]: value };
          let input: unknown = mutated;
          if (asJson) {
            try {
              input = JSON.stringify(mutated);
            } catch {
              input = mutated;
            }
          }
          await claimMutated(input);
        }),
        { numRuns: 60 },
      );
      expect(tree(parent).filter((p) => !p.startsWith('root'))).toEqual(outsideBefore);
    });
  }

  it('property: a ticket with a field removed or one added gets BadTicketError', async () => {
    const fields = Object.keys(ticket);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom(...fields).map((f) => ({ drop: f })),
          fc.record({ add: fc.string({ minLength: 1, maxLength: 10 }).filter((k) => !fields.includes(k) && k !== 'digest' && k !== 'meta'), value: anyValue }),
        ),
        async (change) => {
          const mutated: Record<string, unknown> = { ...ticket };
          if ('drop' in change) {
            delete mutated[change.drop];
            if (change.drop === 'digest' || change.drop === 'meta') {
              await claimMutated(mutated); // optional fields: still the genuine entry
              return;
            }
          } else mutated[change.add] = change.value;
          const err = await mgr.claim(mutated as never).catch((e: unknown) => e);
          expect(err).toMatchObject({ code: 'ERR_TEMPFILE_BAD_TICKET' });
        },
      ),
      { numRuns: 80 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The CLI: main(argv, out, err).

describe('the CLI, main(argv)', () => {
  let parent: string;
  let cwd: string;
  const tokens: string[] = [];

  beforeAll(async () => {
    parent = scratch();
    const safe = path.join(parent, 'safe');
    const mgr = new TempFileManager({ root: safe, sweepOnStart: false, exitHook: false });
    mgr.file('.live'); // a live session that no sweep may take
    await (await mgr.write('x')).handoff({ ttlMs: 3_600_000 });
    fs.writeFileSync(path.join(parent, 'a-file'), '');
    fs.mkdirSync(path.join(parent, 'open'));
    fs.chmodSync(path.join(parent, 'open'), 0o777);
    fs.symlinkSync(safe, path.join(parent, 'link'));
    tokens.push(
      safe,
      path.join(parent, 'missing'),
      path.join(parent, 'a-file'),
      path.join(parent, 'a-file', 'below'),
      path.join(parent, 'open'),
      path.join(parent, 'link'),
      path.join(parent, 'nul\0here'),
    );
    // Relative roots resolve against the working directory: keep it in the scratch directory.
    cwd = process.cwd();
    process.chdir(parent);
    return async () => {
      await mgr.close();
    };
  });
  afterAll(() => {
    process.chdir(cwd);
  });

  function sink(isTTY = false) {
    const chunks: string[] = [];
    return { stream: { isTTY, write: (s: string) => (chunks.push(String(s)), true) } as unknown as NodeJS.WriteStream, text: () => chunks.join('') };
  }

  const relative = fc.string({ maxLength: 12 }).filter((s) => !s.includes('/') && !s.includes('..'));
  const root = fc.integer({ min: 0, max: 6 });
  const unit = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('sweep', 'ls').map((c) => [c]) },
    { weight: 5, arbitrary: root.map((i) => ['--root', tokens[i]!]) },
    { weight: 2, arbitrary: root.map((i) => [`--root=${tokens[i]!}`]) },
    { weight: 1, arbitrary: relative.map((r) => ['--root', r]) },
    { weight: 3, arbitrary: fc.constantFrom(['--dry-run'], ['--json'], ['--json'], ['--root'], ['--root', ''], ['--'], ['-']) },
    {
      weight: 3,
      arbitrary: fc.tuple(
        fc.constantFrom('--stale-ms', '--grace-ms'),
        fc.oneof(fc.constantFrom('2000', '0', '-1', '1e9', '', '99999999999999999999999', ' 3000'), fc.nat().map(String), relative),
      ),
    },
    { weight: 1, arbitrary: fc.constantFrom(['-h'], ['--help'], ['-v'], ['--version'], ['-x'], ['--bogus'], ['--json=yes'], ['frobnicate'], ['-hv']) },
    { weight: 1, arbitrary: relative.map((r) => [r]) },
  );
  const argvArb = fc.array(unit, { maxLength: 5 }).map((units) => units.flat());

  it('property: any argv ends with exit code 0 to 4 and never throws; usage errors say why', async () => {
    await fc.assert(
      fc.asyncProperty(argvArb, fc.boolean(), async (argv, tty) => {
        const out = sink();
        const err = sink(tty);
        let code: number;
        try {
          code = await main(argv, out.stream as never, err.stream as never);
        } catch (error) {
          throw new Error(`main(${JSON.stringify(argv)}) threw ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`);
        }
        expect([0, 1, 2, 3, 4], JSON.stringify(argv)).toContain(code);
        if (code === 2) expect(err.text()).toMatch(/^tempfile-manager: .+/);
        if (code === 3) expect(err.text()).toMatch(/^tempfile-manager: /);
        if (code === 0 && argv.includes('--json') && !argv.some((a) => ['-h', '--help', '-v', '--version'].includes(a))) {
          expect(() => JSON.parse(out.text()), out.text()).not.toThrow();
        }
      }),
      { numRuns: 300 },
    );
    // The live session survived every sweep.
    expect(fs.readdirSync(path.join(parent, 'safe')).some((n) => n.endsWith('.lock'))).toBe(true);
  });
});
