// The node agent's resource math, as the kubelet's (src/agent/quantity.ts, qos.ts, resources.ts):
// quantities, QoS classes, CPU shares/quota/period, memory limits, OOM scores, cgroup parents.
import test from 'ava';
import { Quantity } from '../../src/agent/quantity.js';
import { containerOOMScoreAdjust, podQOS } from '../../src/agent/qos.js';
import {
  calculateLinuxResources,
  containerResources,
  hugepageLimits,
  milliCPUToQuota,
  milliCPUToShares,
  podCgroupParent,
  sandboxResources,
} from '../../src/agent/resources.js';
import { hugePageUnitSize, type NodeInfo } from '../../src/agent/node-info.js';
import { setPodDefaults } from '../../src/agent/defaults.js';
import type { Container, Pod, ResourceRequirements } from '../../src/agent/types.js';

const V1: NodeInfo = { memoryCapacity: 8 * 1024 ** 3, cgroup2Unified: false, swapController: false, hugePageSizes: [] };

function pod(resources: ResourceRequirements[], init: ResourceRequirements[] = [], extra: Partial<Pod['spec']> = {}): Pod {
  const p: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', uid: 'u1', labels: {}, annotations: {} },
    spec: {
      containers: resources.map((r, i) => ({ name: `c${i}`, image: 'i:1', resources: r })),
      initContainers: init.map((r, i) => ({ name: `i${i}`, image: 'i:1', resources: r })),
      ...extra,
    },
  };
  setPodDefaults(p);
  return p;
}

test('quantities: suffixes, exponents, rounding up, comparison', (t) => {
  t.is(Quantity.parse('500m').milliValue(), 500);
  t.is(Quantity.parse('0.5').milliValue(), 500);
  t.is(Quantity.parse(0.25).milliValue(), 250);
  t.is(Quantity.parse('1').milliValue(), 1000);
  t.is(Quantity.parse('128Mi').value(), 128 * 1024 * 1024);
  t.is(Quantity.parse('1G').value(), 1e9);
  t.is(Quantity.parse('1e3').value(), 1000);
  t.is(Quantity.parse('1.5Gi').value(), 1.5 * 1024 ** 3);
  t.is(Quantity.parse('1m').value(), 1, 'Value() rounds up');
  t.is(Quantity.parse('100u').milliValue(), 1, 'MilliValue() rounds up');
  t.is(Quantity.parse('1').cmp(Quantity.parse('1000m')), 0);
  t.is(Quantity.parse('1Ki').cmp(Quantity.parse('1k')), 1);
  for (const bad of ['', 'abc', '1.2.3', '5 Mi', '1Zi', '--1']) t.throws(() => Quantity.parse(bad), undefined, bad);
});

test('MilliCPUToShares: 1024 per CPU, at least 2, at most 262144', (t) => {
  t.is(milliCPUToShares(0), 2);
  t.is(milliCPUToShares(1), 2);
  t.is(milliCPUToShares(1000), 1024);
  t.is(milliCPUToShares(500), 512);
  t.is(milliCPUToShares(1500), 1536);
  t.is(milliCPUToShares(333), 340);
  t.is(milliCPUToShares(1_000_000), 262144);
});

test('MilliCPUToQuota: quota per 100 ms period, at least 1 ms, 0 = none', (t) => {
  t.is(milliCPUToQuota(0), 0);
  t.is(milliCPUToQuota(1), 1000, '1m CPU is below the kernel minimum: 1000 µs');
  t.is(milliCPUToQuota(10), 1000);
  t.is(milliCPUToQuota(250), 25000);
  t.is(milliCPUToQuota(1000), 100000);
  t.is(milliCPUToQuota(2500), 250000);
  t.is(milliCPUToQuota(500, 50000), 25000);
});

test('QoS: Guaranteed, Burstable, BestEffort as the API computes them', (t) => {
  t.is(podQOS(pod([{}])), 'BestEffort');
  t.is(podQOS(pod([{ limits: { cpu: '1', memory: '1Gi' } }])), 'Guaranteed', 'requests default to limits');
  t.is(podQOS(pod([{ limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '1000m', memory: '1024Mi' } }])), 'Guaranteed', 'equal amounts in other units');
  t.is(podQOS(pod([{ limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '500m', memory: '1Gi' } }])), 'Burstable');
  t.is(podQOS(pod([{ limits: { cpu: '1' } }])), 'Burstable', 'no memory limit');
  t.is(podQOS(pod([{ requests: { memory: '10Mi' } }])), 'Burstable');
  t.is(podQOS(pod([{ limits: { cpu: '1', memory: '1Gi' } }, {}])), 'Burstable', 'one container without limits');
  t.is(podQOS(pod([{ limits: { cpu: '1', memory: '1Gi' } }], [{}])), 'Burstable', 'init containers count');
  t.is(podQOS(pod([{ requests: { 'example.com/gpu': '1' } }])), 'BestEffort', 'only cpu and memory count');
  t.is(podQOS(pod([{ requests: { cpu: '0' } }])), 'BestEffort', 'zero requests do not count');
});

test('cgroup parent: kubepods/pod<uid> for Guaranteed, kubepods/<qos>/pod<uid> else, under --cgroup-root', (t) => {
  t.is(podCgroupParent(pod([{ limits: { cpu: '1', memory: '1Gi' } }])), '/kubepods/podu1');
  t.is(podCgroupParent(pod([{ requests: { cpu: '100m' } }])), '/kubepods/burstable/podu1');
  t.is(podCgroupParent(pod([{}])), '/kubepods/besteffort/podu1');
  t.is(podCgroupParent(pod([{}]), '/test-root'), '/test-root/kubepods/besteffort/podu1');
  t.is(podCgroupParent(pod([{}]), '/'), '/kubepods/besteffort/podu1');
});

test('container resources: shares from the request (else the limit), quota/period from the limit, memory limit', (t) => {
  const g = pod([{ limits: { cpu: '500m', memory: '256Mi' } }]);
  const r = containerResources(g, g.spec.containers[0]!, V1);
  t.is(r.cpu_shares, 512);
  t.is(r.cpu_quota, 50000);
  t.is(r.cpu_period, 100000);
  t.is(r.memory_limit_in_bytes, 256 * 1024 * 1024);
  t.is(r.oom_score_adj, -997);
  t.deepEqual(r.hugepage_limits, []);
  t.is(r.unified, undefined, 'cgroup v1: no unified keys');

  const b = pod([{ requests: { cpu: '250m', memory: '1Gi' } }]);
  const rb = containerResources(b, b.spec.containers[0]!, V1);
  t.is(rb.cpu_shares, 256);
  t.is(rb.cpu_quota, 0, 'no CPU limit: no quota');
  t.is(rb.cpu_period, 100000, 'the period is always sent');
  t.is(rb.memory_limit_in_bytes, undefined, 'no memory limit: not set');
  t.is(rb.oom_score_adj, 875, '1000 - 1000 * 1Gi / 8Gi');

  const be = pod([{}]);
  const re = containerResources(be, be.spec.containers[0]!, V1);
  t.is(re.cpu_shares, 2);
  t.is(re.oom_score_adj, 1000);

  // A container without a CPU request but with a limit: after defaulting the request is the limit;
  // before defaulting (calculateLinuxResources itself) the limit gives the shares.
  t.is(calculateLinuxResources(undefined, Quantity.parse('2'), undefined, V1).cpu_shares, 2048);
  t.is(calculateLinuxResources(Quantity.parse('100m'), Quantity.parse('2'), undefined, V1).cpu_shares, 102);
});

test('cgroup2: memory.oom.group, and swap off when the controller is there', (t) => {
  const p = pod([{ limits: { cpu: '1', memory: '64Mi' } }]);
  const r = containerResources(p, p.spec.containers[0]!, { ...V1, cgroup2Unified: true, swapController: true });
  t.deepEqual(r.unified, { 'memory.oom.group': '1', 'memory.swap.max': '0' });
  const v1swap = containerResources(p, p.spec.containers[0]!, { ...V1, swapController: true });
  t.is(v1swap.memory_swap_limit_in_bytes, 64 * 1024 * 1024, 'v1: memory+swap = memory');
});

test('OOM score: Burstable stays within [3, 999]; node-critical pods get -997', (t) => {
  const tiny = pod([{ requests: { memory: '1' } }]);
  t.is(containerOOMScoreAdjust(tiny, tiny.spec.containers[0]!, V1.memoryCapacity), 999, '1000 would be BestEffort: 999');
  const huge = pod([{ requests: { memory: '8Gi' } }]);
  t.is(containerOOMScoreAdjust(huge, huge.spec.containers[0]!, V1.memoryCapacity), 3);
  const third = pod([{ requests: { memory: '1Gi' } }]);
  t.is(containerOOMScoreAdjust(third, third.spec.containers[0]!, 3 * 1024 ** 3), 667, 'integer division truncates');
  const critical = pod([{}], [], { priorityClassName: 'system-node-critical' });
  t.is(containerOOMScoreAdjust(critical, critical.spec.containers[0]!, V1.memoryCapacity), -997);
});

test('sandbox resources: the pod sum, raised to the largest init container', (t) => {
  const p = pod(
    [{ limits: { cpu: '250m', memory: '100Mi' } }, { limits: { cpu: '250m', memory: '100Mi' } }],
    [{ limits: { cpu: '2', memory: '50Mi' } }],
  );
  const r = sandboxResources(p, V1);
  t.is(r.cpu_shares, 2048, 'init container asks 2 CPUs, more than the sum (500m)');
  t.is(r.cpu_quota, 200000);
  t.is(r.memory_limit_in_bytes, 200 * 1024 * 1024);
  const be = sandboxResources(pod([{}]), V1);
  t.is(be.cpu_shares, 2);
  t.is(be.cpu_quota, 0);
  t.is(be.memory_limit_in_bytes, undefined);
});

test('huge pages: every host size, limited to 0 unless the limits name it', (t) => {
  t.is(hugePageUnitSize(2 * 1024 * 1024), '2MB');
  t.is(hugePageUnitSize(1024 ** 3), '1GB');
  t.deepEqual(hugepageLimits({ 'hugepages-2Mi': '4Mi' }, ['2MB', '1GB']), [
    { page_size: '2MB', limit: 4 * 1024 * 1024 },
    { page_size: '1GB', limit: 0 },
  ]);
});

test('defaults: requests from limits, pull policy from the tag, probe and port defaults', (t) => {
  const c: Container = {
    name: 'c',
    image: 'busybox',
    ports: [{ containerPort: 80 }],
    resources: { limits: { cpu: '1' }, requests: { memory: '1Mi' } },
    readinessProbe: { httpGet: { port: 80 } },
  };
  const p: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: '', uid: '', labels: {}, annotations: {} }, spec: { containers: [c, { name: 'd', image: 'busybox:1.36' }], hostNetwork: true } };
  setPodDefaults(p);
  t.deepEqual(c.resources?.requests, { memory: '1Mi', cpu: '1' });
  t.is(c.imagePullPolicy, 'Always');
  t.is(p.spec.containers[1]!.imagePullPolicy, 'IfNotPresent');
  t.is(c.terminationMessagePath, '/dev/termination-log');
  t.is(c.terminationMessagePolicy, 'File');
  t.deepEqual(c.ports, [{ containerPort: 80, protocol: 'TCP', hostPort: 80 }], 'host network: hostPort = containerPort');
  t.like(c.readinessProbe, { timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3, httpGet: { port: 80, path: '/', scheme: 'HTTP' } });
  t.is(p.spec.restartPolicy, 'Always');
  t.is(p.spec.terminationGracePeriodSeconds, 30);
  t.is(p.spec.dnsPolicy, 'ClusterFirst');
});
