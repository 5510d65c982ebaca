import { builtin } from '../base/builtin.js';
const nodeFs = builtin('node:fs');

/**
 * `node:fs` itself, the one object every system call of the library goes through: each call
 * reads its method off this object (`fs.renameSync(...)`, `fs.promises.open(...)`) when it is
 * made, never a copy taken at import.
 * @internal
 */
export { nodeFs as fs };

/** Flags of the lstat-free, symlink-refusing opens: O_NOFOLLOW where the platform has it. */
export const O_NOFOLLOW = nodeFs.constants.O_NOFOLLOW ?? 0;
/** Create a new file, fail if the name exists, never follow a symlink at the name. */
export const CREATE_EXCLUSIVE =
  nodeFs.constants.O_CREAT | nodeFs.constants.O_EXCL | nodeFs.constants.O_WRONLY | O_NOFOLLOW;
