import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { UnsafeRootError } from './errors.js';
import { realFs } from './fs.js';
import { listEntries, type EntryInfo } from './entries.js';
import { listSessions, type SessionInfo } from './inspect.js';
import { hostId } from './process-identity.js';
import { checkExistingRoot } from './root.js';
import { sweepRoot, type SweepReport, type SweepTarget } from './sweep.js';
import { systemErrorCode } from './errors.js';

/** Exit codes, stable for scripts. */
export const EXIT = { ok: 0, sweepErrors: 1, usage: 2, unsafeRoot: 3 } as const;

const HELP = `Usage: tempfile-manager <command> --root DIR [options]

Commands:
  sweep   remove what dead processes left under the root (orphaned sessions)
  ls      list the sessions under the root (host, pid, age, state, files, bytes)
          and the handoff entries (expiry, claim state, holder)

Options:
  --root DIR       the root directory of the managers (required)
  --dry-run        sweep: report what would be removed, remove nothing
  --json           print JSON for scripts instead of text
  --stale-ms N     a session lock not refreshed for N ms is stale (default 30000)
  --grace-ms N     never sweep a session younger than N ms (default 60000)
  -h, --help       print this help
  -v, --version    print the version

Exit codes:
  0  done
  1  the sweep could not remove some paths (listed in the output)
  2  bad usage
  3  the root is unsafe (a symlink, not a directory, not yours, or writable by others)
`;

class UsageError extends Error {}

interface CliOptions {
  readonly command: 'sweep' | 'ls';
  readonly target: SweepTarget;
  readonly dryRun: boolean;
  readonly json: boolean;
}

/** Runs the CLI with `argv` (without node and the script); returns the exit code. */
export async function main(argv: readonly string[], out = process.stdout, err = process.stderr): Promise<number> {
  let options: CliOptions | 'help' | 'version';
  try {
    options = parseCli(argv);
  } catch (error) {
    if (!(error instanceof UsageError || (error instanceof TypeError && 'code' in error))) throw error;
    err.write(`tempfile-manager: ${error.message}\nRun \`tempfile-manager --help\` for usage.\n`);
    return EXIT.usage;
  }
  if (options === 'help') {
    out.write(HELP);
    return EXIT.ok;
  }
  if (options === 'version') {
    out.write(`${packageVersion()}\n`);
    return EXIT.ok;
  }
  if (options.target.root.includes('\0')) {
    err.write('tempfile-manager: --root must not contain a NUL character\nRun `tempfile-manager --help` for usage.\n');
    return EXIT.usage;
  }
  try {
    if (!rootExists(options.target.root)) {
      out.write(options.json ? `${JSON.stringify(emptyResult(options))}\n` : `${options.target.root} does not exist: nothing to do.\n`);
      return EXIT.ok;
    }
    checkExistingRoot(realFs, options.target.root);
    return options.command === 'ls' ? await runLs(options, out) : await runSweep(options, out, err);
  } catch (error) {
    if (error instanceof UnsafeRootError) {
      err.write(`tempfile-manager: ${error.message}\n`);
      return EXIT.unsafeRoot;
    }
    const message = error instanceof Error ? error.message : String(error);
    err.write(`tempfile-manager: ${message}\n`);
    return EXIT.sweepErrors;
  }
}

function parseCli(argv: readonly string[]): CliOptions | 'help' | 'version' {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      root: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'stale-ms': { type: 'string' },
      'grace-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', short: 'v', default: false },
    },
  });
  if (values.help) return 'help';
  if (values.version) return 'version';
  const [command, ...extra] = positionals;
  if (command !== 'sweep' && command !== 'ls') {
    throw new UsageError(command === undefined ? 'a command is needed: sweep or ls' : `unknown command \`${command}\``);
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument \`${extra[0]}\``);
  if (!values.root) throw new UsageError('--root DIR is required');
  if (command === 'ls' && values['dry-run']) throw new UsageError('--dry-run applies to sweep only');
  return {
    command,
    dryRun: values['dry-run'],
    json: values.json,
    target: {
      fs: realFs,
      root: path.resolve(values.root),
      staleMs: millis('--stale-ms', values['stale-ms'], 30_000, 2_000),
      graceMs: millis('--grace-ms', values['grace-ms'], 60_000, 0),
      hostId: hostId(),
    },
  };
}

function millis(flag: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min) {
    throw new UsageError(`${flag} takes a whole number of milliseconds of at least ${min}, got \`${value}\``);
  }
  return Number(value);
}

function rootExists(root: string): boolean {
  try {
    realFs.lstatSync(root);
    return true;
  } catch (error) {
    const code = systemErrorCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw error;
  }
}

function emptyResult(options: CliOptions): unknown {
  if (options.command === 'ls') return { root: options.target.root, sessions: [] };
  return {
    root: options.target.root, dryRun: options.dryRun, sessionsRemoved: 0, filesRemoved: 0, dirsRemoved: 0,
    bytesFreed: 0, liveSessionsSkipped: 0, youngSessionsSkipped: 0, handoffEntriesRemoved: 0,
    claimedEntriesSkipped: 0, errors: [], durationMs: 0,
  } satisfies SweepReport;
}

async function runSweep(options: CliOptions, out: NodeJS.WritableStream, err: NodeJS.WriteStream | NodeJS.WritableStream): Promise<number> {
  const tty = !options.json && 'isTTY' in err && err.isTTY === true;
  let lastDraw = 0;
  const report = await sweepRoot(options.target, {
    dryRun: options.dryRun,
    onProgress: tty
      ? ({ filesRemoved, bytesFreed }) => {
          if (Date.now() - lastDraw < 200) return;
          lastDraw = Date.now();
          err.write(`\r${options.dryRun ? 'found' : 'removed'} ${filesRemoved} files, ${formatBytes(bytesFreed)}...`);
        }
      : undefined,
  });
  if (lastDraw) err.write('\r\u001b[K');
  out.write(options.json ? `${JSON.stringify(report)}\n` : describeSweep(report));
  return report.errors.length > 0 ? EXIT.sweepErrors : EXIT.ok;
}

async function runLs(options: CliOptions, out: NodeJS.WritableStream): Promise<number> {
  const sessions = await listSessions(options.target);
  const { entries } = await listEntries(options.target, options.target.root);
  out.write(
    options.json
      ? `${JSON.stringify({ root: options.target.root, sessions, handoff: entries })}\n`
      : describeSessions(options.target.root, sessions) + describeEntries(entries),
  );
  return EXIT.ok;
}

function describeEntries(entries: readonly EntryInfo[]): string {
  if (entries.length === 0) return 'no handoff entries\n';
  const now = Date.now();
  return table(
    ['HANDOFF', 'STATE', 'EXPIRES', 'BYTES', 'HOLDER'],
    entries.map((e) => [
      e.id,
      e.state,
      e.expiresAt > now ? `in ${formatAge(e.expiresAt - now)}` : `${formatAge(now - e.expiresAt)} ago`,
      formatBytes(e.bytes),
      e.holder ? `${e.holder.host}:${e.holder.pid}` : '-',
    ]),
  );
}

function describeSweep(report: SweepReport): string {
  const verb = report.dryRun ? 'would remove' : 'removed';
  const lines = [
    `${report.dryRun ? 'dry run of the sweep of' : 'swept'} ${report.root} in ${report.durationMs} ms`,
    `  ${verb} ${plural(report.sessionsRemoved, 'orphaned session')}: ${plural(report.filesRemoved, 'file')}, ${formatBytes(report.bytesFreed)}`,
    `  left ${plural(report.liveSessionsSkipped, 'live session')} and ${plural(report.youngSessionsSkipped, 'session')} younger than the grace period`,
    `  ${verb} ${plural(report.handoffEntriesRemoved, 'expired or consumed handoff entry')}; left ${plural(report.claimedEntriesSkipped, 'claimed entry')}`,
  ];
  if (report.errors.length > 0) {
    lines.push(`  ${plural(report.errors.length, 'error')}:`);
    for (const e of report.errors) lines.push(`    ${e.code} ${e.path}`);
  }
  return `${lines.join('\n')}\n`;
}

function describeSessions(root: string, sessions: readonly SessionInfo[]): string {
  if (sessions.length === 0) return `no sessions under ${root}\n`;
  return table(
    ['STATE', 'HOST', 'PID', 'AGE', 'FILES', 'BYTES', 'SESSION'],
    sessions.map((s) => [s.state, s.host, String(s.pid), formatAge(s.ageMs), String(s.files), formatBytes(s.bytes), s.name]),
  );
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

function packageVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('../package.json') as { version: string }).version;
}
