import type { RootContext } from '../root/root.js';
import { isGone, systemErrorCode } from '../base/errors.js';
import { dataName, parseTusUploadName, TUS_DIR, TUS_INFO } from '../base/layout.js';
import { OPEN_EXISTING } from '../disk/open-checked.js';
import { openPinned, type PinnedDir } from '../disk/pinned-dir.js';
import { pathError, walkTree, type WalkTally } from '../disk/walk.js';
import { takeForRemoval, type HolderStates } from '../handoff/lease.js';
import { dataFileName, MAX_INFO_BYTES, parseUploadInfo, uploadExpiry, uploadHolderLives, type UploadInfo } from './tus-upload.js';
import { fs } from '../disk/fs.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');
const { constants } = builtin('node:fs');

// The uploads of tempfile-manager/tus sweep their own: one whose expiry, written in its info file
// when it was made, has passed is removed, unless a live request holds it. Its data file is first
// taken from requests (one rename, as a handoff entry's is), so a PATCH that takes the upload
// meanwhile keeps it, and the upload is left for the next sweep.

/** What sweeping `<root>/tus` did. @internal */
export interface TusSwept {
  readonly removed: number;
  readonly held: number;
  readonly foreign: string[];
}

/** Where one sweep of `<root>/tus` reaches it, and what it shares across its uploads. */
interface UploadSweep {
  readonly target: RootContext;
  readonly dryRun: boolean;
  readonly tally: WalkTally;
  readonly now: number;
  readonly seen: HolderStates;
}

/**
 * Removes the tus uploads whose recorded expiry has passed and no live request holds; never an
 * upload without a recorded expiry (made with `expirationMs: 0`, or by an earlier version, which
 * `deleteExpired()` judges by its store's own setting), never a name the store does not make.
 * `<root>/tus` is reached through its own descriptor, opened without following a link. @internal
 */
export async function sweepTusUploads(target: RootContext, rootBase: string, dryRun: boolean, tally: WalkTally): Promise<TusSwept> {
  const result = { removed: 0, held: 0, foreign: [] as string[] };
  const shownBase = path.join(target.root, TUS_DIR);
  let pinned: Awaited<ReturnType<typeof openPinned>>;
  let names: string[];
  try {
    pinned = await openPinned(`${rootBase}/${TUS_DIR}`);
    if (typeof pinned === 'string') return result; // none yet; a link or a file there is the store's to refuse
    names = await listOrClose(pinned);
  } catch (err) {
    tally.errors.push(pathError(shownBase, err)); // the uploads only: the rest of the sweep goes on
    return result;
  }
  try {
    const run: UploadSweep = { target, dryRun, tally, now: Date.now(), seen: new Map() };
    for (const name of names) {
      const shown = path.join(shownBase, name);
      if (parseTusUploadName(name) === undefined) {
        result.foreign.push(shown);
        continue;
      }
      try {
        const outcome = await sweepUpload(run, `${pinned.base}/${name}`, shown);
        if (outcome === 'removed') result.removed += 1;
        if (outcome === 'held') result.held += 1;
      } catch (err) {
        tally.errors.push(pathError(shown, err)); // this upload only: the sweep goes on
      }
    }
  } finally {
    await pinned.close();
  }
  return result;
}

/** The names in the pinned `<root>/tus`; a failed listing closes it before it is thrown. */
async function listOrClose(pinned: PinnedDir): Promise<string[]> {
  try {
    return await fs.promises.readdir(pinned.base);
  } catch (err) {
    await pinned.close().catch(() => {});
    throw err;
  }
}

async function sweepUpload(run: UploadSweep, at: string, shown: string): Promise<'removed' | 'held' | 'left'> {
  // Judged and taken through the upload's own descriptor: a link planted at its name is never followed.
  const pinned = await openPinned(at);
  if (typeof pinned === 'string') return 'left';
  try {
    const info = await readUploadInfo(`${pinned.base}/${TUS_INFO}`);
    // No store is known here: an upload that records no expiry (made with expirationMs: 0, or by an earlier version) is left.
    const expiresAt = info && uploadExpiry(info, 0);
    if (expiresAt === undefined || expiresAt > run.now) return 'left';
    const current = await dataFileName(pinned.base);
    if (current !== undefined && current !== dataName('') && uploadHolderLives(run.target, pinned.base, shown, current, run.seen)) return 'held';
    if (!run.dryRun && current !== undefined && !(await takeForRemoval(pinned.base, current))) return 'left'; // a request took it since
  } finally {
    await pinned.close();
  }
  await walkTree(shown, { remove: !run.dryRun, access: at }, run.tally);
  return 'removed';
}

/** An upload's info, read through its descriptor without following a link; undefined when it has none the store wrote. */
async function readUploadInfo(at: string): Promise<UploadInfo | undefined> {
  let handle: Awaited<ReturnType<typeof fs.promises.open>>;
  try {
    handle = await fs.promises.open(at, constants.O_RDONLY | OPEN_EXISTING);
  } catch (err) {
    const code = systemErrorCode(err);
    if (isGone(code) || code === 'ELOOP') return undefined; // in the making, or not the store's
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.nlink !== 1 || stat.size > MAX_INFO_BYTES) return undefined;
    return parseUploadInfo((await handle.readFile()).toString('utf8'));
  } finally {
    await handle.close();
  }
}
