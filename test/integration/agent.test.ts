// `cri-mesos agent` against a real cri-mesos: a manifest directory of pods run as the kubelet
// runs static pods; what reaches the runtime (labels, annotations, log paths, cgroup parents,
// resources) is checked over the CRI, what the pods do from inside them and on disk.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useDaemon } from '../helpers/suite.js';
import { BUSYBOX, criLogLines } from '../helpers/daemon.js';
import { agentCgroupRoot, agentDirs, agentLog, freePort, podNamed, removeManifest, startAgent, until, useAgentCgroups, writeManifest } from '../helpers/agent.js';
import type { Pod } from '../../src/agent/types.js';
import { Cgroups } from '../../src/cgroups/index.js';

const d = useDaemon('agent tests');
if (d) useAgentCgroups(d);

/** A host-network pod of one busybox container running `script`. */
function pod(name: string, script: string, extra = '', containerExtra = ''): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels: {app: ${name}}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 2
${extra}  containers:
  - name: main
    image: ${BUSYBOX}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, ${JSON.stringify(script)}]
${containerExtra}`;
}

function logText(pod: Pod, podLogsDir: string, container: string, restart = 0): string {
  const file = join(podLogsDir, `${pod.metadata.namespace}_${pod.metadata.name}_${pod.metadata.uid}`, container, `${restart}.log`);
  try {
    return criLogLines(file)
      .map((l) => l.text)
      .join('\n');
  } catch {
    return '';
  }
}

if (d) {
  test('a manifest directory: readiness, restarts with back-off, init + emptyDir, read-only hostPath, liveness, restartPolicy Never', async (t) => {
    const dirs = agentDirs(d, 'dir');
    const port = await freePort();
    const hostDir = mkdtempSync(join(tmpdir(), 'cm-agent-host-'));
    t.teardown(() => import('node:fs').then((fs) => fs.rmSync(hostDir, { recursive: true, force: true })));
    writeFileSync(join(hostDir, 'data.txt'), 'from-the-host\n');

    writeManifest(
      dirs,
      'web.yaml',
      pod(
        'web',
        `mkdir -p /www; (sleep 2; echo ready > /www/index.html) & exec httpd -f -p ${port} -h /www`,
        '',
        `    ports: [{name: http, containerPort: ${port}}]
    readinessProbe:
      httpGet: {path: /index.html, port: http}
      periodSeconds: 1
`,
      ),
    );
    writeManifest(dirs, 'crash.yaml', pod('crash', 'echo crashing; sleep 0.5; exit 1'));
    writeManifest(
      dirs,
      'init.json',
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'init' },
        spec: {
          hostNetwork: true,
          terminationGracePeriodSeconds: 2,
          volumes: [{ name: 'work', emptyDir: {} }],
          initContainers: [{ name: 'prepare', image: BUSYBOX, imagePullPolicy: 'Never', command: ['sh', '-c', 'echo written-by-init > /work/msg'], volumeMounts: [{ name: 'work', mountPath: '/work' }] }],
          containers: [{ name: 'main', image: BUSYBOX, imagePullPolicy: 'Never', command: ['sh', '-c', 'cat /work/msg; exec sleep 600'], volumeMounts: [{ name: 'work', mountPath: '/work' }] }],
        },
      }),
    );
    writeManifest(
      dirs,
      'hostpath.yaml',
      pod(
        'hostpath',
        'cat /data/data.txt; touch /data/new 2>&1 || echo write-refused; exec sleep 600',
        `  volumes:
  - name: data
    hostPath: {path: ${hostDir}, type: Directory}
`,
        `    volumeMounts: [{name: data, mountPath: /data, readOnly: true}]
`,
      ),
    );
    writeManifest(
      dirs,
      'liveness.yaml',
      pod(
        'liveness',
        'touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 600',
        '',
        `    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 1
      failureThreshold: 2
      terminationGracePeriodSeconds: 2
`,
      ),
    );
    writeManifest(dirs, 'succeeds.yaml', pod('succeeds', 'echo done; exit 0', '  restartPolicy: Never\n'));
    writeManifest(dirs, 'fails.yaml', pod('fails', 'exit 3', '  restartPolicy: Never\n'));

    const agent = await startAgent(t, d, dirs, { backoffInitialMs: 2_000, backoffMaxMs: 16_000 });
    const get = (name: string) => podNamed(agent.pods(), dirs, name);
    // The crashing container's runs and back-off messages, watched from the start.
    const seen = new Map<number, { startedAt: string; finishedAt: string }>();
    const messages: string[] = [];
    const watchCrash = setInterval(() => {
      const s = get('crash')?.status?.containerStatuses[0];
      if (!s) return;
      const last = s.lastState.terminated;
      if (last?.startedAt && last.finishedAt) seen.set(s.restartCount - (s.state.waiting ? 0 : 1), { startedAt: last.startedAt, finishedAt: last.finishedAt });
      const w = s.state.waiting;
      if (w?.reason === 'CrashLoopBackOff' && w.message && !messages.includes(w.message)) messages.push(w.message);
    }, 100);
    t.teardown(() => clearInterval(watchCrash));

    // The web pod turns Ready once its probe gets a 200, and really serves.
    const web = await until('web to be Ready', () => {
      const p = get('web');
      return p?.status?.conditions.find((c) => c.type === 'Ready')?.status === 'True' && p;
    });
    t.is(web.status!.phase, 'Running');
    t.true(web.status!.containerStatuses[0]!.ready);
    t.is(await (await fetch(`http://127.0.0.1:${port}/index.html`)).text(), 'ready\n');

    // Init container first, into the emptyDir; the main container reads it.
    const init = await until('init to run main', () => {
      const p = get('init');
      return p?.status?.containerStatuses[0]?.state.running && p;
    });
    t.like(init.status!.initContainerStatuses![0]!.state.terminated, { exitCode: 0, reason: 'Completed' });
    t.is(init.status!.conditions.find((c) => c.type === 'Initialized')?.status, 'True');
    await until('main to print the message', () => logText(init, dirs.podLogsDir, 'main').includes('written-by-init'));
    const emptyDir = join(dirs.root, 'pods', init.metadata.uid, 'volumes', 'kubernetes.io~empty-dir', 'work');
    t.is(readFileSync(join(emptyDir, 'msg'), 'utf8'), 'written-by-init\n', 'the emptyDir is in the agent root');

    // A read-only hostPath: readable, not writable.
    const hp = await until('hostpath to run', () => {
      const p = get('hostpath');
      return p?.status?.containerStatuses[0]?.state.running && p;
    });
    await until('hostpath output', () => logText(hp, dirs.podLogsDir, 'main').includes('write-refused'));
    t.true(logText(hp, dirs.podLogsDir, 'main').includes('from-the-host'));
    t.false(existsSync(join(hostDir, 'new')));

    // restartPolicy Never: Succeeded and Failed, their sandboxes stopped.
    const ok = await until('succeeds to be Succeeded', () => get('succeeds')?.status?.phase === 'Succeeded' && get('succeeds'));
    t.like(ok.status!.containerStatuses[0]!.state.terminated, { exitCode: 0, reason: 'Completed' });
    t.is(ok.status!.containerStatuses[0]!.restartCount, 0);
    const bad = await until('fails to be Failed', () => get('fails')?.status?.phase === 'Failed' && get('fails'));
    t.like(bad.status!.containerStatuses[0]!.state.terminated, { exitCode: 3 });
    await until('the finished pods to have their sandboxes stopped', async () => {
      const boxes = (await d.client.call('ListPodSandbox', {})).items as { metadata: { uid: string }; state: string }[];
      return [ok, bad].every((p) => boxes.filter((b) => b.metadata.uid === p.metadata.uid).every((b) => b.state === 'SANDBOX_NOTREADY'));
    });

    // The liveness probe fails 2 s after start: the container is killed and restarted.
    const live = await until('liveness to be restarted', () => {
      const p = get('liveness');
      const s = p?.status?.containerStatuses[0];
      return s && s.restartCount >= 1 && s.lastState.terminated && p;
    });
    t.truthy(live.status!.containerStatuses[0]!.lastState.terminated!.finishedAt);
    t.true(agentLog(agent).some((l) => l.includes('liveness probe failed') && l.includes('liveness')), 'the agent says why');

    // The crashing container: restarted with a growing back-off (2 s, 4 s, 8 s here).
    await until('crash to restart 4 times', () => (get('crash')?.status?.containerStatuses[0]?.restartCount ?? 0) >= 4 && seen.size >= 4, 90_000);
    clearInterval(watchCrash);
    const backoffs = messages.map((m) => /back-off (\S+) restarting failed container=main pod=crash-node-dir_default\(/.exec(m)?.[1]);
    t.deepEqual(backoffs.slice(0, 3), ['2s', '4s', '8s'], messages.join('\n'));
    const runs = [...seen.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
    const gaps = runs.slice(1).map((r, i) => (Date.parse(r.startedAt) - Date.parse(runs[i]!.finishedAt)) / 1000);
    // Second-precision times, and a busy machine (a relist, a create and a start lie between an
    // exit and the next start): the first restart is not held back, then each gap is at least its
    // back-off less a second, and they grow.
    t.true(gaps[0]! <= 3, `gaps ${gaps}`);
    t.true(gaps[1]! >= 1 && gaps[1]! <= 5, `gaps ${gaps}`);
    t.true(gaps[2]! >= 3 && gaps[2]! <= 8 && gaps[2]! > gaps[0]!, `gaps ${gaps}`);
    const crash = get('crash')!;
    t.is(crash.status!.phase, 'Running', 'restartPolicy Always: a crash loop is Running');
    t.true(logText(crash, dirs.podLogsDir, 'main', crash.status!.containerStatuses[0]!.restartCount - 1).includes('crashing'), 'each restart logs to <n>.log');

    // The status address serves the same pods, and /healthz.
    const served = (await (await fetch(`http://127.0.0.1:${agent.statusPort}/pods`)).json()) as { kind: string; items: Pod[] };
    t.is(served.kind, 'PodList');
    t.deepEqual(served.items.map((p) => p.metadata.name).sort(), ['crash', 'fails', 'hostpath', 'init', 'liveness', 'succeeds', 'web'].map((n) => `${n}-${dirs.nodeName}`));
    t.is(await (await fetch(`http://127.0.0.1:${agent.statusPort}/healthz`)).text(), 'ok');

    for (const f of readdirSync(dirs.manifests)) removeManifest(dirs, f);
    await until(
      'all pods removed',
      async () => agent.pods().length === 0 && ((await d.client.call('ListPodSandbox', {})).items ?? []).every((s: { metadata: { name: string } }) => !s.metadata.name.endsWith(`-${dirs.nodeName}`)),
      60_000,
    );
  });

  test('what reaches the runtime is what the kubelet sends: labels, annotations, log paths, cgroup parents, resources', async (t) => {
    const dirs = agentDirs(d, 'cri');
    writeManifest(
      dirs,
      'burst.yaml',
      pod(
        'burst',
        'exec sleep 600',
        '  shareProcessNamespace: true\n',
        `    resources:
      requests: {cpu: 250m, memory: 32Mi}
      limits: {cpu: 500m, memory: 64Mi}
    env: [{name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}, {name: GREETING, value: "hi $(POD)"}]
`,
      ),
    );
    writeManifest(dirs, 'guaranteed.yaml', pod('guaranteed', 'exec sleep 600', '', '    resources: {limits: {cpu: "1", memory: 64Mi}}\n'));
    const agent = await startAgent(t, d, dirs);
    const pods = await until('both pods running', () => {
      const ps = ['burst', 'guaranteed'].map((n) => podNamed(agent.pods(), dirs, n));
      return ps.every((p) => p?.status?.containerStatuses[0]?.state.running) && (ps as Pod[]);
    });
    for (const p of pods) {
      const uid = p.metadata.uid;
      const guaranteed = p.metadata.name.startsWith('guaranteed');
      const [box] = (await d.client.call('ListPodSandbox', { filter: { label_selector: { 'io.kubernetes.pod.uid': uid } } })).items as { id: string }[];
      const st = await d.client.call('PodSandboxStatus', { pod_sandbox_id: box!.id, verbose: true });
      const config = JSON.parse(st.info.info).config;
      const name = p.metadata.name;
      t.deepEqual(config.metadata, { name, namespace: 'default', uid, attempt: 0 });
      t.deepEqual(config.labels, { app: name.split('-')[0], 'io.kubernetes.pod.name': name, 'io.kubernetes.pod.namespace': 'default', 'io.kubernetes.pod.uid': uid });
      t.deepEqual(Object.keys(config.annotations).sort(), ['kubernetes.io/config.hash', 'kubernetes.io/config.seen', 'kubernetes.io/config.source']);
      t.is(config.annotations['kubernetes.io/config.hash'], uid);
      t.is(config.annotations['kubernetes.io/config.source'], 'file');
      t.regex(config.annotations['kubernetes.io/config.seen'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      t.is(config.log_directory, join(dirs.podLogsDir, `default_${name}_${uid}`));
      t.is(config.linux.cgroup_parent, guaranteed ? `/${agentCgroupRoot(d)}/kubepods/pod${uid}` : `/${agentCgroupRoot(d)}/kubepods/burstable/pod${uid}`);
      t.is(config.linux.security_context.namespace_options.network, 'NODE');
      t.is(config.linux.security_context.namespace_options.pid, guaranteed ? 'CONTAINER' : 'POD');
      t.is(config.linux.security_context.seccomp.profile_type, 'RuntimeDefault');
      t.is(config.hostname, '', 'host network: no hostname');
      t.true(existsSync(config.log_directory));

      const [ctr] = (await d.client.call('ListContainers', { filter: { label_selector: { 'io.kubernetes.pod.uid': uid } } })).containers as { id: string }[];
      const cs = (await d.client.call('ContainerStatus', { container_id: ctr!.id, verbose: true })).status;
      t.deepEqual(cs.labels, { 'io.kubernetes.pod.name': name, 'io.kubernetes.pod.namespace': 'default', 'io.kubernetes.pod.uid': uid, 'io.kubernetes.container.name': 'main' });
      t.is(cs.annotations['io.kubernetes.container.restartCount'], '0');
      t.is(cs.annotations['io.kubernetes.pod.terminationGracePeriod'], '2');
      t.is(cs.annotations['io.kubernetes.container.terminationMessagePath'], '/dev/termination-log');
      t.is(cs.annotations['io.kubernetes.container.terminationMessagePolicy'], 'File');
      t.regex(cs.annotations['io.kubernetes.container.hash'], /^[0-9a-f]+$/);
      t.deepEqual(cs.metadata, { name: 'main', attempt: 0 });
      t.is(cs.log_path, join(config.log_directory, 'main', '0.log'));
      t.true(existsSync(cs.log_path));
      const r = cs.resources.linux;
      t.is(Number(r.cpu_shares), guaranteed ? 1024 : 256);
      t.is(Number(r.cpu_quota), guaranteed ? 100000 : 50000);
      t.is(Number(r.cpu_period), 100000);
      t.is(Number(r.memory_limit_in_bytes), 64 * 1024 * 1024);
      if (guaranteed) t.is(Number(r.oom_score_adj), -997);
      else t.true(Number(r.oom_score_adj) > 2 && Number(r.oom_score_adj) < 1000);
      t.is(p.status!.qosClass, guaranteed ? 'Guaranteed' : 'Burstable');
      // The termination message file is the kubelet's: mounted from the pod's dir.
      const tm = (cs.mounts as { container_path: string; host_path: string }[]).find((m) => m.container_path === '/dev/termination-log');
      t.truthy(tm);
      t.true(tm!.host_path.startsWith(join(dirs.root, 'pods', uid, 'containers', 'main')));
      // The cgroup the runtime made is under the kubelet's pod cgroup.
      const cg = Cgroups.detect();
      const podCg = config.linux.cgroup_parent.slice(1);
      const cpuDir = cg.v1('cpu') !== undefined ? cg.v1Path('cpu', podCg) : cg.v2Path(podCg);
      t.true(!!cpuDir && existsSync(cpuDir), `pod cgroup ${cpuDir}`);
    }
    // env from the downward API and $(VAR) expansion, seen from inside.
    const burst = pods.find((p) => p.metadata.name.startsWith('burst'))!;
    const [bctr] = (await d.client.call('ListContainers', { filter: { label_selector: { 'io.kubernetes.pod.uid': burst.metadata.uid } } })).containers as { id: string }[];
    const env = await d.client.call('ExecSync', { container_id: bctr!.id, cmd: ['sh', '-c', 'echo "$GREETING"'], timeout: 10 });
    t.is(env.stdout.toString(), `hi ${burst.metadata.name}\n`);
  });

  test('editing a manifest replaces the pod; removing it removes the pod, its containers, cgroup, log dir and volumes', async (t) => {
    const dirs = agentDirs(d, 'edit');
    const volumes = `  volumes: [{name: scratch, emptyDir: {medium: Memory, sizeLimit: 8Mi}}]\n`;
    const mounts = `    volumeMounts: [{name: scratch, mountPath: /scratch}]\n`;
    writeManifest(dirs, 'app.yaml', pod('app', 'echo v1 > /scratch/v; exec sleep 600', volumes, mounts));
    const agent = await startAgent(t, d, dirs);
    const v1 = await until('v1 running', () => podNamed(agent.pods(), dirs, 'app')?.status?.containerStatuses[0]?.state.running && podNamed(agent.pods(), dirs, 'app'));
    const v1Uid = v1.metadata.uid;
    const v1Scratch = join(dirs.root, 'pods', v1Uid, 'volumes', 'kubernetes.io~empty-dir', 'scratch');
    await until('the tmpfs emptyDir written', () => existsSync(join(v1Scratch, 'v')));
    const mountLine = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === v1Scratch);
    t.truthy(mountLine, 'medium Memory: a tmpfs');
    t.regex(mountLine!, / - tmpfs .*size=8192k/);

    writeManifest(dirs, 'app.yaml', pod('app', 'exec sleep 600', volumes, mounts).replace('labels: {app: app}', 'labels: {app: app, version: "2"}'));
    const v2 = await until('v2 replaces v1', () => {
      const p = podNamed(agent.pods(), dirs, 'app');
      return p && p.metadata.uid !== v1Uid && p.status?.containerStatuses[0]?.state.running && p;
    });
    t.is(v2.metadata.labels.version, '2');
    const sandboxes = (await d.client.call("ListPodSandbox", {})).items as { metadata: { uid: string; name: string } }[];
    t.deepEqual(sandboxes.filter((s) => s.metadata.name === v2.metadata.name).map((s) => s.metadata.uid), [v2.metadata.uid], 'the old pod is gone, not stopped');
    t.false(existsSync(join(dirs.root, 'pods', v1Uid)), "the old pod's dir and tmpfs are gone");
    t.false(existsSync(join(dirs.podLogsDir, `default_${v1.metadata.name}_${v1Uid}`)), "the old pod's logs are gone");

    removeManifest(dirs, 'app.yaml');
    const uid = v2.metadata.uid;
    await until('the pod removed', async () => {
      const boxes = ((await d.client.call('ListPodSandbox', {})).items ?? []).filter((s: { metadata: { uid: string } }) => s.metadata.uid === uid);
      const ctrs = ((await d.client.call('ListContainers', {})).containers ?? []).filter((c: { labels: Record<string, string> }) => c.labels['io.kubernetes.pod.uid'] === uid);
      return agent.pods().length === 0 && boxes.length === 0 && ctrs.length === 0;
    });
    await agent.settled();
    t.false(existsSync(join(dirs.podLogsDir, `default_${v2.metadata.name}_${uid}`)), 'no log dir');
    t.false(existsSync(join(dirs.root, 'pods', uid)), 'no pod dir');
    t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(join(dirs.root, 'pods')), 'no tmpfs left mounted');
    const cg = Cgroups.detect();
    for (const mp of cg.allMountPoints()) {
      t.false(existsSync(join(mp, agentCgroupRoot(d), 'kubepods', 'besteffort', `pod${uid}`)), `no pod cgroup in ${mp}`);
    }
  });

  test('hooks and probes: postStart exec and httpGet, preStop exec, startup tcpSocket, readiness exec', async (t) => {
    const dirs = agentDirs(d, 'hooks');
    const port = await freePort();
    const hostDir = mkdtempSync(join(tmpdir(), 'cm-agent-hooks-'));
    t.teardown(() => import('node:fs').then((fs) => fs.rmSync(hostDir, { recursive: true, force: true })));
    // A server on the node that the httpGet hook calls.
    const hits: { url: string; agent: string }[] = [];
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      hits.push({ url: req.url ?? '', agent: String(req.headers['user-agent']) });
      res.writeHead(500).end(); // a hook's status code does not matter, only that it was answered
    });
    const hookPort = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));

    writeManifest(
      dirs,
      'hooks.yaml',
      `apiVersion: v1
kind: Pod
metadata: {name: hooks}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 5
  volumes: [{name: out, hostPath: {path: ${hostDir}}}]
  containers:
  - name: main
    image: ${BUSYBOX}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'sleep 6; exec httpd -f -p ${port}']
    volumeMounts: [{name: out, mountPath: /out}]
    lifecycle:
      postStart: {exec: {command: [sh, -c, 'echo post-start > /out/post-start']}}
      preStop: {exec: {command: [sh, -c, 'echo pre-stop > /out/pre-stop']}}
    startupProbe: {tcpSocket: {port: ${port}}, periodSeconds: 1, failureThreshold: 30}
    readinessProbe: {exec: {command: [test, -f, /out/post-start]}, periodSeconds: 1}
  - name: side
    image: ${BUSYBOX}
    imagePullPolicy: IfNotPresent
    command: [sleep, '600']
    lifecycle:
      postStart: {httpGet: {host: 127.0.0.1, port: ${hookPort}, path: /started, httpHeaders: [{name: X-Pod, value: hooks}]}}
`,
    );
    const agent = await startAgent(t, d, dirs);
    const get = () => podNamed(agent.pods(), dirs, 'hooks');
    await until('postStart exec to have run', () => existsSync(join(hostDir, 'post-start')));
    await until('postStart httpGet to have run', () => hits.length > 0);
    t.is(hits[0]!.url, '/started');
    t.regex(hits[0]!.agent, /^kube-lifecycle\//);
    // Not started (and so not ready) until the startup probe connects, 6 s in.
    const early = await until('main running', () => {
      const c = get()?.status?.containerStatuses.find((x) => x.name === 'main');
      return c?.state.running && c;
    });
    t.true(!early.started && !early.ready, JSON.stringify(early));
    const ready = await until('started and ready', () => {
      const c = get()?.status?.containerStatuses.find((x) => x.name === 'main');
      return c?.started && c.ready && get();
    });
    t.is(ready.status!.conditions.find((c) => c.type === 'Ready')?.status, 'True');
    t.is(ready.status!.containerStatuses.find((c) => c.name === 'main')!.restartCount, 0, 'a startup probe that succeeds kills nothing');
    removeManifest(dirs, 'hooks.yaml');
    await until('the pod removed', () => agent.pods().length === 0);
    await agent.settled();
    t.is(readFileSync(join(hostDir, 'pre-stop'), 'utf8'), 'pre-stop\n', 'preStop ran before the container was stopped');
  });

  test('an invalid manifest is reported with its file and fields, and the other pods keep running', async (t) => {
    const dirs = agentDirs(d, 'invalid');
    writeManifest(dirs, 'good.yaml', pod('good', 'exec sleep 600'));
    const agent = await startAgent(t, d, dirs);
    const good = await until('good running', () => podNamed(agent.pods(), dirs, 'good')?.status?.containerStatuses[0]?.state.running && podNamed(agent.pods(), dirs, 'good'));
    const goodCtr = good.status!.containerStatuses[0]!.containerID;

    const bad = writeManifest(dirs, 'bad.yaml', pod('bad', 'true').replace(`image: ${BUSYBOX}`, 'image: ""').replace('imagePullPolicy: IfNotPresent', 'imagePullPolicy: Sometimes'));
    writeManifest(dirs, 'secret.yaml', pod('secret', 'exec sleep 600', '  volumes: [{name: creds, secret: {secretName: db}}]\n', '    volumeMounts: [{name: creds, mountPath: /creds}]\n'));
    const report = await until('the invalid manifest reported', async () => {
      const res = (await (await fetch(`http://127.0.0.1:${agent.statusPort}/manifests`)).json()) as { items: { file: string; errors?: { field: string; reason: string }[] }[] };
      return res.items.find((m) => m.file === bad && m.errors);
    });
    t.deepEqual(report.errors, [
      { field: 'spec.containers[0].image', reason: 'Required value' },
      { field: 'spec.containers[0].imagePullPolicy', reason: 'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"' },
    ]);
    t.true(agentLog(agent).some((l) => l.includes(`invalid manifest: ${bad}: spec.containers[0].image: Required value`)));
    // A volume that needs an API server: the pod is there, Pending, and says why.
    const secret = await until('the secret pod to report its volume', () => {
      const p = podNamed(agent.pods(), dirs, 'secret');
      return p?.status?.message ? p : undefined;
    });
    t.is(secret.status!.phase, 'Pending');
    t.is(secret.status!.reason, 'FailedMount');
    t.regex(secret.status!.message!, /volume "creds": secret volumes need an API server/);
    t.is(podNamed(agent.pods(), dirs, 'bad'), undefined);
    const still = podNamed(agent.pods(), dirs, 'good')!;
    t.is(still.status!.containerStatuses[0]!.containerID, goodCtr, 'the good pod was not touched');
    t.is(still.status!.phase, 'Running');
    // `cri-mesos agent pods` shows both.
    const { podsTable } = await import('../../src/agent/pods-table.js');
    const table = podsTable(agent.pods(), agent.manifests());
    t.regex(table, new RegExp(`good-${dirs.nodeName}\\s+1/1\\s+Running\\s+0`));
    t.regex(table, /FailedMount/);
    t.regex(table, /Manifests not run:\n {2}\S+bad\.yaml: spec\.containers\[0\]\.image: Required value/);
  });
}
