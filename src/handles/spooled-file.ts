import type { ReadStream } from 'node:fs';
import type { ManagerContext, Owner } from '../context/context.js';
import { CREATE_EXCLUSIVE, fs } from '../disk/fs.js';
import { identityOf } from '../disk/open-checked.js';
import { createUnique, type NameParts } from './create.js';
import { readStreamOptions, TempFile, type TempReadStreamOptions } from './file.js';
import { handleContext, type Place } from './handle.js';
import { builtin } from '../base/builtin.js';
const { createReadStream } = builtin('node:fs');

/** The place of a spooled file that never reached the disk: it has no path. */
const NOWHERE: Place = { path: '', access: '' };

/**
 * A {@link TempFile} of `spool()` whose bytes are in memory. It writes them to a file of its
 * session (0600, a fresh random name, `O_EXCL`) the first time anything needs the file: its
 * `path`, a write stream, `keep()`, `handoff()`; from then on it is a plain `TempFile`. Reading
 * it, its size, digest and type, and its removal never touch the disk while it is in memory.
 * @internal
 */
export class SpooledTempFile extends TempFile {
  /** The bytes, as the blocks `spool()` packed them into, in order. */
  #memory: readonly Buffer[] | undefined;
  #onDisk: Place | undefined;
  readonly #parts: NameParts;

  /** @internal */
  constructor(context: ManagerContext, owner: Owner, parts: NameParts, content: readonly Buffer[]) {
    super(context, owner, NOWHERE.path, NOWHERE.access, parts.suffix);
    this.#parts = parts;
    this.#memory = content;
  }

  /** True while the bytes are only in memory. @internal */
  get inMemory(): boolean {
    return this.#memory !== undefined;
  }

  /** {@inheritDoc TempFile.createReadStream} */
  override createReadStream(options?: TempReadStreamOptions): ReadStream {
    if (this.#memory === undefined) return super.createReadStream(options);
    this.assertLive('TempFile');
    const { start, end, highWaterMark, signal } = readStreamOptions(options);
    // A real fs.ReadStream (start, end, highWaterMark, signal as for a file) over a copy-free view.
    return createReadStream(this.suffix, { fs: memoryReader(this.#memory), start, end, highWaterMark, signal });
  }

  /** @internal */
  protected override place(): Place {
    if (this.#onDisk) return this.#onDisk;
    if (this.#memory === undefined) return NOWHERE;
    const { path, access, identity } = writeOut(handleContext(this), this.#parts, this.#memory);
    this.#onDisk = { path, access };
    this.known = identity;
    this.#memory = undefined;
    return this.#onDisk;
  }

  /** @internal */
  protected override deleteAsync(): Promise<void> {
    if (this.#onDisk) return super.deleteAsync();
    this.#memory = undefined;
    return Promise.resolve();
  }

  /** @internal */
  protected override deleteSync(): void {
    if (this.#onDisk) super.deleteSync();
    else this.#memory = undefined;
  }

  /** @internal */
  protected override released(): void {
    this.#memory = undefined;
    super.released();
  }
}

/**
 * Writes `bytes` to a new file of the session, synchronously (at most `maxMemory` bytes), and
 * returns where it is and its identity; a failure removes what was made and is typed.
 */
function writeOut(context: ManagerContext, parts: NameParts, blocks: readonly Buffer[]): Place & { identity: ReturnType<typeof identityOf> } {
  let size = 0;
  for (const block of blocks) size += block.length;
  context.freeSpace.checkSync(size);
  let identity: ReturnType<typeof identityOf> | undefined;
  const made = createUnique(context, parts, 'file', (access) => {
    const fd = fs.openSync(access, CREATE_EXCLUSIVE, 0o600);
    try {
      for (const block of blocks) writeAll(fd, block);
      identity = identityOf(fs.fstatSync(fd));
    } catch (err) {
      closeAndUnlink(fd, access);
      throw err;
    }
    fs.closeSync(fd);
  });
  return { path: made.path, access: made.access, identity: identity! };
}

function writeAll(fd: number, bytes: Buffer): void {
  for (let offset = 0; offset < bytes.length; ) offset += fs.writeSync(fd, bytes, offset, bytes.length - offset);
}

// The write already failed; a second failure here must not hide the first (the session's removal gets what is left).
function closeAndUnlink(fd: number, access: string): void {
  try {
    fs.closeSync(fd);
    fs.unlinkSync(access);
  } catch {
    // see above
  }
}

/** The three calls an fs.ReadStream makes, answered from `blocks`. */
function memoryReader(blocks: readonly Buffer[]): Pick<typeof fs, 'open' | 'read' | 'close'> {
  let cursor = 0;
  // Where the last read ended: the block it was in and that block's offset, so that a stream's
  // reads, in order, each start where the last one ended instead of from the first block.
  let index = 0;
  let start = 0;
  const read = (_fd: number, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | bigint | null, callback: (err: null, bytesRead: number, buffer: NodeJS.ArrayBufferView) => void): void => {
    const from = typeof position === 'number' && position >= 0 ? position : cursor;
    const target = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    if (from < start) [index, start] = [0, 0];
    let copied = 0;
    while (index < blocks.length && copied < length) {
      const block = blocks[index]!;
      const at = from + copied - start;
      if (at < block.length) copied += block.copy(target, offset + copied, at, Math.min(block.length, at + length - copied));
      if (from + copied - start < block.length) break;
      start += block.length;
      index++;
    }
    cursor = from + copied;
    process.nextTick(callback, null, copied, buffer);
  };
  return {
    open: ((_path: unknown, _flags: unknown, _mode: unknown, callback: (err: null, fd: number) => void) => process.nextTick(callback, null, 0)) as unknown as typeof fs.open,
    read: read as unknown as typeof fs.read,
    close: ((_fd: number, callback: (err: null) => void) => process.nextTick(callback, null)) as unknown as typeof fs.close,
  };
}
