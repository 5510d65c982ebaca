import path from 'node:path';
import lockfile from 'proper-lockfile';
import { systemErrorCode, toFileSystemError } from './errors.js';
import type { FileSystem } from './fs.js';
import { logger } from './log.js';
import { randomName } from './names.js';
import { processIdentity, type ProcessIdentity } from './process-identity.js';
import { removeTree, removeTreeSync } from './remove.js';

const log = logger('session');

/** The parts of a session directory's name. */
export interface SessionName extends ProcessIdentity {
  /** When the session was created, in epoch milliseconds. */
  readonly created: number;
  readonly random: string;
}

/** The pattern of an owner token: host, pid, process start, creation time, random part. */
export const OWNER_TOKEN_PATTERN = '([A-Za-z0-9.-]{1,64})_(\\d{1,10})_([0-9a-z.]{1,40})_([0-9a-z]{1,11})_([0-9a-f]{16})';
const SESSION_NAME = new RegExp(`^${OWNER_TOKEN_PATTERN}$`);

/**
 * `<host>_<pid>_<process start>_<created, base 36>_<random>`: unique, and tells a sweeper whose
 * session it is and how old.
 */
export function formatSessionName(identity: ProcessIdentity, created: number, random: string): string {
  return `${identity.host}_${identity.pid}_${identity.start}_${created.toString(36)}_${random}`;
}

/** Parses a directory name under the root; undefined when it is not a session's. */
export function parseSessionName(name: string): SessionName | undefined {
  return ownerFromMatch(SESSION_NAME.exec(name));
}

/** The owner parts of a match of {@link OWNER_TOKEN_PATTERN} (groups 1 to 5). @internal */
export function ownerFromMatch(match: RegExpExecArray | null): SessionName | undefined {
  if (!match) return undefined;
  const [, host, pid, start, created, random] = match as unknown as [string, string, string, string, string, string];
  return { host, pid: Number(pid), start, created: parseInt(created, 36), random };
}

/** The lock directory proper-lockfile keeps beside a session. */
export function lockPathOf(sessionDir: string): string {
  return `${sessionDir}.lock`;
}

/** Options for {@link Session}. */
export interface SessionOptions {
  readonly fs: FileSystem;
  readonly root: string;
  readonly staleMs: number;
  readonly hostId: string;
}

/**
 * A manager's directory under the root, held alive by a proper-lockfile lock whose mtime is
 * refreshed while the process lives. The lock is taken before the directory is made and dropped
 * after it is gone, so a directory without a fresh lock always belongs to nobody.
 */
export class Session {
  readonly dir: string;
  private readonly options: SessionOptions;
  private locked = false;

  constructor(options: SessionOptions) {
    this.options = options;
    this.dir = path.join(options.root, formatSessionName(processIdentity(options.hostId), Date.now(), randomName().slice(0, 16)));
  }

  /** Takes the lock and makes the directory (mode 0700). Synchronous: `file()` is. */
  open(): void {
    this.lock();
    try {
      this.options.fs.mkdirSync(this.dir, { mode: 0o700 });
    } catch (err) {
      this.unlock();
      throw toFileSystemError('create the session directory', this.dir, err);
    }
    log('opened %s', this.dir);
  }

  /** Removes the directory and everything in it, then drops the lock. */
  async close(): Promise<void> {
    try {
      await removeTree(this.options.fs, this.dir);
    } finally {
      this.unlock();
    }
    log('closed %s', this.dir);
  }

  /** Synchronous {@link close}, for exit paths. */
  closeSync(): void {
    try {
      removeTreeSync(this.options.fs, this.dir);
    } finally {
      this.unlock();
    }
    log('closed %s', this.dir);
  }

  private lock(): void {
    try {
      lockfile.lockSync(this.dir, this.lockOptions());
      this.locked = true;
    } catch (err) {
      throw toFileSystemError('lock the session', lockPathOf(this.dir), err);
    }
  }

  private unlock(): void {
    if (!this.locked) return;
    this.locked = false;
    try {
      lockfile.unlockSync(this.dir, { realpath: false, fs: this.options.fs });
    } catch (err) {
      // Released already (compromised and given up) or removed by hand: nothing left to drop.
      log('unlock %s: %s', this.dir, systemErrorCode(err) ?? err);
    }
  }

  private lockOptions(): lockfile.LockOptions {
    return {
      stale: this.options.staleMs,
      realpath: false,
      fs: this.options.fs,
      onCompromised: (err) => this.onCompromised(err),
    };
  }

  /** A lost lock must never crash the app: log it and take the lock again. */
  private onCompromised(err: Error): void {
    log('lock of %s compromised: %s', this.dir, err.message);
    if (!this.locked) return;
    try {
      lockfile.lockSync(this.dir, this.lockOptions());
      log('lock of %s taken again', this.dir);
    } catch (retakeError) {
      this.locked = false;
      log('could not take the lock of %s again: %s', this.dir, systemErrorCode(retakeError) ?? retakeError);
    }
  }
}
