// A claimer for bench/liveness.mjs: holds nothing (`bare`) or one file (`holding`) beside the claim
// it works on. Each stdin line "<n> <ticketsFile>" claims and consumes those n tickets in turn and
// prints the median cycle in ms; "rss" prints VmRSS and the thread count.
import fs from 'node:fs';
import readline from 'node:readline';

const [root, mode, dist = '../dist/index.js'] = process.argv.slice(2);
const { TempFileManager } = await import(new URL(dist, import.meta.url).href);
const mgr = new TempFileManager({ root, sweepOnStart: false, sweepIntervalMs: 0 });
if (mode === 'holding') globalThis.held = await mgr.file();
const status = () => fs.readFileSync('/proc/self/status', 'utf8');
process.stdout.write('ready\n');
for await (const line of readline.createInterface({ input: process.stdin })) {
  const tickets = JSON.parse(fs.readFileSync(line, 'utf8'));
  const times = [];
  for (const ticket of tickets) {
    const started = performance.now();
    const claimed = await mgr.claim(ticket);
    await claimed.consume();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const threads = Number(/Threads:\s+(\d+)/.exec(status())[1]);
  process.stdout.write(`${JSON.stringify({ median: times[times.length >> 1], p90: times[Math.floor(times.length * 0.9)], threads, liveness: mgr.stats().liveness ?? 'beat-thread' })}\n`);
}
