// What a Windows user is told when a file is held open elsewhere: EPERM, EBUSY and EACCES on win32
// are most often a sharing violation (another handle, an editor, Explorer's preview, an antivirus
// or the indexer), never a mode to chmod. The platform is passed in, so Linux checks win32's words.
import { describe, expect, it } from 'vitest';
import { FileSystemError, RemoveError, toFileSystemError } from '../../src/base/errors.js';
import { toDestinationError } from '../../src/keep/destination-error.js';
import { systemError } from '../helpers/faulty-fs.js';

const WINDOWS_DEST = 'C:\\Users\\ana\\Documents\\report.pdf';

describe('file-system advice by platform', () => {
  it.each(['EPERM', 'EBUSY', 'EACCES'])('%s on win32: close the other handle, exclude the root from the antivirus; no chmod', (code) => {
    for (const error of [
      toFileSystemError('keep the file at', WINDOWS_DEST, systemError(code, 'rename', WINDOWS_DEST), 'win32'),
      toDestinationError('keep the file at', WINDOWS_DEST, systemError(code, 'rename', WINDOWS_DEST), 'win32'),
    ]) {
      expect(error).toBeInstanceOf(FileSystemError);
      expect(error.code).toBe('ERR_TEMPFILE_IO');
      expect(error.message).toContain(WINDOWS_DEST);
      expect(error.message).toContain(code);
      expect(error.message).toMatch(/open/);
      expect(error.message).toMatch(/editor/);
      expect(error.message).toMatch(/Explorer's preview/);
      expect(error.message).toMatch(/antivirus/);
      expect(error.message).toContain('docs/windows-macos.md');
      expect(error.message).not.toMatch(/owner and mode|chmod/);
    }
  });

  it.each(['linux', 'darwin'] as const)('EPERM on %s still says to check the owner and mode', (platform) => {
    const error = toFileSystemError('keep the file at', '/srv/report.pdf', systemError('EPERM', 'rename'), platform);
    expect(error.message).toMatch(/owner and mode of \/srv\/report.pdf/);
    expect(error.message).not.toMatch(/antivirus/);
  });

  it('the host platform is the default', () => {
    const error = toFileSystemError('remove', '/srv/x', systemError('EPERM', 'unlink'));
    expect(error.message).toMatch(process.platform === 'win32' ? /antivirus/ : /owner and mode/);
  });
});

describe('a removal that failed on a file held open', () => {
  it('on win32 says to close what holds it, not to check permissions; the sweep removes it later', () => {
    const held = toFileSystemError('remove', 'C:\\Temp\\root\\session_x\\f', systemError('EBUSY', 'unlink'), 'win32');
    const error = new RemoveError([held], 'win32');
    expect(error.code).toBe('ERR_TEMPFILE_REMOVE_FAILED');
    expect(error.message).toContain('EBUSY');
    expect(error.message).toMatch(/close what holds/);
    expect(error.message).toMatch(/sweep/);
    expect(error.message).not.toMatch(/Check the permissions/);
  });

  it('on linux still says to check the permissions', () => {
    const denied = toFileSystemError('remove', '/srv/root/f', systemError('EACCES', 'unlink'), 'linux');
    expect(new RemoveError([denied], 'linux').message).toMatch(/Check the permissions under the root/);
  });
});
