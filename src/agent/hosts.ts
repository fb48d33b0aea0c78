// The pod's /etc/hosts, written into the pod's dir and mounted into each container, as the
// kubelet's makeHostsMount (kubelet_pods.go): the pod's own name and IPs plus hostAliases; a
// pod on the host's network gets the node's file plus its hostAliases.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Mount } from '../../api/generated/runtime/v1/Mount.js';
import { agentPodEtcHosts } from '../paths.js';
import { mkdirp } from '../util/mkdirp.js';
import type { HostAlias, Pod } from './types.js';

const MANAGED_HEADER = '# Kubernetes-managed hosts file.\n';
const MANAGED_HOST_NETWORK_HEADER = '# Kubernetes-managed hosts file (host network).\n';

export function hostsFileContent(pod: Pod, hostname: string, podIPs: string[], nodeHostsFile = '/etc/hosts'): string {
  const aliases = hostAliasesBlock(pod.spec.hostAliases ?? []);
  if (pod.spec.hostNetwork) {
    let node = '';
    try {
      node = readFileSync(nodeHostsFile, 'utf8');
    } catch {
      // no node file: only the aliases
    }
    if (node && !node.endsWith('\n')) node += '\n';
    return MANAGED_HOST_NETWORK_HEADER + node + aliases;
  }
  let out = MANAGED_HEADER;
  out += '127.0.0.1\tlocalhost\n';
  out += '::1\tlocalhost ip6-localhost ip6-loopback\n';
  out += 'fe00::0\tip6-localnet\n';
  out += 'fe00::0\tip6-mcastprefix\n';
  out += 'fe00::1\tip6-allnodes\n';
  out += 'fe00::2\tip6-allrouters\n';
  for (const ip of podIPs) out += `${ip}\t${hostname}\n`;
  return out + aliases;
}

function hostAliasesBlock(aliases: HostAlias[]): string {
  if (aliases.length === 0) return '';
  let out = '\n# Entries added by HostAliases.\n';
  for (const a of aliases) out += `${a.ip}\t${(a.hostnames ?? []).join('\t')}\n`;
  return out;
}

/**
 * Writes the pod's hosts file and returns its mount, or nothing when the pod has no IP yet or
 * the container mounts its own /etc/hosts.
 */
export function hostsMount(root: string, pod: Pod, hostname: string, podIPs: string[], mountPaths: string[]): Mount | undefined {
  if (podIPs.length === 0 || mountPaths.includes('/etc/hosts')) return undefined;
  const file = agentPodEtcHosts(root, pod.metadata.uid);
  mkdirp(dirname(file));
  writeFileSync(file, hostsFileContent(pod, hostname, podIPs), { mode: 0o644 });
  return { container_path: '/etc/hosts', host_path: file, readonly: false, selinux_relabel: false };
}
