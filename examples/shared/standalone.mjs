// Runs an upload example as a standalone server when its file is executed directly, configured
// by the environment, and closes it gracefully on SIGINT and SIGTERM.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export async function runIfMain(moduleUrl, name, start) {
  if (!process.argv[1] || path.resolve(process.argv[1]) !== fileURLToPath(moduleUrl)) return;
  const env = process.env;
  const number = (value) => (value ? Number(value) : undefined);
  const app = await start({
    port: number(env.PORT) ?? 3000,
    root: env.EXAMPLE_ROOT || undefined,
    maxBytes: number(env.MAX_BYTES),
    maxLiveBytes: number(env.MAX_LIVE_BYTES),
    minFreeBytes: number(env.MIN_FREE_BYTES),
    jobDelayMs: number(env.JOB_DELAY_MS),
    log: (line) => console.log(line),
  });
  console.log(`${name} listening on ${app.url} (temp files under ${app.manager.root})`);
  // `on`, not `once`: the exit hook must see that the app handles the signal itself.
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => app.close().then(() => process.exit(0), () => process.exit(1)));
  }
}
