// The first process of a simulated host (PID 1 of its PID namespace, in its own network, mount
// and UTS namespaces). It names the host, mounts the shared root over sshfs when told to (or a
// disk of its own, a tmpfs that no other host sees, at each of `config.tmpfs`), then
// runs programs on the runner's orders and relays their output, one JSON line per event:
//   in:  {"cmd":"spawn","name":"w1","argv":[...],"env":{...}}   {"cmd":"signal","name":"w1","signal":"SIGSTOP"}
//        {"cmd":"run","id":7,"argv":[...]}   (waits, replies with a "result")
//   out: {"ev":"ready"} {"ev":"line","name","line"} {"ev":"exit","name","code","signal"} {"ev":"result","id","code","out"}
// When its stdin closes (or the runner dies) it exits, and the kernel kills what is left in the
// host: no process outlives the host, and its mounts go with its mount namespace.
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const config = JSON.parse(process.argv[2]);
const children = new Map();
const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

execFileSync('hostname', [config.hostname]);
for (const spec of config.mounts ?? []) mount(spec);
// `unshare --mount` made this host's mounts private: a tmpfs mounted here is this host's alone,
// even where another host mounts its own at the same path.
for (const dir of config.tmpfs ?? []) execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512m,mode=0700', `tmpfs-${config.hostname}`, dir]);
emit({ ev: 'ready', hostname: execFileSync('hostname').toString().trim() });

const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  const order = JSON.parse(line);
  if (order.cmd === 'spawn') start(order);
  else if (order.cmd === 'signal') children.get(order.name)?.kill(order.signal);
  else if (order.cmd === 'run') run(order);
});
input.on('close', () => {
  for (const child of children.values()) child.kill('SIGKILL');
  process.exit(0);
});

function start({ name, argv, env }) {
  const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.set(name, child);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => emit({ ev: 'line', name, line }));
  }
  child.on('exit', (code, signal) => {
    if (children.get(name) === child) children.delete(name);
    emit({ ev: 'exit', name, code, signal });
  });
  child.on('error', (err) => emit({ ev: 'line', name, line: `spawn failed: ${err.message}` }));
}

function run({ id, argv, env }) {
  const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  child.on('error', (err) => emit({ ev: 'result', id, code: -1, out: err.message }));
  child.on('exit', (code, signal) => emit({ ev: 'result', id, code: code ?? signal, out }));
}

// sshfs options, and why:
//   reconnect, ServerAlive*: a host cut off and brought back gets its mount back by itself.
//   dir_cache=no, attr_timeout=0, entry_timeout=0, negative_timeout=0: another host's mkdir,
//     rename and utimes are seen at once; a cached "absent" or stale mtime would let a claimer
//     miss a lock, or judge a lease by an old refresh.
//   no workaround=rename: OpenSSH's sftp-server offers posix-rename@openssh.com, an atomic
//     rename(2) that replaces; the workaround would replace in three steps (not atomic).
//   hard_remove is refused by this sshfs (libfuse 3): a file unlinked while open here lives on
//     as .fuse_hidden* until closed; the library closes before it unlinks.
function mount({ remote, mountpoint, key, port }) {
  const options = [
    `port=${port}`,
    `IdentityFile=${key}`,
    'StrictHostKeyChecking=no',
    'UserKnownHostsFile=/dev/null',
    'LogLevel=ERROR',
    'ConnectTimeout=3',
    'ServerAliveInterval=1',
    'ServerAliveCountMax=3',
    'reconnect',
    'dir_cache=no',
    'attr_timeout=0',
    'entry_timeout=0',
    'negative_timeout=0',
  ];
  execFileSync('sshfs', [remote, mountpoint, '-o', options.join(',')], { stdio: ['ignore', 'inherit', 'inherit'] });
}
