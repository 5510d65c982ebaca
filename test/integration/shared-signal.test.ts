// A signal that outlives many writes (a server's shutdown signal, a scope's own): it must hold none
// of the writes that ended. Its one 'abort' listener, shared by every write waiting on it, was made
// where the first write subscribed, and kept that write's source reader (and through it its
// source) for as long as any later write still waited on the signal: on a busy server, always.
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { manager } from '../helpers/roots.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** A source that sends what it is given, and ends when told. */
function heldOpen(): Readable {
  return new Readable({ read() {} });
}

async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 3; i++) {
    await sleep(10); // a WeakRef is cleared only after the job that made or read it
    gc();
  }
  return ref.deref() === undefined;
}

describe('a signal shared by many writes', () => {
  it.each(['the caller’s signal', 'the scope’s own signal'])('keeps none of the writes that ended while another still waits on it: %s', async (which) => {
    const mgr = manager();
    const scope = mgr.scope();
    const shutdown = new AbortController();
    const options = which === 'the caller’s signal' ? { signal: shutdown.signal } : {};
    const owner = which === 'the caller’s signal' ? mgr : scope;

    let first: Readable | undefined = heldOpen();
    const firstRef = new WeakRef(first);
    const writingFirst = owner.write(first, options);
    const second = heldOpen();
    const writingSecond = owner.write(second, options); // still waiting on the signal below

    first.push(Buffer.alloc(64 * 1024, 1));
    first.push(null);
    first = undefined; // the test's only reference
    await writingFirst;
    const firstCollected = await collected(firstRef);

    second.push(Buffer.alloc(1024, 2));
    second.push(null);
    expect((await writingSecond).size).toBe(1024);
    expect(firstCollected).toBe(true);
    await scope.remove();
    await mgr.close();
  });
});
