// The daemon's own log with --log-format json, over a pod's whole life: every line is one JSON
// object a log shipper takes (time, level, msg), and every line about the pod or its container
// names the pod (podName, podNamespace), from the CRI layer down to the containerizer.
import test from 'ava';
import { podConfig, containerConfig } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

const d = useDaemon('daemon log tests', { importImages: true, logLevel: 'debug', flags: ['--log-format', 'json'] });
if (d) {
  test.serial('json lines; each line about a pod carries its name and namespace', async (t) => {
    const start = d.logs().length;
    const config = podConfig('log-pod');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config });
    const { id: ctr } = await d.runContainer(pod, config, 'log-ctr', ['sh', '-c', 'sleep 0.2; exit 3']);
    await d.waitExited(ctr);
    await d.client.call('RemoveContainer', { container_id: ctr });
    await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });

    const lines = d
      .logs()
      .slice(start)
      .split('\n')
      .filter((l) => l.startsWith('{'));
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const p of parsed) {
      t.true(typeof p.time === 'string' && !Number.isNaN(Date.parse(p.time)) && /Z$/.test(p.time), JSON.stringify(p));
      t.true(typeof p.level === 'string' && typeof p.msg === 'string', JSON.stringify(p));
      t.false('message' in p || 'error' in p, JSON.stringify(p));
    }
    const mentions = (v: unknown) => typeof v === 'string' && (v === pod || v === ctr || v.startsWith(`${pod}.`));
    const about = parsed.filter((p) => mentions(p.pod) || mentions(p.container));
    // Run, start, exit, remove: the CRI layer's and the containerizer's state lines at least.
    // (A pod whose init is seen to exit first logs that instead of "pod sandbox stopped".)
    for (const msg of ['pod sandbox ready', 'container started', 'container exited', 'container removed', 'pod sandbox (stopped|init exited)', 'pod sandbox removed', 'container state']) {
      t.true(
        about.some((p) => new RegExp(`^${msg}$`).test(p.msg as string)),
        `no "${msg}" line about the pod:\n${about.map((p) => JSON.stringify(p)).join('\n')}`,
      );
    }
    const unnamed = about.filter((p) => p.podName !== 'log-pod' || p.podNamespace !== 'default');
    t.deepEqual(unnamed, []);
  });
}
