// The tus store's locker against the cases of @tus/server's own locker test (its Locker.test.ts,
// written for its MemoryLocker): on an upload that exists, each holds; on an id with no upload,
// the documented choice (docs/migrating.md, "From @tus/file-store"): the lock holds nothing.
// @tus/server takes a POST's lock before create(); here an upload is made by one mkdir, which one
// of two POSTs with the same id wins, so nothing needs locking before it exists.
import fs from 'node:fs';
import path from 'node:path';
import { ERRORS, Upload } from '@tus/server';
import { describe, expect, it } from 'vitest';
import { tusStore } from '../../src/tus/index.js';
import { manager } from '../helpers/roots.js';

const ID = 'upload-id-1';
const signal = () => new AbortController().signal;

/** A store and locker on a fresh root, with upload `ID` made unless `made` is false. */
async function lockerOn({ made = true, lockTimeoutMs = 30_000 } = {}) {
  const mgr = manager();
  const { datastore, locker } = await tusStore({ manager: mgr, lockTimeoutMs });
  if (made) await datastore.create(new Upload({ id: ID, offset: 0, size: 10 }));
  return { mgr, datastore, locker };
}

describe('an upload that exists: the cases of @tus/server\'s Locker.test.ts', () => {
  it('acquires a lock by asking the holder to release it: the holder is asked once, the new holder never', async () => {
    const { locker } = await lockerOn();
    const lock1 = locker.newLock(ID);
    const lock2 = locker.newLock(ID);
    let asked1 = 0;
    let asked2 = 0;
    await lock1.lock(signal(), async () => {
      await lock1.unlock();
      asked1 += 1;
    });
    await lock2.lock(signal(), async () => {
      asked2 += 1;
    });
    await lock2.unlock();
    expect(asked1).toBe(1);
    expect(asked2).toBe(0);
  });

  it("a holder that never releases: the contender fails with @tus/server's ERR_LOCK_TIMEOUT after lockTimeoutMs", async () => {
    const { locker } = await lockerOn({ lockTimeoutMs: 300 });
    const holder = locker.newLock(ID);
    let asked = 0;
    await holder.lock(signal(), () => {
      asked += 1; // noted, not released
    });
    const started = performance.now();
    await expect(locker.newLock(ID).lock(signal(), () => {})).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT);
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect(asked).toBe(1);
    await holder.unlock();
  });

  it('request lock and unlock: a holder that lets go 50 ms after it is asked hands the lock over', async () => {
    const { locker } = await lockerOn();
    const holder = locker.newLock(ID);
    let asked = 0;
    await holder.lock(signal(), () => {
      asked += 1;
      setTimeout(() => void holder.unlock(), 50);
    });
    const started = performance.now();
    const contender = locker.newLock(ID);
    await contender.lock(signal(), () => {
      throw new Error('the new holder is never asked');
    });
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    expect(asked).toBe(1);
    await contender.unlock();
  });

  it("stops trying once the contender's signal aborts, with ERR_LOCK_TIMEOUT (the holder asked once: MemoryLocker asks again on each try)", async () => {
    const { locker } = await lockerOn();
    const holder = locker.newLock(ID);
    let asked = 0;
    await holder.lock(signal(), () => {
      asked += 1; // refuses to release
    });
    const aborting = new AbortController();
    setTimeout(() => aborting.abort(), 100);
    const started = performance.now();
    let askedContender = 0;
    await expect(locker.newLock(ID).lock(aborting.signal, () => void (askedContender += 1))).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT);
    expect(performance.now() - started).toBeLessThan(5000); // long before lockTimeoutMs (30 s)
    expect(asked).toBe(1);
    expect(askedContender).toBe(0);
    await holder.unlock();
  });
});

describe('an id with no upload: the lock holds nothing (the one choice)', () => {
  it('every lock of it is taken at once, none waits, none asks another to release, and unlock() gives nothing back', async () => {
    const { mgr, locker } = await lockerOn({ made: false, lockTimeoutMs: 300 });
    let asked = 0;
    const holder = locker.newLock(ID);
    await holder.lock(signal(), () => {
      asked += 1;
    });
    // Where MemoryLocker would make this one wait, ask the holder, and time out after 300 ms.
    const started = performance.now();
    const contender = locker.newLock(ID);
    await contender.lock(signal(), () => {
      asked += 1;
    });
    expect(performance.now() - started).toBeLessThan(250);
    expect(asked).toBe(0);
    await contender.unlock();
    await holder.unlock();
    // Nothing was made for it: no upload directory under <root>/tus.
    expect(fs.readdirSync(path.join(mgr.root, 'tus')).filter((name) => name.includes(ID))).toEqual([]);
  });

  it('once the upload is made, a lock of it is exclusive again', async () => {
    const { datastore, locker } = await lockerOn({ made: false, lockTimeoutMs: 300 });
    const early = locker.newLock(ID);
    await early.lock(signal(), () => {});
    await datastore.create(new Upload({ id: ID, offset: 0, size: 10 }));
    await early.unlock(); // as a POST gives its lock back once answered
    const holder = locker.newLock(ID);
    await holder.lock(signal(), () => {});
    await expect(locker.newLock(ID).lock(signal(), () => {})).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT);
    await holder.unlock();
  });
});
