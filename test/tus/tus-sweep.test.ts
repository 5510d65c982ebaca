// The root's own sweep (mgr.sweep(), the background sweep, the CLI's) removes tus uploads left
// past their expiry, as the store's deleteExpired() does: never one still unexpired, never one a
// live request is PATCHing, whichever process sweeps. A real @tus/server on a real port.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { manager, scratchDir } from '../helpers/roots.js';
import { createUpload, openTusRequest, patchHeaders, tusRequest, tusServers, untilExpired, uploadDirOf } from '../helpers/tus.js';
import { until } from '../helpers/wait.js';

const cli = path.join(import.meta.dirname, '../../dist/cli.js');
const serve = tusServers();

async function cliSweep(root: string): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'sweep', '--root', root, '--json']);
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe("the root's sweep and tus uploads", () => {
  it('mgr.sweep() removes an upload past its expiry and leaves an unexpired one; a dry run only counts', async () => {
    const mgr = manager();
    const short = await serve(mgr, { expirationMs: 1000 });
    const long = await serve(mgr, { expirationMs: 3_600_000 });
    const abandoned = await createUpload(short.url, 10);
    await tusRequest(abandoned, 'PATCH', patchHeaders(0, 4), Buffer.from('abcd'));
    const kept = await createUpload(long.url, 10);
    await untilExpired(uploadDirOf(mgr.root, abandoned));

    const dry = await mgr.sweep({ dryRun: true });
    expect(dry).toMatchObject({ tusUploadsRemoved: 1, heldTusUploadsSkipped: 0, foreign: [], errors: [] });
    expect(fs.existsSync(uploadDirOf(mgr.root, abandoned))).toBe(true);

    const report = await mgr.sweep();
    expect(report).toMatchObject({ tusUploadsRemoved: 1, heldTusUploadsSkipped: 0, foreign: [], errors: [] });
    expect(report.bytesFreed).toBeGreaterThanOrEqual(4);
    expect(fs.existsSync(uploadDirOf(mgr.root, abandoned))).toBe(false);
    expect(fs.readdirSync(uploadDirOf(mgr.root, kept)).sort()).toEqual(['data', 'info.json']);
    expect((await tusRequest(kept, 'HEAD', {})).status).toBe(200);
  });

  it('the CLI sweep and the background sweep remove an expired upload too', async () => {
    const mgr = manager();
    const { url } = await serve(mgr, { expirationMs: 1000 });
    await createUpload(url, 10);
    const second = await createUpload(url, 10);
    await untilExpired(uploadDirOf(mgr.root, second));
    expect(await cliSweep(mgr.root)).toMatchObject({ tusUploadsRemoved: 2, errors: [] });
    expect(fs.readdirSync(path.join(mgr.root, 'tus'))).toEqual([]);

    const third = await createUpload(url, 10);
    await untilExpired(uploadDirOf(mgr.root, third));
    manager({ root: mgr.root, sweepOnStart: true });
    await until(() => !fs.existsSync(uploadDirOf(mgr.root, third)), 30_000, 'the background sweep removed the upload');
  });

  it('an expired upload planted as a link to a directory outside the root: the sweep changes nothing there', async () => {
    const mgr = manager();
    const { url } = await serve(mgr, { expirationMs: 1000 });
    await createUpload(url, 10);
    const outside = scratchDir();
    fs.writeFileSync(path.join(outside, 'info.json'), JSON.stringify({ creationDate: new Date(0).toISOString(), expiresAt: 1 }));
    fs.writeFileSync(path.join(outside, 'data'), 'precious');
    fs.symlinkSync(outside, path.join(mgr.root, 'tus', 'upload_planted'));
    fs.mkdirSync(path.join(mgr.root, 'tus', 'not-an-upload'));
    const report = await mgr.sweep();
    expect(report).toMatchObject({ tusUploadsRemoved: 0, errors: [], foreign: [path.join(mgr.root, 'tus', 'not-an-upload')] });
    expect(fs.readdirSync(outside).sort()).toEqual(['data', 'info.json']);
    expect(fs.readFileSync(path.join(outside, 'data'), 'utf8')).toBe('precious');
  });

  it('an expired upload a live request is PATCHing keeps every byte through sweeps of this process and of the CLI', async () => {
    const mgr = manager();
    const dest = scratchDir();
    const data = randomBytes(4 * 1024 * 1024);
    const { url } = await serve(mgr, { expirationMs: 1000, onUploadFinish: (file) => file.keep(path.join(dest, 'kept.bin')) });
    const upload = await createUpload(url, data.length);
    const dir = uploadDirOf(mgr.root, upload);
    const { request, answer } = openTusRequest(upload, 'PATCH', patchHeaders(0, data.length));
    const piece = data.length / 4;
    request.write(data.subarray(0, piece));
    await until(() => fs.readdirSync(dir).some((name) => name.startsWith('held_')), 30_000, 'the PATCH holding the upload');
    await untilExpired(dir);

    const reports = [await mgr.sweep()];
    request.write(data.subarray(piece, 2 * piece));
    reports.push(await cliSweep(mgr.root) as never);
    request.write(data.subarray(2 * piece, 3 * piece));
    reports.push(await mgr.sweep());
    request.end(data.subarray(3 * piece));

    expect((await answer).status).toBe(204);
    for (const report of reports) expect(report).toMatchObject({ tusUploadsRemoved: 0, heldTusUploadsSkipped: 1, errors: [] });
    const kept = fs.readFileSync(path.join(dest, 'kept.bin'));
    expect(createHash('sha256').update(kept).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(fs.readdirSync(path.join(mgr.root, 'tus'))).toEqual([]);
  });
});
