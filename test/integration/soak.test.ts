// A bounded soak: CYCLES pods, each with two containers created, started,
// exec'd into, stopped and removed, leave the daemon as they found it: not
// one fd more, and no mount, cgroup, runtime or provisioner dir, record or
// process of theirs. The benchmark's soak workload (npm run bench -- --soak N)
// is the long run, with RSS and cycle times.
import test from 'ava';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { podConfig, containerConfig, waitFor } from '../helpers/daemon.js';
import { defaultConfig } from '../../src/config.js';
import { Cgroups } from '../../src/cgroups/index.js';
import { leaked, leftovers, pooledPids, readyPooledPids } from '../helpers/leaks.js';
import { useDaemon } from '../helpers/suite.js';

const CYCLES = 100;

const d = useDaemon('soak test');
if (d) {
  test.serial(`${CYCLES} pod cycles with two containers each leave no fd, mount, cgroup, dir, record or process behind`, async (t) => {
    // ava's timeout counts from the last test result; this one test is the whole file.
    t.timeout(600_000);
    // One cycle first: the pod pool fills after the first pod, and holds fds of the daemon's while
    // it waits (2 pidfds and 2 pipes per helper); before and after are taken with it full.
    const cycle = async (i: number) => {
      const config = podConfig(`soak-${i}`, {}, join(d.logDir, `soak-${i}`));
      const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config });
      // Both containers at once: faster, and the daemon juggles two of each call.
      await Promise.all(
        ['a', 'b'].map(async (name) => {
          const { container_id: id } = await d.client.call('CreateContainer', {
            pod_sandbox_id: pod,
            config: containerConfig(name, ['sleep', '3600']),
            sandbox_config: config,
          });
          await d.client.call('StartContainer', { container_id: id });
          const exec = await d.client.call('ExecSync', { container_id: id, cmd: ['echo', name], timeout: 10 });
          t.is(exec.exit_code, 0);
          await d.client.call('StopContainer', { container_id: id, timeout: 0 });
          await d.client.call('RemoveContainer', { container_id: id });
        }),
      );
      await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
      await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    };
    // The pool runs on a cgroup v1 freezer only (see pod-pool.ts).
    const poolSize = Cgroups.detect().v1('freezer') !== undefined ? defaultConfig().podPoolSize : 0;
    const poolFull = () => readyPooledPids(d).length === poolSize && pooledPids(d).length === poolSize;
    await cycle(-1);
    await waitFor('the pod pool to fill', poolFull, 10_000);
    const before = await leftovers(d);
    const t0 = Date.now();
    for (let i = 0; i < CYCLES; i++) await cycle(i);
    const ms = Date.now() - t0;
    await waitFor('the pod pool to fill again', poolFull, 10_000);
    // Sockets and pipes are closed on later ticks of the daemon's loop.
    await sleep(1000);
    const after = await leftovers(d);
    const left = leaked(before, after);
    t.log(`${CYCLES} cycles in ${(ms / 1000).toFixed(1)} s (${(ms / CYCLES).toFixed(0)} ms each); daemon fds ${before.fds.length} → ${after.fds.length}, RSS ${(before.rssKb / 1024).toFixed(1)} → ${(after.rssKb / 1024).toFixed(1)} MB; pooled helpers ${before.pooled} → ${after.pooled}`);
    t.is(after.fds.length, before.fds.length, `fds: ${JSON.stringify(left.fds)}`);
    t.deepEqual(after.mounts, []);
    t.deepEqual(after.cgroups, []);
    t.deepEqual(after.runtimeDirs, []);
    t.deepEqual(after.provisioned, []);
    t.deepEqual(after.records, []);
    t.deepEqual(left.processes, []);
  });
}
