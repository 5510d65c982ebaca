/**
 * Deno's permissions, read in this one place. tempfile-manager needs all of them (`--allow-all`,
 * no `--deny-*` flag), for two reasons that no narrower set avoids (Deno 2.9):
 *
 * - short of all permissions, Deno resolves a path's symbolic links before it opens it, to check
 *   the target against its allow-lists: an `O_NOFOLLOW` open then follows a link planted in the
 *   root, where the library's checks count on it failing;
 * - the directories the library holds open are reached through `/proc/self/fd`, which Deno opens
 *   only with all permissions ("Requires all access").
 * @module
 */
import { DENO_ALL_ACCESS_ADVICE, InvalidOptionError } from './errors.js';

/** The part of Deno's `Deno.permissions` read here. */
interface DenoPermissions {
  querySync(descriptor: { readonly name: string }): { readonly state: string; readonly partial?: boolean };
}

// Every permission `--allow-all` grants (Deno 2): each granted with no deny list is all of them.
const DENO_PERMISSIONS = ['read', 'write', 'net', 'env', 'sys', 'run', 'ffi', 'import'] as const;

function denoPermissions(): DenoPermissions | undefined {
  const deno = (globalThis as { Deno?: { permissions?: Partial<DenoPermissions> } }).Deno;
  const api = deno?.permissions;
  return typeof api?.querySync === 'function' ? (api as DenoPermissions) : undefined;
}

function grantedInFull(api: DenoPermissions, name: string): boolean {
  try {
    const status = api.querySync({ name });
    return status.state === 'granted' && status.partial !== true;
  } catch {
    return true; // a permission this Deno does not have
  }
}

/** Under Deno, the permissions it does not grant in full (none with `--allow-all`); none elsewhere. */
function denoPermissionsWithheld(): string[] {
  const api = denoPermissions();
  return api ? DENO_PERMISSIONS.filter((name) => !grantedInFull(api, name)) : [];
}

/**
 * Throws under Deno unless it grants every permission: called first by a manager's constructor,
 * before the default root's `TMPDIR`, the uid or `/proc` are read.
 * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`, option `--allow-all`.
 * @internal
 */
export function requireDenoAllAccess(): void {
  const withheld = denoPermissionsWithheld();
  if (withheld.length === 0) return;
  throw new InvalidOptionError('--allow-all', `Deno runs without all of its permissions (not granted in full: ${withheld.join(', ')}). ${DENO_ALL_ACCESS_ADVICE}`);
}
