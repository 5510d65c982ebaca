// Writes one suite's section to bench/results/node-<major>/<suite>.md, and assembles from every
// section present docs/benchmarks.md, the summary (the tables a reviewer needs, each with its peers
// and its floor, of the oldest Node measured), and bench/README.md, how each suite runs and where
// its runs and its analysis are.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
/** Analyses written by hand (where the time or the memory goes, runs of the test beds), linked from both pages. */
const ANALYSES = fileURLToPath(new URL('./analyses/', import.meta.url));
const DOC = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));
const METHODS = fileURLToPath(new URL('./README.md', import.meta.url));
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

/**
 * What the summary shows of each suite's saved section: the tables under the named `####` headings
 * (`''`: those before the first one), or the whole section (`whole`, for a section that is one
 * table and what reads it). A heading a section no longer has is left out, and says so on stderr.
 */
const SUMMARY = {
  // The object-store rows run in CI's S3 and Azure steps (bench/gate-stores.mjs), each saved as a
  // section of its own, shown under the gate's.
  gate: { whole: true, alsoShow: ['gate-s3', 'gate-azure'] },
  create: ['Files: create + dispose', 'Directories: create + dispose'],
  write: ['1 GiB in 1 MiB chunks', '8 writes of 256 MiB at once (64 KiB chunks)'],
  spool: [{ heading: '', table: 0, caption: 'From a Buffer, read back whole, removed' }],
  handoff: ['Cycles per second, /tmp (ext4)'],
  liveness: [{ heading: '', table: 0, caption: 'Claim+consume by a worker process' }, { heading: '', table: 1, caption: 'Resident memory at rest' }],
  // The contenders' tables; the requests each makes are in the section in full.
  's3-handoff': [
    { heading: '1 MiB per cycle', table: 0 },
    { heading: '64 MiB per cycle', table: 0 },
  ],
  'azure-handoff': ['1 MiB per cycle', '64 MiB per cycle'],
  's3-direct': ['MiB/s and peak RSS'],
  'browser-to-bucket': ['What one upload costs the API', 'Last byte to ticket'],
  uploads: ['Express: small uploads', 'Fastify: small uploads', 'Large uploads: 8 × 256 MiB at once'],
  tus: [{ heading: 'Method', table: 0, caption: 'MB/s and peak RSS behind @tus/server' }],
  // A comparison with one past build, which the gate (above) now makes with every parent: linked only.
  baseline: [],
  intake: [{ heading: '', table: 0, caption: 'Targets' }],
  'exit-hook': ['SIGTERM to death with 10,000 live temp files'],
  sweep: ['Removing 100,000 orphaned files'],
  'sweep-handoff': ['Time and memory'],
};

/** The analyses of bench/analyses/ that read each suite's figures. */
const ANALYSES_OF = {
  write: ['write.md'],
  spool: ['spool.md'],
  'azure-handoff': ['azure-handoff.md'],
  's3-direct': ['s3-direct.md'],
  uploads: ['uploads.md'],
  tus: ['tus.md'],
  intake: ['intake.md'],
  sweep: ['sweep.md'],
  handoff: ['handoff.md'],
  gate: ['sweep.md'],
};

/** The commit the benchmarked code is at (with `+` when the work tree has changes), or 'unknown'. */
export function commitOf(file) {
  const git = (...args) => execFileSync('git', args, { cwd: path.dirname(fileURLToPath(import.meta.url)), encoding: 'utf8' }).trim();
  try {
    if (file) return git('log', '-1', '--format=%h', '--', file) || 'unknown';
    return git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--', '../src', '../bench') ? '+' : '');
  } catch {
    return 'unknown';
  }
}

/** The machine line every section starts with: the run's date and commit, the machine. */
export function runInfo() {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return (
    `Run on ${new Date().toISOString().slice(0, 10)} at commit ${commitOf()}: ${os.type()} ${os.release()}, ${os.cpus().length} × ${cpu}, ` +
    `bench root under \`${os.tmpdir()}\`.`
  );
}

/**
 * A section as saved: its latest run only (a run appended after it, or an older one kept below it,
 * starts with the same heading again and is cut), its "Run on <date>" line naming the commit.
 */
export function latestRun(section, commit = commitOf()) {
  const lines = section.trimEnd().split('\n');
  const heading = lines.findIndex((line) => line.startsWith('### '));
  const title = heading < 0 ? undefined : lines[heading].replace(/ \(Node v[\d.]+\)$/, '');
  const again = title === undefined ? -1 : lines.findIndex((line, i) => i > heading && line.startsWith('### ') && line.replace(/ \(Node v[\d.]+\)$/, '') === title);
  const kept = (again < 0 ? lines : lines.slice(0, again)).join('\n').trimEnd();
  return kept.replace(/^Run on (\d{4}-\d{2}-\d{2})(?! at commit)/m, `Run on $1 at commit ${commit}`);
}

/** A heading's anchor as GitHub makes it. */
function anchor(heading) {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function versions() {
  return fs
    .readdirSync(RESULTS)
    .map((name) => /^node-(\d+)$/.exec(name))
    .filter(Boolean)
    .sort((a, b) => Number(a[1]) - Number(b[1]));
}

/** The saved section of `suite` on each Node major that has one: `{ major, dir, file, text }`. */
function savedRuns(suite) {
  return versions()
    .map((m) => ({ major: Number(m[1]), dir: m[0], file: path.join(RESULTS, m[0], `${suite.id}.md`) }))
    .filter((run) => fs.existsSync(run.file))
    .map((run) => ({ ...run, text: fs.readFileSync(run.file, 'utf8').trimEnd() }));
}

/**
 * A section's tables, each with the `####` heading it sits under (`''` before the first) and its
 * place among that heading's tables; code blocks (a traced call list) are skipped.
 */
function tablesOf(text) {
  const tables = [];
  let heading = '';
  let fenced = false;
  let current;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    if (!fenced && /^#### /.test(line)) heading = line.slice(5).trim();
    if (!fenced && line.startsWith('|')) {
      if (!current) {
        current = { heading, index: tables.filter((t) => t.heading === heading).length, lines: [] };
        tables.push(current);
      }
      current.lines.push(line);
    } else {
      current = undefined;
    }
  }
  return tables;
}

/** What a section says of its run: its Node version, date, commit and machine. */
function runLine(text) {
  const node = /\(Node (v[\d.]+)\)/.exec(text)?.[1] ?? /^Node (v[\d.]+)/m.exec(text)?.[1];
  const run = /^Run on (\d{4}-\d{2}-\d{2}) at commit (\S+?):.*?(\d+ × [^,]+)/m.exec(text);
  const parts = [node && `Node ${node}`, run && `run on ${run[1]} at commit ${run[2]}`, run && `${run[3]}`].filter(Boolean);
  return parts.length === 0 ? '' : `${parts.join(', ')}.`;
}

/** The first heading of an analysis, as its title. */
function analysisTitle(name) {
  const text = fs.readFileSync(path.join(ANALYSES, name), 'utf8');
  return /^#+ (.+)$/m.exec(text)?.[1] ?? name;
}

function analyses() {
  return fs.existsSync(ANALYSES) ? fs.readdirSync(ANALYSES).filter((name) => name.endsWith('.md')).sort() : [];
}

/** The summary's part of one suite: its heading, its run, its links, the tables it picks. */
function summaryOf(suite) {
  const runs = savedRuns(suite);
  if (runs.length === 0) return undefined;
  const [shown] = runs;
  const pick = SUMMARY[suite.id] ?? [];
  const shownWith = (pick.alsoShow ?? []).map((id) => ({ id, run: savedRuns({ id })[0] })).filter(({ run }) => run !== undefined);
  const links = [
    `In full: ${runs.map((run) => `[Node ${run.major}](../bench/results/${run.dir}/${suite.id}.md)`).join(', ')}`,
    ...shownWith.map(({ id, run }) => `[${id}, Node ${run.major}](../bench/results/${run.dir}/${id}.md)`),
    `how it runs: [bench/README.md](../bench/README.md#${anchor(suite.title)})`,
    ...(ANALYSES_OF[suite.id] ?? []).map((name) => `analysis: [${analysisTitle(name)}](../bench/analyses/${name})`),
  ];
  // A whole section says its own run.
  const parts = [`## ${suite.title}`, [pick.whole ? '' : runLine(shown.text), `${links.join('; ')}.`].filter(Boolean).join(' ')];
  if (pick.whole) {
    // The section itself, its own heading left out.
    const body = (text) => text.split('\n').slice(1).join('\n').trim();
    parts.push(body(shown.text), ...shownWith.map(({ run }) => body(run.text)));
    return parts.join('\n\n');
  }
  const tables = tablesOf(shown.text);
  for (const selector of pick) {
    const { heading, table, caption } = typeof selector === 'string' ? { heading: selector } : selector;
    const found = tables.filter((t) => t.heading === heading && (table === undefined || t.index === table));
    if (found.length === 0) {
      console.error(`bench/report.mjs: ${suite.id} has no table under "${heading}" now: left out of the summary.`);
      continue;
    }
    // The tables under one heading share its caption.
    found.forEach((t, i) => parts.push(...(i === 0 ? [`**${caption ?? heading}**`] : []), t.lines.join('\n')));
  }
  return parts.join('\n\n');
}

function summary(suites) {
  const head = `# Benchmarks

<!-- Generated by bench/run.mjs from bench/results/node-*/: edit bench/, not this file. -->

What does each operation cost, against its peers (tmp, tempy, multer, @tus/file-store, the AWS
SDK...) and against its floor (the same work done with bare system or SDK calls)? Each table
below is the latest run of its suite on the oldest Node measured; each run in full, Node by Node,
is in \`bench/results/node-<major>/<suite>.md\`, how each suite runs in
[bench/README.md](../bench/README.md), and where the time and the memory go in the analyses of
\`bench/analyses/\`.

\`\`\`sh
npm run bench                          # builds, then runs every suite on the current Node
npm run bench -- --only write,sweep    # some of them
node bench/run.mjs --report            # this page again from bench/results/, running nothing
\`\`\`

\`npm run bench\` runs on the current Node, Node 20 by default; the suites are
${suites.map((s) => `\`${s.id}\``).join(', ')}. For another Node version: \`npm run build && npx -y node@24 bench/run.mjs\`.
Each suite rewrites its own \`bench/results/node-<major>/<suite>.md\` and this page is assembled from all of them.

What a change costs: \`npm run bench:gate\` (CI runs it after the build) measures the core
operations of the built \`dist/\` against its parent commit's build (\`-- --base <ref>\` for
another), interleaved, with their floors, then the Express and Fastify upload servers beside their
peers, and memory at rest beside \`tmp\`; CI runs its object-store rows on Ceph RGW and Azurite. It
fails when one of them costs more than 1/0.9 of the base's CPU time or misses its floor target
(the shared-disk handoff, the object-store handoffs; the sweep's is shown), either confirmed by two more
samplings, when memory grows, or when memory at rest misses its target; its tables are the first
section below. The targets against the upload peers are shown there and judged by
\`bench/uploads.mjs\`.`;
  const others = analyses().filter((name) => !Object.values(ANALYSES_OF).flat().includes(name));
  const tail = others.length === 0 ? [] : [`## Other analyses\n\n${others.map((name) => `- [${analysisTitle(name)}](../bench/analyses/${name})`).join('\n')}`];
  return [head, ...suites.map(summaryOf).filter(Boolean), ...tail].join('\n\n') + '\n';
}

/** bench/README.md: how each suite runs, where its runs are, the analyses. */
function methods(suites) {
  const head = `# Benchmarks: how each suite runs

<!-- Generated by bench/run.mjs from the suites and bench/results/node-*/: edit the suites, not this file. -->

The summary, the tables a reviewer needs with their peers and floors, is
[docs/benchmarks.md](../docs/benchmarks.md). Each suite's latest run on each Node, in full, is
\`results/node-<major>/<suite>.md\`; the analyses written by hand are in \`analyses/\`.`;
  const body = suites.map((suite) => {
    const runs = savedRuns(suite);
    const links = [
      runs.length === 0 ? 'No run saved.' : `Runs: ${runs.map((run) => `[Node ${run.major}](results/${run.dir}/${suite.id}.md)`).join(', ')}.`,
      ...(ANALYSES_OF[suite.id] ?? []).map((name) => `Analysis: [${analysisTitle(name)}](analyses/${name}).`),
    ];
    return `## ${suite.title}\n\n${suite.method.trim()}\n\n${links.join(' ')}`;
  });
  const list = analyses().map((name) => `- [${analysisTitle(name)}](analyses/${name})`).join('\n');
  return [head, ...body, ...(list ? [`## Analyses\n\n${list}`] : [])].join('\n\n') + '\n';
}

/** Saves this run's section of `suite` (its latest run only) and rebuilds docs/benchmarks.md. */
export function writeReport(suites, suite, section) {
  const dir = path.join(RESULTS, `node-${NODE_MAJOR}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${suite.id}.md`), latestRun(section) + '\n');
  return writeDoc(suites);
}

/**
 * Rebuilds docs/benchmarks.md and bench/README.md from the saved sections; a saved section without
 * its commit gets the commit that recorded it (`node bench/run.mjs --report` does this alone,
 * running no suite).
 */
export function writeDoc(suites) {
  for (const m of versions()) {
    for (const s of suites) {
      const file = path.join(RESULTS, m[0], `${s.id}.md`);
      if (!fs.existsSync(file)) continue;
      const text = fs.readFileSync(file, 'utf8');
      const latest = latestRun(text, commitOf(file)) + '\n';
      if (latest !== text) fs.writeFileSync(file, latest);
    }
  }
  fs.mkdirSync(path.dirname(DOC), { recursive: true });
  fs.writeFileSync(DOC, summary(suites));
  fs.writeFileSync(METHODS, methods(suites));
  return DOC;
}
