// A tour of the scoped API: files, directories and scopes that clean up after themselves,
// on return and on throw, and hostile names refused before anything touches the disk.
// Run it with `npm run demo`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TempFileManager, TempFileError } from '../dist/index.js';

const root = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-demo-')), 'root');
const exists = (p) => (fs.existsSync(p) ? 'exists' : 'gone');
const show = (label, value) => console.log(`  ${label.padEnd(34)} ${value}`);

const mgr = new TempFileManager({ root });
console.log(`root: ${mgr.root}\n`);

console.log('1. A scoped file, removed when its block ends');
let seen;
{
  const file = mgr.file('.txt');
  try {
    seen = file.path;
    await pipeline(['hello, ', 'temp file'], file.createWriteStream());
    show('path', path.relative(root, file.path));
    show('mode', (fs.statSync(file.path).mode & 0o777).toString(8));
    show('content', fs.readFileSync(file.path, 'utf8'));
  } finally {
    await file[Symbol.asyncDispose](); // what `await using file = mgr.file('.txt')` does for you
  }
}
show('after the block', exists(seen));

console.log('\n2. A scope groups files and directories; a throw still cleans up');
const members = [];
try {
  const scope = mgr.scope();
  try {
    members.push(scope.file('.pdf').path, scope.dir().path, scope.scope().file('.png').path);
    fs.writeFileSync(path.join(members[1], 'frame-001.png'), 'pixels');
    show('members on disk', members.map(exists).join(', '));
    throw new Error('render failed');
  } finally {
    await scope[Symbol.asyncDispose]();
  }
} catch (err) {
  show('caught', err.message);
}
show('members after the throw', members.map(exists).join(', '));

console.log('\n3. Hostile names are refused before anything touches the disk');
for (const bad of ['../../etc/passwd', 'a\u0000b', '\u2024\u2024', ['..'], { toString: () => '/etc' }]) {
  try {
    mgr.file(bad);
    show(JSON.stringify(String(bad)), 'ACCEPTED (bug!)');
  } catch (err) {
    show(JSON.stringify(String(bad)), err instanceof TempFileError ? err.code : err);
  }
}

console.log('\n4. keep() moves a file out for good');
const report = mgr.file('.csv');
fs.writeFileSync(report.path, 'id,total\n1,42\n');
const kept = await report.keep(path.join(path.dirname(root), 'report.csv'));
show('kept at', path.relative(path.dirname(root), kept));
show('handle disposed', String(report.disposed));

console.log('\n5. close() removes the session and its lock');
mgr.file('.left-behind');
show('root before close', fs.readdirSync(root).length + ' entries (session + lock)');
await mgr.close();
show('root after close', fs.readdirSync(root).length + ' entries');

fs.rmSync(path.dirname(root), { recursive: true, force: true });
console.log('\ndone: nothing left on disk');
