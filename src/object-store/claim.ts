import { DisposedError, isErrorCode, LeaseLostError } from '../base/errors.js';
import type { KeepOptions } from '../keep/move.js';
import { logger } from '../base/log.js';
import type { BackendClaim, LocalFile } from '../handoff/backend.js';
import type { ObjectIo } from './io.js';
import type { StoreLease } from './lease.js';
import type { EntryKeys } from './keys.js';
import { builtin } from '../base/builtin.js';
const fs = builtin('node:fs');

const log = logger('store-claim');

/**
 * A claim of a ticket whose file lives in the store: the lease in the store, the bytes in a
 * local temp file of the claimer's scope. Every step first writes the lease under the holder's
 * own ETag (the fence): a holder that was taken over is refused there and writes nothing more.
 * Its data key is its own (a claimer that takes over a stale lease works on a copy, lease.ts), so
 * `consume()` deletes it while it writes `consumed`, both at once. The lease stays, a tombstone
 * that turns late claimers away (a redelivered ticket), until the store's sweep removes it.
 */
export class StoreClaim implements BackendClaim {
  readonly path: string;
  private finished = false;
  /** Taken over: every later step is refused (LeaseLostError), never a silent success. */
  private lost = false;
  private keeping = false;

  constructor(
    private readonly io: ObjectIo,
    private readonly keys: EntryKeys,
    private readonly lease: StoreLease,
    private readonly local: LocalFile,
  ) {
    this.path = local.path;
    // A local copy removed under the claim (its manager closed) ends the heartbeat: the lease goes
    // stale and the next claimer gets the file, rather than a lease held for nobody.
    // (During keep() the copy is at its destination: the lease is beaten until keep() ends.)
    lease.beatOnlyWhile(() => this.finished || this.keeping || fs.existsSync(this.path));
  }

  get done(): boolean {
    return this.finished;
  }

  async consume(): Promise<void> {
    this.refuseIfLost();
    if (this.finished) return;
    // A failed deletion of the data leaves it to the sweep, which sees the entry consumed.
    const deleting = deleted(this.io, this.lease.dataKey);
    await this.fence('consumed', 'consume the handoff');
    await Promise.all([this.end(), deleting]);
  }

  async release(): Promise<void> {
    this.refuseIfLost();
    if (this.finished) return;
    await this.fence('released', 'release the handoff');
    await this.end();
  }

  async keep(destination: string, options: KeepOptions): Promise<string> {
    this.refuseIfLost();
    if (this.finished) throw new DisposedError('ClaimedFile', this.path);
    await this.fence('held', 'keep the handoff');
    this.keeping = true;
    try {
      const placed = await this.local.keep(destination, options);
      await this.recordKeep(placed);
      this.lease.stop();
      this.finished = true;
      await removeData(this.io, [this.lease.dataKey]); // the lease stays, a tombstone, for the sweep
      return placed;
    } finally {
      this.keeping = false;
    }
  }

  // Writes `consumed` for a keep whose file is at `placed`. Where the file belongs depends on what
  // the store recorded: the keep (it stays), or not (it is taken back and the entry given back, at
  // once if the store answers, else once the lease is stale: not lost). When that is unknown (no
  // answer, twice), the file stays where it was put: a keep recorded and then undone would lose the
  // job, and the entry, if not recorded, goes to the next claimer once the lease is stale.
  private async recordKeep(placed: string): Promise<void> {
    try {
      // A write whose answer was lost may have landed: asked once more, the store says which
      // (lease.ts resolves a `consumed` of ours that it finds there).
      await this.fence('consumed', 'keep the handoff').catch((err: unknown) => {
        if (isErrorCode(err, 'ERR_TEMPFILE_LEASE_LOST')) throw err;
        return this.fence('consumed', 'keep the handoff');
      });
    } catch (err) {
      let recorded: boolean | undefined = isErrorCode(err, 'ERR_TEMPFILE_LEASE_LOST') ? false : undefined;
      if (recorded === undefined) {
        recorded = await this.lease.write('released').then(
          () => false,
          (e: unknown) => (this.lease.endedAs === 'consumed' ? true : isErrorCode(e, 'ERR_TEMPFILE_LEASE_LOST') ? false : undefined),
        );
      }
      if (recorded) return;
      if (recorded === undefined) throw err; // the claim stays held: consume() or release() may still say
      await fs.promises.unlink(placed).catch(() => {});
      this.finished = true;
      this.lost = this.lease.lost;
      this.lease.stop();
      throw err;
    }
  }

  dispose(): Promise<void> {
    return this.finished ? Promise.resolve() : this.release();
  }

  // Without the network's answer: the local copy goes and the heartbeat stops at once; the
  // release is sent and not waited for. The store has no synchronous steps (no `sync`).
  disposeSync(): void {
    if (this.finished) return;
    this.finished = true;
    this.lease.stop();
    try {
      this.local.removeSync();
    } catch (err) {
      log('local copy %s left to the manager: %s', this.path, (err as Error)?.name);
    }
    // A synchronous disposal cannot wait for the network: the release is sent now and not waited
    // for. If it never arrives, the lease goes stale after staleMs and the next claimer takes it.
    this.lease.write('released').catch((err: unknown) => log('release of %s after a sync disposal failed: %s', this.keys.lease, (err as Error)?.name));
  }

  /** Writes the lease under our ETag; a refused write ends the claim (the local copy goes). */
  private async fence(state: 'held' | 'consumed' | 'released', action: string): Promise<void> {
    try {
      await this.lease.write(state);
    } catch (err) {
      if (isErrorCode(err, 'ERR_TEMPFILE_LEASE_LOST')) {
        this.lost = true;
        await this.end();
        throw err;
      }
      throw await this.io.failure(err, action);
    }
  }

  private refuseIfLost(): void {
    if (this.lost) throw new LeaseLostError(this.lease.id);
  }

  private async end(): Promise<void> {
    this.finished = true;
    this.lease.stop();
    await this.local.remove().catch((err: unknown) => log('local copy %s left to the manager: %s', this.path, (err as Error)?.name));
  }
}

/**
 * Deletes an entry's data keys once its lease says consumed (or swept); true when they are all
 * gone. The lease stays: while it does, no claimer can take the entry (it finds it consumed). Only
 * the sweep deletes it, a while after (fetch-ahead.ts). Failures are left to the sweep.
 */
export async function removeData(io: ObjectIo, dataKeys: readonly string[]): Promise<boolean> {
  const gone = await Promise.all(dataKeys.map((key) => deleted(io, key)));
  return gone.every(Boolean);
}

/** Deletes a key; false (logged) when that failed: the sweep removes it. */
function deleted(io: ObjectIo, key: string): Promise<boolean> {
  return io.delete(key).then(
    () => true,
    (err: unknown) => {
      log('%s left to the sweep: %s', key, (err as Error)?.name);
      return false;
    },
  );
}
