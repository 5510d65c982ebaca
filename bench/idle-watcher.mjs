// A process that does nothing but watch its own event loop, beside a sample: its longest stall
// is what the machine alone did to an idle loop meanwhile. Prints the max (ms) on SIGUSR2.
import { monitorEventLoopDelay } from 'node:perf_hooks';

const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
process.on('SIGUSR2', () => {
  delay.disable();
  console.log(JSON.stringify({ stallMs: delay.max / 1e6 }));
  process.exit(0);
});
console.log('ready');
setInterval(() => {}, 60_000);
