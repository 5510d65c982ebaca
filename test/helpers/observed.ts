// What the diagnostics channels hand out, heard on every channel, and every string an error
// holds: for the tests that look for a ticket's id in them (docs/observability.md, "What no
// message carries").
import dc from 'node:diagnostics_channel';
import { inspect } from 'node:util';
import { afterEach } from 'vitest';
import { CHANNELS, TRACING_CHANNELS } from '../../src/base/channels.js';

const EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const;

/** Every plain channel, and every event of every tracing channel (`tracing:<name>:<event>`). */
export const EVERY_CHANNEL: readonly string[] = [
  ...Object.values(CHANNELS),
  ...Object.values(TRACING_CHANNELS).flatMap((name) => EVENTS.map((event) => `tracing:${name}:${event}`)),
];

const unsubscribers: (() => void)[] = [];
afterEach(() => {
  for (const unsubscribe of unsubscribers.splice(0)) unsubscribe();
});

/** Subscribes `listener` to {@link EVERY_CHANNEL} until the test ends. */
export function onEverything(listener: (message: unknown, channel: string) => void): void {
  for (const name of EVERY_CHANNEL) {
    const bound = (message: unknown) => listener(message, name);
    dc.subscribe(name, bound);
    unsubscribers.push(() => dc.unsubscribe(name, bound));
  }
}

/**
 * Every string an error holds: its message, its stack, its own fields (hidden ones included,
 * such as a `releaseError`), and the same of its causes, a few deep.
 */
export function errorText(error: unknown): string {
  return inspect(error, { showHidden: true, depth: 6, breakLength: Infinity, maxStringLength: Infinity, maxArrayLength: Infinity });
}
