// The node agent's manifests, naming, labels and pod logic (src/agent/manifest.ts, validate.ts,
// static-pod.ts, labels.ts, env.ts, backoff.ts, pod-actions.ts, pod-status.ts).
import test from 'ava';
import { parseManifest, formatManifestErrors } from '../../src/agent/manifest.js';
import { containerAnnotations, containerHash, containerLabels, podLabels } from '../../src/agent/labels.js';
import { expand } from '../../src/agent/env.js';
import { Backoff } from '../../src/agent/backoff.js';
import { computePodActions } from '../../src/agent/pod-actions.js';
import { buildPodStatus } from '../../src/agent/pod-status.js';
import { durationString } from '../../src/agent/pod-worker.js';
import type { RuntimeContainer, RuntimePodStatus } from '../../src/agent/runtime-status.js';
import type { Pod } from '../../src/agent/types.js';

const WEB = `
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: httpd   # the server
    image: busybox:1.36
    ports: [{name: http, containerPort: 8080}]
    lifecycle:
      preStop: {exec: {command: [sleep, "1"]}}
`;

function ok(text: string, file = '/etc/pods/web.yaml', node = 'Node1'): Pod {
  const r = parseManifest(text, file, node, new Date('2026-01-02T03:04:05.678Z'));
  if (!r.ok) throw new Error(formatManifestErrors(file, r.errors));
  return r.pod;
}

function errors(text: string): string[] {
  const r = parseManifest(text, '/m/bad.yaml', 'n');
  if (r.ok) throw new Error('expected errors');
  return r.errors.map((e) => (e.field ? `${e.field}: ${e.reason}` : e.reason));
}

test('static pod: <name>-<node>, default namespace, config annotations, NoExecute toleration', (t) => {
  const pod = ok(WEB);
  t.is(pod.metadata.name, 'web-node1', 'the node name in lower case');
  t.is(pod.metadata.namespace, 'default');
  t.regex(pod.metadata.uid, /^[0-9a-f]{32}$/);
  t.deepEqual(pod.metadata.annotations, {
    'kubernetes.io/config.hash': pod.metadata.uid,
    'kubernetes.io/config.source': 'file',
    'kubernetes.io/config.seen': '2026-01-02T03:04:05.678Z',
  });
  t.is(pod.spec.nodeName, 'Node1');
  t.deepEqual(pod.spec.tolerations, [{ operator: 'Exists', effect: 'NoExecute' }]);
});

test('uid: stable for the same pod, node and file; changes with any of them', (t) => {
  const uid = ok(WEB).metadata.uid;
  t.is(ok(WEB + '\n# a comment\n').metadata.uid, uid, 'comments are not content');
  const json = JSON.stringify({
    kind: 'Pod',
    apiVersion: 'v1',
    spec: { terminationGracePeriodSeconds: 5, containers: [{ image: 'busybox:1.36', name: 'httpd', ports: [{ containerPort: 8080, name: 'http' }], lifecycle: { preStop: { exec: { command: ['sleep', '1'] } } } }] },
    metadata: { labels: { app: 'web' }, name: 'web' },
  });
  t.is(ok(json).metadata.uid, uid, 'JSON with other key order: the same pod');
  t.not(ok(WEB.replace('1.36', '1.37')).metadata.uid, uid);
  t.not(ok(WEB, '/etc/pods/other.yaml').metadata.uid, uid);
  t.not(ok(WEB, '/etc/pods/web.yaml', 'node2').metadata.uid, uid);
  t.is(ok(WEB.replace('name: web\n', 'name: web\n  uid: given-uid\n')).metadata.uid, 'given-uid', 'a uid in the manifest is kept');
});

test('labels and annotations as the kubelet puts them on sandboxes and containers', (t) => {
  const pod = ok(WEB);
  const c = pod.spec.containers[0]!;
  t.deepEqual(podLabels(pod), { app: 'web', 'io.kubernetes.pod.name': 'web-node1', 'io.kubernetes.pod.namespace': 'default', 'io.kubernetes.pod.uid': pod.metadata.uid });
  t.deepEqual(containerLabels(c, pod), {
    'io.kubernetes.pod.name': 'web-node1',
    'io.kubernetes.pod.namespace': 'default',
    'io.kubernetes.pod.uid': pod.metadata.uid,
    'io.kubernetes.container.name': 'httpd',
  });
  const a = containerAnnotations(c, pod, 3);
  t.deepEqual(a, {
    'io.kubernetes.container.hash': containerHash(c).toString(16),
    'io.kubernetes.container.restartCount': '3',
    'io.kubernetes.container.terminationMessagePath': '/dev/termination-log',
    'io.kubernetes.container.terminationMessagePolicy': 'File',
    'io.kubernetes.pod.terminationGracePeriod': '5',
    'io.kubernetes.container.preStopHandler': '{"exec":{"command":["sleep","1"]}}',
    'io.kubernetes.container.ports': '[{"name":"http","containerPort":8080,"protocol":"TCP"}]',
  });
  t.regex(a['io.kubernetes.container.hash']!, /^[0-9a-f]+$/);
});

test('invalid manifests: each error names its field and reason', (t) => {
  t.deepEqual(errors(WEB.replace('image: busybox:1.36', 'imagex: busybox')), ['spec.containers[0].image: Required value']);
  t.true(errors(WEB.replace('name: web\n', 'name: Web_1\n'))[0]!.startsWith('metadata.name: Invalid value: "Web_1"'));
  t.deepEqual(errors(WEB.replace('kind: Pod', 'kind: Deployment')), ['kind: expected apiVersion "v1" and kind "Pod", got apiVersion "v1" kind "Deployment"']);
  t.deepEqual(errors('apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {}\n'), ['spec.containers: Required value']);
  const many = errors(`
apiVersion: v1
kind: Pod
metadata: {name: x}
spec:
  restartPolicy: Sometimes
  volumes: [{name: data, emptyDir: {}}]
  containers:
  - name: a
    image: i
    resources: {requests: {cpu: "2"}, limits: {cpu: "1", memory: lots}}
    volumeMounts: [{name: nope, mountPath: /x}, {name: data, mountPath: relative}]
    livenessProbe: {exec: {command: [true]}, tcpSocket: {port: 1}}
    readinessProbe: {httpGet: {port: web}, periodSeconds: 0}
  - name: a
    image: i
`);
  t.true(many.includes('spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'), many.join('\n'));
  t.true(many.includes('spec.containers[1].name: Duplicate value: "a"'));
  t.true(many.some((e) => e.startsWith('spec.containers[0].resources.limits[memory]: Invalid value: "lots"')));
  t.true(many.includes('spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1'));
  t.true(many.includes('spec.containers[0].volumeMounts[0].name: Not found: "nope"'));
  t.true(many.includes('spec.containers[0].volumeMounts[1].mountPath: Invalid value: "relative": must be an absolute path'));
  t.true(many.some((e) => e.startsWith('spec.containers[0].livenessProbe: Forbidden: may not specify more than 1 handler type')));
  t.true(many.includes('spec.containers[0].readinessProbe.httpGet.port: Invalid value: "web": no container port named "web"'));
  t.true(many.includes('spec.containers[0].readinessProbe.periodSeconds: Invalid value: 0: must be greater than or equal to 1'));
  t.deepEqual(errors('apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: Pod\n'), ['2 documents in one file: one pod per file']);
  t.true(errors('apiVersion: v1\nkind: [Pod\n')[0]!.startsWith('not YAML or JSON'));
  t.deepEqual(errors('- a\n- b\n'), ['the document is not an object (a Pod)']);
  t.is(formatManifestErrors('/m/x.yaml', [{ field: 'spec', reason: 'Required value' }]), '/m/x.yaml: spec: Required value');
});

test('volumes the agent cannot mount are valid manifests (the pod reports it), sidecars are refused', (t) => {
  t.true(parseManifest(WEB.replace('  containers:', '  volumes: [{name: c, configMap: {name: x}}]\n  containers:'), '/m/a', 'n').ok);
  t.true(errors(WEB.replace('  containers:', '  initContainers: [{name: s, image: i, restartPolicy: Always}]\n  containers:')).some((e) => e.includes('sidecars')));
});

test('$(VAR) expansion: defined ones replaced, undefined ones kept, $$ escapes', (t) => {
  const vars = new Map([
    ['A', 'x'],
    ['B', 'y z'],
  ]);
  t.is(expand('$(A)-$(B)', vars), 'x-y z');
  t.is(expand('$(C) $(A)', vars), '$(C) x');
  t.is(expand('$$(A) $$ $', vars), '$(A) $ $');
  t.is(expand('$(A', vars), '$(A');
  t.is(expand('a$b', vars), 'a$b');
});

test('back-off: the first restart is free, then 10 s doubling to 5 min; 10 min idle resets', (t) => {
  let now = 0;
  const b = new Backoff(10_000, 300_000, () => now);
  const k = 'pod_ns_uid_c';
  const delays: number[] = [];
  let finished = 0;
  for (let i = 0; i < 8; i++) {
    // the container exits at `finished`; it may restart once not in back-off
    if (b.isInBackOffSince(k, finished)) {
      now = b.retryAt(k, finished);
      t.false(b.isInBackOffSince(k, finished));
    }
    delays.push(now - finished);
    b.next(k, finished);
    finished = now + 1000; // ran one second
    now = finished;
  }
  t.deepEqual(delays, [0, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
  // It ran 11 minutes since the last restart: the back-off starts over.
  finished = now + 11 * 60_000;
  now = finished;
  t.false(b.isInBackOffSince(k, finished));
  b.next(k, finished);
  t.is(b.get(k), 10_000);
  t.is(durationString(10_000), '10s');
  t.is(durationString(80_000), '1m20s');
  t.is(durationString(300_000), '5m0s');
});

function rc(name: string, state: RuntimeContainer['state'], exitCode = 0, createdAt = 1, restartCount = 0): RuntimeContainer {
  return {
    id: `${name}-${createdAt}`,
    name,
    podSandboxId: 's1',
    state,
    createdAt,
    startedAt: createdAt,
    finishedAt: state === 'CONTAINER_EXITED' ? createdAt + 1 : 0,
    exitCode,
    reason: state === 'CONTAINER_EXITED' ? (exitCode ? 'Error' : 'Completed') : '',
    message: '',
    restartCount,
    hash: '',
    image: 'i',
    imageRef: 'sha256:1',
    logPath: '',
    labels: {},
    annotations: {},
    mounts: [],
  };
}

function running(containers: RuntimeContainer[]): RuntimePodStatus {
  return { sandboxes: [{ id: 's1', state: 'SANDBOX_READY', attempt: 0, createdAt: 0, ips: [], name: 'p', namespace: 'default', uid: 'u' }], containers };
}

const POD_WITH_INIT = `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  restartPolicy: RESTART
  initContainers: [{name: init, image: i}]
  containers: [{name: main, image: i}]
`;

test('pod actions: sandbox first, init containers in order, restart policies', (t) => {
  const always = ok(POD_WITH_INIT.replace('RESTART', 'Always'));
  const never = ok(POD_WITH_INIT.replace('RESTART', 'Never'));
  const onFailure = ok(POD_WITH_INIT.replace('RESTART', 'OnFailure'));
  const none = () => undefined;

  const fresh = computePodActions(always, { sandboxes: [], containers: [] }, none);
  t.true(fresh.createSandbox);
  t.is(fresh.attempt, 0);
  t.is(fresh.nextInitContainer?.name, 'init');
  t.deepEqual(fresh.containersToStart, []);

  const initRunning = computePodActions(always, running([rc('init', 'CONTAINER_RUNNING')]), none);
  t.false(initRunning.createSandbox);
  t.is(initRunning.nextInitContainer, undefined);
  t.deepEqual(initRunning.containersToStart, []);

  const initDone = computePodActions(always, running([rc('init', 'CONTAINER_EXITED', 0)]), none);
  t.deepEqual(initDone.containersToStart.map((c) => c.name), ['main']);

  const initFailed = computePodActions(always, running([rc('init', 'CONTAINER_EXITED', 1)]), none);
  t.is(initFailed.nextInitContainer?.name, 'init', 'a failed init container is retried');
  t.true(computePodActions(never, running([rc('init', 'CONTAINER_EXITED', 1)]), none).killPod, 'Never: the pod fails');

  const exited0 = running([rc('init', 'CONTAINER_EXITED', 0), rc('main', 'CONTAINER_EXITED', 0, 2)]);
  t.deepEqual(computePodActions(always, exited0, none).containersToStart.map((c) => c.name), ['main']);
  t.true(computePodActions(onFailure, exited0, none).killPod, 'OnFailure + exit 0: done');
  const exited1 = running([rc('init', 'CONTAINER_EXITED', 0), rc('main', 'CONTAINER_EXITED', 1, 2)]);
  t.deepEqual(computePodActions(onFailure, exited1, none).containersToStart.map((c) => c.name), ['main']);
  t.true(computePodActions(never, exited1, none).killPod, 'Never: done');

  const live = running([rc('init', 'CONTAINER_EXITED', 0), rc('main', 'CONTAINER_RUNNING', 0, 2)]);
  const failing = computePodActions(always, live, (type) => (type === 'liveness' ? 'Failure' : undefined));
  t.deepEqual(failing.containersToKill.map((k) => [k.container.name, k.reason, k.message]), [['main', 'LivenessProbe', 'Container main failed liveness probe, will be restarted']]);
  t.deepEqual(failing.containersToStart.map((c) => c.name), ['main']);
  t.false(failing.killPod);

  const deadSandbox: RuntimePodStatus = { ...exited1, sandboxes: [{ ...exited1.sandboxes[0]!, state: 'SANDBOX_NOTREADY', attempt: 2 }] };
  const again = computePodActions(always, deadSandbox, none);
  t.true(again.createSandbox);
  t.is(again.attempt, 3);
  t.is(again.nextInitContainer?.name, 'init', 'a new sandbox starts from the first init container');
  t.false(computePodActions(never, deadSandbox, none).createSandbox, 'Never: no new sandbox for a pod that ran');
});

test('pod status: phase, conditions, container states and restart counts', (t) => {
  const pod = ok(POD_WITH_INIT.replace('RESTART', 'Never'));
  const base = {
    pod,
    runtimeName: 'cri-mesos',
    hostIPs: ['10.0.0.1'],
    startTime: new Date('2026-01-01T00:00:00Z'),
    reasons: new Map<string, { reason: string; message: string }>(),
    ready: () => true,
    started: () => true,
    sandboxChanged: false,
    previous: undefined,
  };
  const pending = buildPodStatus({ ...base, runtime: running([rc('init', 'CONTAINER_RUNNING')]) });
  t.is(pending.phase, 'Pending');
  t.deepEqual(pending.containerStatuses[0]!.state, { waiting: { reason: 'PodInitializing' } });
  t.like(pending.conditions.find((c) => c.type === 'Initialized'), { status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [init]' });

  const runningStatus = buildPodStatus({ ...base, runtime: running([rc('init', 'CONTAINER_EXITED', 0), rc('main', 'CONTAINER_RUNNING', 0, 5, 2), rc('main', 'CONTAINER_EXITED', 3, 3, 1)]) });
  t.is(runningStatus.phase, 'Running');
  const main = runningStatus.containerStatuses[0]!;
  t.true(main.ready);
  t.is(main.restartCount, 2);
  t.is(main.containerID, 'cri-mesos://main-5');
  t.like(main.lastState.terminated, { exitCode: 3, reason: 'Error', containerID: 'cri-mesos://main-3' });
  t.deepEqual(
    runningStatus.conditions.map((c) => `${c.type}=${c.status}`),
    ['PodReadyToStartContainers=True', 'Initialized=True', 'Ready=True', 'ContainersReady=True', 'PodScheduled=True'],
  );
  t.true(runningStatus.initContainerStatuses![0]!.ready, 'a completed init container is ready');

  const succeeded = buildPodStatus({ ...base, runtime: running([rc('init', 'CONTAINER_EXITED', 0), rc('main', 'CONTAINER_EXITED', 0, 2)]) });
  t.is(succeeded.phase, 'Succeeded');
  t.like(succeeded.conditions.find((c) => c.type === 'Ready'), { status: 'False', reason: 'PodCompleted' });
  const failed = buildPodStatus({ ...base, runtime: running([rc('init', 'CONTAINER_EXITED', 0), rc('main', 'CONTAINER_EXITED', 1, 2)]) });
  t.is(failed.phase, 'Failed');

  const always = ok(POD_WITH_INIT.replace('RESTART', 'Always'));
  const backoff = buildPodStatus({
    ...base,
    pod: always,
    runtime: running([rc('init', 'CONTAINER_EXITED', 0), rc('main', 'CONTAINER_EXITED', 1, 2, 4)]),
    reasons: new Map([['main', { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container=main pod=p' }]]),
  });
  const m = backoff.containerStatuses[0]!;
  t.deepEqual(m.state, { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container=main pod=p' } });
  t.like(m.lastState.terminated, { exitCode: 1 });
  t.is(m.restartCount, 4);
  t.is(backoff.phase, 'Running', 'Always: restarting is running');
  t.like(backoff.conditions.find((c) => c.type === 'Ready'), { status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [main]' });
});
