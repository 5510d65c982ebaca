import { InvalidOptionError } from '../base/errors.js';
import { describe } from '../base/names.js';
import { builtin } from '../base/builtin.js';

let hashNames: Set<string> | undefined;

/**
 * Checks the `hash` option of `write()` and of the upload options, and returns the algorithm's
 * name as `crypto.getHashes()` spells it, lower-cased: that name goes into digests and tickets
 * (`'<algorithm>:<hex>'`), so it must fit their grammar and be one every reader of a ticket
 * knows. A spelling that `createHash()` takes with dashes (`'sha-256'`, `'SHA-1'`) is taken as the
 * listed name without them (`'sha256'`, `'sha1'`). `where` starts the message (`'upload(): '`).
 * @internal
 */
export function hashOption(value: unknown, where = ''): string {
  if (typeof value === 'string' && /^[A-Za-z0-9-]{1,32}$/.test(value)) {
    hashNames ??= new Set(builtin('node:crypto').getHashes().map((name) => name.toLowerCase()));
    const lower = value.toLowerCase();
    // The name without dashes first: Node 26 lists 'sha-256' beside 'sha256', and a ticket that
    // says 'sha256' is one that readers on older versions can check too.
    const undashed = lower.replaceAll('-', '');
    if (undashed !== lower && hashNames.has(undashed) && createsHash(value)) return undashed;
    if (hashNames.has(lower)) return lower;
  }
  throw new InvalidOptionError(
    'hash',
    `${where}\`hash\` must be a hash algorithm of node:crypto such as 'sha256', 'sha512' or 'sha3-256' ` +
      `(crypto.getHashes() lists them; 'sha-256' is taken as 'sha256'), got ${describe(value)}.`,
  );
}

function createsHash(name: string): boolean {
  try {
    builtin('node:crypto').createHash(name);
    return true;
  } catch {
    return false;
  }
}
