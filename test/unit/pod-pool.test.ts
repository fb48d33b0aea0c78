// The pod pool's decisions that need no kernel: where it runs and how it keys pods
// (test/integration/pod-pool.test.ts drives the pool itself).
import test from 'ava';
import { podPoolApplies, poolKey } from '../../src/containerizer/mesos/launcher/pod-pool.js';

test('the pool runs where launches write cgroup.procs anyway (v1 freezer), not with CLONE_INTO_CGROUP (cgroup2)', (t) => {
  t.true(podPoolApplies(2, { cloneIntoCgroup: false }));
  t.false(podPoolApplies(2, { cloneIntoCgroup: true }), 'cgroup2 without a v1 freezer: every pod is cloned into its cgroup');
  t.false(podPoolApplies(0, { cloneIntoCgroup: false }), 'pod_pool_size 0');
});

test('pods are matched on the set of namespaces they are cloned in', (t) => {
  t.is(poolKey(['net', 'uts', 'ipc', 'mnt', 'cgroup']), poolKey(['cgroup', 'mnt', 'ipc', 'uts', 'net', 'net']));
  t.not(poolKey(['mnt', 'cgroup', 'ipc', 'pid']), poolKey(['mnt', 'cgroup', 'ipc']));
  t.is(poolKey([]), '');
});
