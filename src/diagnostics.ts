/**
 * `tempfile-manager/diagnostics`: the names and messages of the channels the library publishes
 * on through `node:diagnostics_channel`, for metrics, logs and APM spans. Nothing is sent, and no
 * message is built, while a channel has no subscriber. No message carries a file's contents or
 * a ticket's id (docs/observability.md).
 *
 * ```ts
 * import diagnostics_channel from 'node:diagnostics_channel';
 * import { CHANNELS, TRACING_CHANNELS, type WriteTrace } from 'tempfile-manager/diagnostics';
 *
 * diagnostics_channel.subscribe(CHANNELS.fileCreate, (message) => console.log('created', message));
 * diagnostics_channel.subscribe(`tracing:${TRACING_CHANNELS.write}:asyncEnd`, (ctx) =>
 *   console.log('written', (ctx as WriteTrace).result?.size),
 * );
 * ```
 *
 * @packageDocumentation
 * @module tempfile-manager/diagnostics
 */
export { CHANNELS, TRACING_CHANNELS } from './base/channels.js';
export type {
  FileCreatedMessage,
  FileRemovedMessage,
  FileKeptMessage,
  HandoffEventMessage,
  ExitHookMessage,
  RootChangedMessage,
  HeartbeatFailedMessage,
  TraceEnd,
  WriteTrace,
  HandoffTrace,
  ClaimTrace,
  SweepTrace,
  RequestTrace,
} from './base/channels.js';
