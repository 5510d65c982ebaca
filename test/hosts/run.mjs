// The multi-host test bed (root only): a storage host exporting the shared root over sshfs, a
// Redis host, an API host and two worker hosts, each in its own network, mount, UTS and PID
// namespaces, joined by veths on a bridge. One worker host's node processes run ten minutes
// ahead (libfaketime). The API hands off uploads through BullMQ; the workers claim and consume
// them while one worker is SIGKILLed mid-claim, one is SIGSTOPped past the stale time and woken,
// and one host is cut off the network mid-claim; sweepers run on every host throughout. Then:
// every upload consumed exactly once (the workers' own witness logs), every live process's
// canary file intact, nothing left under the root.
//
// `--store s3`: the same through an object store, with no shared disk. An RGW host (its own
// single-node Ceph, started by scripts/rgw.mjs with its own data directory, the gateway on its
// bridge address) replaces the storage host; the API host and each worker host has a root of its
// own (a tmpfs mounted in its own mount namespace: no other host sees it). The API hands off with
// `file.handoff({ ttlMs, store })`, the workers claim with `mgr.withClaim` from a manager given
// `stores: [store]`, under the same faults. At the end the tickets' expiry is passed (the final
// sweeps run with their clocks moved past it, libfaketime, rather than the bed waiting out the
// ttl), and the bucket, listed, must hold nothing under the prefix, nor any root a file.
//
// `--store azure`: the same through Azure Blob Storage: an Azurite host (Microsoft's emulator,
// scripts/azurite.mjs, listening on its bridge address) in place of the RGW host, the container
// `tfm-hosts`; at the end nothing may be left under the prefix, committed or not.
//   node test/hosts/run.mjs [--store sshfs|s3|azure] [--uploads 300] [--skew c|none] [--cut b] [--mutation NAME] [--keep]
// Exit 0 when every check holds; with --mutation, exit 0 when the bed caught the mutation.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { applyMutation, MUTATIONS } from './mutations.mjs';
import { Network } from './net.mjs';

const { values: args } = parseArgs({
  options: {
    store: { type: 'string', default: 'sshfs' },
    uploads: { type: 'string', default: '300' },
    skew: { type: 'string', default: 'c' },
    cut: { type: 'string', default: 'b' },
    mutation: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
if (process.getuid?.() !== 0) {
  console.error('test/hosts/run.mjs makes network namespaces and mounts: run it as root.');
  process.exit(2);
}
if (args.store !== 'sshfs' && args.store !== 's3' && args.store !== 'azure') {
  console.error(`--store must be sshfs, s3 or azure, got ${args.store}`);
  process.exit(2);
}
if (args.mutation && !MUTATIONS[args.mutation]) {
  console.error(`unknown mutation ${args.mutation}; known: ${Object.keys(MUTATIONS).join(', ')}`);
  process.exit(2);
}

// S3: through an object store, the RGW host's or (AZURE) the Azurite host's; no shared disk.
const AZURE = args.store === 'azure';
const S3 = args.store === 's3' || AZURE;
const UPLOADS = Number(args.uploads);
const BURST = Math.min(100, Math.floor(UPLOADS / 3));
// Above the stalls a loaded two-core CI machine shows on sshfs (2000, the least allowed, is not).
const STALE_MS = 5000;
// Through the store a consume is over soon after its work: a longer job there leaves the cut-off
// (which follows a claim on host B) time to land mid-job.
const WORK_MS = S3 ? 300 : 100;
const SCENARIO_TIMEOUT_MS = 240_000;
// No upload consumed for this long, with some still waiting, is a stall: the check fails then
// rather than at the scenario's timeout (four stale periods cover a takeover after a cut-off).
const STALL_MS = 8 * STALE_MS;
// The object-store mode's tickets: their ttl is above the skewed host's ten minutes plus the run
// (a claimer or a sweeper whose clock is ahead sees a ticket expire that much sooner), and the
// final sweeps run with their clocks this far ahead: past every ticket's expiry.
const TTL_MS = 20 * 60_000;
const PAST_EXPIRY = '+90m';
const BUCKET = 'tfm-hosts';
const FAKETIME_LIB = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1'].find((p) => fs.existsSync(p));
const REPO = path.resolve(import.meta.dirname, '../..');
const HERE = import.meta.dirname;
const started = Date.now();
const log = (message) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-hosts-'));
const net = new Network(`tfm${process.pid}`);
const agents = new Map(); // host -> Agent
const failures = [];
const violations = []; // the failures that are broken invariants, not a bed that could not run
const fail = (message) => {
  failures.push(message);
  log(`FAIL ${message}`);
};
const violated = (message) => {
  violations.push(message);
  fail(message);
};

let tornDown = false;
function teardown() {
  if (tornDown) return;
  tornDown = true;
  for (const agent of agents.values()) agent.kill();
  net.destroy();
  if (!args.keep) fs.rmSync(work, { recursive: true, force: true });
}
process.on('exit', teardown);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    teardown();
    process.exit(130);
  });
}

/** A host: its agent process (PID 1 of the host), its events, and orders to it. */
class Agent {
  constructor(host, { address, mounts, tmpfs, skewed }) {
    this.host = host;
    this.address = address;
    this.skewed = skewed;
    this.listeners = new Set();
    this.results = new Map();
    this.nextId = 0;
    const config = { hostname: `host-${host}`, mounts, tmpfs };
    // --kill-child: if the runner dies, unshare dies and takes the host's PID 1, then the kernel
    // kills everything else in the host.
    this.child = spawn(
      'ip',
      ['netns', 'exec', net.nsOf(host), 'unshare', '--mount', '--uts', '--pid', '--fork', '--mount-proc', '--kill-child',
        process.execPath, path.join(HERE, 'agent.mjs'), JSON.stringify(config)],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    this.exited = new Promise((resolve) => this.child.on('exit', resolve));
    createInterface({ input: this.child.stdout }).on('line', (line) => this.receive(line));
  }

  receive(line) {
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      return log(`${this.host}: ${line}`);
    }
    if (event.ev === 'result') return this.results.get(event.id)?.(event);
    for (const listener of this.listeners) listener(event, this);
  }

  ready() {
    return this.waitFor((e) => e.ev === 'ready', 30_000, `host ${this.host} did not come up`);
  }

  waitFor(predicate, timeoutMs, message) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(message));
      }, timeoutMs);
      const listener = (event) => {
        if (!predicate(event)) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(event);
      };
      this.listeners.add(listener);
    });
  }

  send(order) {
    this.child.stdin.write(`${JSON.stringify(order)}\n`);
  }

  /** Starts a host program (node programs get this host's id, and its clock). */
  spawn(name, argv, env = {}) {
    this.send({ cmd: 'spawn', name, argv, env });
  }

  node(name, script, env = {}) {
    this.spawn(name, [process.execPath, path.join(HERE, script)], { ...this.nodeEnv(), ...env });
  }

  nodeEnv() {
    return {
      TEMPFILE_MANAGER_HOST_ID: `host-${this.host}`,
      TFM_LIB: libraryPath,
      TFM_ROOT: rootOf(this.host),
      TFM_STALE_MS: String(STALE_MS),
      TFM_REDIS_URL: `redis://${addresses.redis}:6379`,
      ...(S3 && {
        ...(AZURE ? { TFM_AZURE: JSON.stringify(gateway) } : { TFM_S3: JSON.stringify(gateway) }),
        TFM_BUCKET: BUCKET,
        TFM_TTL_MS: String(TTL_MS),
        TFM_CLAIM_PATIENCE_MS: String(2 * STALE_MS + 2000),
        TFM_SWEEP_EVERY_MS: '1000', // three sweepers listing the bucket: a load on the gateway the machine shares
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', // Node 20: the SDK's notice, on every process
      }),
      ...(this.skewed && { LD_PRELOAD: FAKETIME_LIB, FAKETIME: '+10m' }),
    };
  }

  signal(name, signal) {
    this.send({ cmd: 'signal', name, signal });
  }

  /** Runs a command in the host and resolves with its exit code and output. */
  run(argv, env = {}) {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.results.set(id, resolve);
      this.send({ cmd: 'run', id, argv, env });
    });
  }

  kill() {
    this.child.kill('SIGKILL');
  }
}

const exited = new Set(); // host/program
// In the object-store mode every host's root has the same path, on a tmpfs of its own.
const rootOf = (host) => (S3 ? path.join(work, 'local', 'root') : path.join(work, `mnt-${host}`, 'root'));
const addresses = {};
let gateway; // the object-store mode's endpoint and keys (scripts/rgw.mjs's state.json)
const libraryPath = args.mutation ? applyMutation(args.mutation, path.join(REPO, 'dist'), path.join(work, 'mutated')) : path.join(REPO, 'dist/index.js');

// ---------------------------------------------------------------- the hosts
async function bringUp() {
  return AZURE ? bringUpAzure() : S3 ? bringUpS3() : bringUpSshfs();
}

async function bringUpSshfs() {
  const key = path.join(work, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(work, 'host_key')]);
  fs.copyFileSync(`${key}.pub`, path.join(work, 'authorized_keys'));
  const exported = path.join(work, 'export');
  fs.mkdirSync(exported, { mode: 0o700 });
  net.create();
  addresses.storage = net.addHost('storage', 1);
  addresses.redis = net.addHost('redis', 2);
  for (const [host, octet] of [['a', 10], ['b', 11], ['c', 12]]) addresses[host] = net.addHost(host, octet);
  const sshdConfig = (port, sftp) => [
      `ListenAddress ${addresses.storage}:${port}`,
      `HostKey ${path.join(work, 'host_key')}`,
      `AuthorizedKeysFile ${path.join(work, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PidFile none',
      'MaxStartups 100',
      `Subsystem sftp ${sftp}`,
    ].join('\n');
  fs.writeFileSync(path.join(work, 'sshd_config'), sshdConfig(22, 'internal-sftp'));
  // A second server that refuses posix-rename@openssh.com: the capability probe must say so.
  fs.writeFileSync(path.join(work, 'sshd_weak_config'), sshdConfig(2222, 'internal-sftp -P posix-rename'));
  fs.mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation directory

  const storage = addAgent('storage', {});
  const redis = addAgent('redis', {});
  await Promise.all([storage.ready(), redis.ready()]);
  storage.spawn('sshd', ['/usr/sbin/sshd', '-D', '-e', '-f', path.join(work, 'sshd_config')]);
  await storage.waitFor((e) => e.name === 'sshd' && /Server listening/.test(e.line), 10_000, 'sshd did not start');
  storage.spawn('sshd-weak', ['/usr/sbin/sshd', '-D', '-e', '-f', path.join(work, 'sshd_weak_config')]);
  await storage.waitFor((e) => e.name === 'sshd-weak' && /Server listening/.test(e.line), 10_000, 'the second sshd did not start');
  redis.spawn('redis', ['redis-server', '--bind', addresses.redis, '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--dir', work]);
  await redis.waitFor((e) => e.name === 'redis' && /Ready to accept/.test(e.line), 10_000, 'redis-server did not start');

  for (const host of ['a', 'b', 'c']) {
    const mountpoint = path.join(work, `mnt-${host}`);
    fs.mkdirSync(mountpoint);
    const mounts = [{ remote: `root@${addresses.storage}:${exported}`, mountpoint, key, port: 22 }];
    if (host === 'a') {
      fs.mkdirSync(path.join(work, 'mnt-weak'));
      mounts.push({ remote: `root@${addresses.storage}:${exported}`, mountpoint: path.join(work, 'mnt-weak'), key, port: 2222 });
    }
    addAgent(host, { mounts, skewed: args.skew === host });
  }
  const hellos = await Promise.all(['a', 'b', 'c'].map((h) => agents.get(h).ready()));
  log(`hosts up: ${hellos.map((e) => e.hostname).join(', ')}; storage ${addresses.storage} (sshd), redis ${addresses.redis}`);
  const skewed = agents.get(args.skew);
  if (skewed) {
    const { out } = await skewed.run([process.execPath, '-e', 'console.log(Date.now())'], skewed.nodeEnv());
    log(`host ${args.skew}'s node clock is ${((Number(out) - Date.now()) / 60_000).toFixed(1)} min ahead`);
  }
}

// The object-store mode: an RGW host, a Redis host, and hosts A, B and C each with a disk of its own.
async function bringUpS3() {
  net.create();
  addresses.rgw = net.addHost('rgw', 3);
  addresses.redis = net.addHost('redis', 2);
  for (const [host, octet] of [['a', 10], ['b', 11], ['c', 12]]) addresses[host] = net.addHost(host, octet);
  const rgw = addAgent('rgw', {});
  const redis = addAgent('redis', {});
  await Promise.all([rgw.ready(), redis.ready()]);
  const redisReady = redis.waitFor((e) => e.name === 'redis' && /Ready to accept/.test(e.line), 60_000, 'redis-server did not start');
  redis.spawn('redis', ['redis-server', '--bind', addresses.redis, '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--dir', work]);
  // The gateway's own cluster, its data under the work directory; the monitor and the OSD on the
  // RGW host's loopback (a namespace of its own: no clash with a gateway of this machine's), the
  // gateway on the bridge.
  const dataDir = path.join(work, 'rgw');
  const rgwStarted = Date.now();
  const { code, out } = await rgw.run([process.execPath, path.join(REPO, 'scripts/rgw.mjs'), 'start'], {
    TEMPFILE_MANAGER_RGW_DIR: dataDir,
    TEMPFILE_MANAGER_RGW_BIND: addresses.rgw,
  });
  if (code !== 0) throw new Error(`scripts/rgw.mjs start on the RGW host failed (${code}): ${out.trim()}`);
  figures.rgwStartMs = Date.now() - rgwStarted;
  gateway = JSON.parse(fs.readFileSync(path.join(dataDir, 'state.json'), 'utf8'));
  log(`RGW host up: ${gateway.endpoint} in ${(figures.rgwStartMs / 1000).toFixed(1)} s (a new single-node cluster)`);
  await redisReady;

  fs.mkdirSync(path.join(work, 'local'));
  for (const host of ['a', 'b', 'c']) addAgent(host, { tmpfs: [path.join(work, 'local')], skewed: args.skew === host });
  const hellos = await Promise.all(['a', 'b', 'c'].map((h) => agents.get(h).ready()));
  log(`hosts up: ${hellos.map((e) => e.hostname).join(', ')}, each with its own root; rgw ${addresses.rgw}, redis ${addresses.redis}`);
  const a = agents.get('a');
  const made = await a.run([process.execPath, path.join(HERE, 'bucket.mjs'), 'create'], a.nodeEnv());
  if (made.code !== 0) throw new Error(`the bucket could not be made: ${made.out.trim()}`);
  const skewed = agents.get(args.skew);
  if (skewed) {
    const { out: now } = await skewed.run([process.execPath, '-e', 'console.log(Date.now())'], skewed.nodeEnv());
    log(`host ${args.skew}'s node clock is ${((Number(now) - Date.now()) / 60_000).toFixed(1)} min ahead`);
  }
}

// The Azure mode: an Azurite host, a Redis host, and hosts A, B and C each with a disk of its own.
async function bringUpAzure() {
  const azurite = await import('../../scripts/azurite.mjs');
  azurite.install();
  net.create();
  addresses.rgw = net.addHost('rgw', 3); // the store's host, by the name the checks use
  addresses.redis = net.addHost('redis', 2);
  for (const [host, octet] of [['a', 10], ['b', 11], ['c', 12]]) addresses[host] = net.addHost(host, octet);
  const store = addAgent('rgw', {});
  const redis = addAgent('redis', {});
  await Promise.all([store.ready(), redis.ready()]);
  const redisReady = redis.waitFor((e) => e.name === 'redis' && /Ready to accept/.test(e.line), 60_000, 'redis-server did not start');
  redis.spawn('redis', ['redis-server', '--bind', addresses.redis, '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--dir', work]);
  const started = Date.now();
  const listening = store.waitFor((e) => e.name === 'azurite' && /listens on/.test(e.line), 120_000, 'Azurite did not start');
  const location = path.join(work, 'azurite');
  fs.mkdirSync(location);
  store.spawn('azurite', [azurite.nodeForAzurite(), azurite.MAIN, '--blobHost', addresses.rgw, '--blobPort', '10000', '--location', location, '--silent', '--skipApiVersionCheck', '--disableTelemetry', '--loose']);
  await listening;
  figures.rgwStartMs = Date.now() - started;
  gateway = { endpoint: `http://${addresses.rgw}:10000/${azurite.ACCOUNT}`, account: azurite.ACCOUNT, key: azurite.KEY };
  log(`Azurite host up: ${gateway.endpoint} in ${(figures.rgwStartMs / 1000).toFixed(1)} s`);
  await redisReady;

  fs.mkdirSync(path.join(work, 'local'));
  for (const host of ['a', 'b', 'c']) addAgent(host, { tmpfs: [path.join(work, 'local')], skewed: args.skew === host });
  const hellos = await Promise.all(['a', 'b', 'c'].map((h) => agents.get(h).ready()));
  log(`hosts up: ${hellos.map((e) => e.hostname).join(', ')}, each with its own root; azurite ${addresses.rgw}, redis ${addresses.redis}`);
  const a = agents.get('a');
  const made = await a.run([process.execPath, path.join(HERE, 'bucket.mjs'), 'create'], a.nodeEnv());
  if (made.code !== 0) throw new Error(`the container could not be made: ${made.out.trim()}`);
  const skewed = agents.get(args.skew);
  if (skewed) {
    const { out: now } = await skewed.run([process.execPath, '-e', 'console.log(Date.now())'], skewed.nodeEnv());
    log(`host ${args.skew}'s node clock is ${((Number(now) - Date.now()) / 60_000).toFixed(1)} min ahead`);
  }
}

function addAgent(host, options) {
  const agent = new Agent(host, { address: addresses[host], ...options });
  agents.set(host, agent);
  agent.listeners.add((event, a) => {
    if (event.ev === 'line' && !event.line.startsWith('{')) log(`${a.host}/${event.name}: ${event.line}`);
    if (event.ev !== 'exit') return;
    exited.add(`${a.host}/${event.name}`);
    log(`${a.host}/${event.name} exited (${event.signal ?? event.code})`);
  });
  return agent;
}

// ---------------------------------------------------------------- the capability probe
// On each host's sshfs mount every primitive must be found; on host a's second mount, whose
// server refuses posix-rename, the manager must refuse the root with UnsupportedFileSystemError:
// sshfs falls back to the plain SFTP rename, which moves onto a free name but never replaces.
async function probeEveryHost() {
  if (S3) return probeStore();
  for (const host of ['a', 'b', 'c']) {
    const agent = agents.get(host);
    const { code, out } = await agent.run([process.execPath, path.join(HERE, 'probe.mjs')], agent.nodeEnv());
    if (code !== 0) violated(`capability probe on host ${host}: ${out.trim()}`);
    else log(`probe on host ${host}: ${out.trim()}`);
  }
  const a = agents.get('a');
  const weakRoot = path.join(work, 'mnt-weak', 'weak-root');
  const { code, out } = await a.run([process.execPath, path.join(HERE, 'probe.mjs'), '--expect', 'rename-replace'], { ...a.nodeEnv(), TFM_ROOT: weakRoot });
  if (code !== 0) violated(`capability probe on the mount without posix-rename: ${out.trim()}`);
  else log(`probe on host a's mount without posix-rename: ${out.trim()}`);
}

// In the object-store mode: a handoff through the store and its claim from each host (host C's
// requests signed by a clock ten minutes ahead, which the gateway takes within its 15 minutes).
async function probeStore() {
  for (const host of ['a', 'b', 'c']) {
    const agent = agents.get(host);
    const { code, out } = await agent.run([process.execPath, path.join(HERE, 'probe.mjs')], agent.nodeEnv());
    if (code !== 0) violated(`store probe on host ${host}: ${out.trim()}`);
    else log(`probe on host ${host}: ${out.trim()}`);
  }
}

// ---------------------------------------------------------------- the scenario
/** Host programs' JSON events, with the host and program they came from. */
const events = [];
const noisy = new Map(); // host/program/event -> how many seen
function program(event, agent) {
  if (event.ev !== 'line' || !event.line.startsWith('{')) return;
  const parsed = JSON.parse(event.line);
  events.push({ ...parsed, host: agent.host, name: event.name, t: Date.now() });
  if (['upload-failed', 'bad-digest', 'sweep-error', 'claim-failed', 'work-failed', 'error'].includes(parsed.ev)) {
    const key = `${agent.host}/${event.name}/${parsed.ev}`;
    const seen = (noisy.get(key) ?? 0) + 1;
    noisy.set(key, seen);
    if (seen <= 3) log(`${agent.host}/${event.name}: ${event.line}`);
    if (seen === 3) log(`${key}: more of these are counted, not shown`);
  }
}
const count = (ev) => events.filter((e) => e.ev === ev).length;
const consumedUploads = () => new Set(events.filter((e) => e.ev === 'consumed').map((e) => e.upload));
// The uploads the scenario waits no longer for: consumed, or found gone by a later delivery (a
// consume that landed while its answer was lost). Whether each was consumed exactly once is judged
// after the run, from the witness logs.
const settledUploads = () => new Set(events.filter((e) => e.ev === 'consumed' || e.ev === 'already-done').map((e) => e.upload));

function nextEvent(predicate, timeoutMs, message) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      for (const a of agents.values()) a.listeners.delete(listener);
      reject(new Error(message));
    }, timeoutMs);
    const listener = (event, agent) => {
      if (event.ev !== 'line' || !event.line.startsWith('{')) return;
      const parsed = { ...JSON.parse(event.line), host: agent.host, name: event.name };
      if (!predicate(parsed)) return;
      clearTimeout(timer);
      for (const a of agents.values()) a.listeners.delete(listener);
      resolve(parsed);
    };
    for (const a of agents.values()) a.listeners.add(listener);
  });
}

async function until(condition, timeoutMs, message) {
  const giveUp = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > giveUp) throw new Error(message);
    await sleep(50);
  }
}

const workers = { b: [], c: [] };
let workerCount = 0;
function startWorker(host) {
  const name = `worker-${host}${++workerCount}`;
  workers[host].push(name);
  agents.get(host).node(name, 'worker.mjs', { TFM_WORK_MS: String(WORK_MS), TFM_WITNESS: path.join(work, 'witness', `${name}.jsonl`) });
  return name;
}

const figures = {};

async function scenario() {
  fs.mkdirSync(path.join(work, 'witness'));
  for (const agent of agents.values()) agent.listeners.add(program);
  for (const host of ['a', 'b', 'c']) agents.get(host).node('sweeper', 'sweeper.mjs');
  for (const host of ['b', 'c']) for (let i = 0; i < 3; i++) startWorker(host);
  agents.get('a').node('api', 'api.mjs', { TFM_UPLOADS: String(UPLOADS), TFM_BURST: String(BURST), TFM_RATE: '5' });
  const firstHanded = await nextEvent((e) => e.ev === 'handed', 120_000, 'the API handed nothing off within 120 s');
  const t0 = Date.now();
  log(`the API hands off ${UPLOADS} uploads; first ticket ${firstHanded.id}`);

  // Throughput: the burst, handed off as fast as the API can, with nothing disturbed.
  await until(() => consumedUploads().size >= BURST, 60_000, `no progress: the first ${BURST} uploads not consumed within 60 s`);
  figures.calmPerSecond = (BURST / ((Date.now() - t0) / 1000)).toFixed(1);
  figures.handoffPerSecond = (BURST / (events.find((e) => e.ev === 'burst-handed').ms / 1000)).toFixed(1);

  await killMidClaim();
  await stopPastStale();
  await cutHostOff(args.cut);

  // Until the API is done and every upload it handed off is consumed (a failed upload is a
  // failed check of its own, below).
  const handedOff = () => count('handed');
  let settled = settledUploads().size;
  let progressAt = Date.now();
  const stalled = () => {
    const now = settledUploads().size;
    if (now !== settled) [settled, progressAt] = [now, Date.now()];
    return Date.now() - progressAt > STALL_MS;
  };
  const done = () => count('all-handed') > 0 && settledUploads().size >= handedOff();
  await until(() => done() || stalled(), SCENARIO_TIMEOUT_MS - (Date.now() - t0), 'the scenario timed out');
  if (!done()) throw new Error(`only ${settledUploads().size} of ${handedOff()} uploads handed off were consumed (none for ${STALL_MS / 1000} s)`);
  log(`all ${handedOff()} uploads handed off were consumed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

async function killMidClaim() {
  const victim = await nextEvent((e) => e.ev === 'claimed' && e.host === 'b', 60_000, 'no claim on host b');
  agents.get('b').signal(victim.name, 'SIGKILL');
  log(`SIGKILL ${victim.name} holding upload ${victim.upload}`);
  checks.killed = victim;
  startWorker('b');
}

async function stopPastStale() {
  const victim = await nextEvent((e) => e.ev === 'claimed' && e.host === 'c', 60_000, 'no claim on host c');
  const c = agents.get('c');
  c.signal(victim.name, 'SIGSTOP');
  log(`SIGSTOP ${victim.name} holding upload ${victim.upload}`);
  checks.stopped = victim;
  // The taker is held still (SIGSTOP, well under staleMs) while the stopped worker wakes: the
  // woken worker acts while the new holder's file is there, and must not touch it.
  let taker;
  try {
    taker = await nextEvent((e) => e.ev === 'claimed' && e.upload === victim.upload, 30_000, `upload ${victim.upload} was not taken over from the stopped worker`);
    agents.get(taker.host).signal(taker.name, 'SIGSTOP');
    log(`${taker.host}/${taker.name} took upload ${victim.upload} over (held still); SIGCONT ${victim.name}`);
  } catch (err) {
    violated(err.message);
  }
  const woken = nextEvent((e) => e.name === victim.name && e.upload === victim.upload && e.ev !== 'claimed', 15_000, `the woken worker said nothing on upload ${victim.upload}`);
  c.signal(victim.name, 'SIGCONT');
  try {
    checks.woken = await woken;
    log(`the woken worker: ${checks.woken.ev} ${checks.woken.code ?? ''}; SIGCONT the taker`);
  } catch (err) {
    fail(err.message);
  }
  if (taker) agents.get(taker.host).signal(taker.name, 'SIGCONT');
}

async function cutHostOff(host) {
  if (host === 'none') return;
  const agent = agents.get(host);
  const first = await nextEvent((e) => e.ev === 'claimed' && e.host === host, 30_000, `no claim on host ${host}`);
  net.setLink(host, false);
  const cutAt = Date.now();
  // What the host held when it went: the claims of its live workers whose last word on the upload
  // is "claimed", not consumed by then. A claim that took its lease before the cut may say
  // "claimed" just after it (its bytes read once the download was done): such claims count too,
  // so the runner looks a moment later.
  await sleep(1500);
  const last = new Map();
  for (const e of events) if (e.host === host && e.upload !== undefined && e.name.startsWith('worker-')) last.set(`${e.name}/${e.upload}`, e);
  const held = new Set([first.upload]);
  for (const e of last.values()) if (e.ev === 'claimed' && !exited.has(`${host}/${e.name}`)) held.add(e.upload);
  for (const e of events) if (e.ev === 'consumed' && (e.t < cutAt || e.host === host)) held.delete(e.upload);
  log(`host ${host} cut off holding uploads ${[...held].join(', ')}`);
  checks.cut = { host, held: [...held], cutAt };
  // Each is finished by another host, or was found consumed already: the cut host's consume
  // reached the storage host before the cut, and its witness line comes when it is back.
  const elsewhere = (upload) => events.find((e) => (e.ev === 'consumed' || e.ev === 'already-done') && e.upload === upload && e.host !== host && e.t >= cutAt);
  const takeovers = [...held].map((upload) =>
    until(() => elsewhere(upload), 60_000, `upload ${upload} held by cut-off host ${host} was not taken over`)
      .then(() => (elsewhere(upload).ev === 'consumed' ? elsewhere(upload).t - cutAt : 'done'))
      .catch((err) => (violated(err.message), undefined)),
  );
  const outcomes = await Promise.all(takeovers);
  const times = outcomes.filter((t) => typeof t === 'number');
  if (times.length > 0) figures.takeoverMs = { first: Math.min(...times), last: Math.max(...times) };
  log(`host ${host}'s claims: ${outcomes.map((t) => (typeof t === 'number' ? `finished elsewhere ${t} ms after the cut` : t === 'done' ? 'consumed before the cut' : 'not taken over')).join(', ')}; back on the network`);
  net.setLink(host, true);
  agent.heldWhenCut = held;
}

// ---------------------------------------------------------------- the end
const checks = {};

async function stopEverything() {
  const stopped = [];
  for (const [host, agent] of agents) {
    if (host === 'storage' || host === 'redis' || host === 'rgw') continue;
    const names = (host === 'a' ? ['api', 'sweeper'] : [...workers[host], 'sweeper']).filter((name) => !exited.has(`${host}/${name}`));
    for (const name of names) {
      stopped.push(
        agent.waitFor((e) => e.ev === 'exit' && e.name === name, 30_000, `${host}/${name} did not stop on SIGTERM`).catch((err) => {
          agent.signal(name, 'SIGKILL');
          fail(err.message);
        }),
      );
      agent.signal(name, 'SIGTERM');
    }
  }
  await Promise.all(stopped);
}

async function finalSweep() {
  if (S3) return finalSweepS3();
  await sleep(STALE_MS + 1500); // locks of the killed and the cut-off processes go stale
  const a = agents.get('a');
  const { code, out } = await a.run([process.execPath, path.join(HERE, 'sweeper.mjs'), '--once'], a.nodeEnv());
  if (code !== 0) fail(`final sweep failed: ${out}`);
}

// The object-store mode: what the run left in the bucket, then a sweep on every host (its root,
// and the store) with its clock past every ticket's expiry, twice STALE_MS apart; then the bucket
// is listed again (checked in verify()).
async function finalSweepS3() {
  checks.beforeSweep = await listBucket();
  const parts = {};
  for (const key of checks.beforeSweep.objects) parts[key.slice(key.lastIndexOf('/') + 1)] = (parts[key.slice(key.lastIndexOf('/') + 1)] ?? 0) + 1;
  const kinds = Object.entries(parts).map(([part, n]) => `${n} ${part}`).join(', ');
  log(`left in the bucket by the run itself: ${checks.beforeSweep.objects.length} objects${kinds ? ` (${kinds})` : ''}, ${checks.beforeSweep.uploads.length} incomplete uploads under ${BUCKET}/hosts/`);
  const sweeps = ['a', 'b', 'c'].map(async (host) => {
    const agent = agents.get(host);
    const env = { ...agent.nodeEnv(), LD_PRELOAD: FAKETIME_LIB, FAKETIME: PAST_EXPIRY };
    const { code, out } = await agent.run([process.execPath, path.join(HERE, 'sweeper.mjs'), '--final'], env);
    const done = out.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line)).find((e) => e.ev === 'sweeper-done');
    if (code !== 0 || !done) return fail(`final sweep on host ${host} failed: ${out.trim()}`);
    log(`final sweep on host ${host} (clock ${PAST_EXPIRY}): ${done.sessionsRemoved} sessions, ${done.storeEntriesRemoved} store entries (${done.storeObjectsRemoved} objects), ${done.storeUploadsAborted} uploads aborted, ${done.storeHeld} held, ${done.errors} errors`);
  });
  await Promise.all(sweeps);
  checks.afterSweep = await listBucket();
  checks.localRoots = {};
  for (const host of ['a', 'b', 'c']) {
    const { code, out } = await agents.get(host).run(['find', rootOf(host), '-mindepth', '1']);
    if (code !== 0) fail(`could not list host ${host}'s root: ${out.trim()}`);
    checks.localRoots[host] = out.split('\n').filter(Boolean).map((p) => path.relative(rootOf(host), p));
  }
}

/** Every key under the prefix and every incomplete upload there, listed from the RGW host. */
async function listBucket() {
  const rgw = agents.get('rgw');
  const { code, out } = await rgw.run([process.execPath, path.join(HERE, 'bucket.mjs'), 'list'], { ...agents.get('a').nodeEnv(), TEMPFILE_MANAGER_HOST_ID: 'host-rgw' });
  const line = out.split('\n').find((l) => l.startsWith('{"objects"'));
  if (code !== 0 || !line) throw new Error(`the bucket could not be listed: ${out.trim()}`);
  return JSON.parse(line);
}

function verify() {
  const handed = new Map(events.filter((e) => e.ev === 'handed').map((e) => [e.upload, e]));
  if (handed.size !== UPLOADS) violated(`${handed.size} of ${UPLOADS} uploads handed off (${count('upload-failed')} failed)`);
  // The witness: the workers' own logs, one line per consume() that returned. Through the store, a
  // line marked `unknown` is a consume whose answer never came (a StoreError after the work): it
  // counts only when a later delivery of the job found the entry gone (`already-done`) and no
  // consume returned, so the one that landed was that one.
  const witnessed = new Map();
  const unknown = new Map();
  for (const file of fs.readdirSync(path.join(work, 'witness'))) {
    for (const line of fs.readFileSync(path.join(work, 'witness', file), 'utf8').split('\n').filter(Boolean)) {
      const entry = JSON.parse(line);
      const into = entry.unknown ? unknown : witnessed;
      into.set(entry.upload, [...(into.get(entry.upload) ?? []), { ...entry, file }]);
    }
  }
  for (const [upload, list] of unknown) {
    if (witnessed.has(upload)) {
      log(`upload ${upload}: ${list[0].file.replace('.jsonl', '')}'s consume got no answer (StoreError after its work); ${witnessed.get(upload)[0].file.replace('.jsonl', '')} claimed and consumed it: worked twice, consumed once (at least once)`);
      continue;
    }
    const foundGone = events.some((e) => e.ev === 'already-done' && e.upload === upload);
    if (!foundGone) continue; // never consumed, below
    log(`upload ${upload}: the answer to ${list[0].file.replace('.jsonl', '')}'s consume was lost (StoreError), and it had landed: a later delivery found the entry gone`);
    witnessed.set(upload, list);
  }
  const twice = [...witnessed].filter(([, list]) => list.length > 1);
  const never = [...handed.keys()].filter((u) => !witnessed.has(u));
  for (const [upload, list] of twice) violated(`upload ${upload} consumed ${list.length} times: ${list.map((e) => e.file).join(', ')}`);
  if (never.length > 0) violated(`${never.length} uploads never consumed: ${never.slice(0, 10).join(', ')}`);
  if (count('bad-digest') > 0) violated(`${count('bad-digest')} claims read bytes that differ from the API's digest`);

  const killed = checks.killed;
  if (killed) {
    const by = witnessed.get(killed.upload)?.[0];
    if (!by || by.file === `${killed.name}.jsonl`) violated(`the SIGKILLed worker's upload ${killed.upload} was not finished by another worker`);
    else log(`ok: SIGKILLed ${killed.name}'s upload ${killed.upload} finished by ${by.file.replace('.jsonl', '')}`);
  }
  const stopped = checks.stopped;
  if (stopped) {
    const mine = (witnessed.get(stopped.upload) ?? []).filter((e) => e.file === `${stopped.name}.jsonl`);
    // Once fenced, the woken worker may claim the upload anew, as any worker may (its taker's host
    // cut off, the job redelivered): a consume is a violation only without such a claim after the
    // fence, in the order the runner received the events.
    const ofStopped = (ev) => (e) => e.ev === ev && e.name === stopped.name && e.upload === stopped.upload;
    const fencedAt = events.findIndex(ofStopped('fenced'));
    const claimedAnew = fencedAt >= 0 && events.slice(fencedAt + 1).some(ofStopped('claimed'));
    if (checks.woken?.ev !== 'fenced') violated(`the SIGSTOPped worker was not fenced on upload ${stopped.upload} (it said ${checks.woken?.ev})`);
    else if (mine.length > 0 && !claimedAnew) violated(`the SIGSTOPped worker consumed upload ${stopped.upload} after waking, with no new claim`);
    else if (mine.length > 0) log(`ok: SIGSTOPped ${stopped.name} fenced on waking (LeaseLostError); it claimed upload ${stopped.upload} anew later and consumed it once`);
    else log(`ok: SIGSTOPped ${stopped.name} fenced on waking (LeaseLostError), upload ${stopped.upload} consumed by another`);
  }
  if (checks.cut) {
    const elsewhere = checks.cut.held.filter((u) => (witnessed.get(u) ?? []).some((e) => !e.file.startsWith(`worker-${checks.cut.host}`)));
    log(`ok: of the ${checks.cut.held.length} claims of cut-off host ${checks.cut.host}, ${elsewhere.length} were taken over and finished elsewhere`);
  }

  // No live file deleted: every process that lived to the end kept its canary, except those that
  // looked dead for longer than staleMs to the other hosts (stopped, or cut off): by design
  // their sessions may be swept.
  for (const e of events.filter((x) => x.ev === 'canary')) {
    const cutOff = checks.cut && e.host === checks.cut.host;
    const stopped = checks.stopped && e.host === checks.stopped.host && e.name === checks.stopped.name;
    if (!e.ok && !cutOff && !stopped) violated(`a sweeper removed a live file: the canary of ${e.host}/${e.name}`);
    if (!e.ok && (cutOff || stopped)) log(`${e.host}/${e.name}'s canary was swept while it looked dead to the other hosts (${cutOff ? 'cut off' : 'stopped'})`);
  }
  const canaries = count('canary');
  if (canaries < 1) violated('no canary was checked');

  if (S3) {
    // Nothing left in the bucket under the prefix once the tickets expired, listed through the
    // gateway; nothing in any host's own root (its marker and its empty handoff directory stay).
    const { objects, uploads } = checks.afterSweep ?? { objects: ['(the bucket was not listed)'], uploads: [] };
    if (objects.length > 0) violated(`left in the bucket under hosts/: ${objects.slice(0, 10).join(', ')}${objects.length > 10 ? ` (${objects.length} in all)` : ''}`);
    if (uploads.length > 0) violated(`incomplete multipart uploads left: ${uploads.slice(0, 10).join(', ')}`);
    for (const [host, entries] of Object.entries(checks.localRoots ?? {})) {
      const left = entries.filter((p) => p !== 'handoff' && p !== '.tempfile-manager');
      if (left.length > 0) violated(`left under host ${host}'s root: ${left.slice(0, 10).join(', ')}${left.length > 10 ? ` (${left.length} in all)` : ''}`);
    }
    if (checks.afterSweep && checks.localRoots) log(`ok: nothing under ${BUCKET}/hosts/ (${checks.beforeSweep.objects.length} objects before the final sweep), nothing in the roots of hosts a, b, c`);
  } else {
    // Nothing left under the root, seen on the storage host's own disk.
    const left = listTree(path.join(work, 'export', 'root')).filter((p) => p !== 'handoff' && p !== '.tempfile-manager'); // the root marker stays
    if (left.length > 0) violated(`left under the root: ${left.slice(0, 10).join(', ')}${left.length > 10 ? ` (${left.length} in all)` : ''}`);
  }
  // Only a worker that looked dead (stopped, or on the cut-off host) may lose its lease: a live
  // one keeps it, also against a second delivery of its job.
  for (const e of events.filter((x) => x.ev === 'fenced')) {
    const stoppedOne = checks.stopped && e.host === checks.stopped.host && e.name === checks.stopped.name;
    const cutOff = checks.cut && e.host === checks.cut.host;
    if (!stoppedOne && !cutOff) violated(`${e.host}/${e.name}, alive and never cut off, lost its lease on upload ${e.upload}`);
  }
  const fenced = events.filter((e) => e.ev === 'fenced').length;
  log(`${witnessed.size} uploads witnessed, ${canaries} canaries checked, ${fenced} LeaseLostError, ${count('busy')} AlreadyClaimedError waits, ${count('swept-sessions')} sweeps that removed sessions`);
}

function listTree(dir, prefix = '') {
  let names;
  try {
    names = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return names.flatMap((d) => {
    const rel = prefix + d.name;
    return d.isDirectory() ? [rel, ...listTree(path.join(dir, d.name), `${rel}/`)] : [rel];
  });
}

// ---------------------------------------------------------------- main
let code = 0;
try {
  log(`work directory ${work}; ${AZURE ? 'through Azure Blob Storage (an Azurite host), no shared disk' : S3 ? 'through an object store (RGW host), no shared disk' : 'the root shared over sshfs'}${args.mutation ? `; mutation: ${args.mutation} (${MUTATIONS[args.mutation].what})` : ''}`);
  await bringUp();
  await probeEveryHost();
  try {
    await scenario();
  } catch (err) {
    fail(err.message);
  }
  await stopEverything();
  await finalSweep();
  verify();
  log(
    `figures: burst of ${BURST}: ${figures.handoffPerSecond ?? '?'} handoffs/s on host a alone, ${figures.calmPerSecond ?? '?'} uploads/s handed off, claimed and consumed across hosts; ` +
      `cut-off host's claims finished elsewhere ` +
      `${figures.takeoverMs ? `${figures.takeoverMs.first}-${figures.takeoverMs.last} ms` : '?'} after the cut (staleMs ${STALE_MS})` +
      `${S3 ? `; ${AZURE ? 'Azurite' : 'RGW'} host up in ${figures.rgwStartMs ? (figures.rgwStartMs / 1000).toFixed(1) : '?'} s` : ''}; the whole run ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
} catch (err) {
  fail(`bed error: ${err.stack ?? err}`);
}
if (args.mutation) {
  // Caught: the scenario ran (uploads flowed) and an invariant broke; a bed that could not run catches nothing.
  const caught = count('consumed') > 0 && violations.length > 0;
  if (caught) log(`the bed caught mutation ${args.mutation}: ${violations.length} broken invariants`);
  else log(`MUTATION NOT CAUGHT: ${args.mutation} (${failures.length} failures, ${violations.length} of invariants)`);
  code = caught ? 0 : 1;
} else {
  log(failures.length === 0 ? 'PASS: every check held' : `FAILED: ${failures.length} checks`);
  code = failures.length === 0 ? 0 : 1;
}
if ((failures.length > 0 && !args.mutation) || args.keep) {
  const kept = path.join(os.tmpdir(), `tfm-hosts-events-${process.pid}.jsonl`);
  fs.writeFileSync(kept, events.map((e) => JSON.stringify(e)).join('\n'));
  log(`every host program's events are in ${kept}`);
}
teardown();
await Promise.race([Promise.all([...agents.values()].map((a) => a.exited)), sleep(5000)]);
process.exit(code);
