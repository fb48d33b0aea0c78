// LinuxContainerResources end to end: the limits CRI sends are the values in
// the container's cgroup files on the host, the kernel enforces them (OOM →
// OOMKilled / 137), and UpdateContainerResources rewrites them live.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { podConfig, containerConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

const CG = '/sys/fs/cgroup';
const MiB = 1024 * 1024;

const isV1 = existsSync(join(CG, 'cpu', 'cpu.shares')) || existsSync(join(CG, 'cpu,cpuacct', 'cpu.shares'));

const d = useDaemon('resource tests');
if (d) {

  /** A file of the container's cgroup: v1 <hierarchy>/<root>/<pod>/<ctr>/<file>, v2 <root>/<pod>/<ctr>/<v2file>. */
  const cgFile = (pod: string, ctr: string, controller: string, v1file: string, v2file = v1file): string => {
    if (isV1) return readFileSync(join(CG, controller, d.cgroupRoot, pod, ctr, v1file), 'utf8').trim();
    return readFileSync(join(CG, d.cgroupRoot, pod, ctr, v2file), 'utf8').trim();
  }

  const resources = (linux: Record<string, unknown>) => {
    return { linux: { resources: linux } };
  }

  const create = async (pod: string, sandbox: object, name: string, command: string[], extra: Record<string, unknown> = {}): Promise<string> => {
    const { container_id: id } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig(name, command, extra),
      sandbox_config: sandbox,
    });
    return id as string;
  }

  const status = async (id: string) => {
    return d.client.call('ContainerStatus', { container_id: id, verbose: true });
  }

  const removePod = async (pod: string) => {
    await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  }

  test.serial('a container allocating past its memory limit ends EXITED, OOMKilled, 137', async (t) => {
    const sandbox = podConfig('oom');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    try {
      // ash keeps the whole command substitution in memory: ~200 MB against a 32 MiB limit.
      const ctr = await create(pod, sandbox, 'hog', ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo ${#x}'], resources({ memory_limit_in_bytes: 32 * MiB }));
      t.is(cgFile(pod, ctr, 'memory', 'memory.limit_in_bytes', 'memory.max'), String(32 * MiB));
      await d.client.call('StartContainer', { container_id: ctr });
      const st = await d.waitExited(ctr, 60_000);
      t.is(st.reason, 'OOMKilled');
      t.is(st.exit_code, 137);
      // The pod survives its container's OOM (CRI semantics, not Mesos' destroy-the-executor).
      const ps = await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod });
      t.is(ps.status.state, 'SANDBOX_READY');
      // A sibling container in the same pod still starts and runs.
      const ok = await create(pod, sandbox, 'after', ['sh', '-c', 'echo fine']);
      await d.client.call('StartContainer', { container_id: ok });
      const okSt = await d.waitExited(ok);
      t.is(okSt.exit_code, 0);
      t.is(okSt.reason, 'Completed');
    } finally {
      await removePod(pod);
    }
  });

  test.serial('a container under its memory limit is not OOMKilled', async (t) => {
    const sandbox = podConfig('no-oom');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    try {
      const ctr = await create(pod, sandbox, 'small', ['sh', '-c', 'x=$(head -c 1000000 /dev/zero | tr "\\0" a); echo ${#x}'], resources({ memory_limit_in_bytes: 64 * MiB }));
      await d.client.call('StartContainer', { container_id: ctr });
      const st = await d.waitExited(ctr);
      t.is(st.exit_code, 0);
      t.is(st.reason, 'Completed');
    } finally {
      await removePod(pod);
    }
  });

  test.serial('cpu, memory and pids limits are in the cgroup files; UpdateContainerResources changes them', async (t) => {
    const sandbox = podConfig('limits');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    try {
      const ctr = await create(
        pod,
        sandbox,
        'limited',
        ['sh', '-c', 'while true; do sleep 1; done'],
        resources({ cpu_period: 100000, cpu_quota: 50000, cpu_shares: 512, memory_limit_in_bytes: 48 * MiB, unified: { 'pids.max': '50' } }),
      );
      await d.client.call('StartContainer', { container_id: ctr });
      const pid = await waitFor('running', async () => {
        const s = await status(ctr);
        if (s.status.state !== 'CONTAINER_RUNNING') return undefined;
        const p = (JSON.parse(s.info.info) as { pid: number }).pid;
        return p > 0 ? p : undefined;
      });

      // The container's init lives in <root>/<pod>/<ctr> of each controller.
      const cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      if (isV1) {
        for (const c of ['cpu', 'memory', 'pids', 'freezer']) {
          t.regex(cgroups, new RegExp(`:[^:]*\\b${c}\\b[^:]*:/${d.cgroupRoot}/${pod}/${ctr}$`, 'm'), `${c} in\n${cgroups}`);
        }
      } else {
        t.true(cgroups.includes(`/${d.cgroupRoot}/${pod}/${ctr}`), cgroups);
      }

      if (isV1) {
        t.is(cgFile(pod, ctr, 'cpu', 'cpu.cfs_period_us'), '100000');
        t.is(cgFile(pod, ctr, 'cpu', 'cpu.cfs_quota_us'), '50000');
        t.is(cgFile(pod, ctr, 'cpu', 'cpu.shares'), '512');
      } else {
        t.is(cgFile(pod, ctr, 'cpu', '', 'cpu.max'), '50000 100000');
      }
      t.is(cgFile(pod, ctr, 'memory', 'memory.limit_in_bytes', 'memory.max'), String(48 * MiB));
      t.is(cgFile(pod, ctr, 'pids', 'pids.max'), '50');

      await d.client.call('UpdateContainerResources', {
        container_id: ctr,
        linux: { cpu_period: 50000, cpu_quota: 20000, cpu_shares: 256, memory_limit_in_bytes: 96 * MiB, unified: { 'pids.max': '100' } },
      });
      if (isV1) {
        t.is(cgFile(pod, ctr, 'cpu', 'cpu.cfs_period_us'), '50000');
        t.is(cgFile(pod, ctr, 'cpu', 'cpu.cfs_quota_us'), '20000');
        t.is(cgFile(pod, ctr, 'cpu', 'cpu.shares'), '256');
      } else {
        t.is(cgFile(pod, ctr, 'cpu', '', 'cpu.max'), '20000 50000');
      }
      t.is(cgFile(pod, ctr, 'memory', 'memory.limit_in_bytes', 'memory.max'), String(96 * MiB));
      t.is(cgFile(pod, ctr, 'pids', 'pids.max'), '100');

      // ContainerStatus reports the updated resources.
      const st = await status(ctr);
      t.is(st.status.state, 'CONTAINER_RUNNING');
      t.is(String(st.status.resources.linux.cpu_quota), '20000');
      t.is(String(st.status.resources.linux.memory_limit_in_bytes), String(96 * MiB));

      // Removing the quota (0 = unset) gives unlimited CPU.
      await d.client.call('UpdateContainerResources', { container_id: ctr, linux: { cpu_period: 100000, cpu_quota: 0, cpu_shares: 256 } });
      if (isV1) t.is(cgFile(pod, ctr, 'cpu', 'cpu.cfs_quota_us'), '-1');
      else t.regex(cgFile(pod, ctr, 'cpu', '', 'cpu.max'), /^max /);
    } finally {
      await removePod(pod);
    }
  });

  test.serial('the pids limit is enforced: forks past pids.max fail', async (t) => {
    const sandbox = podConfig('pids');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    try {
      const ctr = await create(pod, sandbox, 'forker', ['sh', '-c', 'while true; do sleep 1; done'], resources({ unified: { 'pids.max': '8' } }));
      t.is(cgFile(pod, ctr, 'pids', 'pids.max'), '8');
      await d.client.call('StartContainer', { container_id: ctr });
      await waitFor('running', async () => (await status(ctr)).status.state === 'CONTAINER_RUNNING');
      // The exec shares the container's pids cgroup: launch helper + sh + sleep + exec sh leave room for
      // about four of the twenty background sleeps.
      const r = await d.client.call('ExecSync', {
        container_id: ctr,
        cmd: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 3 & done; wait'],
        timeout: 20,
      });
      const stderr = Buffer.from(r.stderr).toString();
      t.regex(stderr, /fork|Resource temporarily unavailable/i);
      const events = cgFile(pod, ctr, 'pids', 'pids.events');
      const max = Number(/^max (\d+)$/m.exec(events)?.[1] ?? 0);
      t.true(max > 0, events);
      const current = Number(cgFile(pod, ctr, 'pids', 'pids.current'));
      t.true(current <= 8, String(current));
    } finally {
      await removePod(pod);
    }
  });
}
