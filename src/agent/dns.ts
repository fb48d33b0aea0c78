// The pod's DNS settings and host name (pkg/kubelet/network/dns/dns.go GetPodDNS,
// kubelet_pods.go GeneratePodHostNameAndDomain). The agent has no cluster DNS, so ClusterFirst
// falls back to the node's resolver, as the kubelet does when --cluster-dns is empty.
import { readFileSync } from 'node:fs';
import type { DNSConfig } from '../../api/generated/runtime/v1/DNSConfig.js';
import type { Pod } from './types.js';

export const MAX_DNS_NAMESERVERS = 3;
export const MAX_DNS_SEARCH_PATHS = 32;
export const MAX_DNS_SEARCH_LIST_CHARS = 2048;

export interface ResolvConf {
  servers: string[];
  searches: string[];
  options: string[];
}

/** Parses resolv.conf as the kubelet does: nameserver lines, the last search line, options. */
export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { servers: [], searches: [], options: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const fields = line.split(/\s+/).filter(Boolean);
    if (fields.length === 0) continue;
    if (fields[0] === 'nameserver' && fields[1]) out.servers.push(fields[1]);
    if (fields[0] === 'search') out.searches = fields.slice(1).map((s) => (s.length > 1 ? s.replace(/\.$/, '') : s));
    if (fields[0] === 'options') out.options = mergeOptions(out.options, fields.slice(1));
  }
  return out;
}

/** The DNS config for the sandbox. resolvConf "" = no resolver: 127.0.0.1 and search ".". */
export function podDNSConfig(pod: Pod, resolvConfPath: string): DNSConfig {
  let base: ResolvConf;
  const policy = pod.spec.dnsPolicy ?? 'ClusterFirst';
  if (policy === 'None') base = { servers: [], searches: [], options: [] };
  else if (resolvConfPath === '') base = { servers: ['127.0.0.1'], searches: ['.'], options: [] };
  else {
    try {
      base = parseResolvConf(readFileSync(resolvConfPath, 'utf8'));
    } catch {
      base = { servers: [], searches: [], options: [] };
    }
  }
  const extra = pod.spec.dnsConfig;
  if (extra) {
    base.servers = unique([...base.servers, ...(extra.nameservers ?? [])]);
    base.searches = unique([...base.searches, ...(extra.searches ?? [])]);
    base.options = mergeOptions(base.options, (extra.options ?? []).map((o) => (o.value !== undefined ? `${o.name}:${o.value}` : o.name)));
  }
  return { servers: base.servers.slice(0, MAX_DNS_NAMESERVERS), searches: fitSearches(base.searches), options: base.options };
}

/** Later options replace earlier ones of the same name ("ndots:5" over "ndots:1"). */
function mergeOptions(existing: string[], added: string[]): string[] {
  const byName = new Map<string, string>();
  for (const o of [...existing, ...added]) byName.set(o.split(':')[0]!, o);
  return [...byName.values()];
}

function fitSearches(searches: string[]): string[] {
  let out = searches.slice(0, MAX_DNS_SEARCH_PATHS);
  while (out.join(' ').length > MAX_DNS_SEARCH_LIST_CHARS) out = out.slice(0, -1);
  return out;
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

/** The pod's host name: spec.hostname or the pod's name, at most 63 characters. */
export function podHostname(pod: Pod): string {
  const name = pod.spec.hostname || pod.metadata.name;
  if (name.length <= 63) return name;
  return name.slice(0, 63).replace(/[-.]+$/, '');
}
