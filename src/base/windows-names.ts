/**
 * The names Windows refuses, or reads as another name: pure functions of a value and a platform,
 * so that every platform's tests check Windows' rules.
 * @module
 */
import type { Platform } from './platform.js';
import { builtin } from './builtin.js';
const path = builtin('node:path');

/**
 * The device names Windows reserves in every directory (the console's CONIN$ and CONOUT$ too),
 * also with an extension (`aux.txt`) and trailing spaces before it, in any case; the superscript
 * digits ¹²³ count as digits there.
 */
const DEVICE_NAME = /^(CON|CONIN\$|CONOUT\$|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])$/i;

// The characters Windows refuses in a name (`:` is also the separator of an alternate data stream):
// eslint-disable-next-line no-control-regex
const REFUSED_CHARACTERS = /[<>:"|?*\u0000-\u001f]/;

/** The most characters a full path may take without the long-path prefix: MAX_PATH (260) less its NUL. */
export const WINDOWS_MAX_PATH_CHARACTERS = 259;

/** The device a file name would open on Windows (`AUX` for `aux .txt`), or undefined. */
export function reservedDeviceOf(name: string): string | undefined {
  const stem = name.split('.')[0]!.replace(/ +$/, '');
  return DEVICE_NAME.test(stem) ? stem.toUpperCase() : undefined;
}

/** Whether a name ends with a dot or a space, which Windows strips: `a.pdf.` opens `a.pdf`. */
export function endsAsWindowsStrips(name: string): boolean {
  return /[. ]$/.test(name);
}

/**
 * What Windows makes of one component of a path, when it is not the name as written: a device, a
 * stripped end, a stream, a refused character. Undefined for a name Windows takes as it is.
 */
function componentProblem(name: string): string | undefined {
  const device = reservedDeviceOf(name);
  if (device !== undefined) return `${JSON.stringify(name)} is a name Windows reserves for a device (${device}), even with an extension`;
  if (endsAsWindowsStrips(name)) return `${JSON.stringify(name)} ends with a dot or a space, which Windows strips, so the file would take another name`;
  if (name.includes(':')) return `${JSON.stringify(name)} holds a colon, which Windows reads as naming an alternate data stream of a file`;
  if (REFUSED_CHARACTERS.test(name)) return `${JSON.stringify(name)} holds a character Windows refuses in names (<>:"|?* or a control character)`;
  return undefined;
}

/**
 * Why the absolute path `file` cannot name a file as written on `platform`, or undefined. Only
 * win32 has such rules: device names, trailing dots and spaces, alternate data streams, refused
 * characters, the device namespace (`\\.\`), and more than 259 characters unless the path carries
 * the long-path prefix (`\\?\`), which asks for longer paths knowingly (`maxCharacters`: a path
 * only the library opens, such as the root, may be longer).
 */
export function windowsPathProblem(file: string, platform: Platform, maxCharacters = WINDOWS_MAX_PATH_CHARACTERS): string | undefined {
  if (platform !== 'win32') return undefined;
  if (/^[\\/]{2}\.[\\/]/.test(file)) return `it is in the device namespace (\\\\.\\), which names devices, not files`;
  const longPath = /^[\\/]{2}\?[\\/]/.test(file);
  if (!longPath && file.length > maxCharacters) {
    return `it is ${file.length} characters long, past the 260 (MAX_PATH) that Windows programs without long-path support can open`;
  }
  const root = path.win32.parse(file).root;
  for (const name of file.slice(root.length).split(/[\\/]/)) {
    const problem = name === '' ? undefined : componentProblem(name);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
