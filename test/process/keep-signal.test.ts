import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HandoffTicket } from '../../src/index.js';
import { nextJson, startChild, type RunningChild } from '../helpers/child.js';
import { eachNeeds, MOUNTING } from '../helpers/privileges.js';
import { freshRoot, manager, scratchDir } from '../helpers/roots.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

const MiB = 1024 * 1024;
/** The documented shape of a staging name (docs/scoped-files.md). */
const STAGING = /^\.kept\.bin\.tfm-keep-[0-9a-f]{32}\.partial$/;

interface Started {
  readonly source: string;
  readonly session: string;
  readonly ticket?: HandoffTicket;
}

interface Paused {
  readonly paused: 'opened' | 'identifying' | 'mid-copy' | 'placed';
  readonly staging: string;
}

interface Keeping {
  readonly running: RunningChild;
  readonly started: Started;
  readonly paused: Paused;
  readonly dir: string;
  readonly dest: string;
  readonly root: string;
  readonly bytes: Buffer;
}

/** A child keeping 24 MiB from the root's disk to a tmpfs, paused at `pause` inside keep(). */
async function keepAcrossDevices(what: 'file' | 'claim', pause: Paused['paused'], exitHook = true): Promise<Keeping> {
  const dir = path.join(mountTmpfs(64), 'kept');
  fs.mkdirSync(dir);
  const dest = path.join(dir, 'kept.bin');
  const root = freshRoot();
  const bytes = randomBytes(24 * MiB);
  const payload = path.join(scratchDir(), 'payload');
  fs.writeFileSync(payload, bytes);
  const running = startChild('keep-signal-child.mjs', [root, payload, dest, what, pause, String(exitHook)]);
  const started = await nextJson<Started>(running);
  const paused = await nextJson<Paused>(running);
  expect(paused.staging).toMatch(STAGING);
  expect(fs.existsSync(path.join(dir, paused.staging))).toBe(true);
  return { running, started, paused, dir, dest, root, bytes };
}

describe('a graceful signal during a cross-device keep()', () => {
  eachNeeds(MOUNTING);

  it('SIGTERM mid-copy: no staging file is left, nothing at the destination, and the source went with its session', async () => {
    const keeping = await keepAcrossDevices('file', 'mid-copy');
    expect(fs.statSync(path.join(keeping.dir, keeping.paused.staging)).size).toBeGreaterThan(0); // a part of the copy
    keeping.running.child.kill('SIGTERM');
    expect(await keeping.running.ended).toMatchObject({ code: null, signal: 'SIGTERM', stderr: '' });
    expect(fs.readdirSync(keeping.dir)).toEqual([]);
    expect(fs.existsSync(keeping.started.source)).toBe(false);
    expect(fs.existsSync(keeping.started.session)).toBe(false);
  });

  it('SIGTERM mid-copy with exitHook: false: no staging file is left; the session stays for the sweep', async () => {
    const keeping = await keepAcrossDevices('file', 'mid-copy', false);
    keeping.running.child.kill('SIGTERM');
    expect(await keeping.running.ended).toMatchObject({ code: null, signal: 'SIGTERM', stderr: '' });
    expect(fs.readdirSync(keeping.dir)).toEqual([]);
    expect(fs.existsSync(keeping.started.source)).toBe(true);
  });

  it('SIGHUP while keep() asks for the identity of the staging file it opened: it is removed by its descriptor', async () => {
    const keeping = await keepAcrossDevices('file', 'identifying');
    keeping.running.child.kill('SIGHUP');
    expect(await keeping.running.ended).toMatchObject({ code: null, signal: 'SIGHUP', stderr: '' });
    expect(fs.readdirSync(keeping.dir)).toEqual([]);
  });

  // Before its open returns, keep() cannot tell its staging file from an empty file another
  // process of this user put at the name: the hook leaves the name, as a crash would.
  it('SIGHUP while the staging file is created, before its open returns: the name is left, empty, as after a crash', async () => {
    const keeping = await keepAcrossDevices('file', 'opened');
    keeping.running.child.kill('SIGHUP');
    expect(await keeping.running.ended).toMatchObject({ code: null, signal: 'SIGHUP', stderr: '' });
    expect(fs.readdirSync(keeping.dir)).toEqual([keeping.paused.staging]);
    expect(fs.statSync(path.join(keeping.dir, keeping.paused.staging)).size).toBe(0);
  });

  // An empty regular file of this user with one link looks just like a staging file created a
  // moment ago: only the identity of the file keep() opened tells them apart.
  it.for(['opened', 'identifying'] as const)(
    'the staging name swapped for an empty file of the same user (%s): the exit hook leaves it',
    async (pause) => {
      const keeping = await keepAcrossDevices('file', pause);
      const staging = path.join(keeping.dir, keeping.paused.staging);
      fs.renameSync(staging, path.join(keeping.dir, 'moved-away'));
      fs.writeFileSync(staging, '');
      const theirs = fs.statSync(staging).ino;
      keeping.running.child.kill('SIGTERM');
      expect(await keeping.running.ended).toMatchObject({ code: null, signal: 'SIGTERM' });
      expect(fs.readdirSync(keeping.dir).sort()).toEqual([keeping.paused.staging, 'moved-away'].sort());
      expect(fs.lstatSync(staging).ino).toBe(theirs);
    },
  );

  it('SIGINT once the file took its name: the staging name goes, the whole file stays at the destination', async () => {
    const keeping = await keepAcrossDevices('file', 'placed');
    keeping.running.child.kill('SIGINT');
    expect(await keeping.running.ended).toMatchObject({ code: null, signal: 'SIGINT', stderr: '' });
    expect(fs.readdirSync(keeping.dir)).toEqual(['kept.bin']);
    expect(fs.readFileSync(keeping.dest).equals(keeping.bytes)).toBe(true);
    expect(fs.existsSync(keeping.started.session)).toBe(false);
  });

  it('SIGTERM mid-copy of a claimed file: no staging file is left, and the entry goes back whole for the next claimer', async () => {
    const keeping = await keepAcrossDevices('claim', 'mid-copy');
    keeping.running.child.kill('SIGTERM');
    expect(await keeping.running.ended).toMatchObject({ code: null, signal: 'SIGTERM', stderr: '' });
    expect(fs.readdirSync(keeping.dir)).toEqual([]);
    const next = await manager({ root: keeping.root }).claim(keeping.started.ticket!);
    expect(fs.readFileSync(next.path).equals(keeping.bytes)).toBe(true);
    await next.consume();
  });

  // Whoever can write to the destination's directory may swap the staging name mid-copy: what is
  // at that name then is theirs, a symlink is never followed, and neither is removed.
  it.for([
    ['a symlink to a file of theirs', 'mid-copy'],
    ['a file of theirs', 'mid-copy'],
    ['a symlink to a file of theirs', 'opened'],
    ['a file of theirs', 'opened'],
  ] as const)(
    'the staging name swapped for %s (%s): the exit hook leaves it, and what it points to, alone',
    async ([planted, pause]) => {
      const keeping = await keepAcrossDevices('file', pause);
      const staging = path.join(keeping.dir, keeping.paused.staging);
      const theirs = path.join(scratchDir(), 'theirs');
      fs.writeFileSync(theirs, 'not yours');
      fs.renameSync(staging, path.join(keeping.dir, 'moved-away'));
      if (planted === 'a symlink to a file of theirs') fs.symlinkSync(theirs, staging);
      else fs.copyFileSync(theirs, staging);
      keeping.running.child.kill('SIGTERM');
      expect(await keeping.running.ended).toMatchObject({ code: null, signal: 'SIGTERM' });
      expect(fs.readdirSync(keeping.dir).sort()).toEqual([keeping.paused.staging, 'moved-away'].sort());
      expect(fs.readFileSync(staging, 'utf8')).toBe('not yours');
      expect(fs.lstatSync(staging).isSymbolicLink()).toBe(planted === 'a symlink to a file of theirs');
      expect(fs.readFileSync(theirs, 'utf8')).toBe('not yours');
    },
  );
});
