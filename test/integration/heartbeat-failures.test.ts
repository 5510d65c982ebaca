import dc from 'node:diagnostics_channel';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { TempFileManager } from '../../src/index.js';
import { CHANNELS, type HeartbeatFailedMessage } from '../../src/diagnostics.js';
import { freshRoot } from '../helpers/roots.js';

// No silent failure: a heartbeat that cannot refresh its owner's inode is reported at once, as a
// process warning, a diagnostics_channel message and a field of stats(), and nothing else changes
// for the owner while it lives.

const managers: TempFileManager[] = [];
afterEach(async () => {
  for (const mgr of managers.splice(0)) await mgr.close();
});

function until<T>(look: () => T | undefined, ms: number): Promise<T> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      const found = look();
      if (found !== undefined) return resolve(found);
      if (performance.now() - started > ms) return reject(new Error(`nothing seen within ${ms} ms`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

describe('a heartbeat that cannot be refreshed', () => {
  it('a claim\'s held file replaced under it: a warning, a heartbeatFail message and stats() say so within two beats; a hard link alone says nothing', async () => {
    const root = freshRoot();
    const mgr = new TempFileManager({ root, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    managers.push(mgr);
    const ticket = await (await mgr.write('held')).handoff({ ttlMs: 60_000 });
    const claimed = await mgr.claim(ticket);
    const warnings: Array<{ code?: string; message: string }> = [];
    const onWarning = (warning: Error & { code?: string }) => warnings.push({ code: warning.code, message: warning.message });
    process.on('warning', onWarning);
    const messages: HeartbeatFailedMessage[] = [];
    const onMessage = (message: unknown) => messages.push(message as HeartbeatFailedMessage);
    dc.subscribe(CHANNELS.heartbeatFail, onMessage);
    try {
      const before = mgr.stats().heartbeatFailures;
      fs.linkSync(claimed.path, `${root}/../linked-${process.pid}-${Date.now()}`);
      await new Promise((resolve) => setTimeout(resolve, 2_500)); // two beats and more
      expect(messages, 'a hard link of the owner\'s own inode is no failure').toEqual([]);
      expect(mgr.stats().heartbeatFailures).toBe(before);
      const other = `${claimed.path}.other`;
      fs.writeFileSync(other, 'planted');
      fs.renameSync(other, claimed.path);
      const message = await until(() => messages[0], 5_000);
      expect(message).toEqual({ kind: 'lease', reason: 'replaced: another file (inode changed)' });
      expect(JSON.stringify(message)).not.toContain(ticket.id);
      const warning = await until(() => warnings.find((w) => w.code === 'WARN_TEMPFILE_HEARTBEAT'), 5_000);
      expect(warning.message).toContain('another file (inode changed)');
      const stats = mgr.stats();
      expect(stats.heartbeatFailures).toBeGreaterThan(before);
    } finally {
      process.off('warning', onWarning);
      dc.unsubscribe(CHANNELS.heartbeatFail, onMessage);
      await claimed.release().catch(() => undefined);
    }
  }, 30_000);
});
