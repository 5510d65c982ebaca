import { InvalidOptionError } from '../base/errors.js';
import { describe, validateNameLength, validateNamePart } from '../base/names.js';
import { hostId } from '../owner/process-identity.js';
import { MIN_STALE_MS } from '../owner/liveness.js';
import { defaultRoot } from './root.js';
import { HOST_PLATFORM, type Platform } from '../base/platform.js';
import { windowsPathProblem } from '../base/windows-names.js';
import { MAX_PATH_BELOW_ROOT_BYTES } from '../base/layout.js';
import { isHandoffStore, type HandoffStore } from '../base/stores.js';
import { MAX_TIMER_MS, ownOptions, validateBoolean, validateBytes, validateDuration, validateObject, type DurationRange, type NoneLeftOut } from '../base/validators.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

/** Options of `new TempFileManager(options)`. Every one is optional. */
export interface TempFileManagerOptions {
  /**
   * The root directory: made 0700 if missing (never its parents); an existing one must be a real
   * directory of this user, not writable by others. A relative path is resolved once, when the
   * manager is made (`mgr.root` is absolute): give workers started elsewhere the absolute path. At
   * most 3674 bytes on Linux, 602 on macOS (PATH_MAX less the longest path made below it, 421).
   * @default `<os.tmpdir()>/tempfile-manager-<uid>`
   */
  readonly root?: string;
  /** A prefix for every name this manager creates. @default '' */
  readonly prefix?: string;
  /** A heartbeat seen unchanged this long is stale: 2000 to 2^31 - 1 ms (this manager beats every second, whatever its own). @default 30000 */
  readonly staleMs?: number;
  /** A session of another machine is watched this long before it can be swept (0 to 2^31 - 1 ms). @default 60000 */
  readonly graceMs?: number;
  /** Run one background sweep when the manager starts. @default true */
  readonly sweepOnStart?: boolean;
  /**
   * Sweep the root in the background this often (±20 %), on an unref'd timer shared by the
   * managers of a root; 0 turns it off, else 1000 to 2^31 - 1 ms.
   * @default 3 × `staleMs` (90000)
   */
  readonly sweepIntervalMs?: number;
  /** Remove this manager's session when the process exits or is killed by a signal. @default true */
  readonly exitHook?: boolean;
  /** The most bytes this manager's live files may hold on disk. @default Infinity */
  readonly maxLiveBytes?: number;
  /** Refuse a write that would leave less free space than this on the root's file system. @default 0 */
  readonly minFreeBytes?: number;
  /**
   * This host's id in session names and leases: hosts sharing a root (NFS) need different ids.
   * @default the `TEMPFILE_MANAGER_HOST_ID` environment variable, else `os.hostname()`
   */
  readonly hostId?: string;
  /** The object stores (`s3Store()`) this manager claims tickets of, by bucket and prefix (docs/s3.md). @default [] */
  readonly stores?: readonly HandoffStore[];
}

/** Options after validation and defaults. @internal */
export interface ResolvedOptions {
  readonly root: string;
  readonly prefix: string;
  readonly staleMs: number;
  readonly graceMs: number;
  readonly sweepOnStart: boolean;
  readonly sweepIntervalMs: number;
  readonly exitHook: boolean;
  readonly maxLiveBytes: number;
  readonly minFreeBytes: number;
  readonly hostId: string;
  readonly stores: readonly HandoffStore[];
}

/** The names of the manager's options: every key of {@link TempFileManagerOptions} (`NoneLeftOut`). */
const MANAGER_OPTION_KEYS = [
  'root', 'prefix', 'staleMs', 'graceMs', 'sweepOnStart', 'sweepIntervalMs', 'exitHook', 'maxLiveBytes', 'minFreeBytes', 'hostId', 'stores',
] as const satisfies readonly (keyof TempFileManagerOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type ManagerOptionsListed = NoneLeftOut<Exclude<keyof TempFileManagerOptions, (typeof MANAGER_OPTION_KEYS)[number]>>;
const KNOWN_OPTIONS: ReadonlySet<string> = new Set<string>(MANAGER_OPTION_KEYS);

/** Validates the options and fills in defaults; throws {@link InvalidOptionError}. @internal */
export function resolveOptions(options: unknown): ResolvedOptions {
  if (options === undefined) options = {};
  validateObject(options, 'new TempFileManager()', KNOWN_OPTIONS, '{ root, maxLiveBytes }');
  const o = ownOptions(options as TempFileManagerOptions);
  const prefix = o.prefix === undefined ? '' : validateNamePart(o.prefix, 'prefix');
  validateNameLength(prefix, '');
  const staleMs = o.staleMs === undefined ? DEFAULT_STALE_MS : validateDuration(o.staleMs, 'staleMs', STALE_MS_RANGE);
  return {
    root: rootOption(o.root),
    prefix,
    staleMs,
    graceMs: o.graceMs === undefined ? DEFAULT_GRACE_MS : validateDuration(o.graceMs, 'graceMs', GRACE_MS_RANGE),
    sweepOnStart: o.sweepOnStart === undefined ? true : validateBoolean(o.sweepOnStart, 'sweepOnStart'),
    sweepIntervalMs:
      o.sweepIntervalMs === undefined ? Math.min(3 * staleMs, MAX_TIMER_MS) : validateDuration(o.sweepIntervalMs, 'sweepIntervalMs', SWEEP_INTERVAL_MS_RANGE),
    exitHook: o.exitHook === undefined ? true : validateBoolean(o.exitHook, 'exitHook'),
    maxLiveBytes: o.maxLiveBytes === undefined ? Infinity : validateBytes(o.maxLiveBytes, 'maxLiveBytes', { infinity: true }),
    minFreeBytes: o.minFreeBytes === undefined ? 0 : validateBytes(o.minFreeBytes, 'minFreeBytes'),
    hostId: hostIdOption(o.hostId),
    stores: storesOption(o.stores),
  };
}

function storesOption(value: unknown): readonly HandoffStore[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every(isHandoffStore)) {
    throw new InvalidOptionError(
      'stores',
      `\`stores\` must be an array of stores made by s3Store() of tempfile-manager/s3 or azureStore() of tempfile-manager/azure, got ${describe(value)}. E.g. new TempFileManager({ stores: [s3Store({ client, bucket })] }).`,
    );
  }
  return [...value];
}

function hostIdOption(value: unknown): string {
  if (value === undefined) return hostId();
  if (typeof value !== 'string' || !/^[A-Za-z0-9.-]{1,64}$/.test(value)) {
    throw new InvalidOptionError('hostId', `\`hostId\` must be 1 to 64 letters, digits, dots or dashes, got ${describe(value)}.`);
  }
  return value;
}

/**
 * Checks `root` and makes it absolute, by the rules of `platform`: on Windows a name Windows reads
 * as another (a device, a trailing dot or space, a stream) is refused; its length is not, since
 * Node.js reaches every path the library opens with the long-path prefix.
 */
function rootOption(value: unknown, platform: Platform = HOST_PLATFORM): string {
  if (value === undefined) return defaultRoot();
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0')) {
    throw new InvalidOptionError('root', `\`root\` must be a non-empty path string, got ${describe(value)}.`);
  }
  const root = (platform === 'win32' ? path.win32 : path).resolve(value);
  const problem = windowsPathProblem(root, platform, Infinity);
  if (problem !== undefined) {
    throw new InvalidOptionError('root', `\`root\` ${root} cannot be used on Windows: ${problem}. Nothing was made: choose another \`root\`.`);
  }
  const bytes = Buffer.byteLength(root);
  if (bytes > maxRootBytes(platform)) {
    throw new InvalidOptionError(
      'root',
      `\`root\` must be at most ${maxRootBytes(platform)} bytes long here, so that the longest path the library makes below it (${MAX_PATH_BELOW_ROOT_BYTES} bytes more) fits in the system's limit of ${pathMaxOf(platform) - 1}; ` +
        `got ${describe(root)} (${bytes} bytes): choose a shorter \`root\`.`,
    );
  }
  return root;
}

/**
 * The most bytes a path may take, with its terminating NUL (PATH_MAX): 4096 on Linux, 1024 on
 * macOS and the BSDs. On Windows Node.js gives every path the long-path prefix (`\\?\`), which
 * takes 32,767 characters; 260 holds only for programs that do not.
 */
function pathMaxOf(platform: NodeJS.Platform): number {
  if (platform === 'linux' || platform === 'android') return 4096;
  if (platform === 'win32') return 32_767;
  return 1024;
}

/**
 * The most bytes (UTF-8) the root's absolute path may take on `platform`: PATH_MAX, less its NUL
 * and the longest path the library builds below the root (`MAX_PATH_BELOW_ROOT_BYTES`). 3674 on
 * Linux, 602 on macOS.
 */
function maxRootBytes(platform: Platform = HOST_PLATFORM): number {
  return pathMaxOf(platform) - 1 - MAX_PATH_BELOW_ROOT_BYTES;
}

/** `staleMs` when none is given: a heartbeat seen unchanged this long has stopped. @internal */
export const DEFAULT_STALE_MS = 30_000;

/** `graceMs` when none is given: how long an owner that cannot be checked is watched before it is judged. @internal */
export const DEFAULT_GRACE_MS = 60_000;

/** `staleMs`, and the CLI's `--stale-ms`. @internal */
export const STALE_MS_RANGE: DurationRange = { min: MIN_STALE_MS, max: MAX_TIMER_MS };
/** `graceMs`, and the CLI's `--grace-ms`. @internal */
export const GRACE_MS_RANGE: DurationRange = { min: 0, max: MAX_TIMER_MS };
/** `sweepIntervalMs`. @internal */
export const SWEEP_INTERVAL_MS_RANGE: DurationRange = { min: 1000, max: MAX_TIMER_MS, off: { value: 0, meaning: 'never' } };
