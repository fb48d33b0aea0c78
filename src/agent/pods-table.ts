// `cri-mesos agent pods`: the agent's pods as a table, from its status address (as
// `kubectl get pods -o wide` shows them).
import type { Pod } from './types.js';
import type { ManifestReport } from './status-server.js';

/** "5s", "3m", "2h", "4d": kubectl's short age. */
export function shortAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** kubectl's STATUS column: a waiting or terminated reason when there is one, else the phase. */
export function podStatusText(pod: Pod): string {
  const st = pod.status;
  if (!st) return 'Unknown';
  if (st.reason) return st.reason;
  const inits = st.initContainerStatuses ?? [];
  for (const [i, c] of inits.entries()) {
    if (c.state.terminated && c.state.terminated.exitCode === 0) continue;
    if (c.state.terminated) return `Init:${c.state.terminated.reason || 'Error'}`;
    if (c.state.waiting?.reason && c.state.waiting.reason !== 'PodInitializing') return `Init:${c.state.waiting.reason}`;
    return `Init:${i}/${inits.length}`;
  }
  let reason: string = st.phase;
  for (const c of [...st.containerStatuses].reverse()) {
    if (c.state.waiting?.reason) reason = c.state.waiting.reason;
    else if (c.state.terminated) reason = c.state.terminated.reason || (c.state.terminated.signal ? `Signal:${c.state.terminated.signal}` : `ExitCode:${c.state.terminated.exitCode}`);
  }
  if (reason === 'Completed' && st.containerStatuses.some((c) => c.state.running)) reason = st.containerStatuses.every((c) => c.ready) ? 'Running' : 'NotReady';
  return reason;
}

export function podsTable(pods: Pod[], manifests: ManifestReport[], now = Date.now()): string {
  const rows = [['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IP', 'QOS', 'UID']];
  for (const p of pods) {
    const cs = p.status?.containerStatuses ?? [];
    const restarts = cs.reduce((n, c) => n + c.restartCount, 0);
    const start = p.status?.startTime ? Date.parse(p.status.startTime) : now;
    rows.push([
      p.metadata.name,
      `${cs.filter((c) => c.ready).length}/${p.spec.containers.length}`,
      podStatusText(p),
      String(restarts),
      shortAge(now - start),
      p.status?.podIP ?? '<none>',
      p.status?.qosClass ?? '',
      p.metadata.uid,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  let out = rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
  const bad = manifests.filter((m) => m.errors);
  if (bad.length) {
    out += '\nManifests not run:\n';
    for (const m of bad) out += `  ${m.file}: ${m.errors!.map((e) => (e.field ? `${e.field}: ${e.reason}` : e.reason)).join('; ')}\n`;
  }
  return out;
}

/** Fetches /pods and /manifests from a running agent. */
export async function fetchPods(statusAddress: string): Promise<{ pods: Pod[]; manifests: ManifestReport[] }> {
  const base = `http://${statusAddress.startsWith(':') ? `127.0.0.1${statusAddress}` : statusAddress}`;
  const pods = (await (await fetch(`${base}/pods`)).json()) as { items: Pod[] };
  let manifests: ManifestReport[] = [];
  try {
    manifests = ((await (await fetch(`${base}/manifests`)).json()) as { items: ManifestReport[] }).items;
  } catch {
    // an older agent, or a kubelet's read-only port: pods only
  }
  return { pods: pods.items ?? [], manifests };
}
