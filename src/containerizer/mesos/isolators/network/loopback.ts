// network/loopback: until CNI lands, a pod on the POD network gets its own
// network and UTS namespaces with only `lo` (up) and its hostname; containers
// join them. NODE pods stay in the host's. It also writes the pod's hostname,
// hosts and resolv.conf, which containers get bind-mounted (Mesos' CNI
// isolator does the same with its network-cni-setup step).
import { mkdirSync, readFileSync } from 'node:fs';
import { hostname as hostHostname } from 'node:os';
import { runtimeFile } from '../../../../paths.js';
import { writeAtomic } from '../../../../store/checkpoint.js';
import type { ContainerConfig, LaunchInfo } from '../../isolator.js';
import type { PlanOp } from '../../launcher/plan.js';
import { LaunchOnlyIsolator, parentNs } from '../base.js';

export class LoopbackNetworkIsolator extends LaunchOnlyIsolator {
  readonly name = 'network/loopback';

  async prepare(config: ContainerConfig): Promise<Partial<LaunchInfo>> {
    const hostNetwork = config.namespaces.network === 'NODE';
    if (config.kind === 'container') {
      return hostNetwork ? {} : { enterNamespaces: [parentNs(config, 'net'), parentNs(config, 'uts')] };
    }
    const name = hostNetwork ? hostHostname() : config.hostname || config.id.value.slice(0, 12);
    if (config.sandboxFilesDir) writeSandboxFiles(config.sandboxFilesDir, name, config.dns);
    const setup: PlanOp[] = [];
    for (const [key, value] of Object.entries(config.sysctls ?? {})) setup.push(['sysctl', key, value]);
    if (hostNetwork) return { setup };
    return { cloneNamespaces: ['net', 'uts'], setup: [['hostname', name], ['loopback-up'], ...setup] };
  }
}

/** World-readable (bind-mounted into containers), in the runtime dir: no fsync needed. */
const RUNTIME_FILE = { mode: 0o644, durable: false };

function writeSandboxFiles(dir: string, name: string, dns: ContainerConfig['dns']): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  writeAtomic(runtimeFile(dir, 'hostname'), `${name}\n`, RUNTIME_FILE);
  writeAtomic(
    runtimeFile(dir, 'hosts'),
    `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${name}\n`,
    RUNTIME_FILE,
  );
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
