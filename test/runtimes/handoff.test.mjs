// A file handed off on Bun is claimed on Deno, which hands on what it read; Node claims that:
// one root, three runtimes. Run by scripts/runtimes.mjs.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test } from 'node:test';
import { leftUnder, runOn, scratch } from './helpers.mjs';

test('handoff on Bun, claim and handoff on Deno, claim on Node: the bytes arrive, and nothing is left', async () => {
  const root = path.join(scratch(after, 'runtimes-handoff'), 'root');
  const steps = [
    ['bun', ['-', 'from bun']],
    ['deno', [undefined, ', via deno']],
    ['node', [undefined]],
  ];
  let ticket;
  const seen = [];
  for (const [runtime, [given, text]] of steps) {
    const args = [root, given ?? JSON.stringify(ticket), ...(text === undefined ? [] : [text])];
    const end = await runOn(runtime, 'relay.mjs', args);
    assert.equal(end.code, 0, `${runtime}: ${end.stderr}`);
    const [line] = end.lines;
    if (line.content !== undefined) seen.push({ runtime, content: line.content, from: line.from });
    ticket = line.ticket;
  }
  assert.deepEqual(seen, [
    { runtime: 'deno', content: 'from bun', from: 'bun' },
    { runtime: 'node', content: 'from bun, via deno', from: 'deno' },
  ]);
  assert.deepEqual(leftUnder(root), []);
});
