// LinuxContainerResources end to end: the limits CRI sends are the values in
// the container's cgroup files on the host, the kernel enforces them (OOM →
// OOMKilled / 137), and UpdateContainerResources rewrites them live.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { podConfig, containerConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';
import { Cgroups } from '../../src/cgroups/index.js';
import { hostPageSizes } from '../../src/containerizer/mesos/isolators/cgroups/hugetlb.js';

const MiB = 1024 * 1024;

const d = useDaemon('resource tests');
if (d) {
  /** A file of the container's cgroup for `controller`, found as the daemon finds it: the v1 file name there, else the v2 one. */
  const onV1 = (controller: string) => Cgroups.detect().v1(controller) !== undefined;
  const cgFile = (pod: string, ctr: string, controller: string, v1file: string, v2file = v1file): string => {
    return readFileSync(join(d.cgroupDir(controller, pod, ctr)!, onV1(controller) ? v1file : v2file), 'utf8').trim();
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


  test.serial('a container allocating past its memory limit ends EXITED, OOMKilled, 137', async (t) => {
    const sandbox = podConfig('oom');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    try {
      // ash keeps the whole command substitution in memory: ~200 MB against a 32 MiB limit.
      const ctr = await create(pod, sandbox, 'hog', ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo ${#x}'], resources({ memory_limit_in_bytes: 32 * MiB }));
      await d.waitLaunched(pod, ctr);
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
      await d.removePod(pod);
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
      await d.removePod(pod);
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
      if (onV1('cpu')) {
        for (const c of ['cpu', 'memory', 'pids', 'freezer']) {
          t.regex(cgroups, new RegExp(`:[^:]*\\b${c}\\b[^:]*:/${d.cgroupRoot}/${pod}/${ctr}$`, 'm'), `${c} in\n${cgroups}`);
        }
      } else {
        t.true(cgroups.includes(`/${d.cgroupRoot}/${pod}/${ctr}`), cgroups);
      }

      if (onV1('cpu')) {
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
      if (onV1('cpu')) {
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
      if (onV1('cpu')) t.is(cgFile(pod, ctr, 'cpu', 'cpu.cfs_quota_us'), '-1');
      else t.regex(cgFile(pod, ctr, 'cpu', '', 'cpu.max'), /^max /);
    } finally {
      await d.removePod(pod);
    }
  });

  test.serial('the pids limit is enforced: forks past pids.max fail', async (t) => {
    const sandbox = podConfig('pids');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    try {
      const ctr = await create(pod, sandbox, 'forker', ['sh', '-c', 'while true; do sleep 1; done'], resources({ unified: { 'pids.max': '8' } }));
      await d.waitLaunched(pod, ctr);
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
      await d.removePod(pod);
    }
  });

  const sizes = hostPageSizes();
  const hugetlb = sizes.length > 0 && d.cgroupDir('hugetlb', 'x') !== undefined;
  (hugetlb ? test.serial : test.serial.skip)('hugepage limits the kubelet sends land in the hugetlb controller, wherever this host has it', async (t) => {
    const sandbox = podConfig('hugetlb');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    try {
      const limits = sizes.map((page_size) => ({ page_size, limit: 0 }));
      const ctr = await create(pod, sandbox, 'huge', ['sleep', '3600'], resources({ hugepage_limits: limits }));
      await d.client.call('StartContainer', { container_id: ctr });
      for (const size of sizes) t.is(cgFile(pod, ctr, 'hugetlb', `hugetlb.${size}.limit_in_bytes`, `hugetlb.${size}.max`), '0');
      // The container's process is in that cgroup (cgroup2 here: cloned straight into its leaf).
      const pid = (JSON.parse((await status(ctr)).info.info) as { pid: number }).pid;
      const cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      t.true(cgroups.includes(`/${d.cgroupRoot}/${pod}/${ctr}`), cgroups);
      await d.client.call('UpdateContainerResources', { container_id: ctr, linux: { hugepage_limits: [{ page_size: sizes[0], limit: 4 * MiB }] } });
      t.is(cgFile(pod, ctr, 'hugetlb', `hugetlb.${sizes[0]}.limit_in_bytes`, `hugetlb.${sizes[0]}.max`), String(4 * MiB));
      // A size the host does not have names the field.
      const err = await t.throwsAsync(create(pod, sandbox, 'huge-bad', ['true'], resources({ hugepage_limits: [{ page_size: '16GB', limit: 0 }] })));
      t.is((err as { code?: number }).code, 3);
      t.regex(err!.message, /hugepage_limits\[page_size=16GB\]/);
    } finally {
      await d.removePod(pod);
    }
  });

  test.serial('unified memory keys: applied where this host can, refused by name where it cannot change behaviour', async (t) => {
    const sandbox = podConfig('unified');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    try {
      const v1 = onV1('memory');
      // The kubelet's values for a pod without swap on cgroup2: swap 0, oom group on.
      const ctr = await create(pod, sandbox, 'unified-ok', ['sleep', '3600'], resources({ memory_limit_in_bytes: 64 * MiB, unified: { 'memory.swap.max': '0', 'memory.high': 'max' } }));
      await d.waitLaunched(pod, ctr);
      if (v1) {
        const memsw = d.cgroupDir('memory', pod, ctr) + '/memory.memsw.limit_in_bytes';
        if (existsSync(memsw)) t.is(readFileSync(memsw, 'utf8').trim(), String(64 * MiB), 'no swap: memsw = the memory limit');
      } else {
        t.is(cgFile(pod, ctr, 'memory', '', 'memory.swap.max'), '0');
      }
      const oomGroup = create(pod, sandbox, 'unified-oom-group', ['true'], resources({ unified: { 'memory.oom.group': '1' } }));
      if (v1) {
        const err = await t.throwsAsync(oomGroup);
        t.is((err as { code?: number }).code, 3, err?.message);
        t.regex(err!.message, /unified\["memory\.oom\.group"\]: "1" cannot be applied/);
        // Nothing of the refused container is left.
        const all = (await d.client.call('ListContainers', {})).containers as { metadata: { name: string } }[];
        t.false(all.some((c) => c.metadata.name === 'unified-oom-group'));
      } else {
        const ctr2 = await oomGroup;
        await d.waitLaunched(pod, ctr2);
        t.is(cgFile(pod, ctr2, 'memory', '', 'memory.oom.group'), '1');
      }
      const io = await t.throwsAsync(create(pod, sandbox, 'unified-io', ['true'], resources({ unified: { 'io.max': '8:0 rbps=1048576' } })));
      t.regex(io!.message, /config\.linux\.resources\.unified\["io\.max"\]: the io controller is not managed by cri-mesos/);
    } finally {
      await d.removePod(pod);
    }
  });
}
