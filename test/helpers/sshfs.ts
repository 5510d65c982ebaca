import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { whereIs, type Needs } from './privileges.js';

/** A directory exported by a local sshd and mounted over sshfs twice: two hosts' views of one share. */
export interface SharedOverSshfs {
  /** The exported directory, on the local disk. */
  readonly exported: string;
  /** Its two mounts, each with its own SSH connection and its own sftp-server. */
  readonly mounts: readonly [string, string];
  /** Unmounts both and stops sshd. */
  close(): Promise<void>;
}

// The options of the multi-host bed (test/hosts/agent.mjs): no cache, so that each mount sees
// the other's renames at once, as two hosts would.
const MOUNT_OPTIONS = [
  'StrictHostKeyChecking=no',
  'UserKnownHostsFile=/dev/null',
  'LogLevel=ERROR',
  'dir_cache=no',
  'attr_timeout=0',
  'entry_timeout=0',
  'negative_timeout=0',
];

/** What {@link shareOverSshfs} needs: root, and the Debian packages openssh-server and sshfs (fuse3). */
export const SSHFS: Needs = {
  root: 'running sshd and mounting over FUSE',
  command: ['sshd', 'sshfs', 'ssh-keygen', 'fusermount3'],
  package: 'openssh-server sshfs',
};

/**
 * Starts an sshd on 127.0.0.1 (root, key login, OpenSSH's own sftp-server) and mounts one fresh
 * directory twice. Needs root and the Debian packages openssh-server and sshfs (CI installs them).
 */
export async function shareOverSshfs(): Promise<SharedOverSshfs> {
  // sshd re-executes itself, so it must be started by its absolute path.
  const sshdPath = whereIs('sshd');
  if (sshdPath === undefined) throw new Error('sshd is not on the PATH: install the Debian package openssh-server');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-sshfs-'));
  const key = path.join(work, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(work, 'host_key')]);
  fs.copyFileSync(`${key}.pub`, path.join(work, 'authorized_keys'));
  const exported = path.join(work, 'export');
  fs.mkdirSync(exported, { mode: 0o700 });
  const port = await freePort();
  const config = [
    `ListenAddress 127.0.0.1:${port}`,
    `HostKey ${path.join(work, 'host_key')}`,
    `AuthorizedKeysFile ${path.join(work, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'PidFile none',
    'Subsystem sftp internal-sftp',
  ];
  fs.writeFileSync(path.join(work, 'sshd_config'), config.join('\n'));
  fs.mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation directory
  const sshd = spawn(sshdPath, ['-D', '-e', '-f', path.join(work, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  await listening(sshd);
  const mounts: string[] = [];
  const close = async () => {
    for (const mount of mounts) execFileSync('fusermount3', ['-u', '-z', mount], { stdio: 'pipe' });
    sshd.kill();
    fs.rmSync(work, { recursive: true, force: true });
  };
  try {
    for (const name of ['mnt-1', 'mnt-2']) {
      const mount = path.join(work, name);
      fs.mkdirSync(mount);
      const options = [`port=${port}`, `IdentityFile=${key}`, ...MOUNT_OPTIONS].join(',');
      execFileSync('sshfs', [`root@127.0.0.1:${exported}`, mount, '-o', options], { stdio: 'pipe' });
      mounts.push(mount);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { exported, mounts: [mounts[0]!, mounts[1]!], close };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function listening(sshd: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let said = '';
    const timer = setTimeout(() => reject(new Error(`sshd did not start: ${said}`)), 10_000);
    sshd.stderr!.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (!/Server listening/.test(said)) return;
      clearTimeout(timer);
      resolve();
    });
    sshd.once('exit', (code) => reject(new Error(`sshd exited (${code}): ${said}`)));
  });
}
