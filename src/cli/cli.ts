import { InvalidOptionError, isErrorCode } from '../base/errors.js';
import { DEFAULT_GRACE_MS, DEFAULT_STALE_MS, GRACE_MS_RANGE, STALE_MS_RANGE } from '../root/options.js';
import { MAX_TIMER_MS, validateDuration, type DurationRange } from '../base/validators.js';
import { fs } from '../disk/fs.js';
import { listEntries, type EntryInfo } from '../handoff/entries.js';
import { listSessions, type SessionInfo } from '../lifetime/inspect.js';
import { hostId } from '../owner/process-identity.js';
import { checkExistingRoot, defaultRoot, requireMarkedRoot, type RootContext } from '../root/root.js';
import { closestName } from '../base/names.js';
import { sweepRoot, type SweepReport } from '../sweep/sweep.js';
import { systemErrorCode } from '../base/errors.js';
import { handoffKey } from '../base/channels.js';
import { builtin } from '../base/builtin.js';
const { createRequire } = builtin('node:module');
const path = builtin('node:path');
const { parseArgs } = builtin('node:util');

/** Exit codes, stable for scripts (70 is bin.ts's: an unexpected failure). */
const EXIT = { ok: 0, sweepErrors: 1, usage: 2, unsafeRoot: 3, notManagerRoot: 4 } as const;

const HELP = `Usage: tempfile-manager <command> [--root DIR] [options]

Commands:
  sweep   remove what dead processes left under the root (orphaned sessions)
  ls      list the sessions under the root (host, pid, age, state, files, bytes)
          and the handoff entries (expiry, claim state, holder)

Options:
  --root DIR       the root directory of the managers; default: the library's
                   default root, ${defaultRoot()}
  --dry-run        sweep: report what would be removed, remove nothing
  --json           print JSON for scripts instead of text
  --stale-ms N     a session lock not refreshed for N ms is stale (default ${DEFAULT_STALE_MS};
                   ${STALE_MS_RANGE.min} to ${STALE_MS_RANGE.max})
  --grace-ms N     watch a session of another machine for N ms before it can be
                   judged dead (default ${DEFAULT_GRACE_MS}; ${GRACE_MS_RANGE.min} to ${GRACE_MS_RANGE.max})
  --host-id ID     this host's id (default: TEMPFILE_MANAGER_HOST_ID, else the host
                   name); sessions of this machine are judged by their process
                   whatever their host id, and a mismatch is reported
  --watch          sweep: when sessions of other machines could not be judged yet,
                   watch their locks for max(--stale-ms, --grace-ms) and sweep again
  -h, --help       print this help
  -v, --version    print the version

Exit codes:
  0  done
  1  the sweep could not remove some paths (listed in the output)
  2  bad usage
  3  the root is unsafe (a symlink or below one another user could change, not a
     directory, not yours, or writable by others)
  4  the root has no tempfile-manager marker: no manager made it, nothing is touched
  70 an unexpected failure (a bug: the stack trace is printed)
`;

interface CliOptions {
  readonly command: 'sweep' | 'ls';
  readonly target: RootContext;
  readonly dryRun: boolean;
  readonly json: boolean;
  readonly watch: boolean;
}

/** Runs the CLI with `argv` (without node and the script); returns the exit code. */
export async function main(argv: readonly string[], out = process.stdout, err = process.stderr): Promise<number> {
  let options: CliOptions | 'help' | 'version';
  try {
    options = parseCli(argv);
  } catch (error) {
    if (!(isErrorCode(error, 'ERR_TEMPFILE_INVALID_OPTION') || (error instanceof TypeError && 'code' in error))) throw error;
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
      out.write(options.json ? `${JSON.stringify(emptyResult(options))}\n` : `${printable(options.target.root)} does not exist: nothing to do.\n`);
      return EXIT.ok;
    }
    checkExistingRoot(options.target.root);
    requireMarkedRoot(options.target.root);
    return options.command === 'ls' ? await runLs(options, out) : await runSweep(options, out, err);
  } catch (error) {
    if (isErrorCode(error, 'ERR_TEMPFILE_UNSAFE_ROOT')) {
      err.write(`tempfile-manager: ${printable(error.message)}\n`);
      return error.reason === 'not-a-manager-root' ? EXIT.notManagerRoot : EXIT.unsafeRoot;
    }
    const message = error instanceof Error ? error.message : String(error);
    err.write(`tempfile-manager: ${printable(message)}\n`);
    return EXIT.sweepErrors;
  }
}

const FLAGS = {
  root: { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  'stale-ms': { type: 'string' },
  'grace-ms': { type: 'string' },
  'host-id': { type: 'string' },
  watch: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', short: 'v', default: false },
} as const;

function parseCli(argv: readonly string[]): CliOptions | 'help' | 'version' {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: FLAGS });
  } catch (error) {
    throw withSuggestion(error);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (values.version) return 'version';
  const [command, ...extra] = positionals;
  if (command !== 'sweep' && command !== 'ls') {
    throw new InvalidOptionError('command', command === undefined ? 'a command is needed: sweep or ls' : `unknown command \`${command}\``);
  }
  if (extra.length > 0) throw new InvalidOptionError('command', `unexpected argument \`${extra[0]}\``);
  if (values.root === '') throw new InvalidOptionError('--root', '--root takes a directory, got an empty string');
  if (command === 'ls' && values['dry-run']) throw new InvalidOptionError('--dry-run', '--dry-run applies to sweep only');
  if (command === 'ls' && values.watch) throw new InvalidOptionError('--watch', '--watch applies to sweep only');
  const host = values['host-id'];
  if (host !== undefined && !/^[A-Za-z0-9.-]{1,64}$/.test(host)) {
    throw new InvalidOptionError('--host-id', `--host-id takes 1 to 64 letters, digits, dots or dashes, got \`${host}\``);
  }
  return {
    command,
    dryRun: values['dry-run'],
    json: values.json,
    watch: values.watch,
    target: {
      root: path.resolve(values.root ?? defaultRoot()),
      staleMs: millis('--stale-ms', values['stale-ms'], DEFAULT_STALE_MS, STALE_MS_RANGE),
      graceMs: millis('--grace-ms', values['grace-ms'], DEFAULT_GRACE_MS, GRACE_MS_RANGE),
      hostId: host ?? hostId(),
    },
  };
}

/** An unknown flag's error with the closest known flag added: `--dryrun`, did you mean `--dry-run`? */
function withSuggestion(error: unknown): unknown {
  if (!(error instanceof TypeError) || (error as { code?: unknown }).code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return error;
  const flag = /'(-{1,2}[^']*)'/.exec(error.message)?.[1];
  const near = flag === undefined ? undefined : closestName(flag.replace(/^-+/, '').split('=')[0]!, Object.keys(FLAGS));
  if (near === undefined) return error;
  return new InvalidOptionError(flag!, `unknown option '${printable(flag!.length > 40 ? `${flag!.slice(0, 40)}…` : flag!)}': did you mean \`--${near}\`?`);
}

// A duration flag: digits only, then the library's own range check (the same as the option's), so
// that a value past what a timer takes is refused rather than fire at once.
function millis(flag: string, value: string | undefined, fallback: number, range: DurationRange): number {
  if (value === undefined) return fallback;
  const shown = `\`${printable(value.length > 40 ? `${value.slice(0, 40)}…` : value)}\``;
  return validateDuration(/^\d+$/.test(value) ? Number(value) : Number.NaN, flag, range, { label: flag, show: () => shown });
}

function rootExists(root: string): boolean {
  try {
    fs.lstatSync(root);
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
    bytesFreed: 0, liveSessionsSkipped: 0, youngSessionsSkipped: 0, unjudgedSessionsSkipped: 0, hostIdMismatches: [],
    setAsideRemoved: 0, handoffEntriesRemoved: 0, claimedEntriesSkipped: 0, tusUploadsRemoved: 0, heldTusUploadsSkipped: 0,
    foreign: [], errors: [], left: [], durationMs: 0,
  } satisfies SweepReport;
}

async function runSweep(options: CliOptions, out: NodeJS.WritableStream, err: NodeJS.WriteStream | NodeJS.WritableStream): Promise<number> {
  const tty = !options.json && 'isTTY' in err && err.isTTY === true;
  let lastDraw = 0;
  const sweepOnce = () => sweepRoot(options.target, {
    dryRun: options.dryRun,
    onProgress: tty
      ? ({ filesRemoved, bytesFreed, sessionsDone, sessionsTotal }) => {
          if (Date.now() - lastDraw < 200) return;
          lastDraw = Date.now();
          const total = sessionsTotal > 0 ? `; ${sessionsDone} of ${plural(sessionsTotal, 'orphaned session')} done` : '';
          err.write(`\r\u001b[K${options.dryRun ? 'found' : 'removed'} ${plural(filesRemoved, 'file')}, ${formatBytes(bytesFreed)}${total}...`);
        }
      : undefined,
  });
  let report = await sweepOnce();
  if (options.watch && report.youngSessionsSkipped + report.unjudgedSessionsSkipped > 0) {
    // A second look, after the owners of other machines had time to refresh their locks.
    // Both are at most MAX_TIMER_MS; the margin is cut rather than let the timer overflow.
    const lookAgainMs = Math.min(MAX_TIMER_MS, Math.max(options.target.staleMs, options.target.graceMs) + 1000);
    await new Promise((resolve) => setTimeout(resolve, lookAgainMs));
    report = combine(report, await sweepOnce());
  }
  if (lastDraw) err.write('\r\u001b[K');
  out.write(options.json ? `${JSON.stringify(report)}\n` : describeSweep(report));
  return report.errors.length > 0 || report.left.length > 0 ? EXIT.sweepErrors : EXIT.ok;
}

function combine(first: SweepReport, second: SweepReport): SweepReport {
  return {
    ...second,
    sessionsRemoved: first.sessionsRemoved + second.sessionsRemoved,
    filesRemoved: first.filesRemoved + second.filesRemoved,
    dirsRemoved: first.dirsRemoved + second.dirsRemoved,
    bytesFreed: first.bytesFreed + second.bytesFreed,
    handoffEntriesRemoved: first.handoffEntriesRemoved + second.handoffEntriesRemoved,
    tusUploadsRemoved: first.tusUploadsRemoved + second.tusUploadsRemoved,
    errors: [...first.errors, ...second.errors],
    hostIdMismatches: [...new Set([...first.hostIdMismatches, ...second.hostIdMismatches])].sort(),
    durationMs: first.durationMs + second.durationMs,
  };
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
  // KEY: the short form errors and diagnostics name a handoff by (`handoff 5e860f50bcf14502`).
  return table(
    ['HANDOFF', 'KEY', 'STATE', 'EXPIRES', 'BYTES', 'HOLDER'],
    entries.map((e) => [
      e.id,
      handoffKey(e.id),
      e.state === 'abandoned' ? 'abandoned (holder dead, claimable)' : e.state,
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
    // The files and bytes are those of the sessions and the handoff entries together: say both.
    `  ${verb} ${plural(report.sessionsRemoved, 'orphaned session')}${
      report.handoffEntriesRemoved > 0
        ? ` and ${plural(report.handoffEntriesRemoved, 'expired or consumed handoff entry', 'expired or consumed handoff entries')}`
        : ''
    }: ${plural(report.filesRemoved, 'file')}, ${formatBytes(report.bytesFreed)}`,
    `  left ${plural(report.liveSessionsSkipped, 'live session')}, ${plural(report.youngSessionsSkipped, 'session')} of other machines in their grace period, and ${plural(report.unjudgedSessionsSkipped, 'session')} of other machines not yet judged${report.unjudgedSessionsSkipped + report.youngSessionsSkipped > 0 ? ' (sweep again later, or use --watch)' : ''}`,
    `  ${verb} ${plural(report.handoffEntriesRemoved, 'expired or consumed handoff entry', 'expired or consumed handoff entries')}; left ${plural(report.claimedEntriesSkipped, 'claimed entry', 'claimed entries')}`,
  ];
  if (report.tusUploadsRemoved + report.heldTusUploadsSkipped > 0) {
    lines.push(`  ${verb} ${plural(report.tusUploadsRemoved, 'expired tus upload')}; left ${plural(report.heldTusUploadsSkipped, 'expired tus upload')} a live request still writes`);
  }
  if (report.setAsideRemoved > 0) {
    lines.push(`  ${verb} ${plural(report.setAsideRemoved, 'closed session')} set aside while another handle held a file in it`);
  }
  if (report.hostIdMismatches.length > 0) {
    lines.push(
      `  note: sessions of this machine carry other host ids than this sweep's (${report.hostIdMismatches.join(', ')}); ` +
        'they were judged by their processes, as every session of this machine is: check --host-id and the apps\' hostId option',
    );
  }
  if (report.foreign.length > 0) {
    lines.push(`  left ${plural(report.foreign.length, 'name')} that the library did not make:`);
    for (const file of report.foreign) lines.push(`    ${file}`);
  }
  if (report.errors.length > 0) {
    lines.push(`  ${plural(report.errors.length, 'error')}:`);
    for (const e of report.errors) lines.push(`    ${e.code} ${e.path}`);
  }
  if (report.left.length > 0) {
    lines.push(`  left ${plural(report.left.length, 'mount point')} in place (unmount, then sweep again):`);
    for (const l of report.left) lines.push(`    ${l.reason} ${l.path}`);
  }
  return `${lines.map(printable).join('\n')}\n`;
}

function describeSessions(root: string, sessions: readonly SessionInfo[]): string {
  if (sessions.length === 0) return `no sessions under ${printable(root)}\n`;
  return table(
    ['STATE', 'HOST', 'PID', 'AGE', 'FILES', 'BYTES', 'SESSION'],
    sessions.map((s) => [s.state, s.host, String(s.pid), formatAge(s.ageMs), String(s.files), formatBytes(s.bytes), s.name]),
  );
}

function table(header: string[], rows: string[][]): string {
  rows = rows.map((row) => row.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

// A name may hold a newline or a terminal escape: in text output every control or invisible
// format character is shown escaped, so no name can forge a line or drive the terminal. A
// backslash is shown as it is (a Windows path reads as one), except where it would read as the
// start of such an escape: then it is itself escaped (`\x5c`), so the output reads back to one name.
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]|\\(?=x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\})/gu;

/**
 * `text` with control and format characters escaped as `\xNN` / `\u{N}`, and a backslash as
 * `\x5c` only where the text after it reads as such an escape.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
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

/** The package's own version: its package.json is one level above the built dist/cli.js, two above this source. */
function packageVersion(): string {
  const require = createRequire(import.meta.url);
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      const manifest = require(candidate) as { name?: string; version: string };
      if (manifest.name === 'tempfile-manager') return manifest.version;
    } catch (err) {
      if (systemErrorCode(err) !== 'MODULE_NOT_FOUND') throw err;
    }
  }
  throw new Error('tempfile-manager: its package.json is not where the CLI looks for it');
}
