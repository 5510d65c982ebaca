// `tempfile-manager ls` after a claimer was SIGKILLed while it held an entry: its held file is
// still on disk, and ls shows it as it is, held by a dead owner and claimable (state
// `abandoned`, the dead holder shown), in the table and in --json; not `waiting` with no holder.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { TempFileManager } from '../../src/index.js';
import { hostId } from '../../src/owner/process-identity.js';
import { nextJson, startChild } from '../helpers/child.js';
import { freshRoot } from '../helpers/roots.js';

const cli = path.join(import.meta.dirname, '../../dist/cli.js');
const execFileAsync = promisify(execFile);

async function ls(root: string, ...flags: string[]): Promise<string> {
  const { stdout } = await execFileAsync(cli, ['ls', '--root', root, ...flags], { encoding: 'utf8' });
  return stdout;
}

it('ls shows an entry whose claimer was SIGKILLed as abandoned, its dead holder shown, while the held file stays', async () => {
  const root = freshRoot();
  const mgr = new TempFileManager({ root, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
  const ticket = await (await mgr.write('job bytes')).handoff({ ttlMs: 3_600_000 });
  const holder = startChild('handoff-child.mjs', ['hold', root, JSON.stringify(ticket), hostId(), '30000']);
  const won = await nextJson<{ status: string; pid: number }>(holder);
  expect(won.status).toBe('won');
  holder.child.kill('SIGKILL');
  await holder.ended;
  const entry = path.join(root, 'handoff', fs.readdirSync(path.join(root, 'handoff'))[0]!);
  expect(fs.readdirSync(entry)).toEqual([expect.stringMatching(/^held_/)]);

  const table = await ls(root);
  expect(table).toMatch(new RegExp(`${ticket.id}\\s+[0-9a-f]{16}\\s+abandoned \\(holder dead, claimable\\)\\s+in 60m\\s+9 B\\s+${hostId()}:${won.pid}`));
  const { handoff } = JSON.parse(await ls(root, '--json')) as { handoff: unknown[] };
  expect(handoff).toEqual([expect.objectContaining({ id: ticket.id, state: 'abandoned', bytes: 9, holder: { host: hostId(), pid: won.pid } })]);

  const claimed = await mgr.claim(ticket); // claimable, as ls said
  expect(fs.readFileSync(claimed.path, 'utf8')).toBe('job bytes');
  await claimed.consume();
  await mgr.close();
});
