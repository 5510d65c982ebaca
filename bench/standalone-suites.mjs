// Suites that run as scripts of their own (`node bench/handoff.mjs`, `node bench/s3-handoff.mjs`...) and
// write their section to bench/results/node-<major>/<id>.md; their method is in that section.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const here = import.meta.dirname;
const major = process.versions.node.split('.')[0];

// A script that exits with SKIPPED could not run here (bench/s3-handoff.mjs without a gateway,
// bench/baseline.mjs without a baseline build): its last saved section is kept as it is, and with
// none saved the suite is left out of the report (run() resolves undefined).
const SKIPPED = 3;

function standaloneSuite(id, title) {
  return {
    id,
    title,
    method: `\`bench/${id}.mjs\`, run by itself too (\`node bench/${id}.mjs\`): each run states its method with its figures.`,
    run: async () => {
      const saved = path.join(here, 'results', `node-${major}`, `${id}.md`);
      const { status } = spawnSync(process.execPath, [path.join(here, `${id}.mjs`)], { stdio: 'inherit' });
      if (status === SKIPPED && !fs.existsSync(saved)) {
        console.log(`bench/${id}.mjs could not run here, and no section of it is saved: left out.`);
        return undefined;
      }
      if (status === SKIPPED) console.log(`bench/${id}.mjs could not run here: its last saved section is kept.`);
      else if (status !== 0) throw new Error(`bench/${id}.mjs failed (exit ${status})`);
      return fs.readFileSync(saved, 'utf8');
    },
  };
}

export const gateSuite = standaloneSuite('gate', 'The cost gate: this build against the one before');
export const handoffSuite = standaloneSuite('handoff', 'Handoff + claim + consume');
export const s3HandoffSuite = standaloneSuite('s3-handoff', 'Handoff through an object store');
export const s3DirectSuite = standaloneSuite('s3-direct', 'Uploads straight to an object store');
export const azureHandoffSuite = standaloneSuite('azure-handoff', 'Handoff through Azure Blob Storage');
export const browserToBucketSuite = standaloneSuite('browser-to-bucket', 'Browser to bucket');
export const uploadsSuite = standaloneSuite('uploads', 'Uploads: Express and Fastify');
export const tusSuite = standaloneSuite('tus', 'Resumable uploads: tus');
export const livenessSuite = standaloneSuite('liveness', 'Liveness: what a running process pays');
export const sweepHandoffSuite = standaloneSuite('sweep-handoff', 'Sweep of expired handoff entries');
export const spoolSuite = standaloneSuite('spool', 'Spooled files: spool() against write()');
export const baselineSuite = standaloneSuite('baseline', 'This build against the build before the diagnostics channels');
export const intakeSuite = standaloneSuite('intake', 'The metered intake against the build before it');
