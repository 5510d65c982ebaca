import type { OwnerVerdict } from '../owner/liveness.js';
import type { RootContext } from '../root/root.js';
import { findSessions, judge } from './session-sweep.js';
import { walkTree } from '../disk/walk.js';

/** A session's state as `tempfile-manager ls` words it. */
export type SessionState = 'live' | 'orphan' | 'young' | 'unjudged';

const STATE_OF: Readonly<Record<OwnerVerdict, SessionState>> = { alive: 'live', dead: 'orphan', young: 'young', unjudged: 'unjudged' };

/** One session under a root, as `tempfile-manager ls` shows it. */
export interface SessionInfo {
  readonly name: string;
  readonly path: string;
  readonly host: string;
  readonly pid: number;
  /** Milliseconds since the session was created. */
  readonly ageMs: number;
  /**
   * `live`, `orphan` (the next sweep removes it), or, for another machine's session, `young` or
   * `unjudged` (not watched long enough yet to tell).
   */
  readonly state: SessionState;
  /** Files and symlinks in the session, at any depth. */
  readonly files: number;
  readonly bytes: number;
}

/** Lists the sessions under a root with their owner, age, state, files and bytes. */
export async function listSessions(target: RootContext): Promise<SessionInfo[]> {
  const now = Date.now();
  const { sessions } = await findSessions(target);
  const infos: SessionInfo[] = [];
  for (const session of sessions) {
    const tally = session.hasDir ? await walkTree(session.dir, { remove: false }) : undefined;
    infos.push({
      name: session.name,
      path: session.dir,
      host: session.parsed.host,
      pid: session.parsed.pid,
      ageMs: now - session.parsed.created,
      state: STATE_OF[judge(target, session)],
      files: tally?.files ?? 0,
      bytes: tally?.bytes ?? 0,
    });
  }
  return infos.sort((a, b) => b.ageMs - a.ageMs);
}
