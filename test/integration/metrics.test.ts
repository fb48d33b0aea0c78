// Prometheus /metrics and /healthz on metrics_address, scraped over HTTP from a real daemon and
// read with the strict exposition parser (test/helpers/prom-text.ts): the series move as RPCs are
// made, pods and containers run, images are pulled, a container is OOM-killed, the daemon
// restarts; /healthz answers; other paths are 404; with metrics off nothing more listens, and an
// address in use fails the start.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { makeTar } from '../../hack/build-test-images.js';
import { hostPlatform } from '../../src/images/import.js';
import { containerConfig, eventsClient, isRoot, podConfig, TestDaemon, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';
import { buildImage, freePort, registryAvailable, TestRegistry } from '../helpers/registry.js';
import { parseExposition, sampleValue, type Family } from '../helpers/prom-text.js';

const MiB = 1024 * 1024;
const flags: string[] = [];
let port = 0;
if (isRoot()) {
  // Before the daemon's own before hook (registered by useDaemon below): its flags name the port.
  test.serial.before(async () => {
    port = await freePort();
    flags.push('--metrics-address', `127.0.0.1:${port}`);
  });
}
const d = useDaemon('metrics tests', { flags });

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(path: string, method = 'GET', at = port): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: at, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function scrape(): Promise<Map<string, Family>> {
  const r = await get('/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.body}`);
  return parseExposition(r.body);
}

/** A sample's value, 0 when the series does not exist yet (a labelled counter before its first event). */
function v(fams: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  return sampleValue(fams, name, labels) ?? 0;
}

/** TCP ports a process listens on, from its socket fds and its network namespace's /proc/net/tcp{,6}. */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const file of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is field 1 (hex ip:port), st field 3 (0A = LISTEN), inode field 9.
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9]!)) ports.add(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}

const PHASES = ['STARTING', 'PROVISIONING', 'PREPARING', 'ISOLATING', 'FETCHING'];

if (d) {
  test.serial('GET /metrics is Prometheus text with every cri_mesos_ family; /healthz is 200 ok; other paths 404, other methods 405', async (t) => {
    const r = await get('/metrics');
    t.is(r.status, 200);
    t.regex(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4; charset=utf-8$/);
    const fams = parseExposition(r.body);
    for (const name of [
      'cri_mesos_rpc_duration_seconds',
      'cri_mesos_rpc_errors_total',
      'cri_mesos_pods',
      'cri_mesos_containers',
      'cri_mesos_containerizer_containers',
      'cri_mesos_launch_phase_duration_seconds',
      'cri_mesos_image_pull_bytes_total',
      'cri_mesos_image_pull_duration_seconds',
      'cri_mesos_image_pull_failures_total',
      'cri_mesos_oom_kills_total',
      'cri_mesos_recovery_duration_seconds',
      'cri_mesos_recovery_containers',
      'cri_mesos_recovery_orphans',
      'cri_mesos_helper_processes',
      'cri_mesos_event_subscribers',
      'cri_mesos_event_subscribers_dropped_total',
      'cri_mesos_events_sent_total',
      'cri_mesos_process_resident_memory_bytes',
    ]) {
      t.true(fams.has(name), name);
    }
    t.is(fams.get('cri_mesos_rpc_duration_seconds')?.type, 'histogram');
    t.is(fams.get('cri_mesos_rpc_errors_total')?.type, 'counter');
    t.is(fams.get('cri_mesos_pods')?.type, 'gauge');
    // The recovery at start-up is done (the daemon answered), and was measured.
    t.true(v(fams, 'cri_mesos_recovery_duration_seconds') > 0);
    t.is(v(fams, 'cri_mesos_recovery_containers', { outcome: 'running' }), 0);

    const h = await get('/healthz');
    t.is(h.status, 200);
    t.is(h.body, 'ok');
    t.is((await get('/healthz?verbose=1')).status, 200);
    t.is((await get('/metrics?x=1')).status, 200);
    for (const path of ['/', '/metric', '/metrics/', '/metrics/x', '/healthz/x', '/debug/pprof']) t.is((await get(path)).status, 404, path);
    const post = await get('/metrics', 'POST');
    t.is(post.status, 405);
    t.is(post.headers.allow, 'GET, HEAD');
    const head = await get('/healthz', 'HEAD');
    t.is(head.status, 200);
    t.is(head.body, '');
  });

  test.serial('each RPC moves its latency histogram by one; a NOT_FOUND moves the error counter of its method and code', async (t) => {
    const N = 7;
    const before = await scrape();
    for (let i = 0; i < N; i++) await d.client.call('Version', {});
    for (let i = 0; i < N; i++) {
      const err = await t.throwsAsync(d.client.call('PodSandboxStatus', { pod_sandbox_id: `no-such-pod-${i}` }));
      t.is((err as unknown as grpc.ServiceError).code, grpc.status.NOT_FOUND);
    }
    const after = await scrape();
    const count = (f: Map<string, Family>, method: string) => v(f, 'cri_mesos_rpc_duration_seconds_count', { method });
    t.is(count(after, 'Version') - count(before, 'Version'), N);
    t.is(count(after, 'PodSandboxStatus') - count(before, 'PodSandboxStatus'), N);
    t.true(v(after, 'cri_mesos_rpc_duration_seconds_sum', { method: 'Version' }) > v(before, 'cri_mesos_rpc_duration_seconds_sum', { method: 'Version' }));
    // Every Version call took less than 10 s: all N are in the 10 s bucket too.
    const b10 = (f: Map<string, Family>) => v(f, 'cri_mesos_rpc_duration_seconds_bucket', { method: 'Version', le: '10' });
    t.is(b10(after) - b10(before), N);
    const errors = (f: Map<string, Family>, method: string, code: string) => v(f, 'cri_mesos_rpc_errors_total', { method, code });
    t.is(errors(after, 'PodSandboxStatus', 'NOT_FOUND') - errors(before, 'PodSandboxStatus', 'NOT_FOUND'), N);
    t.is(errors(after, 'Version', 'NOT_FOUND'), 0);
    t.is(sampleValue(after, 'cri_mesos_rpc_errors_total', { method: 'Version', code: 'OK' }), undefined);
  });

  test.serial('a pod and its container move the state gauges, the launch phases, the helpers and the event series; removal moves them back', async (t) => {
    const events = eventsClient(d.socket);
    const stream = events.GetContainerEvents({});
    let received = 0;
    stream.on('data', () => received++);
    stream.on('error', () => undefined);
    t.teardown(() => (stream.cancel(), events.close()));
    await waitFor('the events subscriber to be counted', async () => v(await scrape(), 'cri_mesos_event_subscribers') === 1);

    const s0 = await scrape();
    const phase = (f: Map<string, Family>, p: string, kind: string) => v(f, 'cri_mesos_launch_phase_duration_seconds_count', { phase: p, kind });
    const pods = (f: Map<string, Family>, state: string) => v(f, 'cri_mesos_pods', { state, containerizer: 'mesos' });
    const ctrs = (f: Map<string, Family>, state: string) => v(f, 'cri_mesos_containers', { state, containerizer: 'mesos' });
    const mesos = (f: Map<string, Family>, kind: string, state: string) => v(f, 'cri_mesos_containerizer_containers', { containerizer: 'mesos', kind, state });
    const helpers = (f: Map<string, Family>, kind: string) => v(f, 'cri_mesos_helper_processes', { containerizer: 'mesos', kind });

    const sandbox_config = podConfig('metrics');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox_config });
    try {
      const s1 = await scrape();
      t.is(pods(s1, 'SANDBOX_READY') - pods(s0, 'SANDBOX_READY'), 1);
      t.is(mesos(s1, 'pod', 'RUNNING') - mesos(s0, 'pod', 'RUNNING'), 1);
      t.is(helpers(s1, 'pod') - helpers(s0, 'pod'), 1);
      for (const p of PHASES) t.is(phase(s1, p, 'pod') - phase(s0, p, 'pod'), 1, `pod phase ${p}`);

      const { container_id: ctr } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('sleeper', ['sleep', '3600']), sandbox_config });
      // The helper's fork and setup go on behind CreateContainer's answer.
      const s2 = await waitFor('the launch to be held', async () => {
        const s = await scrape();
        return mesos(s, 'container', 'FETCHING') - mesos(s1, 'container', 'FETCHING') === 1 ? s : undefined;
      });
      t.is(ctrs(s2, 'CONTAINER_CREATED') - ctrs(s1, 'CONTAINER_CREATED'), 1);
      t.is(helpers(s2, 'container') - helpers(s1, 'container'), 1);
      for (const p of ['STARTING', 'PROVISIONING', 'PREPARING', 'ISOLATING']) t.is(phase(s2, p, 'container') - phase(s1, p, 'container'), 1, `container phase ${p}`);
      // FETCHING (held on its exec FIFO) ends with StartContainer.
      t.is(phase(s2, 'FETCHING', 'container'), phase(s1, 'FETCHING', 'container'));

      await d.client.call('StartContainer', { container_id: ctr });
      const s3 = await scrape();
      t.is(phase(s3, 'FETCHING', 'container') - phase(s2, 'FETCHING', 'container'), 1);
      t.is(ctrs(s3, 'CONTAINER_RUNNING') - ctrs(s1, 'CONTAINER_RUNNING'), 1);
      t.is(ctrs(s3, 'CONTAINER_CREATED'), ctrs(s1, 'CONTAINER_CREATED'));
      t.is(mesos(s3, 'container', 'RUNNING') - mesos(s1, 'container', 'RUNNING'), 1);

      await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
      const s4 = await waitFor('the helpers to be gone', async () => {
        const s = await scrape();
        return helpers(s, 'pod') === helpers(s0, 'pod') && helpers(s, 'container') === helpers(s0, 'container') ? s : undefined;
      });
      t.is(pods(s4, 'SANDBOX_NOTREADY') - pods(s0, 'SANDBOX_NOTREADY'), 1);
      t.is(pods(s4, 'SANDBOX_READY'), pods(s0, 'SANDBOX_READY'));
      t.is(ctrs(s4, 'CONTAINER_EXITED') - ctrs(s0, 'CONTAINER_EXITED'), 1);
      t.is(mesos(s4, 'pod', 'TERMINATED') - mesos(s0, 'pod', 'TERMINATED'), 1);
      t.is(phase(s4, 'DESTROYING', 'pod') - phase(s0, 'DESTROYING', 'pod'), 1);
      t.is(phase(s4, 'DESTROYING', 'container') - phase(s0, 'DESTROYING', 'container'), 1);
    } finally {
      await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    }
    const s5 = await scrape();
    for (const state of ['SANDBOX_READY', 'SANDBOX_NOTREADY']) t.is(pods(s5, state), pods(s0, state), state);
    for (const state of ['CONTAINER_CREATED', 'CONTAINER_RUNNING', 'CONTAINER_EXITED']) t.is(ctrs(s5, state), ctrs(s0, state), state);
    t.is(mesos(s5, 'pod', 'TERMINATED'), mesos(s0, 'pod', 'TERMINATED'));
    // What the subscriber received is what the metrics counted as sent (pod and container: created, started, stopped, deleted).
    await waitFor('the events to arrive', () => received >= 8);
    const s6 = await scrape();
    t.is(v(s6, 'cri_mesos_events_sent_total') - v(s0, 'cri_mesos_events_sent_total'), received);
    stream.cancel();
    await waitFor('the subscriber to be gone', async () => v(await scrape(), 'cri_mesos_event_subscribers') === 0);
  });

  test.serial('a container killed by the OOM killer counts in cri_mesos_oom_kills_total', async (t) => {
    const before = await scrape();
    const sandbox_config = podConfig('metrics-oom');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox_config });
    try {
      // As resources.test.ts: ash keeps the command substitution in memory, ~200 MB against 32 MiB.
      const { container_id: ctr } = await d.client.call('CreateContainer', {
        pod_sandbox_id: pod,
        config: containerConfig('hog', ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo ${#x}'], { linux: { resources: { memory_limit_in_bytes: 32 * MiB } } }),
        sandbox_config,
      });
      await d.client.call('StartContainer', { container_id: ctr });
      const st = await d.waitExited(ctr, 60_000);
      t.is(st.reason, 'OOMKilled');
      const after = await scrape();
      t.is(v(after, 'cri_mesos_oom_kills_total', { containerizer: 'mesos' }) - v(before, 'cri_mesos_oom_kills_total', { containerizer: 'mesos' }), 1);
      // A container that exits on its own is no OOM kill.
      const { container_id: ok } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('fine', ['sh', '-c', 'exit 0']), sandbox_config });
      await d.client.call('StartContainer', { container_id: ok });
      t.is((await d.waitExited(ok)).reason, 'Completed');
      t.is(v(await scrape(), 'cri_mesos_oom_kills_total', { containerizer: 'mesos' }), v(after, 'cri_mesos_oom_kills_total', { containerizer: 'mesos' }));
    } finally {
      await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
      await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    }
  });

  const pulls = registryAvailable() && ['amd64', 'arm64'].includes(hostPlatform().architecture);
  (pulls ? test.serial : test.serial.skip)('a registry pull moves the pull bytes and durations; a missing image the failures', async (t) => {
    const reg = await TestRegistry.start();
    t.teardown(() => reg.stop());
    // A layer no other image has, so its every byte comes from the registry.
    const img = buildImage([await makeTar([{ name: 'marker', content: randomBytes(64 * 1024).toString('hex') }])]);
    await reg.pushImage('test/metrics', '1', img);
    const layerBytes = img.blobs.find((b) => b.digest === img.layerDigests[0])!.data.length;
    const before = await scrape();
    const { image_ref } = await d.client.call('PullImage', { image: { image: `${reg.host}/test/metrics:1` } });
    t.teardown(() => d.client.call('RemoveImage', { image: { image: image_ref } }).catch(() => undefined));
    const err = await t.throwsAsync(d.client.call('PullImage', { image: { image: `${reg.host}/test/metrics:missing` } }));
    t.is((err as unknown as grpc.ServiceError).code, grpc.status.NOT_FOUND);
    const after = await scrape();
    t.is(v(after, 'cri_mesos_image_pull_bytes_total') - v(before, 'cri_mesos_image_pull_bytes_total'), layerBytes);
    t.is(v(after, 'cri_mesos_image_pull_duration_seconds_count') - v(before, 'cri_mesos_image_pull_duration_seconds_count'), 1);
    t.is(v(after, 'cri_mesos_image_pull_failures_total', { code: 'NOT_FOUND' }) - v(before, 'cri_mesos_image_pull_failures_total', { code: 'NOT_FOUND' }), 1);
    t.is(v(after, 'cri_mesos_rpc_errors_total', { method: 'PullImage', code: 'NOT_FOUND' }) - v(before, 'cri_mesos_rpc_errors_total', { method: 'PullImage', code: 'NOT_FOUND' }), 1);
  });

  test.serial('after a restart the recovery metrics count the pod and container it found running', async (t) => {
    const sandbox_config = podConfig('metrics-recover');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox_config });
    try {
      await d.runContainer(pod, sandbox_config, 'survivor', ['sleep', '3600']);
      await d.stop();
      await d.launch();
      const fams = await scrape();
      t.is(v(fams, 'cri_mesos_recovery_containers', { outcome: 'running' }), 2);
      t.is(v(fams, 'cri_mesos_recovery_containers', { outcome: 'exited' }), 0);
      t.is(v(fams, 'cri_mesos_recovery_orphans', { kind: 'cgroup' }), 0);
      t.true(v(fams, 'cri_mesos_recovery_duration_seconds') > 0);
      t.is(v(fams, 'cri_mesos_helper_processes', { containerizer: 'mesos', kind: 'pod' }), 1);
      t.is(v(fams, 'cri_mesos_helper_processes', { containerizer: 'mesos', kind: 'container' }), 1);
      t.is(v(fams, 'cri_mesos_pods', { state: 'SANDBOX_READY', containerizer: 'mesos' }), 1);
      t.is((await get('/healthz')).status, 200);
    } finally {
      await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
      await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    }
  });

  test.serial('with metrics off the daemon listens on nothing more than its stream server; an address in use fails the start', async (t) => {
    // This daemon: its stream server and the metrics port.
    const ours = listeningPorts(d.pid!);
    t.true(ours.includes(port));
    t.is(ours.length, 2, `listening: ${ours.join(', ')}`);

    const off = await TestDaemon.start({ importImages: false, prefix: 'cri-mesos-metrics-off' });
    t.teardown(() => off.teardown());
    const streamPort = Number(/stream server listening"? url=http:\/\/127\.0\.0\.1:(\d+)/.exec(off.logs())?.[1]);
    t.true(streamPort > 0, off.logs());
    t.deepEqual(listeningPorts(off.pid!), [streamPort]);
    t.notRegex(off.logs(), /serving metrics/);

    const err = await t.throwsAsync(TestDaemon.start({ importImages: false, prefix: 'cri-mesos-metrics-busy', flags: ['--metrics-address', `127.0.0.1:${port}`] }));
    t.regex(err!.message, new RegExp(`metrics_address 127\\.0\\.0\\.1:${port}: cannot listen: the address is in use \\(EADDRINUSE\\)`));
    // The daemon that holds the port still serves.
    t.is((await get('/healthz')).status, 200);
  });
}
