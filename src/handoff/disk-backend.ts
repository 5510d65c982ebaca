import { isErrorCode, isGone, toFileSystemError } from '../base/errors.js';
import { handoffDirOf } from '../base/layout.js';
import { boundEntryName } from './binding.js';
import { capabilitiesProbed, ensureCapabilities } from '../disk/capabilities.js';
import { openPinnedSync } from '../disk/pinned-dir.js';
import type { BackendClaim, CheckedClaimOptions, ClaimPlace, HandoffBackend, HandoffSource, HandOffRequest } from './backend.js';
import { claimEntry, redacted, shownEntry } from './disk-claim.js';
import { handOff, openHandoffDirSync } from './handoff.js';
import type { HandoffDirHold } from './handoff-dir.js';
import type { LeaseContext } from './lease.js';
import type { HandoffTicket } from './ticket.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

// The shared disk as a backend: an entry of <root>/handoff per ticket (handoff.ts), its lease the
// data file under its holder's name (lease.ts, disk-claim.ts), its sweep part of the root's
// (sweep.ts). One per manager: it hands off from that manager's session and claims through its
// pinned root and its held handoff directory.

/** What the shared-disk backend needs of its manager. @internal */
export interface DiskHandoffContext extends LeaseContext {
  readonly root: string;
  /** How the root's entries are reached (its descriptor's /proc path, or its checked path). */
  rootBase(): string;
  /** The manager's session, opened on first use: a handoff stages its entry there. */
  session(): { readonly path: string; readonly base: string };
  /** True once the session is open (its file system was probed when it opened). */
  sessionOpened(): boolean;
  /** `<root>/handoff`, held open across handoffs and claims, checked at each. */
  readonly handoffDir: HandoffDirHold;
}

/** `<root>/handoff/` as a {@link HandoffBackend}. @internal */
export class DiskHandoff implements HandoffBackend {
  /** `<root>/handoff`, made once: the paths a claim shows are under it. */
  private readonly handoffPath: string;

  constructor(private readonly context: DiskHandoffContext) {
    this.handoffPath = handoffDirOf(context.root);
  }

  /** Moves the file into a new entry (it appears whole or not at all) and returns its ticket. */
  handOff(source: HandoffSource, request: HandOffRequest): Promise<HandoffTicket> {
    const { context } = this;
    try {
      const session = context.session();
      const places = { sessionDir: session.path, sessionBase: session.base, root: context.root, rootBase: context.rootBase(), handoffDir: context.handoffDir };
      return handOff(places, source, request);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** Takes the lease on the ticket's entry; the claimer's place is not needed: the bytes stay where they are. */
  claim(ticket: HandoffTicket, _place: ClaimPlace, options: CheckedClaimOptions): Promise<BackendClaim> {
    const { context } = this;
    try {
      const rootBase = context.rootBase();
      // Once per root and thread: a worker that only claims opened the handoff directory and the
      // entry for it at every claim (a third of a claim's system calls).
      if (!context.sessionOpened() && !capabilitiesProbed(context.root)) this.probeInEntry(ticket, rootBase);
      const places = { root: context.root, rootBase, handoffPath: this.handoffPath, handoffDir: context.handoffDir };
      return claimEntry(context, places, ticket, options);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * A manager that only claims has no session to probe its root's file system in: it probes in
   * the ticket's entry directory, reached through the pinned handoff directory (the scratch goes
   * with the entry if a crash leaves it). No entry: nothing to probe, the claim finds nothing.
   */
  private probeInEntry(ticket: HandoffTicket, rootBase: string): void {
    const { root } = this.context;
    const handoff = openHandoffDirSync(root, rootBase);
    if (!handoff) return;
    try {
      const entry = openPinnedSync(`${handoff.base}/${boundEntryName(ticket)}`);
      if (typeof entry === 'string') return;
      try {
        ensureCapabilities(root, entry.base);
      } finally {
        entry.close();
      }
    } catch (err) {
      const name = boundEntryName(ticket);
      const typed = toFileSystemError('find the handoff entry', shownEntry(path.join(this.handoffPath, name), ticket.id), err);
      if (isErrorCode(typed, 'ERR_TEMPFILE_IO') && isGone(typed.syscallCode)) return; // claimed and consumed meanwhile
      throw redacted(typed, name, ticket.id);
    } finally {
      handoff.close();
    }
  }
}
