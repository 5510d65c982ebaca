/**
 * Resumable uploads: `tempfile-manager/tus` makes a data store and a locker for `@tus/server`
 * (the tus protocol of tus-js-client and Uppy) on a manager's root. Each upload in progress is a
 * private file under the root, counted against the manager's limits, resumable by any server
 * process sharing the root, and removed once it expires; a finished upload is a `TempFile` in
 * `onUploadFinish`, to keep or hand off. `@tus/server` (2 or later) is an optional peer, loaded by
 * this entry only: {@link tusStore} shows how, docs/tus.md says what it promises.
 *
 * @packageDocumentation
 * @module tempfile-manager/tus
 */
export { tusStore } from './tus-store.js';
export type { TusStore, TusStoreOptions } from './tus-store.js';
