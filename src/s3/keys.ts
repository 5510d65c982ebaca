// The S3 store's own keys under its prefix, beside the engine's entries (object-store/keys.ts):
//
//   <prefix>.intake/<id>.<expiresAt>/upload
//                                          what a browser uploads with a presign (intake.ts), until
//                                          its confirmation copies it into an entry; expires with
//                                          the presign
//   <prefix>.intake/<id>.<expiresAt>/record
//                                          the presign's terms (size, types, meta), written by the
//                                          library only: a receipt without one was never presigned
//   <prefix>.if-match-probe-<expiresAt>-<random>
//                                          a process's probe of how the store compares ETags
//                                          (io.ts), deleted after it; one left by a crash goes
//                                          with the sweep once its expiry (an hour) passed

const PROBE = /^\.if-match-probe-([1-9]\d{0,15})-[0-9a-f]{32}$/;

/** A probe's key, with an hour before the sweep may remove it (a crashed probe's leftover). */
export function probeKey(prefix: string, random: string, now: number): string {
  return `${prefix}.if-match-probe-${now + 3_600_000}-${random}`;
}

/** The expiry of a probe's key, or `undefined` for a key that is not one. */
export function parseProbeKey(prefix: string, key: string): number | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const match = PROBE.exec(key.slice(prefix.length));
  return match ? Number(match[1]) : undefined;
}

const INTAKE = '.intake/';
const INTAKE_KEY = /^\.intake\/([0-9a-f]{32})\.([1-9]\d{0,15})\/(upload|record)$/;

/** The keys of one presigned upload: the object the browser writes and the presign's record. */
export interface IntakeKeys {
  readonly upload: string;
  readonly record: string;
}

/** The intake prefix of a store: where presigned uploads land, and nothing else. */
export function intakePrefix(prefix: string): string {
  return `${prefix}${INTAKE}`;
}

export function intakeKeys(prefix: string, id: string, expiresAt: number): IntakeKeys {
  const dir = `${intakePrefix(prefix)}${id}.${expiresAt}/`;
  return { upload: `${dir}upload`, record: `${dir}record` };
}

/** The presigned upload a key of the intake belongs to, or `undefined` for any other key. */
export function parseIntakeKey(prefix: string, key: string): { id: string; expiresAt: number; part: 'upload' | 'record' } | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const match = INTAKE_KEY.exec(key.slice(prefix.length));
  if (!match) return undefined;
  return { id: match[1]!, expiresAt: Number(match[2]), part: match[3] === 'record' ? 'record' : 'upload' };
}

/** When a key of the S3 store's own (a probe, a presigned upload's) may be swept; `undefined` for any other key. */
export function s3Leftover(prefix: string, key: string): number | undefined {
  return parseProbeKey(prefix, key) ?? parseIntakeKey(prefix, key)?.expiresAt;
}
