// The pod pool (src/containerizer/mesos/launcher/pod-pool.ts): pause helpers cloned ahead of
// RunPodSandbox, handed over to pods. Checked against the kernel: which process a pod got, its
// cgroups and cgroup namespace, its other namespaces, and that no pooled helper or pool cgroup
// outlives the daemon (SIGTERM) or survives the next start (kill -9).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { podConfig, TestDaemon, waitFor, isRoot } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';
import { pooledPids, readyPooledPids, POOL_CGROUP } from '../helpers/leaks.js';
import { Cgroups } from '../../src/cgroups/index.js';

// The pool runs where a launch writes cgroup.procs anyway: the v1 freezer.
const v1Freezer = isRoot() && Cgroups.detect().v1('freezer') !== undefined;

const d = v1Freezer ? useDaemon('pod pool tests') : undefined;
if (!v1Freezer) test.skip('the pod pool needs root and a cgroup v1 freezer hierarchy', () => {});

const ns = (pid: number | 'self', type: string) => readlinkSync(`/proc/${pid}/ns/${type}`);
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

/** Waits until the pool holds its 2 helpers (the default pod_pool_size); their pids. */
function poolFilled(daemon: TestDaemon, what: string): Promise<number[]> {
  return waitFor(what, () => (readyPooledPids(daemon).length >= 2 ? readyPooledPids(daemon) : undefined), 10_000);
}

function poolCgroups(daemon: TestDaemon): string[] {
  const root = daemon.cgroupDir('freezer')!;
  return existsSync(root) ? readdirSync(root).filter((n) => POOL_CGROUP.test(n)) : [];
}

async function podPid(daemon: TestDaemon, pod: string): Promise<number> {
  const s = await daemon.client.call('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true });
  return JSON.parse(s.info.info).pid as number;
}

if (d) {

  test.serial('a pod after the first gets a pooled pause helper, moved into its cgroups and given its namespaces', async (t) => {
    const first = podConfig('pool-first');
    const { pod_sandbox_id: a } = await d.client.call('RunPodSandbox', { config: first });
    try {
      // The first pod teaches the pool its namespaces; the pool fills shortly after.
      const ready = await poolFilled(d, 'the pool to fill');
      for (const pid of ready) t.regex(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /^cri-mesos-launch\0pause\0-\0$/);

      const cfg = podConfig('pool-second');
      const { pod_sandbox_id: b } = await d.client.call('RunPodSandbox', { config: cfg });
      try {
        const pid = await podPid(d, b);
        t.true(ready.includes(pid), `pod pid ${pid} is one of the pooled ${ready.join(',')}`);
        t.false(pooledPids(d).includes(pid), 'no longer in a pool cgroup');
        const pidA = await podPid(d, a);

        // Its cgroups: the pod's in every v1 hierarchy the daemon uses, as for a cloned pod.
        const cgroupLines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').filter(Boolean);
        for (const controller of ['freezer', 'cpu', 'memory', 'pids']) {
          const line = cgroupLines.find((l) => l.split(':')[1]!.split(',').includes(controller));
          if (!line) continue;
          t.true(line.endsWith(`/${d.cgroupRoot}/${b}`), `${controller}: ${line}`);
        }
        // Its cgroup namespace: its own, rooted at those cgroups (made after the move).
        t.not(ns(pid, 'cgroup'), ns('self', 'cgroup'));
        const inside = execFileSync('nsenter', [`--cgroup=/proc/${pid}/ns/cgroup`, 'cat', `/proc/${pid}/cgroup`], { encoding: 'utf8' });
        const freezerInside = inside.split('\n').find((l) => l.split(':')[1] === 'freezer');
        t.is(freezerInside?.split(':')[2], '/', inside);

        // The namespaces the pod asked for: new uts (its hostname), net, ipc, mnt; not pid (CONTAINER).
        for (const type of ['uts', 'net', 'ipc', 'mnt']) t.not(ns(pid, type), ns('self', type), type);
        t.not(ns(pid, 'net'), ns(pidA, 'net'), 'not the first pod\'s network');
        t.is(execFileSync('nsenter', ['-u', '-t', String(pid), 'hostname'], { encoding: 'utf8' }).trim(), 'pool-second');

        // A container in it joins the pod's namespaces as in any pod.
        const c = await d.runContainer(b, cfg, 'c', ['sleep', '3600']);
        t.is(ns(c.pid, 'net'), ns(pid, 'net'));
        t.is(ns(c.pid, 'uts'), ns(pid, 'uts'));
        const r = await d.client.call('ExecSync', { container_id: c.id, cmd: ['hostname'], timeout: 10 });
        t.is(Buffer.from(r.stdout).toString().trim(), 'pool-second');

        // Stopping the pod kills the handed-over helper like any pause process.
        await d.client.call('StopPodSandbox', { pod_sandbox_id: b });
        await waitFor('the pooled pause helper to exit', () => !alive(pid), 10_000);
      } finally {
        await d.removePod(b);
      }
    } finally {
      await d.removePod(a);
    }
  });

  test.serial('a pod that asks for other namespaces is not given a helper of another kind', async (t) => {
    const { pod_sandbox_id: a } = await d.client.call('RunPodSandbox', { config: podConfig('pool-kind-a') });
    try {
      const ready = await poolFilled(d, 'the pool to fill');
      const hostNet = podConfig('pool-kind-b', { linux: { security_context: { namespace_options: { network: 'NODE', pid: 'NODE', ipc: 'NODE' } } } });
      const { pod_sandbox_id: b } = await d.client.call('RunPodSandbox', { config: hostNet });
      try {
        const pid = await podPid(d, b);
        t.false(ready.includes(pid), 'a helper cloned for other namespaces was not used');
        for (const type of ['net', 'ipc', 'uts', 'pid']) t.is(ns(pid, type), ns('self', type), type);
        // The pool's helpers of the old kind are gone; it refills for the new one.
        await waitFor('the old pool helpers to exit', () => ready.every((p) => !alive(p)), 10_000);
        const next = await poolFilled(d, 'the pool to refill');
        const { pod_sandbox_id: c } = await d.client.call('RunPodSandbox', { config: podConfig('pool-kind-c', { linux: hostNet.linux }) });
        try {
          const pidC = await podPid(d, c);
          t.true(next.includes(pidC), `pod pid ${pidC} is one of the refilled ${next.join(',')}`);
          for (const type of ['net', 'ipc', 'uts', 'pid']) t.is(ns(pidC, type), ns('self', type), type);
          t.not(ns(pidC, 'mnt'), ns('self', 'mnt'));
        } finally {
          await d.removePod(c);
        }
      } finally {
        await d.removePod(b);
      }
    } finally {
      await d.removePod(a);
    }
  });

  test.serial('helpers killed while they wait are dropped from the pool: the next pod is cloned, and the pool refills', async (t) => {
    const cfg = podConfig('pool-killed-a');
    const { pod_sandbox_id: a } = await d.client.call('RunPodSandbox', { config: cfg });
    try {
      const ready = await poolFilled(d, 'the pool to fill');
      const logFrom = d.logs().length;
      for (const pid of ready) process.kill(pid, 'SIGKILL');
      await waitFor('the daemon to notice', () => (d.logs().slice(logFrom).match(/a pause helper exited while waiting for a pod/g)?.length ?? 0) >= ready.length, 10_000);
      const { pod_sandbox_id: b } = await d.client.call('RunPodSandbox', { config: podConfig('pool-killed-b') });
      try {
        const pid = await podPid(d, b);
        t.false(ready.includes(pid));
        t.true(alive(pid));
        t.is((await d.client.call('PodSandboxStatus', { pod_sandbox_id: b })).status.state, 'SANDBOX_READY');
        const next = await poolFilled(d, 'the pool to refill');
        t.false(next.some((p) => ready.includes(p)));
      } finally {
        await d.removePod(b);
      }
    } finally {
      await d.removePod(a);
    }
  });
}

if (v1Freezer) {
  test.serial('pooled helpers do not outlive the daemon: SIGTERM removes them, kill -9 leaves nothing the next start keeps', async (t) => {
    const daemon = await TestDaemon.start({ prefix: 'cri-mesos-test-pool' });
    try {
      const { pod_sandbox_id: a } = await daemon.client.call('RunPodSandbox', { config: podConfig('pool-life') });
      let ready = await poolFilled(daemon, 'the pool to fill');
      const podA = await podPid(daemon, a);

      await daemon.kill9();
      // Without the daemon's end of their fd 0 they read a plan without its end and exit.
      await waitFor('the pooled helpers to exit after kill -9', () => ready.every((p) => !alive(p)), 10_000);
      t.true(alive(podA), 'the pod itself lives on');
      t.true(poolCgroups(daemon).length >= 1, 'their cgroups are left for the next start');
      await daemon.launch();
      t.deepEqual(poolCgroups(daemon), [], 'the next start removed the pool cgroups of the dead daemon');
      t.is((await daemon.client.call('PodSandboxStatus', { pod_sandbox_id: a })).status.state, 'SANDBOX_READY');

      await daemon.client.call('RunPodSandbox', { config: podConfig('pool-life-b') });
      ready = await poolFilled(daemon, 'the pool to fill again');
      await daemon.stop();
      t.true(ready.every((p) => !alive(p)), 'SIGTERM: the pooled helpers are gone');
      t.deepEqual(poolCgroups(daemon), [], 'SIGTERM: their cgroups are gone');
      t.true(alive(podA), 'pods outlive a stopped daemon');
    } finally {
      await daemon.teardown();
    }
  });

  test.serial('--pod-pool-size 0: no pooled helpers', async (t) => {
    const daemon = await TestDaemon.start({ prefix: 'cri-mesos-test-nopool', flags: ['--pod-pool-size', '0'] });
    try {
      for (const name of ['nopool-a', 'nopool-b']) await daemon.client.call('RunPodSandbox', { config: podConfig(name) });
      await new Promise((r) => setTimeout(r, 500));
      t.deepEqual(poolCgroups(daemon), []);
    } finally {
      await daemon.teardown();
    }
  });
}
