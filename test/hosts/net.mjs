// The simulated network: one network namespace per host, each with a veth whose other end is
// plugged into a bridge in a "switch" namespace of its own, so nothing touches this machine's
// own interfaces. Cutting a host off takes its port on the switch down: its packets are dropped
// silently, as when a cable is pulled, and its processes see timeouts, not errors.
import { execFileSync } from 'node:child_process';

export const SUBNET = '10.77.0';

/** Runs `ip` with the given arguments; throws with its stderr on failure. */
export function ip(...args) {
  return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/** A network of hosts named `<prefix>-<host>`, torn down by `destroy()` (idempotent). */
export class Network {
  constructor(prefix) {
    this.prefix = prefix;
    this.switchNs = `${prefix}-sw`;
    this.namespaces = [];
  }

  nsOf(host) {
    return `${this.prefix}-${host}`;
  }

  /** The switch namespace with its bridge. */
  create() {
    this.addNamespace(this.switchNs);
    ip('-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', this.switchNs, 'link', 'set', 'br0', 'up');
  }

  /** A host's namespace, its veth (eth0 inside, `<host>` on the switch) and its address. */
  addHost(host, lastOctet) {
    const ns = this.nsOf(host);
    this.addNamespace(ns);
    const port = `p-${host}`;
    ip('link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('link', 'set', port, 'netns', this.switchNs);
    ip('-n', this.switchNs, 'link', 'set', port, 'master', 'br0', 'up');
    ip('-n', ns, 'addr', 'add', `${SUBNET}.${lastOctet}/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    return `${SUBNET}.${lastOctet}`;
  }

  /** Takes the host's switch port down (`up: false`) or back up. */
  setLink(host, up) {
    ip('-n', this.switchNs, 'link', 'set', `p-${host}`, up ? 'up' : 'down');
  }

  /** Deletes every namespace made here; their veths go with them. */
  destroy() {
    for (const ns of this.namespaces.splice(0).reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // gone already
      }
    }
  }

  addNamespace(ns) {
    ip('netns', 'add', ns);
    this.namespaces.push(ns);
  }
}
