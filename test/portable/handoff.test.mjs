// A handoff across processes, over the built package, on any node (scripts/portable.mjs): a file
// handed off here is claimed and consumed in another process, and a claim whose holder was
// killed outright (TerminateProcess on Windows) is taken over.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { TempFileManager } from '../../dist/index.js';
import { eventually, scratch, startChild, win32 } from './helpers.mjs';

let mgr;
after(() => mgr.close()); // before the directory's removal, which `after` hooks run in order
const root = path.join(scratch(after, 'handoff'), 'root');
mgr = new TempFileManager({ root, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });

test('handoff() here, claim() and consume() in another process: it reads the bytes, and the entry is gone', async () => {
  const file = await mgr.write('job bytes', { suffix: '.txt' });
  const ticket = await file.handoff({ ttlMs: 600_000 });
  assert.equal(fs.existsSync(file.path), false, 'the file left the session');
  const child = startChild('consume', root, JSON.stringify(ticket));
  assert.deepEqual(await child.firstLine(), { content: 'job bytes' });
  assert.equal((await child.ended).code, 0);
  await assert.rejects(mgr.claim(ticket), (err) => /^ERR_TEMPFILE_HANDOFF_/.test(err.code));
});

test('a holder killed outright: its claim is taken over, the bytes are intact, and consume() ends the entry', async () => {
  const file = await mgr.write('taken over', { suffix: '.txt' });
  const ticket = await file.handoff({ ttlMs: 600_000 });
  const holder = startChild('hold', root, JSON.stringify(ticket));
  assert.equal((await holder.firstLine()).content, 'taken over');
  holder.proc.kill(win32 ? undefined : 'SIGKILL');
  await holder.ended;
  const claimed = await eventually('the takeover', () =>
    mgr.claim(ticket).catch((err) => {
      if (err.code === 'ERR_TEMPFILE_HANDOFF_CLAIMED') return undefined;
      throw err;
    }),
  );
  assert.equal(fs.readFileSync(claimed.path, 'utf8'), 'taken over');
  await claimed.consume();
  await assert.rejects(mgr.claim(ticket), (err) => /^ERR_TEMPFILE_HANDOFF_/.test(err.code));
});
