// Managers of one root in one process share its background sweeper. It swept through the first
// manager's context for good: once that manager closed, the others' sweeps kept it reachable, and
// reopened its root (a descriptor never closed), for as long as any other manager lived.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { TempFileManager } from '../../src/index.js';
import { hostId } from '../../src/owner/process-identity.js';
import { deadSessionNameHere, freshRoot } from '../helpers/roots.js';
import { until } from '../helpers/wait.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** This process's descriptors open on `dir` itself. */
function descriptorsOn(dir: string): number {
  let count = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === dir) count += 1;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

describe('the background sweeper shared by the managers of a root', () => {
  it('keeps none of a closed manager, while another manager of the root lives', async () => {
    const root = freshRoot();
    const options = { root, sweepOnStart: false, sweepIntervalMs: 60_000, exitHook: false };
    let first: TempFileManager | undefined = new TempFileManager(options);
    const firstRef = new WeakRef(first);
    const second = new TempFileManager(options);
    await first.close();
    first = undefined;
    for (let i = 0; i < 3; i++) {
      await sleep(10); // a WeakRef is cleared only after the job that made or read it
      gc();
    }
    const collected = firstRef.deref() === undefined;
    await second.close();
    expect(collected).toBe(true);
  });

  it.runIf(fs.existsSync('/proc/self/fd'))('sweeps through a manager still open: no root reopened for a closed one', async () => {
    const root = freshRoot();
    const first = new TempFileManager({ root, sweepOnStart: false, sweepIntervalMs: 1000, exitHook: false });
    first.file(); // its session, and its pinned root, made
    const second = new TempFileManager({ root, sweepOnStart: false, sweepIntervalMs: 1000, exitHook: false });
    second.file(); // the second's pinned root: the one a sweep may hold
    await first.close();
    const before = descriptorsOn(root);
    for (let sweep = 0; sweep < 2; sweep++) {
      const dead = path.join(root, deadSessionNameHere(hostId(), `${sweep}`.repeat(16)));
      fs.mkdirSync(dead);
      await until(() => !fs.existsSync(dead), 30_000, `background sweep ${sweep + 1} removed a dead session`);
    }
    const after = descriptorsOn(root);
    await second.close();
    expect(before).toBe(1);
    expect(after).toBe(before);
  });
});
