// Quick latency probe (not the benchmark of hack/bench): starts a daemon with
// temp dirs, runs N pod+container lifecycles, prints medians and RSS.
// Usage: npx tsx hack/latency.ts [N]
import { readFileSync } from 'node:fs';
import { TestDaemon, podConfig, containerConfig } from '../test/helpers/daemon.js';

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const n = Number(process.argv[2] ?? 20);
const d = await TestDaemon.start({ flags: ['--log-level', 'warn'] });
const times: Record<string, number[]> = { RunPodSandbox: [], CreateContainer: [], StartContainer: [], StopContainer: [], RemovePodSandbox: [] };
const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
  const t0 = process.hrtime.bigint();
  const r = await fn();
  times[name]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
  return r;
};
let helperRss = 0;
try {
  for (let i = 0; i < n; i++) {
    const cfg = podConfig(`lat${i}`);
    const { pod_sandbox_id: pod } = await timed('RunPodSandbox', () => d.client.call('RunPodSandbox', { config: cfg }));
    const { container_id: ctr } = await timed('CreateContainer', () =>
      d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('c', ['sleep', '3600'], { log_path: '' }), sandbox_config: cfg }),
    );
    await timed('StartContainer', () => d.client.call('StartContainer', { container_id: ctr }));
    if (i === 0) {
      const pid = JSON.parse((await d.client.call('ContainerStatus', { container_id: ctr, verbose: true })).info.info).pid;
      helperRss = rssKb(pid);
    }
    await timed('StopContainer', () => d.client.call('StopContainer', { container_id: ctr, timeout: 0 }));
    await timed('RemovePodSandbox', () => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }));
  }
  for (const [k, v] of Object.entries(times)) console.log(`${k.padEnd(18)} median ${median(v).toFixed(1)} ms  (min ${Math.min(...v).toFixed(1)}, max ${Math.max(...v).toFixed(1)}, n=${v.length})`);
  console.log(`daemon RSS ${(rssKb(d.pid!) / 1024).toFixed(1)} MB; launch helper (container init) RSS ${(helperRss / 1024).toFixed(2)} MB`);
} finally {
  await d.teardown();
}
