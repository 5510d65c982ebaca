#!/usr/bin/env node
// A real S3 server for the store's tests: a single-node Ceph cluster (one mon, one OSD with
// bluestore on a sparse file, no mgr) and its RADOS Gateway on 127.0.0.1, run without systemd.
// docs/s3.md says why it is Ceph and not a fake.
//
//   node scripts/rgw.mjs install   apt-get install the Debian packages (needs root)
//   node scripts/rgw.mjs start     start (idempotent): a new cluster the first time, the same data after
//   node scripts/rgw.mjs stop      stop every daemon (the data stays for the next start)
//   node scripts/rgw.mjs status    print the state and whether each daemon runs; exit 1 when RGW does not answer
//   node scripts/rgw.mjs kill-rgw  kill -9 radosgw alone (fault tests); `start` brings it back
//   node scripts/rgw.mjs destroy   stop, then remove the data directory
//
// The data lives in $TEMPFILE_MANAGER_RGW_DIR (default: <os.tmpdir()>/tempfile-manager-rgw). `start`
// writes <dir>/state.json: the endpoint and the access and secret keys of a fixed test user (a
// throwaway cluster's, on 127.0.0.1 only); the tests read it ($TEMPFILE_MANAGER_S3_STATE names
// another). Ports: $TEMPFILE_MANAGER_RGW_PORT (default 17480) and $TEMPFILE_MANAGER_RGW_MON_PORT
// (default 13300). The gateway listens on $TEMPFILE_MANAGER_RGW_BIND (default 127.0.0.1: another
// address of this machine, such as a bridge's in a network namespace, for clients elsewhere);
// the monitor and the OSD stay on 127.0.0.1.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const DIR = path.resolve(process.env.TEMPFILE_MANAGER_RGW_DIR || path.join(os.tmpdir(), 'tempfile-manager-rgw'));
export const STATE = path.join(DIR, 'state.json');
const PORT = Number(process.env.TEMPFILE_MANAGER_RGW_PORT || 17480);
const MON_PORT = Number(process.env.TEMPFILE_MANAGER_RGW_MON_PORT || 13300);
const BIND = process.env.TEMPFILE_MANAGER_RGW_BIND || '127.0.0.1';
const CONF = path.join(DIR, 'ceph.conf');
const PIDS = path.join(DIR, 'pids.json');
const PACKAGES = ['ceph-mon', 'ceph-osd', 'radosgw', 'ceph-common'];
const COMMANDS = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'monmaptool', 'ceph', 'ceph-authtool'];
// The fixed test user: keys of a throwaway cluster listening on 127.0.0.1 only.
const USER = { uid: 'tempfile-manager-test', accessKeyId: 'TFMTESTACCESSKEY0001', secretAccessKey: 'tfm-test-secret-key-not-a-credential-0001' };

const say = (line) => console.log(`rgw: ${line}`);

function onPath(command) {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir, command), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function install() {
  const lacking = COMMANDS.filter((c) => !onPath(c));
  if (lacking.length === 0) return say(`installed (${COMMANDS.join(', ')} on the PATH)`);
  if (process.getuid?.() !== 0) {
    console.error(
      `rgw: install needs root (apt-get): ${lacking.join(', ')} missing. Run as root:\n` +
        `  apt-get update && apt-get install -y --no-install-recommends ${PACKAGES.join(' ')}\n` +
        'or: sudo node scripts/rgw.mjs install',
    );
    process.exit(2);
  }
  const started = Date.now();
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...PACKAGES], { stdio: 'inherit', env });
  say(`installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function requireInstalled() {
  const lacking = COMMANDS.filter((c) => !onPath(c));
  if (lacking.length === 0) return;
  console.error(`rgw: ${lacking.join(', ')} not on the PATH: run \`node scripts/rgw.mjs install\` as root (Debian: apt-get install ${PACKAGES.join(' ')})`);
  process.exit(2);
}

function conf(fsid) {
  return `[global]
fsid = ${fsid}
mon_host = v2:127.0.0.1:${MON_PORT}
mon_initial_members = a
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
ms_bind_msgr1 = false
ms_bind_msgr2 = true
public_addr = 127.0.0.1
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
run_dir = ${DIR}/run
admin_socket = ${DIR}/run/$name.asok
log_file = ${DIR}/log/$name.log
mon_data = ${DIR}/mon/$cluster-$id
osd_data = ${DIR}/osd/$cluster-$id
keyring = ${DIR}/keyring
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = 21474836480
osd_memory_target = 939524096

[client.rgw]
rgw_frontends = beast endpoint=${BIND}:${PORT} tcp_nodelay=1
rgw_data = ${DIR}/rgw
`;
}

function ceph(args, options = {}) {
  return execFileSync('ceph', ['-c', CONF, '--connect-timeout', '10', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

const COMMAND_OF = { mon: 'ceph-mon', osd: 'ceph-osd', rgw: 'radosgw' };

/**
 * Whether `pid` is this cluster's daemon `name`, as /proc says. PID 1 reaps slowly here, so a
 * zombie (or a dead pid) is not running. And pids wrap: a pid that an earlier run wrote in
 * pids.json may be another process's now, which must be neither taken for the daemon nor killed.
 */
function running(pid, name) {
  if (!pid) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return path.basename(argv[0]) === COMMAND_OF[name] && argv.includes(CONF);
  } catch {
    return false;
  }
}

function readPids() {
  try {
    return JSON.parse(fs.readFileSync(PIDS, 'utf8'));
  } catch {
    return {};
  }
}

function writePids(pids) {
  fs.writeFileSync(PIDS, `${JSON.stringify(pids, null, 2)}\n`);
}

function daemon(name, command, args) {
  const out = fs.openSync(path.join(DIR, 'log', `${name}.out`), 'a');
  const child = spawn(command, ['-f', '-c', CONF, ...args], { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  fs.closeSync(out);
  const pids = readPids();
  pids[name] = child.pid;
  writePids(pids);
  return child.pid;
}

async function until(what, timeoutMs, probe) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`rgw: ${what} did not happen within ${timeoutMs / 1000} s (logs in ${DIR}/log)`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

function answers(timeoutMs = 2000) {
  return new Promise((resolve) => {
    const req = http.get({ host: BIND, port: PORT, path: '/', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

function osdUp() {
  return /osd\.0 up/.test(ceph(['osd', 'dump']));
}

async function start() {
  requireInstalled();
  const started = Date.now();
  const pids = readPids();
  if (running(pids.mon, 'mon') && running(pids.osd, 'osd') && running(pids.rgw, 'rgw') && (await answers())) {
    writeState();
    return say(`already running: ${endpoint()} (state in ${STATE})`);
  }
  for (const sub of ['run', 'log', 'mon', 'osd', 'rgw']) fs.mkdirSync(path.join(DIR, sub), { recursive: true, mode: 0o700 });
  const fresh = !fs.existsSync(path.join(DIR, 'mon', 'ceph-a', 'store.db'));
  if (fresh) {
    const fsid = crypto.randomUUID();
    fs.writeFileSync(CONF, conf(fsid));
    execFileSync('ceph-authtool', ['--create-keyring', path.join(DIR, 'keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'], { stdio: 'ignore' });
    execFileSync('monmaptool', ['--create', '--clobber', '--addv', 'a', `[v2:127.0.0.1:${MON_PORT}]`, '--fsid', fsid, path.join(DIR, 'monmap')], { stdio: 'ignore' });
    execFileSync('ceph-mon', ['-c', CONF, '--mkfs', '-i', 'a', '--monmap', path.join(DIR, 'monmap')], { stdio: 'inherit' });
    say('new cluster made');
  } else {
    // The gateway's address and port as given now, on a cluster made with others.
    fs.writeFileSync(CONF, fs.readFileSync(CONF, 'utf8').replace(/^rgw_frontends = .*$/m, `rgw_frontends = beast endpoint=${BIND}:${PORT} tcp_nodelay=1`));
  }
  if (!running(pids.mon, 'mon')) daemon('mon', 'ceph-mon', ['-i', 'a']);
  await until('the monitor answering', 60_000, () => ceph(['mon', 'stat']).includes('1 mons'));
  const osdDir = path.join(DIR, 'osd', 'ceph-0');
  if (!fs.existsSync(path.join(osdDir, 'whoami'))) {
    const uuid = crypto.randomUUID();
    const id = ceph(['osd', 'new', uuid]).trim();
    if (id !== '0') throw new Error(`rgw: expected osd 0, got ${id}`);
    fs.mkdirSync(osdDir, { recursive: true, mode: 0o700 });
    // bluestore logs the label it cannot read yet on stderr: expected on a new OSD, kept in the log.
    execFileSync('ceph-osd', ['-c', CONF, '-i', '0', '--mkfs', '--osd-uuid', uuid], { stdio: ['ignore', 'ignore', fs.openSync(path.join(DIR, 'log', 'osd-mkfs.out'), 'a')] });
  }
  if (!running(readPids().osd, 'osd')) daemon('osd', 'ceph-osd', ['-i', '0']);
  await until('osd.0 up', 120_000, osdUp);
  if (!running(readPids().rgw, 'rgw')) daemon('rgw', 'radosgw', ['-n', 'client.rgw']);
  await until(`radosgw answering on ${endpoint()}`, 120_000, () => answers());
  ensureUser();
  writeState();
  say(`running: ${endpoint()} in ${((Date.now() - started) / 1000).toFixed(1)} s (state in ${STATE})`);
}

function ensureUser() {
  const admin = (args) => execFileSync('radosgw-admin', ['-c', CONF, '-n', 'client.rgw', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    admin(['user', 'info', `--uid=${USER.uid}`]);
  } catch {
    admin(['user', 'create', `--uid=${USER.uid}`, '--display-name=tempfile-manager tests', `--access-key=${USER.accessKeyId}`, `--secret=${USER.secretAccessKey}`]);
  }
}

function endpoint() {
  return `http://${BIND}:${PORT}`;
}

function writeState() {
  const state = { endpoint: endpoint(), region: 'us-east-1', accessKeyId: USER.accessKeyId, secretAccessKey: USER.secretAccessKey, dir: DIR, pids: readPids() };
  fs.writeFileSync(STATE, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
}

async function stopDaemon(name, signal = 'SIGTERM') {
  const pid = readPids()[name];
  if (!running(pid, name)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + 15_000;
  while (running(pid, name) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  if (running(pid, name)) process.kill(pid, 'SIGKILL');
  while (running(pid, name)) await new Promise((resolve) => setTimeout(resolve, 50));
}

async function stop() {
  for (const name of ['rgw', 'osd', 'mon']) await stopDaemon(name);
  say('stopped');
}

async function status() {
  const pids = readPids();
  for (const name of ['mon', 'osd', 'rgw']) say(`${name}: ${running(pids[name], name) ? `running (pid ${pids[name]})` : 'not running'}`);
  const ok = await answers();
  say(`${endpoint()}: ${ok ? 'answers' : 'does not answer'}; state ${fs.existsSync(STATE) ? STATE : 'not written'}`);
  process.exit(ok ? 0 : 1);
}

/** The last lines of each daemon's logs, so that a start that failed in CI says why there. */
function printLogTails(lines = 20) {
  let names = [];
  try {
    names = fs.readdirSync(path.join(DIR, 'log')).sort();
  } catch {
    return;
  }
  for (const name of names) {
    const text = fs.readFileSync(path.join(DIR, 'log', name), 'utf8').trimEnd();
    if (text === '') continue;
    console.error(`rgw: the last ${lines} lines of ${path.join(DIR, 'log', name)}:`);
    console.error(text.split('\n').slice(-lines).join('\n'));
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const command = process.argv[2];
  const commands = {
    install,
    start,
    stop,
    status,
    'kill-rgw': () => stopDaemon('rgw', 'SIGKILL').then(() => say('radosgw killed')),
    destroy: async () => {
      await stop();
      fs.rmSync(DIR, { recursive: true, force: true });
      say(`removed ${DIR}`);
    },
  };
  if (!(command in commands)) {
    console.error('usage: node scripts/rgw.mjs install|start|stop|status|kill-rgw|destroy');
    process.exit(2);
  }
  Promise.resolve(commands[command]()).catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    if (command === 'start') printLogTails();
    process.exit(1);
  });
}
