/**
 * How many rounds a long repeated test runs: `full` unless `TEMPFILE_MANAGER_TEST_SCALE` (a share
 * between 0 and 1) asks for fewer, at least `least`. A user's `npm test` runs every round. CI runs
 * every round on Node 20 and 22, and a share on the runs that repeat the whole suite (Node 24 and
 * 26, the no-/proc paths): what those runs add is another runtime or another code path, which a
 * share of the rounds reaches as well as all of them.
 */
export function scaledRounds(full: number, least = 1): number {
  const raw = process.env.TEMPFILE_MANAGER_TEST_SCALE;
  if (raw === undefined || raw === '') return full;
  const share = Number(raw);
  if (!(share > 0 && share <= 1)) throw new Error(`TEMPFILE_MANAGER_TEST_SCALE must be a number above 0 and at most 1, got ${JSON.stringify(raw)}`);
  return Math.max(least, Math.round(full * share));
}
