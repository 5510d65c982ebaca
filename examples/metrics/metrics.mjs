// tempfile-manager's diagnostics channels as OpenTelemetry instruments. `instrumentTempFiles(meter)`
// subscribes to the channels and records what they tell; it needs nothing of the manager, so it
// hears every manager (and every copy of the library) in the process. Returns a function that
// unsubscribes. The gauges are this process's view: with several processes on one root, sum them.
import diagnostics_channel from 'node:diagnostics_channel';
import fs from 'node:fs';
import { CHANNELS, TRACING_CHANNELS } from 'tempfile-manager/diagnostics';

/**
 * @param {import('@opentelemetry/api').Meter} meter
 * @param {{ exitTextfile?: string }} [options] `exitTextfile`: where the exit hook's time is written,
 *   in Prometheus' text format, as the process ends (a node_exporter textfile collector reads it:
 *   a process that is ending can no longer be scraped).
 */
export function instrumentTempFiles(meter, { exitTextfile } = {}) {
  const unsubscribers = [];
  const on = (name, listener) => {
    diagnostics_channel.subscribe(name, listener);
    unsubscribers.push(() => diagnostics_channel.unsubscribe(name, listener));
  };
  const spanEnd = (name, listener) => on(`tracing:${name}:asyncEnd`, listener);

  // The files this process holds, by path, with the bytes write() put in them.
  const live = new Map();
  const forget = (path) => live.delete(path);
  meter.createObservableGauge('tempfile_live_files', { description: 'Temp files this process holds' })
    .addCallback((result) => result.observe(live.size));
  meter.createObservableGauge('tempfile_live_bytes', { description: 'Bytes written into the temp files this process holds' })
    .addCallback((result) => result.observe([...live.values()].reduce((sum, bytes) => sum + bytes, 0)));
  const written = meter.createCounter('tempfile_written_bytes', { description: 'Bytes written by write() and uploads' });
  const refusedWrites = meter.createCounter('tempfile_writes_refused', { description: 'Writes refused or failed, by error code' });
  const requests = meter.createCounter('tempfile_requests', { description: 'HTTP exchanges of the upload adapters, by status' });
  const refusedUploads = meter.createCounter('tempfile_uploads_refused', { description: 'Upload requests refused, by reason' });
  const waiting = meter.createUpDownCounter('tempfile_handoffs_waiting', { description: 'Handed-off files not claimed yet' });
  const inFlight = meter.createUpDownCounter('tempfile_claims_in_flight', { description: 'Claims held, not yet consumed, released or kept' });
  const takeovers = meter.createCounter('tempfile_takeovers', { description: 'Claims taken over from a dead holder' });
  const swept = meter.createCounter('tempfile_sweep_removed', { description: 'What sweeps removed, by kind' });
  const freed = meter.createCounter('tempfile_sweep_freed_bytes', { description: 'Bytes sweeps freed' });
  for (const counter of [written, takeovers, freed]) counter.add(0); // a series from the start, not from the first event

  on(CHANNELS.fileCreate, ({ path, kind }) => kind === 'file' && live.set(path, 0));
  on(CHANNELS.fileRemove, ({ path }) => forget(path));
  on(CHANNELS.fileKeep, ({ path, from }) => (from === 'file' ? forget(path) : inFlight.add(-1)));
  spanEnd(TRACING_CHANNELS.write, ({ result, error }) => {
    if (result) {
      live.set(result.path, result.size);
      written.add(result.size);
    } else refusedWrites.add(1, { reason: error?.code ?? 'unknown' });
  });
  spanEnd(TRACING_CHANNELS.handoff, ({ path, result }) => {
    if (!result) return;
    forget(path);
    waiting.add(1);
  });
  spanEnd(TRACING_CHANNELS.claim, ({ result }) => {
    if (!result) return;
    waiting.add(-1);
    inFlight.add(1);
  });
  on(CHANNELS.claimConsume, () => inFlight.add(-1));
  on(CHANNELS.claimRelease, () => {
    inFlight.add(-1);
    waiting.add(1);
  });
  on(CHANNELS.claimTakeover, () => takeovers.add(1));
  on(CHANNELS.handoffExpire, () => waiting.add(-1));
  spanEnd(TRACING_CHANNELS.sweep, ({ result }) => {
    if (!result) return;
    swept.add(result.sessionsRemoved, { kind: 'sessions' });
    swept.add(result.filesRemoved, { kind: 'files' });
    swept.add(result.dirsRemoved, { kind: 'dirs' });
    swept.add(result.handoffEntriesRemoved, { kind: 'handoff_entries' });
    freed.add(result.bytesFreed);
  });
  spanEnd(TRACING_CHANNELS.request, ({ result }) => {
    requests.add(1, { status: String(result.status) });
    if (result.refused || result.status >= 400) refusedUploads.add(1, { reason: result.refused ?? `http_${result.status}` });
  });
  if (exitTextfile) on(CHANNELS.exitHook, (message) => writeExitTextfile(exitTextfile, message));
  return () => {
    for (const unsubscribe of unsubscribers.splice(0)) unsubscribe();
  };
}

// Synchronous, and whole or not at all (a rename): the process ends right after.
function writeExitTextfile(file, { reason, tasks, durationMs }) {
  const text = [
    '# HELP tempfile_exit_hook_duration_seconds How long the exit hook took at the last end of the process',
    '# TYPE tempfile_exit_hook_duration_seconds gauge',
    `tempfile_exit_hook_duration_seconds{reason="${reason}"} ${durationMs / 1000}`,
    '# HELP tempfile_exit_hook_tasks The tasks the exit hook ran (sessions removed, leases given back)',
    '# TYPE tempfile_exit_hook_tasks gauge',
    `tempfile_exit_hook_tasks{reason="${reason}"} ${tasks}`,
    '',
  ].join('\n');
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}
