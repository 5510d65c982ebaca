import { AlreadyClaimedError, HandoffNotFoundError, isErrorCode, LeaseLostError } from '../base/errors.js';
import { detached } from '../base/detached.js';
import { logger } from '../base/log.js';
import { CHANNELS, handoffKey, publish } from '../base/channels.js';
import { randomName } from '../base/random-name.js';
import { HEARTBEAT_MS, judgeHeartbeat } from '../owner/liveness.js';
import { isConditionFailed, isNotFound, mayHaveLanded, type ObjectIo, type TextObject } from './io.js';
import { copyName, isDataName, type EntryKeys } from './keys.js';
import { builtin } from '../base/builtin.js';
const { createHash } = builtin('node:crypto');

const log = logger('store-lease');

// The lease of a ticket held in the store: one small object, `<entry>/lease`, written only under
// a condition. It is taken by creating it (`If-None-Match: *`): of several claimers, the store
// lets exactly one create it. Every later write of it is `If-Match` the ETag of the writer's own
// last write: the heartbeat (a new `beat` every second), the steps (consume, release, keep), a
// takeover of a stale lease. A holder whose lease was taken over finds its ETag gone: its next
// write is refused (412), and it changes nothing more. No clock is compared across hosts: a lease
// is stale when its ETag was seen unchanged for `staleMs` on the claimer's own monotonic clock
// (owner/liveness.ts, the same rule as on a shared disk).
//
// The lease names the data key its holder works on. A takeover of a stale lease first copies that
// data to a key of its own, names the copy, and then deletes the old key: a holder taken over
// while it was paused deletes only its own key when it resumes (consume() deletes its data while
// it writes `consumed`, both at once), never the bytes the new holder works on.

/** What a lease says: held (by `holder`), released (claimable at once), consumed or swept (gone for good). */
export type LeaseState = 'held' | 'released' | 'consumed' | 'swept';

interface LeaseBody {
  readonly v: 1;
  readonly holder: string;
  readonly state: LeaseState;
  readonly beat: number;
  /** The holder's data key, within the entry. */
  readonly data?: string;
  /** On a `consumed` written by a claimer that found a stale holder's data gone: that holder. */
  readonly for?: string;
}

/** The lease as read from the store. */
export interface SeenLease {
  readonly etag: string;
  readonly state: LeaseState | undefined;
  readonly holder: string | undefined;
  /** The data key its holder works on, within the entry (`data` when it names none). */
  readonly data: string;
  /** The stale holder whose consume this `consumed` records, if another wrote it. */
  readonly consumedFor: string | undefined;
}

export function parseLease(object: TextObject): SeenLease {
  let state: LeaseState | undefined;
  let holder: string | undefined;
  let data = 'data';
  let consumedFor: string | undefined;
  try {
    const body = JSON.parse(object.text) as Partial<LeaseBody>;
    if (typeof body.holder === 'string') holder = body.holder;
    if (isDataName(body.data)) data = body.data;
    if (typeof body.for === 'string') consumedFor = body.for;
    if (body.state === 'held' || body.state === 'released' || body.state === 'consumed' || body.state === 'swept') state = body.state;
  } catch {
    // a lease that is not ours to read counts as held: it goes stale if nobody beats it
  }
  return { etag: object.etag, state, holder, data, consumedFor };
}

/** The heartbeat of a lease, for the liveness rule: its ETag, watched per bucket and key. */
export function leaseHeartbeat(io: ObjectIo, key: string, etag: string): { key: string; stamp: number } {
  return { key: `${io.scheme}://${io.bucket}/${key}`, stamp: createHash('sha256').update(etag).digest().readUIntBE(0, 6) };
}

/** Whether a held lease's heartbeat was seen unchanged for `staleMs` on this process's monotonic clock. */
export function leaseStale(io: ObjectIo, key: string, seen: SeenLease, rules: { staleMs: number; hostId: string }): boolean {
  return judgeHeartbeat(leaseHeartbeat(io, key, seen.etag), { staleMs: rules.staleMs, graceMs: 0, hostId: rules.hostId }) === 'dead';
}

/** A lease this process holds. */
export class StoreLease {
  private etag: string;
  private beat = 0;
  private readonly holder: string;
  // Every write of the lease waits for the one before: a beat and a step never race each other
  // for the same ETag (the loser would take itself for fenced).
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private isLost = false;
  /** Writes queued or under way. */
  private writing = 0;
  /** The state our own last step left, found after its answer was lost: the lease is ours no more. */
  private ended: Exclude<LeaseState, 'held'> | undefined;
  private beatWhile: (() => boolean) | undefined;

  private constructor(
    private readonly io: ObjectIo,
    private readonly key: string,
    /** The ticket's id. */
    readonly id: string,
    holder: string,
    etag: string,
    /** The key of the data this holder works on. */
    readonly dataKey: string,
    private readonly dataName: string,
    /** True when this claimer created the lease (none was there), false when it took one over. */
    readonly created: boolean,
  ) {
    this.holder = holder;
    this.etag = etag;
  }

  /**
   * Takes the lease on entry `id`: creates it, or takes over a released one or one whose
   * heartbeat is stale (copying the stale holder's data first). A live holder's lease is never
   * written.
   * @throws AlreadyClaimedError, HandoffNotFoundError (consumed or swept), or the SDK's error.
   */
  static async take(io: ObjectIo, keys: EntryKeys, id: string, rules: { staleMs: number; hostId: string }): Promise<StoreLease> {
    const holder = `${rules.hostId}/${process.pid}/${randomName().slice(0, 16)}`;
    const body = (data: string): string => JSON.stringify({ v: 1, holder, state: 'held', beat: 0, data } satisfies LeaseBody);
    const lease = (etag: string, data: string, created = false): StoreLease => new StoreLease(io, keys.lease, id, holder, etag, `${keys.entry}${data}`, data, created);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return lease(await io.put(keys.lease, body('data'), { create: true }), 'data', true);
      } catch (err) {
        if (!isConditionFailed(err)) {
          if (!mayHaveLanded(err)) throw err;
          const landed = await landedFor(io, keys.lease, holder);
          if (landed) return lease(landed.etag, landed.data, true); // our create landed: nobody else's can have
          if ((await io.getText(keys.lease)) === undefined) throw err; // nobody's landed: the store failed
        }
      }
      const found = await io.getText(keys.lease);
      if (found === undefined) continue; // removed between our write and our read: try again
      const seen = parseLease(found);
      if (seen.state === 'consumed' || seen.state === 'swept') throw new HandoffNotFoundError(id);
      if (seen.state !== 'released' && !leaseStale(io, keys.lease, seen, rules)) throw new AlreadyClaimedError(id, Math.max(1000, rules.staleMs));
      // A released lease is copied too: its holder may not know its release landed (the answer
      // lost) and go on to consume, which deletes its own data key, never the copy.
      const copy = copyName(randomName().slice(0, 16));
      if (!(await copied(io, `${keys.entry}${seen.data}`, `${keys.entry}${copy}`))) {
        // The last holder's data is gone: only its consume deletes it, and its `consumed` has not
        // landed (it is in flight, or never will). The entry is done: say so in the lease, under
        // its ETag, for that holder, whose consume then finds it recorded.
        const consumed: LeaseBody = { v: 1, holder, state: 'consumed', beat: 0, ...(seen.holder !== undefined && { for: seen.holder }) };
        await takeOver(io, keys, id, seen, holder, JSON.stringify(consumed));
        throw new HandoffNotFoundError(id);
      }
      let etag: string;
      try {
        etag = await takeOver(io, keys, id, seen, holder, body(copy));
      } catch (err) {
        // The copy goes only when the lease surely does not name it: a write whose answer was lost
        // may have landed, and the copy is then the entry's data. Else the entry's sweep removes it.
        if (isErrorCode(err, 'ERR_TEMPFILE_ALREADY_CLAIMED')) await io.delete(`${keys.entry}${copy}`).catch(() => {});
        throw err;
      }
      // The holder taken over holds nothing now (its next step is refused): its data goes, and a
      // download of it still running fails. A failed deletion is left to the sweep.
      await io.delete(`${keys.entry}${seen.data}`).catch(() => {});
      return lease(etag, copy);
    }
    throw new AlreadyClaimedError(id, 1000);
  }

  /** The state of our own step (`consumed`, say) found landed after its answer was lost. */
  get endedAs(): Exclude<LeaseState, 'held'> | undefined {
    return this.ended;
  }

  /** True once a write of the lease was refused: another claimer holds it now. */
  get lost(): boolean {
    return this.isLost;
  }

  /**
   * Starts the heartbeat: a conditional rewrite every second, on an unref'd timer started outside
   * the caller's async context (its beats run in no request's store, nor keep one alive).
   */
  startHeartbeat(): void {
    this.timer = detached(() => setInterval(() => {
      if (this.beatWhile && !this.beatWhile()) {
        // What the lease is for is gone (the claim's local copy, with its manager's session):
        // beating on would hold the entry for nobody. It goes stale, and the next claimer takes it.
        log('lease %s no longer beaten: its claim is gone', this.key);
        this.stop();
        return;
      }
      if (this.writing > 0) return; // a write is under way: beats do not queue behind a silent store
      this.write('held').catch((err: unknown) => {
        if (isErrorCode(err, 'ERR_TEMPFILE_LEASE_LOST')) log('lease %s lost: taken over', this.key);
        else log('heartbeat of %s failed, tried again in %d ms: %s', this.key, HEARTBEAT_MS, (err as Error)?.name);
      });
    }, HEARTBEAT_MS));
    this.timer.unref();
  }

  /** Beats only while `check()` is true (checked before each beat). */
  beatOnlyWhile(check: () => boolean): void {
    this.beatWhile = check;
  }

  /** Stops the heartbeat; the lease stays as last written. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Writes the lease, `If-Match` our last ETag: a beat (`held`), or a step's new state. Resolves
   * once the store took it.
   * @throws LeaseLostError when the store refused it (another claimer holds the lease), or the
   * SDK's error when the store could not be reached (the lease is unchanged, to try again).
   */
  write(state: LeaseState): Promise<void> {
    this.writing++;
    const run = this.chain.then(async () => {
      if (this.ended !== undefined && state === this.ended) return;
      if (this.isLost || this.ended !== undefined) throw new LeaseLostError(this.id);
      const body = JSON.stringify({ v: 1, holder: this.holder, state, beat: ++this.beat, data: this.dataName } satisfies LeaseBody);
      try {
        this.etag = await this.io.put(this.key, body, { ifMatch: this.etag });
        return;
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
      // Refused. Still ours only if the lease names us: an earlier write of ours whose answer was
      // lost (a timeout, a restarted gateway) moved the ETag on. A takeover always names another holder.
      const found = await this.io.getText(this.key);
      const seen = found && parseLease(found);
      if (state === 'consumed' && seen && seen.state === 'consumed' && seen.consumedFor === this.holder) {
        this.stop(); // a claimer found our data deleted and recorded our consume for us
        return;
      }
      if (seen && seen.holder === this.holder && seen.state !== 'held') {
        // Our own `released`, `consumed` or `swept` landed, its answer lost: the step is done. It
        // is never written back to held (a released lease brought back would refuse the claimer it
        // was given up for) nor a tombstone to held or released (it would hand the entry out again).
        this.stop();
        this.ended = seen.state;
        if (state === seen.state) return;
        throw new LeaseLostError(this.id);
      }
      if (seen && seen.holder === this.holder) {
        try {
          this.etag = await this.io.put(this.key, body, { ifMatch: seen.etag });
          return;
        } catch (err) {
          if (!isConditionFailed(err)) throw err;
        }
      }
      this.isLost = true;
      this.stop();
      throw new LeaseLostError(this.id);
    });
    this.chain = run.catch(() => {});
    void this.chain.then(() => this.writing--);
    return run;
  }
}

/** Writes a lease seen as `seen` under its ETag, for `holder`; resolves with the new ETag. */
async function takeOver(io: ObjectIo, keys: EntryKeys, id: string, seen: SeenLease, holder: string, body: string): Promise<string> {
  log('taking over %s (%s)', keys.lease, seen.state === 'released' ? 'released' : 'stale');
  try {
    const etag = await io.put(keys.lease, body, { ifMatch: seen.etag });
    if (seen.state !== 'released') publish(CHANNELS.claimTakeover, () => ({ handoff: handoffKey(id) }));
    return etag;
  } catch (err) {
    if (!isConditionFailed(err)) {
      if (!mayHaveLanded(err)) throw err;
      const landed = await landedFor(io, keys.lease, holder);
      if (landed) return landed.etag;
      const now = await io.getText(keys.lease);
      if (now === undefined || now.etag === seen.etag) throw err; // nobody else wrote it: the store failed
    }
    throw new AlreadyClaimedError(id, 1000); // another claimer took it over first
  }
}

/** The lease as it is, when a write that failed (5xx, or no answer) landed for `holder` after all. */
async function landedFor(io: ObjectIo, key: string, holder: string): Promise<SeenLease | undefined> {
  const found = await io.getText(key);
  const seen = found && parseLease(found);
  return seen && seen.holder === holder ? seen : undefined;
}

/** Copies `from` to `to`; false when `from` is gone. */
async function copied(io: ObjectIo, from: string, to: string): Promise<boolean> {
  try {
    await io.copy(from, to);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
