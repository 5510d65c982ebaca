import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { judgeHeartbeatHere, secondLookDueInMs, type Heartbeat } from '../../src/owner/liveness.js';

// The rule for an owner of this host whose pid exists, on a system without /proc: its heartbeat
// against this host's clock, looked at twice. On a fake clock: the wall clock (Date) and the
// monotonic one (performance) move together, or apart when the wall clock is stepped.

const STALE_MS = 2000;
/** The two looks' gap: at least 2 s (docs/crash-recovery.md). */
const SECOND_LOOK_MS = 2000;
const rules = { staleMs: STALE_MS, graceMs: 60_000, hostId: 'here' };
let key = 0;
const lock = () => `/root/session_${++key}.lock`;
const look = (at: string, stamp: Heartbeat['stamp']) => judgeHeartbeatHere({ key: at, stamp }, rules);

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date', 'hrtime'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('an owner of this host without /proc, its pid in use', () => {
  it('is alive while its heartbeat is fresh by this host\'s clock', () => {
    const at = lock();
    const stamp = Date.now() - (STALE_MS - 1);
    expect(look(at, stamp)).toBe('alive');
  });

  it('is dead once its heartbeat was old at two looks SECOND_LOOK_MS apart, unchanged', () => {
    const at = lock();
    const stamp = Date.now() - 3_600_000;
    expect(look(at, stamp)).toBe('unjudged');
    expect(secondLookDueInMs(at)).toBe(SECOND_LOOK_MS);
    vi.advanceTimersByTime(SECOND_LOOK_MS - 1);
    expect(look(at, stamp)).toBe('unjudged');
    vi.advanceTimersByTime(1);
    expect(look(at, stamp)).toBe('dead');
  });

  it('is alive after the wall clock stepped an hour forward, once its beat thread beat again', () => {
    const at = lock();
    expect(look(at, Date.now())).toBe('alive');
    vi.setSystemTime(Date.now() + 3_600_000); // the wall clock alone moves
    const before = Date.now() - 3_600_000;
    expect(look(at, before)).toBe('unjudged'); // an hour old at once
    vi.advanceTimersByTime(1000);
    expect(look(at, Date.now())).toBe('alive'); // beaten by the stepped clock
    vi.advanceTimersByTime(SECOND_LOOK_MS);
    expect(look(at, Date.now())).toBe('alive');
    expect(secondLookDueInMs(at)).toBeUndefined();
  });

  it('a dead owner whose heartbeat is ahead of a clock stepped back is dead once seen unchanged for staleMs and watched for graceMs', () => {
    const at = lock();
    const ahead = Date.now() + 3_600_000;
    expect(look(at, ahead)).toBe('alive');
    vi.advanceTimersByTime(rules.graceMs - 1);
    expect(look(at, ahead)).toBe('alive');
    vi.advanceTimersByTime(1);
    expect(look(at, ahead)).toBe('dead');
  });

  it('a missing lock is never judged by the clock: dead only by watching', () => {
    const at = lock();
    expect(look(at, 'missing')).toBe('young');
    vi.advanceTimersByTime(rules.graceMs);
    expect(look(at, 'missing')).toBe('dead');
  });

  it('an unreadable heartbeat is never judged', () => {
    const at = lock();
    expect(look(at, 'unreadable')).toBe('unjudged');
    vi.advanceTimersByTime(10 * rules.graceMs);
    expect(look(at, 'unreadable')).toBe('unjudged');
  });
});
