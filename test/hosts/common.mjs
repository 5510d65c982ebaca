// What the host programs share: the library under test (the build, or a mutated copy of it),
// their events to the runner, and a canary: a live temp file whose bytes must survive the run.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

export const lib = await import(pathToFileURL(process.env.TFM_LIB).href);
export const ROOT = process.env.TFM_ROOT;
export const STALE_MS = Number(process.env.TFM_STALE_MS);
// Shorter than the default (60 s) so that the run's own leftovers are swept at its end; longer
// than a handoff's staging takes on a loaded machine, which the sweep judges by age alone.
export const GRACE_MS = 10_000;
export { sleep };

/** One event for the runner, as a JSON line on stdout. */
export function emit(ev, fields = {}) {
  process.stdout.write(`${JSON.stringify({ ev, ...fields })}\n`);
}

export function sha256(bytes) {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A manager on the shared root with this host's id (from TEMPFILE_MANAGER_HOST_ID). */
export function manager() {
  return new lib.TempFileManager({ root: ROOT, staleMs: STALE_MS, graceMs: GRACE_MS, sweepOnStart: false });
}

/** A live file of this process that no sweeper may remove while the process lives. */
export async function plantCanary(mgr) {
  const bytes = randomBytes(512);
  const file = mgr.file('.canary');
  fs.writeFileSync(file.path, bytes);
  return {
    check() {
      try {
        return sha256(fs.readFileSync(file.path)) === sha256(bytes);
      } catch {
        return false;
      }
    },
  };
}

/** Calls `stop` on SIGTERM, then exits. */
export function onTerm(stop) {
  process.on('SIGTERM', async () => {
    try {
      await stop();
    } catch (err) {
      emit('error', { where: 'stop', message: String(err?.message ?? err) });
    }
    process.exit(0);
  });
}
