// Names the beat thread beats: it takes only what the library names so (a session's lock, a held
// file), whoever asks. `label` keeps a test's several names apart.
import path from 'node:path';
import { heldName, sessionName } from '../../src/base/layout.js';
import { newOwnerToken } from '../../src/handoff/lease.js';

let made = 0;

/** A session's lock under `dir`: `session_<owner>.lock`. */
export function lockAt(dir: string): string {
  const owner = { host: 'testhost', pid: 4_000_000 + made++, start: '1', created: Date.now(), random: '0123456789abcdef' };
  return path.join(dir, `${sessionName(owner)}.lock`);
}

/** A held file under `dir`: `held_<owner><suffix>`. */
export function heldAt(dir: string, suffix = ''): string {
  return path.join(dir, heldName(newOwnerToken('testhost'), suffix));
}
