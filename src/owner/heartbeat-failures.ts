import { CHANNELS, publish } from '../base/channels.js';
import { logger } from '../base/log.js';
import { processSlot, type Beat } from './registry.js';

const log = logger('heartbeat');

/** The `code` of the process warning a heartbeat that cannot be refreshed raises. @internal */
export const HEARTBEAT_WARNING = 'WARN_TEMPFILE_HEARTBEAT';

/** What this thread's heartbeats met, as `stats()` shows it. */
export interface HeartbeatFailures {
  /** Beats that could not refresh their owner's inode, since the thread started. */
  readonly count: number;
}

interface FailureState {
  count: number;
  readonly warned: Set<string>;
}

function failureState(): FailureState {
  return processSlot('heartbeat-failures', () => ({ count: 0, warned: new Set<string>() }));
}

/** What this thread's heartbeats met so far. @internal */
export function heartbeatFailures(): HeartbeatFailures {
  return { count: failureState().count };
}

/**
 * Reports at once a beat that could not refresh its owner's inode: a debug line and a count
 * always, a `heartbeatFail` message, and a process warning once per name and reason. A held
 * file's path is never shown (it holds its ticket's id): a claim is named by its kind.
 * @internal
 */
export function reportFailure(target: { readonly kind: Beat['kind']; readonly shown: string }, reason: string): void {
  const state = failureState();
  const path = target.kind === 'session' ? target.shown : undefined;
  state.count += 1;
  log('heartbeat of %s failed: %s', target.shown, reason);
  publish(CHANNELS.heartbeatFail, () => ({ kind: target.kind, ...(path !== undefined && { path }), reason }));
  const once = `${target.shown}\0${reason}`;
  if (state.warned.has(once)) return;
  state.warned.add(once);
  if (state.warned.size > 1024) state.warned.clear();
  process.emitWarning(warningText(target.kind, path, reason), { type: 'TempFileWarning', code: HEARTBEAT_WARNING });
}

function warningText(kind: Beat['kind'], path: string | undefined, reason: string): string {
  const what = kind === 'session' ? `the heartbeat of the session lock ${path}` : "the heartbeat of a claim's held file";
  if (reason === 'gone') {
    return kind === 'session'
      ? `tempfile-manager: ${what} found the lock gone (removed by hand, or by a sweeper that judged this process dead): the lock is made again.`
      : `tempfile-manager: ${what} found it gone: the claim was taken over (another claimer judged this process dead, or the file was moved by hand); its next step throws LeaseLostError.`;
  }
  return (
    `tempfile-manager: ${what} could not be refreshed (${reason}). While it cannot, an observer that judges this process by its ` +
    'heartbeat (on another host sharing the root) may judge it dead after its staleMs. See docs/crash-recovery.md, "When a heartbeat fails".'
  );
}
