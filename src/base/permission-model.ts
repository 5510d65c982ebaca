/**
 * Node's permission model (`--permission`; Node 20's `--experimental-permission`), read in this
 * one place. Under it, what the library relies on elsewhere is withheld unless a flag grants it:
 *
 * - every call that changes a file through a descriptor (`futimes`, `fchmod`), whatever
 *   `--allow-fs-write` says: a heartbeat sets its times by path instead (`lutimes`, never
 *   following a link, after the same checks);
 * - writes through `/proc/<pid>/fd/<n>/...`, judged by that path, not by the directory the
 *   descriptor holds: directories are reached by their checked paths, as without /proc;
 * - `symlink`, which needs reads and writes everywhere: the file-system probe cannot plant the
 *   link it opens with O_NOFOLLOW, and leaves that check out (no link can be made from here);
 * - `new Worker`, unless `--allow-worker`: the beat thread, without which a blocked event loop
 *   stops the heartbeat; a manager refuses to start without it.
 * @module
 */

/** The part of `process.permission` read here (present only while the model is on). */
interface PermissionApi {
  has(scope: string, reference?: string): boolean;
}

function api(): PermissionApi | undefined {
  const held = (process as { permission?: unknown }).permission;
  if (typeof held !== 'object' || held === null || typeof (held as PermissionApi).has !== 'function') return undefined;
  return held as PermissionApi;
}

/** Whether Node's permission model is on in this process. @internal */
export function permissionModelOn(): boolean {
  return api() !== undefined;
}

/** Whether the permission model lets this process write at `at` (always, where it is off). @internal */
export function mayWrite(at: string): boolean {
  return api()?.has('fs.write', at) ?? true;
}

/** Whether the permission model lets this process read at `at` (always, where it is off). @internal */
export function mayRead(at: string): boolean {
  return api()?.has('fs.read', at) ?? true;
}

/** Whether this process may start worker threads (`--allow-worker`, or no permission model). @internal */
export function mayStartThreads(): boolean {
  return api()?.has('worker') ?? true;
}

/** Whether this process may make symlinks: the model asks for reads and writes everywhere. @internal */
export function mayMakeSymlinks(): boolean {
  const model = api();
  return model === undefined || (model.has('fs.write') && model.has('fs.read'));
}

/**
 * Whether a heartbeat may set times through a descriptor (`futimes`): never under the
 * permission model, which refuses it even with `--allow-fs-write=*` (Node 20 to 26). @internal
 */
export function mayTouchDescriptors(): boolean {
  return api() === undefined;
}
