import { main } from './cli/cli.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`tempfile-manager: unexpected failure: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 70;
  },
);
