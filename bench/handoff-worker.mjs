// Child of bench/handoff.mjs: runs cycles of one contender in a process of its own, for counts
// that would disturb the timing run.
//
//   trace <id> <n> <dir>    (under `strace -f`) n cycles, each phase opened by a marker
//                           syscall, faccessat("/__handoff_bench__/<phase>"), that the parent
//                           uses to attribute every traced syscall to its phase
//   count <id> <n> <dir>    n cycles; prints the libuv thread-pool requests (async fs calls)
//                           started per phase, counted with async_hooks
//   profile <id> <n> <dir>  n files made first, then n cycles under the V8 CPU profiler; prints
//                           the self time by where the code comes from, and the top functions
import { createHook } from 'node:async_hooks';
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import { makeContender } from './handoff-contenders.mjs';

const [mode, id, nText, dir] = process.argv.slice(2);
const n = Number(nText);
const contender = await makeContender(id, dir);
const noMark = () => {};
const WARMUP = 5;

for (let i = 0; i < WARMUP; i++) await contender.cycle(await contender.create(), noMark);

if (mode === 'trace') {
  const mark = (phase) => {
    try {
      fs.accessSync(`/__handoff_bench__/${phase}`);
    } catch {
      // ENOENT: the marker is the syscall itself
    }
  };
  for (let i = 0; i < n; i++) {
    const item = await contender.create();
    await contender.cycle(item, mark);
  }
  await contender.check();
  await contender.close();
  console.log(JSON.stringify({ ok: true }));
} else if (mode === 'count') {
  const TYPES = new Set(['FSREQCALLBACK', 'FSREQPROMISE', 'FILEHANDLECLOSEREQ']);
  const counts = {};
  let phase;
  const hook = createHook({
    init(_asyncId, type) {
      if (phase !== undefined && TYPES.has(type)) counts[phase] = (counts[phase] ?? 0) + 1;
    },
  });
  const mark = (p) => {
    phase = p === 'end' ? undefined : p;
  };
  hook.enable();
  for (let i = 0; i < n; i++) {
    const item = await contender.create();
    await contender.cycle(item, mark);
  }
  hook.disable();
  await contender.check();
  await contender.close();
  console.log(JSON.stringify(Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / n]))));
} else if (mode === 'profile') {
  const items = [];
  for (let i = 0; i < n; i++) items.push(await contender.create());
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 50 });
  await session.post('Profiler.start');
  const start = process.hrtime.bigint();
  for (const item of items) await contender.cycle(item, noMark);
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  await contender.check();
  await contender.close();
  console.log(JSON.stringify({ wallMs, n, ...summarize(profile) }));
} else {
  throw new Error(`unknown mode ${mode}`);
}

/** Self time per node of the profile, grouped by origin, and the top functions. */
function summarize(profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  const deltas = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (deltas[i] ?? 0) / 1000);
  }
  const groups = {};
  const functions = {};
  for (const [id, ms] of self) {
    const { callFrame } = byId.get(id);
    const group = origin(callFrame);
    groups[group] = (groups[group] ?? 0) + ms;
    const name = `${callFrame.functionName || '(anonymous)'} ${shortUrl(callFrame.url)}${callFrame.url ? `:${callFrame.lineNumber + 1}` : ''}`;
    functions[name] = (functions[name] ?? 0) + ms;
  }
  const ranked = Object.entries(functions).sort((a, b) => b[1] - a[1]);
  const top = ranked.slice(0, 12);
  const libTop = ranked.filter(([name]) => name.includes(' dist/')).slice(0, 15);
  return { groups, top, libTop };
}

function origin({ url, functionName }) {
  if (!url) return functionName.startsWith('(') ? functionName : '(native: fs bindings, C++)';
  if (url.includes('/dist/')) return 'tempfile-manager';
  if (url.includes('proper-lockfile')) return 'proper-lockfile';
  if (url.includes('graceful-fs')) return 'graceful-fs';
  if (url.includes('/bench/')) return 'bench';
  if (url.startsWith('node:internal/fs') || url === 'node:fs') return 'node:fs';
  if (url.startsWith('node:')) return 'node (other)';
  return 'other';
}

function shortUrl(url) {
  return url.replace(/^.*\/node_modules\//, '').replace(/^.*\/(dist|bench)\//, '$1/');
}
