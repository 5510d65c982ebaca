// A handle's size, digest and type are what the intake that filled it measured, and its bytes
// count against the quota until it goes: nothing reachable from the object can change either.
// An application's code holding a handle may call whatever is there at run time, typed or not.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { manager } from '../helpers/roots.js';
import { png } from '../helpers/magic.js';

/** Every property name on the object and its prototype chain, up to Object.prototype. */
function reachableNames(object: object): string[] {
  const names = new Set<string>();
  for (let at: object | null = object; at && at !== Object.prototype; at = Object.getPrototypeOf(at) as object | null) {
    for (const name of Object.getOwnPropertyNames(at)) names.add(name);
  }
  return [...names];
}

describe('a handle is built from what its intake measured', () => {
  for (const how of ['write', 'spool'] as const) {
    it(`${how}(): no member sets the size, digest, type or quota count, and a forged field changes nothing a handoff reads`, async () => {
      const mgr = manager({ maxLiveBytes: 1024 });
      try {
        const bytes = png(5);
        const file = how === 'write' ? await mgr.write(bytes, { hash: 'sha256', accept: ['image/png'] }) : await mgr.spool(bytes, { hash: 'sha256', accept: ['image/png'] });
        const names = reachableNames(file);
        for (const setter of ['setContent', 'setDetectedType', 'account', 'bytes', 'hashDigest', 'sniffedType', 'accountedBytes']) {
          expect(names, setter).not.toContain(setter);
        }
        const forged = file as unknown as Record<string, unknown>;
        for (const name of ['bytes', 'hashDigest', 'accountedBytes', 'reservation']) forged[name] = 1e9;
        expect(() => Object.defineProperty(file, 'size', { value: 1e9 })).not.toThrow(); // an own property shadows the getter for this object only
        const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
        const ticket = await file.handoff({ ttlMs: 60_000 });
        expect(ticket).toMatchObject({ size: bytes.length, digest });
        await using claimed = await mgr.claim(ticket, { verifyDigest: true });
        expect(claimed.size).toBe(bytes.length);
        await claimed.consume();
      } finally {
        await mgr.close();
      }
    });
  }

  it('the quota counts a live file\'s bytes until it goes, and nothing on the handle lowers the count', async () => {
    const mgr = manager({ maxLiveBytes: 1024 });
    try {
      const file = await mgr.write(Buffer.alloc(600));
      expect(mgr.stats().liveBytes).toBe(600);
      const names = reachableNames(file);
      for (const counter of ['account', 'reserve', 'release', 'reservation', 'accountedBytes']) expect(names, counter).not.toContain(counter);
      (file as unknown as Record<string, unknown>).accountedBytes = -600;
      expect(mgr.stats().liveBytes).toBe(600);
      await expect(mgr.write(Buffer.alloc(600))).rejects.toMatchObject({ code: 'ERR_TEMPFILE_QUOTA_EXCEEDED' });
      await file.remove();
      expect(mgr.stats().liveBytes).toBe(0);
    } finally {
      await mgr.close();
    }
  });
});
