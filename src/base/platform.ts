/**
 * The platform the library runs on, read in this one place. Every rule that differs by platform
 * (the advice of an error, the names Windows refuses) is a function of a platform passed in,
 * defaulting to this value, so that a test on Linux can check what a Windows user is told.
 * @module
 */

/** A platform as Node.js names it (`process.platform`): `'linux'`, `'darwin'`, `'win32'`... @internal */
export type Platform = NodeJS.Platform;

/** The platform this process runs on. @internal */
export const HOST_PLATFORM: Platform = process.platform;
