import * as nodeFs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { realFs, type FsLayer } from './fs-layer.js';

type Method = 'openSync' | 'closeSync' | 'mkdirSync' | 'unlinkSync' | 'rmSync' | 'unlink' | 'rm' | 'link' | 'rename' | 'open' | 'rmdir' | 'rmdirSync';

/** A system error as Node.js makes them. */
export function systemError(code: string, syscall: string, path?: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: injected, ${syscall} '${path ?? ''}'`);
  err.code = code;
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  return err;
}

/**
 * What sshfs and NFS answer for a name under a directory another host removed, as Node.js makes
 * it: libuv has no name for ESTALE, so its code is "Unknown system error -116".
 */
export function staleHandle(syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`Unknown system error -116: Unknown system error -116, ${syscall}`), { errno: -116, code: 'Unknown system error -116', syscall });
}

/**
 * Wraps a file system (the real one or memfs) so that a test can make the next calls of one
 * method fail with a chosen errno, and count the calls of each method.
 */
export class FaultyFs {
  readonly fs: FsLayer;
  readonly calls = new Map<string, number>();
  private readonly faults = new Map<Method, { code: string; remaining: number; when?: (path: string) => boolean }>();
  private readonly actions = new Map<Method, { when: (path: string) => boolean; action: (path: string) => void }>();
  private writeFault: { code: string; afterBytes: number } | undefined;
  /** Bytes written so far through each descriptor of an `open` (write()'s own files). */
  private readonly writtenByFd = new Map<number, number>();
  private writeDelayMs = 0;
  /** The size of every write to write()'s files, in order. */
  readonly writeSizes: number[] = [];

  constructor(base: FsLayer = realFs) {
    const sync = (name: Method) =>
      ((...args: unknown[]) => {
        this.hit(name, String(args[0]));
        return (base[name as keyof FsLayer] as (...a: unknown[]) => unknown)(...args);
      }) as never;
    const async = (name: Method) =>
      (async (...args: unknown[]) => {
        this.hit(name, String(args[0]));
        return (base.promises[name as keyof FsLayer['promises']] as (...a: unknown[]) => unknown)(...args);
      }) as never;
    this.fs = {
      ...base,
      // A file made exclusively may be write()'s own, created inline on a local disk: its writes
      // are counted as those through a descriptor of `open` are.
      openSync: ((file: nodeFs.PathLike, flags: nodeFs.OpenMode, mode?: nodeFs.Mode) => {
        this.hit('openSync', String(file));
        const fd = base.openSync(file, flags, mode);
        if (typeof flags === 'number' && (flags & nodeFs.constants.O_EXCL) !== 0) this.writtenByFd.set(fd, 0);
        return fd;
      }) as FsLayer['openSync'],
      closeSync: sync('closeSync'),
      mkdirSync: sync('mkdirSync'),
      unlinkSync: sync('unlinkSync'),
      rmSync: sync('rmSync'),
      rmdirSync: sync('rmdirSync'),
      open: ((file: nodeFs.PathLike, flags: number, mode: number, callback: (err: Error | null, fd: number) => void) => {
        try {
          this.hit('open', String(file));
        } catch (error) {
          process.nextTick(callback, error, -1);
          return;
        }
        base.open(file, flags, mode, (error, fd) => {
          if (!error) this.writtenByFd.set(fd, 0);
          callback(error, fd);
        });
      }) as typeof nodeFs.open,
      write: ((fd: number, buffer: Buffer, offset: number, length: number, position: null, callback: (err: Error | null, n: number) => void) => {
        this.delayed(() => this.beforeFdWrite(fd, length))
          .then(() => base.write(fd, buffer, offset, length, position, callback))
          .catch((error: unknown) => callback(error as Error, 0));
      }) as typeof nodeFs.write,
      writeSync: ((fd: number, buffer: Buffer, offset?: number, length?: number, position?: null) => {
        this.beforeFdWrite(fd, length ?? buffer.length - (offset ?? 0));
        return base.writeSync(fd, buffer, offset, length, position);
      }) as typeof nodeFs.writeSync,
      promises: {
        ...base.promises,
        unlink: async('unlink'),
        rm: async('rm'),
        rmdir: async('rmdir'),
        link: async('link'),
        rename: async('rename'),
        open: (async (...args: Parameters<typeof nodeFs.promises.open>) => {
          this.hit('open', String(args[0]));
          return this.wrapHandle(await base.promises.open(...args));
        }) as typeof nodeFs.promises.open,
      },
    };
  }

  /** Counts a write through a descriptor of `open`, or throws the write fault it reaches. */
  private beforeFdWrite(fd: number, bytes: number): void {
    const written = this.writtenByFd.get(fd);
    if (written === undefined) return; // not one of write()'s files
    this.writeSizes.push(bytes);
    const fault = this.writeFault;
    if (fault && written + bytes > fault.afterBytes) throw systemError(fault.code, 'write');
    this.writtenByFd.set(fd, written + bytes);
  }

  /** `check` after the write delay, if any. */
  private async delayed(check: () => void): Promise<void> {
    if (this.writeDelayMs) await new Promise((resolve) => setTimeout(resolve, this.writeDelayMs));
    check();
  }

  /** Writes (through handles from `promises.open`, and through descriptors of `open`) fail with `code` once `afterBytes` were written. */
  failWritesAfter(afterBytes: number, code: string): void {
    this.writeFault = { code, afterBytes };
  }

  /** Every write through handles from `promises.open` or descriptors of `open` (but an inline one) first waits this long: a slow disk. */
  delayWrites(ms: number): void {
    this.writeDelayMs = ms;
  }

  private wrapHandle(handle: FileHandle): FileHandle {
    let written = 0;
    const before = async (bytes: number) => {
      this.writeSizes.push(bytes);
      if (this.writeDelayMs) await new Promise((resolve) => setTimeout(resolve, this.writeDelayMs));
      const fault = this.writeFault;
      if (fault && written + bytes > fault.afterBytes) throw systemError(fault.code, 'write');
      written += bytes;
    };
    const writev = handle.writev.bind(handle);
    const write = handle.write.bind(handle);
    return Object.assign(Object.create(handle) as FileHandle, {
      writev: async (buffers: NodeJS.ArrayBufferView[], position?: number) => {
        await before(buffers.reduce((sum, b) => sum + b.byteLength, 0));
        return writev(buffers, position);
      },
      write: async (buffer: Uint8Array) => {
        await before(buffer.byteLength);
        return write(buffer);
      },
      close: () => handle.close(),
    });
  }

  /** Runs `action` (another process's change, played here) right before the next call of `method` on a path matching `when`. */
  before(method: Method, when: (path: string) => boolean, action: (path: string) => void): void {
    this.actions.set(method, { when, action });
  }

  /** The next `times` calls of `method` (on a path matching `when`) fail with `code`. */
  fail(method: Method, code: string, times = 1, when?: (path: string) => boolean): void {
    this.faults.set(method, { code, remaining: times, when });
  }

  private hit(method: Method, path: string): void {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
    const planned = this.actions.get(method);
    if (planned?.when(path)) {
      this.actions.delete(method);
      planned.action(path);
    }
    const fault = this.faults.get(method);
    if (!fault || fault.remaining <= 0 || (fault.when && !fault.when(path))) return;
    fault.remaining -= 1;
    throw systemError(fault.code, method.replace(/Sync$/, ''), path);
  }
}

/** The primitives a weak file system may lack, as `capabilities.ts` names them. */
export type Primitive = 'exclusive-create' | 'exclusive-mkdir' | 'rename' | 'rename-replace' | 'hard-link' | 'utimes' | 'no-follow';

/**
 * A file system (over the real one) that lacks one primitive the way weak network file systems
 * do: a second mkdir that succeeds, O_EXCL or O_NOFOLLOW ignored, a rename that copies, a rename
 * that refuses to replace (SFTP v3), a link that replaces, a utimes that does nothing.
 */
export function lacking(primitive: Primitive, base: FsLayer = realFs): FsLayer {
  const { O_EXCL, O_NOFOLLOW } = nodeFs.constants;
  const fs: FsLayer = { ...base, promises: base.promises };
  switch (primitive) {
    case 'exclusive-mkdir':
      fs.mkdirSync = ((p: nodeFs.PathLike, options?: nodeFs.MakeDirectoryOptions) => {
        try {
          return base.mkdirSync(p, options);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          return undefined;
        }
      }) as FsLayer['mkdirSync'];
      break;
    case 'exclusive-create':
    case 'no-follow': {
      const dropped = primitive === 'exclusive-create' ? O_EXCL : O_NOFOLLOW;
      fs.openSync = ((p: nodeFs.PathLike, flags: number, mode?: number) =>
        base.openSync(p, typeof flags === 'number' ? flags & ~dropped : flags, mode)) as FsLayer['openSync'];
      break;
    }
    case 'rename':
      fs.renameSync = ((from: string, to: string) => nodeFs.cpSync(from, to, { recursive: true })) as FsLayer['renameSync'];
      break;
    case 'rename-replace':
      fs.renameSync = ((from: string, to: string) => {
        if (nodeFs.existsSync(to)) throw systemError('EPERM', 'rename', to);
        base.renameSync(from, to);
      }) as FsLayer['renameSync'];
      break;
    case 'hard-link':
      fs.linkSync = ((from: string, to: string) => {
        nodeFs.rmSync(to, { force: true });
        base.linkSync(from, to);
      }) as FsLayer['linkSync'];
      break;
    case 'utimes':
      fs.utimesSync = (() => {}) as FsLayer['utimesSync'];
      break;
  }
  return fs;
}
