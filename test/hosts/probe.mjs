// The capability probe on a host's mount of the shared root, run by the manager on first use. In
// the object-store mode: a handoff through the store and its claim, from this host.
//   node probe.mjs                   every primitive must be there: a session, a handoff, a claim
//   node probe.mjs --expect NAME     the manager must refuse the root, naming primitive NAME
import { Readable } from 'node:stream';
import { lib, manager, store } from './common.mjs';

const expected = process.argv.includes('--expect') ? process.argv[process.argv.indexOf('--expect') + 1] : undefined;
const mgr = manager();
try {
  const file = await mgr.write(Readable.from([Buffer.from('probe')]), { suffix: '.probe' });
  const ticket = await file.handoff({ ttlMs: 3_600_000, ...(store && { store }) });
  await (await mgr.claim(ticket)).consume();
  console.log(store ? `a handoff through ${store.location.kind} ${store.bucket ?? store.container}/${store.prefix} and its claim worked` : 'every primitive found; a session, a handoff and a claim worked');
  if (expected) process.exitCode = 1;
} catch (err) {
  const refused = lib.isTempFileError(err) && err.code === 'ERR_TEMPFILE_UNSUPPORTED_FS' && err.primitive === expected;
  console.log(refused ? `refused as expected: ${err.code} (${err.primitive}): ${err.message}` : `${err.code ?? err.name}: ${err.message}`);
  if (!refused) process.exitCode = 1;
} finally {
  await mgr.close();
}
