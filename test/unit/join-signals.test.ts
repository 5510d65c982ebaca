// joinSignals(), the library's AbortSignal.any(): a signal that follows others, and lets go of
// them once its operation is over. A source that lives long (a scope's signal, a caller's shutdown
// signal) must not grow with the operations made with it: AbortSignal.any() leaves an entry in each
// source for every call on Node 20 and keeps about as much on Node 22.
import { getEventListeners } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { joinSignals } from '../../src/base/any-signal.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

async function heapAfterCollections(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await sleep(5);
    gc();
  }
  return process.memoryUsage().heapUsed;
}

describe('joinSignals()', () => {
  it('aborts with the reason of the first source to abort, and leaves the sources as they were', () => {
    const [a, b] = [new AbortController(), new AbortController()];
    const joined = joinSignals([a.signal, b.signal]);
    expect(joined.signal.aborted).toBe(false);
    b.abort(new Error('b went'));
    expect(joined.signal.aborted).toBe(true);
    expect((joined.signal.reason as Error).message).toBe('b went');
    a.abort(new Error('a went'));
    expect((joined.signal.reason as Error).message).toBe('b went');
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(0);
  });

  it('is aborted at once when a source is, with its reason', () => {
    const a = new AbortController();
    a.abort('gone');
    const joined = joinSignals([new AbortController().signal, a.signal]);
    expect(joined.signal.aborted).toBe(true);
    expect(joined.signal.reason).toBe('gone');
  });

  it('follows no source once released', () => {
    const a = new AbortController();
    const joined = joinSignals([a.signal]);
    joined.release();
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(0);
    a.abort();
    expect(joined.signal.aborted).toBe(false);
  });

  it('leaves a long-lived source as it found it after 100,000 operations', async () => {
    const shutdown = new AbortController();
    const before = await heapAfterCollections();
    for (let i = 0; i < 100_000; i++) {
      const ours = new AbortController();
      joinSignals([ours.signal, shutdown.signal]).release();
    }
    const grown = (await heapAfterCollections()) - before;
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
    // AbortSignal.any() in its place: 6 MB on Node 20, 18 MB on Node 22.
    expect(grown).toBeLessThan(2 * 1024 * 1024);
  });
});

it('src/ never calls AbortSignal.any(): every signal that follows others is a joinSignals()', () => {
  const calls: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const at = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(at);
      else if (at.endsWith('.ts')) {
        fs.readFileSync(at, 'utf8')
          .split('\n')
          .forEach((line, i) => {
            if (/AbortSignal\.any\(\s*\[/.test(line)) calls.push(`${path.relative(process.cwd(), at)}:${i + 1}`);
          });
      }
    }
  };
  walk(path.join(import.meta.dirname, '../../src'));
  expect(calls).toEqual([]);
});
