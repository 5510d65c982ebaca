// write() throughput and memory: `mgr.write()` against `stream.pipeline()` into
// `fs.createWriteStream()`, with a FileHandle loop and sha256 alone as references. Every sample
// runs in a child (write-worker.mjs), so its peak RSS is its own.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatInt, formatMiB, formatRatio, formatSize, GiB, MiB, runChild, sampleInterleaved, stats, table, targetsTable } from './lib.mjs';
import { flush } from './settle.mjs';

const WORKER = fileURLToPath(new URL('./write-worker.mjs', import.meta.url));

const params = {
  rounds: 9,
  bytes: GiB,
  chunks: [MiB, 64 * 1024],
  small: 256 * MiB,
  large: 4 * GiB,
  smallRounds: 3,
  largeRounds: 3,
  sizeChunk: 64 * 1024,
  concurrency: 8,
  concurrentBytes: 256 * MiB,
  concurrentChunk: 64 * 1024,
};

const NAMES = {
  pipeline: '`stream.pipeline(source, fs.createWriteStream(p))`',
  mgr: '`mgr.write(source)`',
  'mgr-sha256': "`mgr.write(source, { hash: 'sha256' })`",
  handle: '`FileHandle.write()` loop (reference)',
  sha256: '`hash.update()` over the source, no file (reference)',
};

const contender = (id, extra = {}) => ({ id, name: NAMES[id], baseline: id === 'pipeline', ...extra });

export const METHOD = `- Every sample runs in a child process of its own (\`bench/write-worker.mjs\`), which first
  writes a small file through the contender (loading and compiling its code), then primes the
  page cache (below), runs \`gc()\`, reads its RSS, does the timed writes, and reports the growth
  of \`process.resourceUsage().maxRSS\` over that RSS: the peak memory of this sample alone. It
  removes its files before it exits; the bench runs \`sync\` and settles 150 ms before each sample.
- The source is the same for every contender: an async generator yielding a fresh
  \`Buffer.allocUnsafe(chunk)\` per chunk, as a socket or a file stream hands out new buffers
  (a reused buffer would hide any chunk a consumer holds on to). The generator alone yields
  40-120 GB/s here (it touches no memory), far above every contender.
- MB/s is 10^6 bytes per second, from the start of the write to the promise resolving with the
  file closed (\`write()\`, the FileHandle loop) or \`pipeline()\` resolving. Files are written
  under \`os.tmpdir()\` and not fsynced: this measures the path into the page cache, as a
  short-lived temp file uses it. "CPU s / GiB" is the process's user + system CPU time over the
  same span (every thread: the main one and libuv's), per GiB: unlike MB/s it hardly moves when
  other processes load the machine.
- The VM this runs on has a balloon with free page reporting: memory freed for about 2 s goes
  back to the host, and page cache allocated from it faults on the host at every page, so writes
  into it run 4-8x slower, at random. Each sample therefore first writes and deletes a scratch
  file of its size (at most 2 GiB) with \`fs.writeSync\`, untimed, so that every contender writes
  into memory that is backed again. That works when the machine is quiet; when other processes
  churn memory it often does not, and a sample that wrote into cold memory shows as about twice
  the usual CPU s / GiB (the host's faults are charged to the guest as system time). Such
  samples hit contenders at random and can move a median by 2-3x at 1 MiB chunks, where every
  contender does the same \`write(2)\` per chunk: read a ratio together with its CPU column.
- Peak RSS is a maximum over the whole write, and with fresh chunks it includes chunks already
  written but not yet collected by V8, for every contender. Traced every 50 ms on Node 20, the
  RSS of a 4 GiB \`write()\` rises for a second or two to a level (5-8 MiB over the start) and
  stays flat from there to the end; a 256 MiB write is over before it gets there, so the large
  rows read higher for \`write()\` and the pipeline alike (more so on Node 24, whose GC lets
  more garbage pile up).
- Contenders are interleaved round-robin, each round starting with the next one; the tables give
  medians, the spread, and the ratio of medians to the pipeline. Ratios within about 10% are
  noise on this shared 2-core machine.`;

const sample = ({ id, bytes, chunk, concurrency = 1, root }) =>
  runChild(WORKER, [JSON.stringify({ id, bytes, chunk, concurrency, root })], ['--expose-gc']);

async function measure(contenders, rounds) {
  const results = await sampleInterleaved(contenders, { rounds, before: flush, sample });
  return results.map((r) => ({
    ...r,
    speed: stats(r.samples, (s) => s.bytes / s.seconds / 1e6),
    cpu: stats(r.samples, (s) => (s.cpu / s.bytes) * GiB),
    growth: stats(r.samples, 'growth'),
  }));
}

/** The bytes free under the bench root, and the large size that fits with room to spare. */
function largeSize(root) {
  const { bavail, bsize } = fs.statfsSync(root);
  const free = bavail * bsize;
  let large = params.large;
  while (large > params.small && large + 4 * GiB > free) large /= 2;
  return { free, large };
}

async function runWrite(root) {
  const dir = fs.mkdtempSync(path.join(root, 'write-'));
  const at = (extra) => ({ root: dir, ...extra });
  const throughput = [];
  for (const chunk of params.chunks) {
    const ids = ['pipeline', 'mgr', 'mgr-sha256', 'handle', ...(chunk === MiB ? ['sha256'] : [])];
    const results = await measure(ids.map((id) => contender(id, at({ bytes: params.bytes, chunk }))), params.rounds);
    throughput.push({ chunk, results });
    console.log(`\nwrite(): ${formatSize(params.bytes)} in ${formatSize(chunk)} chunks\n\n${throughputTable(results)}`);
  }

  const { free, large } = largeSize(dir);
  const sizes = await measure(
    ['mgr', 'pipeline'].flatMap((id) => [
      contender(id, at({ bytes: params.small, chunk: params.sizeChunk, rounds: params.smallRounds })),
      contender(id, at({ bytes: large, chunk: params.sizeChunk, rounds: params.largeRounds })),
    ]),
    Math.max(params.smallRounds, params.largeRounds),
  );
  console.log(`\nwrite(): memory by size\n\n${sizeTable(sizes)}`);

  const concurrent = await measure(
    ['pipeline', 'mgr'].map((id) =>
      contender(id, at({ bytes: params.concurrentBytes, chunk: params.concurrentChunk, concurrency: params.concurrency })),
    ),
    params.rounds,
  );
  console.log(`\nwrite(): ${params.concurrency} at once\n\n${throughputTable(concurrent, 'total MB/s')}`);
  fs.rmSync(dir, { recursive: true, force: true });
  return { throughput, sizes, concurrent, free, large };
}

function throughputTable(results, speed = 'MB/s') {
  const base = results.find((r) => r.baseline);
  const rows = results.map((r) => [
    r.name,
    formatInt(r.speed.median),
    `${formatInt(r.speed.min)} – ${formatInt(r.speed.max)}`,
    r.baseline || r.id !== 'sha256' ? formatRatio(r.speed.median / base.speed.median) : '',
    r.cpu.median.toFixed(2),
    formatMiB(r.growth.median),
    formatMiB(r.growth.max),
  ]);
  return table(
    ['Contender', `${speed} (median)`, 'min – max', 'vs pipeline', 'CPU s / GiB', 'peak RSS growth (median)', 'max'],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

function sizeTable(results) {
  const rows = results.map((r) => [
    `${r.name}, ${formatSize(r.bytes)}`,
    r.samples.length,
    formatInt(r.speed.median),
    formatMiB(r.growth.median),
    `${formatMiB(r.growth.min)} – ${formatMiB(r.growth.max)}`,
  ]);
  return table(['Write', 'samples', 'MB/s (median)', 'peak RSS growth (median)', 'min – max'], rows, ['l', 'r', 'r', 'r', 'r']);
}

const byId = (results, id) => results.find((r) => r.id === id);

/** What sha256 costs: write() with and without it, and the hash alone, at one chunk size. */
function hashNote({ chunk, results }) {
  const plain = byId(results, 'mgr');
  const hashed = byId(results, 'mgr-sha256');
  const alone = byId(results, 'sha256');
  const cost = 1 - hashed.speed.median / plain.speed.median;
  return (
    `${formatSize(chunk)} chunks: \`hash: 'sha256'\` takes write() from ${formatInt(plain.speed.median)} to ` +
    `${formatInt(hashed.speed.median)} MB/s (${Math.round(cost * 100)}% less) and adds ` +
    `${(hashed.cpu.median - plain.cpu.median).toFixed(2)} CPU s per GiB` +
    (alone ? `; sha256 alone over the same source runs at ${formatInt(alone.speed.median)} MB/s.` : '.')
  );
}

function writeTargets({ throughput, sizes, concurrent }) {
  const signed = (bytes) => `${bytes >= 0 ? '+' : ''}${formatMiB(bytes)}`;
  const rows = [];
  const cases = [
    ...throughput.map(({ chunk, results }) => ({ label: `${formatSize(chunk)} chunks`, results })),
    { label: `${params.concurrency} at once, ${formatSize(params.concurrentChunk)} chunks`, results: concurrent },
  ];
  for (const { label, results } of cases) {
    const mgr = byId(results, 'mgr');
    const pipe = byId(results, 'pipeline');
    const ratio = mgr.speed.median / pipe.speed.median;
    const extra = mgr.growth.median - pipe.growth.median;
    rows.push([`write() ≥ 1.0x pipeline throughput (${label})`, formatRatio(ratio), ratio >= 1]);
    rows.push([`write() peak RSS growth ≤ pipeline's + 8 MiB (${label})`, signed(extra), extra <= 8 * MiB]);
  }
  const growthBySize = (id) => {
    const [small, large] = sizes.filter((r) => r.id === id);
    return { small, large, diff: large.growth.median - small.growth.median };
  };
  const { small, large, diff } = growthBySize('mgr');
  rows.push([
    `same peak RSS growth at ${formatSize(small.bytes)} and ${formatSize(large.bytes)} (within 4 MiB; ` +
      `pipeline: ${signed(growthBySize('pipeline').diff)})`,
    signed(diff),
    Math.abs(diff) <= 4 * MiB,
  ]);
  return targetsTable(rows);
}

function renderWrite(run, info) {
  const { throughput, sizes, concurrent, free, large } = run;
  const scaled =
    large < params.large
      ? ` Only ${formatSize(free)} was free under the bench root, so the large write is ${formatSize(large)}, not ${formatSize(params.large)}.`
      : '';
  return [
    `### write() (Node ${process.version})`,
    '',
    `${info} ${params.rounds} samples of ${formatSize(params.bytes)} per contender and chunk size; ` +
      `${params.smallRounds} of ${formatSize(params.small)} and ${params.largeRounds} of ${formatSize(large)} per contender; ` +
      `${params.rounds} of ${params.concurrency} × ${formatSize(params.concurrentBytes)} at once.${scaled}`,
    '',
    ...throughput.flatMap(({ chunk, results }) => [
      `#### ${formatSize(params.bytes)} in ${formatSize(chunk)} chunks`,
      '',
      throughputTable(results),
      '',
    ]),
    `#### Memory by size (${formatSize(params.sizeChunk)} chunks)`,
    '',
    sizeTable(sizes),
    '',
    `#### ${params.concurrency} writes of ${formatSize(params.concurrentBytes)} at once (${formatSize(params.concurrentChunk)} chunks)`,
    '',
    throughputTable(concurrent, 'total MB/s'),
    '',
    '#### What hashing costs',
    '',
    ...throughput.map((t) => `- ${hashNote(t)}`),
    '',
    '#### Targets',
    '',
    writeTargets(run),
    '',
  ].join('\n');
}

/** The suite, as run.mjs drives it. */
export const writeSuite = {
  id: 'write',
  title: 'write()',
  method: METHOD,
  run: async (root, info) => renderWrite(await runWrite(root), info),
};
