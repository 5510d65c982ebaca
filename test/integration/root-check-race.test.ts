import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { TempFileError, TempFileManager } from '../../src/index.js';
import { fixture } from '../helpers/child.js';
import { needs } from '../helpers/privileges.js';
import { markedRoot, scratchDir } from '../helpers/roots.js';

// The attacker: a process of the same user swaps the root's path with a symlink to a victim
// directory (renameat2 RENAME_EXCHANGE) in a tight loop while managers are made on that root. A
// manager checks the root, then marks it: whatever moment the swap lands, nothing is created in
// the victim, and a manager that sees the swap throws a typed error instead of starting. Where there
// is /proc: without it the marker is reached by the root's path, which a swap between the check and
// the open can redirect (the documented weaker mode, docs/security.md), so this file is not in the
// CI run without /proc.

const RACE_MS = 2500;

it('a root swapped with a symlink while managers are made gets no file into the victim', async (ctx) => {
  needs(ctx, { command: 'gcc', package: 'gcc' });
  const dir = scratchDir();
  const exchange = path.join(dir, 'rename-exchange');
  execFileSync('gcc', ['-O2', '-o', exchange, fixture('rename-exchange.c')]);
  const root = markedRoot(path.join(dir, 'root'));
  const victim = path.join(dir, 'victim');
  fs.mkdirSync(victim, { mode: 0o700 });
  fs.symlinkSync(victim, path.join(dir, 'swap'));

  const racer = spawn(exchange, [root, path.join(dir, 'swap'), String(RACE_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let swaps = '';
  racer.stdout.on('data', (d: Buffer) => (swaps += d.toString()));
  const ended = new Promise<number | null>((resolve) => racer.on('close', resolve));
  let running = true;
  void ended.then(() => (running = false));

  let made = 0;
  const codes = new Set<string>();
  const untyped: unknown[] = [];
  while (running && fs.readdirSync(victim).length === 0) {
    try {
      new TempFileManager({ root, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
      made += 1;
    } catch (err) {
      if (err instanceof TempFileError) codes.add(err.code);
      else untyped.push(err);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await ended; // the racer leaves both names as they were

  expect(fs.readdirSync(victim)).toEqual([]);
  expect(untyped).toEqual([]);
  expect([...codes].filter((code) => code !== 'ERR_TEMPFILE_UNSAFE_ROOT' && code !== 'ERR_TEMPFILE_ROOT_CHANGED')).toEqual([]);
  expect(Number(swaps)).toBeGreaterThan(1000); // the race was run
  expect(made).toBeGreaterThan(0);
  expect(fs.lstatSync(root).isDirectory()).toBe(true);
}, 20_000);
