// No caller reaches a manager's internal context, and no public class is built over a context or a
// path of the caller's. Each way in that code already in the process has is tried: the process
// registry on globalThis (its tables, their WeakMaps asked for every public object), every
// property of every public object and of what it leads to (TypeScript's private members
// included: they are plain properties at runtime), the arguments of every callback a public
// method calls, and the public constructors. With a context, `new TempFile(context, ...)` made a
// handle whose remove() deleted a file outside the root.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TempDir, TempFile, TempScope, type ClaimedFile, type TempFileManager } from '../../src/index.js';
import { requireMadeContext } from '../../src/context/context.js';

/** True for a context a manager made: what the public constructors accept. */
function isMadeContext(value: unknown): boolean {
  try {
    requireMadeContext(value, 'TempScope');
    return true;
  } catch {
    return false;
  }
}
import { beatThread } from '../../src/owner/beat-thread.js';
import { tusStore } from '../../src/tus/index.js';
import { manager, scratchDir } from '../helpers/roots.js';

/**
 * Every context found by walking `start`'s own properties (strings and symbols, enumerable or
 * not), getters, Map and Set entries, and the values WeakMaps give for each of `probes`.
 */
function contextsFrom(start: unknown, probes: readonly object[]): string[] {
  const found: string[] = [];
  const seen = new Set<unknown>();
  const visit = (value: unknown, trail: string, depth: number): void => {
    if (typeof value !== 'object' || value === null || seen.has(value) || depth > 8) return;
    seen.add(value);
    if (isMadeContext(value)) {
      found.push(trail);
      return;
    }
    if (ArrayBuffer.isView(value)) return;
    if (value instanceof WeakMap) {
      for (const probe of probes) visit(value.get(probe), `${trail}.get(<${probe.constructor.name}>)`, depth + 1);
      return;
    }
    if (value instanceof Map) for (const [key, entry] of value) visit(entry, `${trail}.get(${String(key)})`, depth + 1);
    if (value instanceof Set) for (const entry of value) visit(entry, `${trail}[entry]`, depth + 1);
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Object.getOwnPropertyDescriptor(value, key)!;
      let inner: unknown = descriptor.value;
      if (descriptor.get) {
        try {
          inner = descriptor.get.call(value);
        } catch {
          continue;
        }
      }
      visit(inner, `${trail}.${String(key)}`, depth + 1);
    }
    // Getters of the prototype chain (a handle's `path`, a manager's `sessionPath`...).
    for (let proto = Object.getPrototypeOf(value) as object | null; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
      for (const key of Reflect.ownKeys(proto)) {
        const getter = Object.getOwnPropertyDescriptor(proto, key)?.get;
        if (!getter) continue;
        try {
          visit(getter.call(value), `${trail}.${String(key)}`, depth + 1);
        } catch {
          // a getter that throws here gives nothing
        }
      }
    }
  };
  visit(start, 'start', 0);
  return found;
}

/** The public objects a caller holds after using each feature once. */
async function publicObjects(mgr: TempFileManager): Promise<{ objects: object[]; claimed: ClaimedFile; callbackArgs: unknown[] }> {
  const callbackArgs: unknown[] = [];
  const scope = mgr.scope();
  const file = scope.file('.txt');
  const dir = scope.dir();
  const written = await scope.write(Buffer.from('hello'), {
    onProgress: (...args: unknown[]) => void callbackArgs.push(...args),
    verify: (...args: unknown[]) => (callbackArgs.push(...args), true),
  });
  const spooled = await scope.spool(Buffer.from('in memory'));
  await mgr.withScope((...args: unknown[]) => void callbackArgs.push(...args));
  const handed = await mgr.write(Buffer.from('for a worker'));
  const ticket = await handed.handoff({ ttlMs: 60_000 });
  const claimed = await mgr.claim(ticket);
  const { datastore, locker } = await tusStore({ manager: mgr, onUploadFinish: (...args: unknown[]) => void callbackArgs.push(...args) });
  return { objects: [mgr, scope, file, dir, written, spooled, claimed, datastore, locker, mgr.stats()], claimed, callbackArgs };
}

describe('no way into a manager\'s context from outside', () => {
  it('not from globalThis: the process registry, its tables and WeakMaps asked for every public object, hold none', async () => {
    const mgr = manager();
    const { objects, claimed } = await publicObjects(mgr);
    const registry = Reflect.ownKeys(globalThis).filter((key) => typeof key === 'symbol' && String(key).includes('tempfile-manager'));
    expect(registry.length).toBeGreaterThan(0);
    for (const key of registry) {
      expect(contextsFrom((globalThis as Record<symbol, unknown>)[key as symbol], objects), String(key)).toEqual([]);
    }
    await claimed.consume();
  });

  it('not from a public object, its TypeScript-private members and what they lead to, nor from a callback\'s arguments', async () => {
    const mgr = manager();
    const { objects, claimed, callbackArgs } = await publicObjects(mgr);
    for (const object of [...objects, ...callbackArgs]) {
      expect(contextsFrom(object, objects), (object as object).constructor?.name).toEqual([]);
    }
    expect('writeAs' in objects[1]!, 'a scope method that hands its make() the context').toBe(false);
    await claimed.consume();
  });

  it('not through a public constructor: TempFile, TempDir and TempScope over a context or a path of the caller\'s are a TypeError, and the file outside the root stays', () => {
    const outside = path.join(scratchDir(), 'precious.txt');
    fs.writeFileSync(outside, 'keep me');
    const mgr = manager();
    const owner = { adopt: () => {}, forget: () => {} };
    const forged = { root: mgr.root, prefix: 'x', checkRoot: () => {}, rootBase: () => path.dirname(outside), session: () => ({ path: path.dirname(outside), base: path.dirname(outside) }), closed: () => false, localDisk: () => true, accounting: { liveFiles: 0 } };
    const attempts: [string, () => unknown][] = [
      ['TempFile', () => new (TempFile as unknown as new (...args: unknown[]) => TempFile)(forged, owner, outside, outside, '.txt')],
      ['TempDir', () => new (TempDir as unknown as new (...args: unknown[]) => TempDir)(forged, owner, path.dirname(outside), path.dirname(outside))],
      ['TempScope', () => new (TempScope as unknown as new (...args: unknown[]) => TempScope)(forged)],
    ];
    for (const [name, attempt] of attempts) {
      expect(attempt, name).toThrow(TypeError);
      expect(attempt, name).toThrow(/is not built with new/);
    }
    expect(fs.readFileSync(outside, 'utf8')).toBe('keep me');
  });

  it('not through a property: every own property of a file, a directory, a spooled file, a scope and a claim set to a path outside the root (strings, { path, access }, the handle\'s state), then each removed, disposed or consumed: the outside file and tree stay, and the quota counts what is on disk', async () => {
    const outsideDir = path.join(scratchDir(), 'precious');
    fs.mkdirSync(path.join(outsideDir, 'sub'), { recursive: true });
    const outside = path.join(outsideDir, 'sub', 'file.txt');
    fs.writeFileSync(outside, 'keep me');
    const mgr = manager({ maxLiveBytes: 1_000_000 });
    const scope = mgr.scope();
    const file = await scope.write(Buffer.from('a file of the root'));
    const dir = scope.dir();
    const spooled = await scope.spool(Buffer.from('in memory'));
    const claimed = await mgr.claim(await (await mgr.write(Buffer.from('for a worker'))).handoff({ ttlMs: 60_000 }));
    const place = { path: outside, access: outside, held: outside, dir: outsideDir, base: outsideDir };
    for (const object of [file, dir, spooled, scope, claimed]) {
      for (const key of Reflect.ownKeys(object)) {
        const descriptor = Object.getOwnPropertyDescriptor(object, key)!;
        if (!descriptor.writable || typeof descriptor.value === 'function') continue;
        const forged = typeof descriptor.value === 'string' ? outside : typeof descriptor.value === 'object' && descriptor.value !== null ? { ...place } : descriptor.value;
        (object as unknown as Record<string | symbol, unknown>)[key] = forged;
      }
    }
    await claimed.consume().catch(() => {});
    await file.remove().catch(() => {});
    await dir.remove().catch(() => {});
    await spooled.remove().catch(() => {});
    await scope[Symbol.asyncDispose]().catch(() => {});
    expect(fs.readFileSync(outside, 'utf8')).toBe('keep me');
    expect(mgr.stats().liveBytes).toBe(0);
    await mgr.close();
    expect(fs.readFileSync(outside, 'utf8')).toBe('keep me');
  });

  it("not through the process registry's shared parts: the beat thread beats only a session's lock or a held file, and no sweeper's root context is there", async () => {
    const mgr = manager();
    await mgr.write(Buffer.from('x'));
    const outside = path.join(scratchDir(), 'precious.txt');
    fs.writeFileSync(outside, 'keep me');
    const old = new Date('2000-01-01T00:00:00Z');
    fs.utimesSync(outside, old, old);
    const registry = (globalThis as Record<symbol, unknown>)[Symbol.for('tempfile-manager.process-state')] as { slots: Map<string, unknown> };
    expect([...registry.slots.keys()]).not.toContain('background-sweepers-by-root');
    beatThread(); // made on its first use: made here, as any process that needs it makes it
    const thread = registry.slots.get('beat-thread') as { add(at: string, kind: string): () => void };
    for (const kind of ['session', 'lease']) expect(() => thread.add(outside, kind)).toThrow(TypeError);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(fs.statSync(outside).mtimeMs).toBe(old.getTime());
    await mgr.close();
  });
});
