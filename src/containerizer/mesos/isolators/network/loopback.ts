// network/loopback: a pod on the POD network gets its own network and UTS
// namespaces with only `lo` (up) and its hostname; containers join them. NODE
// pods stay in the host's. It also writes the pod's hostname, hosts and
// resolv.conf, which containers get bind-mounted (Mesos' CNI isolator does the
// same with its network-cni-setup step). network/cni (cni.ts) builds on it, and
// falls back to it while no CNI network is configured.
import { mkdirSync, readFileSync } from 'node:fs';
import { hostname as hostHostname } from 'node:os';
import { runtimeFile } from '../../../../paths.js';
import { writeAtomic } from '../../../../store/checkpoint.js';
import type { ContainerConfig, LaunchInfo } from '../../isolator.js';
import type { PlanOp } from '../../launcher/plan.js';
import { LaunchOnlyIsolator, parentNs } from '../base.js';

export class LoopbackNetworkIsolator extends LaunchOnlyIsolator {
  readonly name: string = 'network/loopback';

  async prepare(config: ContainerConfig): Promise<Partial<LaunchInfo>> {
    return this.launchInfo(config);
  }

  /**
   * The launch of a pod or container; `netns` is a pinned network namespace the pod's helper
   * joins instead of cloning a new one. The helper applies the sysctls, so `net.*` ones land in
   * the pod's network namespace.
   */
  protected launchInfo(config: ContainerConfig, netns?: string): Partial<LaunchInfo> {
    const hostNetwork = config.namespaces.network === 'NODE';
    if (config.kind === 'container') {
      return hostNetwork ? {} : { enterNamespaces: [parentNs(config, 'net'), parentNs(config, 'uts')] };
    }
    const name = hostNetwork ? hostHostname() : config.hostname || config.id.value.slice(0, 12);
    if (config.sandboxFilesDir) writeSandboxFiles(config.sandboxFilesDir, name, config.dns, hostNetwork);
    const setup: PlanOp[] = [];
    for (const [key, value] of Object.entries(config.sysctls ?? {})) setup.push(['sysctl', key, value]);
    if (hostNetwork) return { setup };
    const pod: PlanOp[] = [['hostname', name], ['loopback-up'], ...setup];
    if (netns) return { cloneNamespaces: ['uts'], enterNamespaces: [{ type: 'net', path: netns }], setup: pod };
    return { cloneNamespaces: ['net', 'uts'], setup: pod };
  }
}

/** World-readable (bind-mounted into containers), in the runtime dir: no fsync needed. */
const RUNTIME_FILE = { mode: 0o644, durable: false };

/** resolv.conf from dns_config whenever it is given (host-network pods too); the host's otherwise. */
function writeSandboxFiles(dir: string, name: string, dns: ContainerConfig['dns'], hostNetwork: boolean): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  writeAtomic(runtimeFile(dir, 'hostname'), `${name}\n`, RUNTIME_FILE);
  let hosts = `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${name}\n`;
  if (hostNetwork) {
    // As containerd: a host-network pod sees the host's own hosts file.
    try {
      hosts = readFileSync('/etc/hosts', 'utf8');
    } catch {
      // none: the generated one
    }
  }
  writeAtomic(runtimeFile(dir, 'hosts'), hosts, RUNTIME_FILE);
  let resolv: string;
  if (dns && (dns.servers.length || dns.searches.length || dns.options.length)) {
    resolv =
      dns.servers.map((s) => `nameserver ${s}\n`).join('') +
      (dns.searches.length ? `search ${dns.searches.join(' ')}\n` : '') +
      (dns.options.length ? `options ${dns.options.join(' ')}\n` : '');
  } else {
    try {
      resolv = readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      resolv = '';
    }
  }
  writeAtomic(runtimeFile(dir, 'resolvConf'), resolv, RUNTIME_FILE);
}
