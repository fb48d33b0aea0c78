// CRI benchmark: cri-mesos (or any CRI endpoint) against a second CRI runtime,
// side by side and interleaved, in one run. See hack/bench/README.md.
//
//   npm run bench -- [--endpoint SOCK] [--vs SOCK|reference] [-n 20] [-c 1] [--out DIR] …
//   npm run bench -- --soak 1000           (only the soak workload)
//   npm run bench -- --workloads pod,container --docker   (with an "A docker" column: runtime_handler docker)
//   npm run bench -- --workloads pod,container --floor --vs reference   (with a "floor" column: null-runtime.ts)
import { Command, Option } from 'commander';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { performance } from 'node:perf_hooks';
import { cpus, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BUNDLE_FILE, projectRoot } from '../../src/util/paths.js';
import { CriClient, TEST_SUBNET, TestDaemon, testConflist, waitFor } from '../../test/helpers/daemon.js';
import { leaked, leftovers } from '../../test/helpers/leaks.js';
import { DOCKER_BUSYBOX, TestDockerd } from '../../test/helpers/dockerd.js';
import { collect, exitCodeOf, spdyExec, spdyPortForward } from '../../test/helpers/stream-client.js';
import { BENCH_IMAGE, buildReferenceImages } from './images.js';
import { cpuSeconds, descendants, exited, listProcs, loadavg, memTotalMb, pssKb, rssKb, socketOwner, type Proc } from './proc.js';
import {
  buildReport,
  renderSvg,
  renderTable,
  type BurstRun,
  type CpuUse,
  type OpSamples,
  type RawResults,
  type Resources,
  type RestartRun,
  type RuntimeInfo,
  type SoakRun,
} from './report.js';
import { interleaveOrder, logTime, phasesFromLog, rounds, rpcTimesFromLog, summarize } from './stats.js';

const WORKLOADS = ['pod', 'container', 'exec', 'stream', 'list', 'steady', 'burst', 'front', 'cni', 'soak', 'restart'] as const;
type Workload = (typeof WORKLOADS)[number];
/** soak and restart take minutes and need a daemon of our own: only when asked for */
const DEFAULT_WORKLOADS: Workload[] = ['pod', 'container', 'exec', 'stream', 'list', 'steady', 'burst', 'front', 'cni'];
/** wait after the soak's last cycle: sockets and pipes are closed on later turns of the daemon's loop */
const SOAK_SETTLE_MS = 2000;
const RUNNING_CAP = 100;
/** steady workload: wait after the 100 pods are up before measuring */
const STEADY_SETTLE_MS = 15_000;

interface Opts {
  endpoint?: string;
  vs?: string;
  iterations: number;
  concurrency: number;
  workloads: Workload[];
  listSizes: number[];
  burst: number;
  burstRounds: number;
  setupConcurrency: number;
  steadySeconds: number;
  stopTimeout: number;
  out: string;
  daemon: 'dist' | 'src';
  logLevel: string;
  daemonFlag: string[];
  frontCalls: number;
  soak?: number;
  soakWarmup: number;
  restartPods: number;
  restartKill: number;
  restartRounds: number;
  /** the "A docker" target; undefined: when dockerd is installed and the run starts its daemon */
  docker?: boolean;
  /** the "floor" target: null-runtime.ts, a grpc-js CRI server that does nothing */
  floor: boolean;
}

interface Target {
  id: string;
  client: CriClient;
  socket: string;
  info: RuntimeInfo;
  kind: 'cri-mesos' | 'containerd' | 'other';
  pid?: number;
  daemon?: TestDaemon;
  reference?: boolean;
  /** pods this run created and has not removed yet */
  pods: Set<string>;
  logRoot: string;
  /** a reference containerd started with this environment for containerd-reference.sh (a second instance) */
  referenceEnv?: Record<string, string>;
  /** where cleanup copies its daemon's log, in --out (default daemon-<id>.log) */
  logName?: string;
  /** run by cleanup after the daemon or containerd is stopped (a netns, dirs, a dockerd) */
  after?: () => void | Promise<void>;
  /** CRI runtime_handler of its pods ('' = the default) */
  handler?: string;
  /** the image its containers run (default BENCH_IMAGE) */
  image?: string;
}

// ---- plumbing -----------------------------------------------------------------

const runId = randomBytes(4).toString('hex');
/** the run's temp dir, made once the options are parsed (so --help leaves nothing behind) */
let tmp = '';
const targets: Target[] = [];
/** daemons a workload starts besides the targets' (front, restart): cleanup() tears down those still up */
const extraDaemons = new Set<TestDaemon>();
/** targets a workload starts for itself (cni): cleanup() removes their pods and stops them, before the main targets */
const extraTargets = new Set<Target>();
/** "A docker": the pod and container workloads with runtime_handler docker (--docker), on a daemon and dockerd of its own */
let dockerTarget: Target | undefined;
/** "floor": the pod and container workloads on null-runtime.ts (--floor) */
let floorTarget: Target | undefined;
/** the targets the pod and container workloads run on: the run's, "A docker" and "floor" */
const lifecycleTargets = (): Target[] => [...targets, ...(dockerTarget ? [dockerTarget] : []), ...(floorTarget ? [floorTarget] : [])];
const ops = new Map<string, OpSamples>();
const notes: string[] = [];
/** the steady workload's result per runtime */
const steadyCpu: { runtime: string; seconds: number; cpuPercent: number }[] = [];
let aborted = false;

class Aborted extends Error {}

const say = (s: string) => process.stderr.write(`[bench] ${s}\n`);

function rec(workload: string, op: string): OpSamples {
  const k = `${workload}\0${op}`;
  let o = ops.get(k);
  if (!o) ops.set(k, (o = { workload, op, samples: {}, errors: {} }));
  return o;
}

/** Register the rows of a workload in table order before running it. */
function declare(workload: string, opNames: string[]): void {
  for (const op of opNames) rec(workload, op);
}

function errText(e: unknown): string {
  const d = (e as { details?: string }).details;
  return (d || (e instanceof Error ? e.message : String(e))).split('\n')[0]!.slice(0, 300);
}

function recordError(t: Target, workload: string, op: string, e: unknown): void {
  const o = rec(workload, op);
  const cur = o.errors[t.id];
  if (cur) cur.count++;
  else o.errors[t.id] = { count: 1, first: errText(e) };
}

/** One timed CRI call (rpc, by default the row's op); failures are recorded (and returned as undefined), never thrown. */
async function timed<T = any>(t: Target, workload: string, op: string, req: object, timeoutMs = 120_000, rpc = op): Promise<T | undefined> {
  return (await timedStep(t, workload, op, () => t.client.call<T>(rpc, req, timeoutMs)))?.value;
}

/** A timed step (a CRI call, or a whole streaming session); failures are recorded, never thrown. */
async function timedStep<T>(t: Target, workload: string, op: string, fn: () => Promise<T>): Promise<{ value: T; ms: number } | undefined> {
  if (aborted) throw new Aborted();
  const t0 = process.hrtime.bigint();
  try {
    const value = await fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    (rec(workload, op).samples[t.id] ??= []).push(ms);
    return { value, ms };
  } catch (e) {
    recordError(t, workload, op, e);
    return undefined;
  }
}

/** An untimed call (setup/teardown); failures are recorded under "setup". */
async function call<T = any>(t: Target, op: string, req: object, timeoutMs = 120_000): Promise<T | undefined> {
  if (aborted) throw new Aborted();
  try {
    return await t.client.call<T>(op, req, timeoutMs);
  } catch (e) {
    recordError(t, 'setup/teardown', op, e);
    return undefined;
  }
}

/** Run fn over items, `concurrency` at a time. Unless `always`, it stops (and throws Aborted) once the run is aborted. */
async function pool<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<void>, always = false): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && (always || !aborted)) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  if (aborted && !always) throw new Aborted();
}

/** n iterations in rounds of `concurrency` parallel ones; per round A then B, the next round B then A. */
async function interleaved(n: number, concurrency: number, fn: (t: Target, i: number) => Promise<void>, ts: Target[] = targets): Promise<void> {
  const rs = rounds(n, concurrency);
  const order = interleaveOrder(rs.length, ts.length);
  let base = 0;
  for (let r = 0; r < rs.length; r++) {
    for (const ti of order[r]!) {
      if (aborted) throw new Aborted();
      await Promise.all(Array.from({ length: rs[r]! }, (_, k) => fn(ts[ti]!, base + k)));
    }
    base += rs[r]!;
  }
}

// ---- CRI objects (identical for every runtime) -----------------------------------

/** network NODE: host network (every workload but cni); POD: the pod's own namespace, set up through CNI */
function podCfg(t: Target, name: string, labels: Record<string, string> = {}, network: 'NODE' | 'POD' = 'NODE') {
  const logDir = join(t.logRoot, name);
  mkdirSync(logDir, { recursive: true }); // kubelet creates the pod log directory before RunPodSandbox
  return {
    metadata: { name, namespace: 'cri-mesos-bench', uid: `${runId}-${name}`, attempt: 0 },
    // kubelet sends no hostname for host-network pods (runc refuses to set one without a private UTS namespace),
    // and the pod's name for the others
    hostname: network === 'NODE' ? '' : name,
    log_directory: logDir,
    labels: { 'cri-mesos-bench': runId, ...labels },
    annotations: {},
    linux: { security_context: { namespace_options: { network, pid: 'CONTAINER', ipc: 'POD' } } },
  };
}

function ctrCfg(name: string, image: string = BENCH_IMAGE) {
  return {
    metadata: { name, attempt: 0 },
    image: { image },
    command: ['sleep', '3600'],
    log_path: `${name}.log`,
    labels: { 'cri-mesos-bench': runId },
  };
}

async function runPod(t: Target, name: string, labels?: Record<string, string>, workload?: string) {
  const config = podCfg(t, name, labels);
  const req = { config, ...(t.handler ? { runtime_handler: t.handler } : {}) };
  const res = workload ? await timed(t, workload, 'RunPodSandbox', req) : await call(t, 'RunPodSandbox', req);
  const id: string | undefined = res?.pod_sandbox_id;
  if (id) t.pods.add(id);
  return id ? { id, config } : undefined;
}

async function removePod(t: Target, id: string): Promise<void> {
  await call(t, 'StopPodSandbox', { pod_sandbox_id: id });
  if (await call(t, 'RemovePodSandbox', { pod_sandbox_id: id })) t.pods.delete(id);
}

async function removeAllPods(t: Target, ids: Iterable<string>, concurrency: number): Promise<void> {
  await pool([...ids], concurrency, (id) => removePod(t, id));
}

// ---- workloads ------------------------------------------------------------------------

async function podLifecycle(o: Opts): Promise<void> {
  const w = 'pod lifecycle';
  declare(w, ['RunPodSandbox', 'PodSandboxStatus', 'StopPodSandbox', 'RemovePodSandbox']);
  await interleaved(o.iterations, o.concurrency, async (t, i) => {
    const pod = await runPod(t, `pl-${i}`, {}, w);
    if (!pod) return;
    const st = await timed(t, w, 'PodSandboxStatus', { pod_sandbox_id: pod.id });
    if (st && st.status?.state !== 'SANDBOX_READY') recordError(t, w, 'PodSandboxStatus', new Error(`state ${st.status?.state}, not SANDBOX_READY`));
    await timed(t, w, 'StopPodSandbox', { pod_sandbox_id: pod.id });
    if (await timed(t, w, 'RemovePodSandbox', { pod_sandbox_id: pod.id })) t.pods.delete(pod.id);
    else await removePod(t, pod.id);
  }, lifecycleTargets());
}

async function containerLifecycle(o: Opts): Promise<void> {
  const w = 'container lifecycle';
  declare(w, ['CreateContainer', 'StartContainer', 'ContainerStatus', 'StopContainer', 'RemoveContainer']);
  const pods = new Map<string, { id: string; config: object }>();
  const ts = lifecycleTargets();
  for (const t of ts) {
    const p = await runPod(t, 'cl');
    if (!p) throw new Error(`${t.id}: cannot create the pod for the container lifecycle`);
    pods.set(t.id, p);
  }
  await interleaved(o.iterations, o.concurrency, async (t, i) => {
    const pod = pods.get(t.id)!;
    const res = await timed(t, w, 'CreateContainer', { pod_sandbox_id: pod.id, config: ctrCfg(`c${i}`, t.image), sandbox_config: pod.config });
    const id: string | undefined = res?.container_id;
    if (!id) return;
    await timed(t, w, 'StartContainer', { container_id: id });
    const st = await timed(t, w, 'ContainerStatus', { container_id: id });
    if (st && st.status?.state !== 'CONTAINER_RUNNING') recordError(t, w, 'ContainerStatus', new Error(`state ${st.status?.state}, not CONTAINER_RUNNING`));
    await timed(t, w, 'StopContainer', { container_id: id, timeout: o.stopTimeout });
    if (!(await timed(t, w, 'RemoveContainer', { container_id: id }))) {
      await call(t, 'StopContainer', { container_id: id, timeout: 0 });
      await call(t, 'RemoveContainer', { container_id: id });
    }
  }, ts);
  for (const t of ts) await removePod(t, pods.get(t.id)!.id);
}

async function execSync(o: Opts): Promise<void> {
  const w = 'exec';
  declare(w, ['ExecSync']);
  const ctrs = new Map<string, { pod: string; ctr: string }>();
  for (const t of targets) {
    const p = await runPod(t, 'ex');
    if (!p) throw new Error(`${t.id}: cannot create the pod for ExecSync`);
    const c = await call(t, 'CreateContainer', { pod_sandbox_id: p.id, config: ctrCfg('ex'), sandbox_config: p.config });
    if (!c || !(await call(t, 'StartContainer', { container_id: c.container_id }))) throw new Error(`${t.id}: cannot start the container for ExecSync`);
    ctrs.set(t.id, { pod: p.id, ctr: c.container_id });
  }
  await interleaved(o.iterations, o.concurrency, async (t) => {
    const r = await timed(t, w, 'ExecSync', { container_id: ctrs.get(t.id)!.ctr, cmd: ['true'], timeout: 10 });
    if (r && r.exit_code !== 0) recordError(t, w, 'ExecSync', new Error(`exit code ${r.exit_code}: ${String(r.stderr)}`));
  });
  for (const t of targets) await removePod(t, ctrs.get(t.id)!.pod);
}

/**
 * CRI streaming as kubectl/crictl use it (SPDY/3.1, the project's own client): an exec round
 * trip (Exec RPC, upgrade, streams, `true`, exit status) and port-forward throughput (a
 * PF_MB round trip through an echo server in the pod: nc -e cat, the same busybox everywhere).
 */
const PF_MB = 64;
async function streaming(o: Opts): Promise<void> {
  const w = 'stream';
  const execOp = 'Exec `true` (RPC, SPDY, exit)';
  const pfOp = `port-forward ${PF_MB} MB echo`;
  declare(w, [execOp, pfOp]);
  const objs = new Map<string, { pod: string; ctr: string }>();
  for (const t of targets) {
    const p = await runPod(t, 'st');
    if (!p) throw new Error(`${t.id}: cannot create the pod for streaming`);
    const ids: string[] = [];
    for (const [name, command] of [
      ['st', ['sleep', '3600']],
      // -ll: keep listening, one `cat` per connection (no gap between connections)
      ['echo', ['nc', '-ll', '-p', '17000', '-e', 'cat']],
    ] as const) {
      const c = await call(t, 'CreateContainer', { pod_sandbox_id: p.id, config: { ...ctrCfg(name), command }, sandbox_config: p.config });
      if (!c || !(await call(t, 'StartContainer', { container_id: c.container_id }))) throw new Error(`${t.id}: cannot start the ${name} container`);
      ids.push(c.container_id);
    }
    objs.set(t.id, { pod: p.id, ctr: ids[0]! });
  }
  await interleaved(o.iterations, o.concurrency, async (t) => {
    await timedStep(t, w, execOp, async () => {
      const { url } = await t.client.call<{ url: string }>('Exec', { container_id: objs.get(t.id)!.ctr, cmd: ['true'], stdout: true, stderr: true });
      const c = await spdyExec(url, { stdout: true, stderr: true });
      c.stdout?.resume();
      c.stderr?.resume();
      const code = exitCodeOf(await c.status);
      c.close();
      if (code !== 0) throw new Error(`exit code ${code}`);
    });
  });
  const payload = randomBytes(PF_MB * 1024 * 1024);
  const mbps: Record<string, number[]> = {};
  await interleaved(Math.max(3, Math.ceil(o.iterations / 5)), 1, async (t) => {
    const { url } = (await call<{ url: string }>(t, 'PortForward', { pod_sandbox_id: objs.get(t.id)!.pod, port: [] })) ?? { url: '' };
    if (!url) return;
    const pf = await spdyPortForward(url);
    try {
      // Wait until the echo server listens (untimed).
      await waitFor('the echo server', async () => {
        const c = await pf.open(17000);
        const probe = collect(c.data);
        c.data.end('ping');
        return (await probe).toString() === 'ping';
      }, 20_000);
      const step = await timedStep(t, w, pfOp, async () => {
        const c = await pf.open(17000);
        const back = collect(c.data);
        c.data.end(payload);
        const got = await back;
        if (got.length !== payload.length || !got.equals(payload)) throw new Error(`echoed ${got.length} of ${payload.length} bytes, or different ones`);
      });
      if (step) (mbps[t.id] ??= []).push(PF_MB / (step.ms / 1000));
    } finally {
      pf.close();
    }
  });
  for (const [id, v] of Object.entries(mbps)) {
    const sorted = [...v].sort((a, b) => a - b);
    notes.push(`${id} port-forward: ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} MB/s median (${PF_MB} MB sent and echoed back per run, ${v.length} runs: ${v.map((x) => x.toFixed(1)).join(', ')})`);
  }
  for (const t of targets) await removePod(t, objs.get(t.id)!.pod);
}

async function burst(o: Opts, bursts: BurstRun[]): Promise<void> {
  const w = `burst of ${o.burst}`;
  declare(w, ['RunPodSandbox']);
  const order = interleaveOrder(o.burstRounds, targets.length);
  for (let r = 0; r < o.burstRounds; r++) {
    for (const ti of order[r]!) {
      if (aborted) throw new Aborted();
      const t = targets[ti]!;
      const labels = { 'cri-mesos-bench-burst': `${r}` };
      const t0 = process.hrtime.bigint();
      const ids = (await Promise.all(Array.from({ length: o.burst }, (_, k) => runPod(t, `b${r}-${k}`, labels, w)))).filter((p) => !!p);
      // all answered: now wait until the runtime lists every one of them as READY
      let ready = 0;
      const deadline = Date.now() + 120_000;
      for (;;) {
        const l = await call(t, 'ListPodSandbox', { filter: { label_selector: { 'cri-mesos-bench': runId, ...labels }, state: { state: 'SANDBOX_READY' } } });
        ready = l?.items?.length ?? 0;
        if (ready >= ids.length || Date.now() > deadline || aborted) break;
        await sleep(5);
      }
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      bursts.push({ runtime: t.id, pods: o.burst, ready, wallMs });
      say(`  burst round ${r} ${t.id}: ${ready}/${o.burst} READY in ${wallMs.toFixed(0)} ms`);
      await removeAllPods(t, ids.map((p) => p.id), o.setupConcurrency);
    }
  }
}

/**
 * What the CRI front costs (src/cri/h2front): Status p50 through our daemon's
 * front, through it with the socket path as :authority (what grpc-go before
 * 1.57 sends, so the front re-encodes), and from a second daemon started with
 * --cri-front=false, call by call in rotating order.
 */
async function frontCost(o: Opts): Promise<void> {
  const a = targets.find((t) => t.daemon);
  if (!a) {
    notes.push('front: skipped; it needs a daemon the benchmark starts (no --endpoint)');
    return;
  }
  const w = 'front';
  const OPS = ['Status, front', 'Status, front, socket-path :authority', 'Status, no front'];
  declare(w, OPS);
  say('  starting a second cri-mesos daemon with --cri-front=false');
  const plain = await extraDaemon(o, 'cri-mesos-bench-nofront', { importImages: false, flags: ['--cri-front', 'false'] });
  const old = new CriClient(a.socket, { 'grpc.default_authority': a.socket });
  const variants = [a.client, old, plain.client].map((client) => ({ ...a, client }));
  try {
    // warm-up: connections, JIT on both sides
    for (let i = 0; i < 200; i++) for (const v of variants) await call(v, 'Status', {});
    for (let i = 0; i < o.frontCalls; i++) {
      for (let k = 0; k < variants.length; k++) {
        const j = (i + k) % variants.length;
        await timed(variants[j]!, w, OPS[j]!, {}, 10_000, 'Status');
      }
    }
  } finally {
    old.close();
    await dropDaemon(plain, o);
  }
  const p50 = (op: string) => summarize(rec(w, op).samples[a.id] ?? [])?.p50 ?? NaN;
  const [front, rewrite, none] = OPS.map(p50) as [number, number, number];
  const diff = (x: number) => `${x - none >= 0 ? '+' : ''}${(x - none).toFixed(3)}`;
  notes.push(
    `front: Status p50 ${front.toFixed(3)} ms through the front, ${rewrite.toFixed(3)} ms when it re-encodes (socket-path :authority), ` +
      `${none.toFixed(3)} ms without it: ${diff(front)} / ${diff(rewrite)} ms`,
  );
}

/** cri-mesos's log breakdown of daemons a workload started for itself (cni), keyed like report phases ("A cni"). */
const extraPhases: RawResults['phases'] = {};

/** A target not yet answering, for cleanup() to stop and remove should the run end while it starts. */
function pendingTarget(id: string, socket: string, extra: Partial<Target>): Target {
  const t: Target = {
    id,
    client: new CriClient(socket),
    socket,
    kind: 'other',
    pods: new Set(),
    logRoot: join(tmp, 'logs', id),
    info: { id, label: id, endpoint: `unix://${socket}`, runtimeName: '', runtimeVersion: '', origin: 'starting' },
    ...extra,
  };
  extraTargets.add(t);
  return t;
}

/**
 * RunPodSandbox with pod networking through CNI, the same conflist on both sides (bridge +
 * host-local with its own store and the private TEST_SUBNET /24 + portmap + loopback, Debian's
 * plugins in /usr/lib/cni). Neither touches the host's network: each runtime runs in a network
 * namespace the run made (cm-bench-…), so the bridge, veths, iptables rules and IPs live there.
 *   A: a cri-mesos daemon of its own (A's build and flags) with TestDaemon's cni option;
 *   B: with --vs reference, a second containerd (containerd-reference.sh with its own dirs, the
 *      conf dir and CRI_BENCH_NETNS), started under nsenter --net.
 * One untimed cycle each (the first ADD makes the bridge), then N × RunPodSandbox (network
 * POD) → PodSandboxStatus (must be READY with an IP in the subnet) → StopPodSandbox →
 * RemovePodSandbox, interleaved. Then both are stopped, the namespaces, conf dirs and
 * host-local stores removed.
 */
async function cniPods(o: Opts): Promise<void> {
  const a = targets.find((t) => t.daemon);
  if (!a) {
    notes.push('cni: skipped; it needs a daemon the benchmark starts (no --endpoint)');
    return;
  }
  const w = 'cni pod lifecycle';
  declare(w, ['RunPodSandbox', 'PodSandboxStatus', 'StopPodSandbox', 'RemovePodSandbox']);
  const ts: Target[] = [];
  // unless cleanup() (a signal) took it already
  const stop = async (t: Target) => {
    if (extraTargets.delete(t)) await cleanupTarget(t, o);
  };
  try {
    say('  A: a cri-mesos daemon in a network namespace of its own, with the bridge conflist');
    const d = new TestDaemon({
      from: o.daemon,
      logLevel: o.logLevel,
      logTo: 'file',
      detached: true,
      importImages: false,
      prefix: 'cri-mesos-bench-cni',
      flags: o.daemonFlag,
      cni: true,
      netnsPrefix: 'cm-bench',
    });
    const logName = `daemon-${a.id}-cni.log`;
    const pendingA = pendingTarget(a.id, d.socket, { daemon: d, logName });
    await d.init();
    extraTargets.delete(pendingA);
    const ta = await makeTarget(a.id, d.socket, d.client, `own daemon in netns ${d.netnsName} (${o.daemon}/, --log-level ${o.logLevel})`, { daemon: d, pid: d.pid, logName, own: true });
    extraTargets.add(ta);
    ts.push(ta);

    const b = targets.find((t) => t.reference);
    if (b) {
      const ns = `cm-bench-${runId}`;
      const dir = join(tmp, 'cni-containerd');
      const confDir = join(dir, 'net.d');
      const env = {
        CRI_BENCH_CONTAINERD_RUN: `/run/cri-mesos-bench-containerd-cni-${runId}`,
        CRI_BENCH_CONTAINERD_ROOT: `/var/lib/cri-mesos-bench-containerd-cni-${runId}`,
        CRI_BENCH_CNI_CONF_DIR: confDir,
        CRI_BENCH_CNI_BIN_DIR: '/usr/lib/cni',
        CRI_BENCH_NETNS: `/run/netns/${ns}`,
      };
      const after = () => {
        try {
          if (existsSync(`/run/netns/${ns}`)) execFileSync('ip', ['netns', 'del', ns]);
        } catch (e) {
          say(`cannot delete the network namespace ${ns}: ${errText(e)}`);
        }
        rmSync(dir, { recursive: true, force: true });
      };
      const socket = join(env.CRI_BENCH_CONTAINERD_RUN, 'containerd.sock');
      const pendingB = pendingTarget(b.id, socket, { reference: true, referenceEnv: env, after });
      say(`  ${b.id}: a second containerd in network namespace ${ns}, with the same conflist`);
      execFileSync('ip', ['netns', 'add', ns]);
      execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      mkdirSync(confDir, { recursive: true });
      writeFileSync(join(confDir, '10-test.conflist'), testConflist(join(dir, 'ipam')));
      const got = await startReference(env);
      if (got !== socket) throw new Error(`containerd-reference.sh answered socket ${got}, expected ${socket}`);
      extraTargets.delete(pendingB);
      // its socket is in another network namespace, where socketOwner cannot see it: the script's pid file
      const pid = Number(readFileSync(join(env.CRI_BENCH_CONTAINERD_RUN, 'containerd.pid'), 'utf8').trim()) || undefined;
      const tb = await makeTarget(b.id, socket, new CriClient(socket), `containerd-reference.sh in netns ${ns}`, {
        reference: true,
        referenceEnv: env,
        after,
        own: true,
        pid,
      });
      extraTargets.add(tb);
      ts.push(tb);
    } else if (o.vs) {
      notes.push('cni: B skipped; only --vs reference gets a containerd with the same CNI config');
    }

    notes.push(`cni: ${ts.map((t) => `${t.id} = ${t.info.runtimeName} ${t.info.runtimeVersion}, ${t.info.origin}`).join('; ')}; one untimed cycle each first`);
    for (const t of ts) {
      await waitFor(`${t.id}: NetworkReady`, async () => {
        const st = await t.client.call('Status', {}, 10_000);
        return (st.status?.conditions ?? []).some((c: { type: string; status: boolean }) => c.type === 'NetworkReady' && c.status);
      }, 30_000);
    }

    const cycle = async (t: Target, name: string, timedAs?: string) => {
      const rpc = (op: string, req: object) => (timedAs ? timed(t, timedAs, op, req) : call(t, op, req));
      const config = podCfg(t, name, {}, 'POD');
      const id: string | undefined = (await rpc('RunPodSandbox', { config }))?.pod_sandbox_id;
      if (!id) return;
      t.pods.add(id);
      const st = await rpc('PodSandboxStatus', { pod_sandbox_id: id });
      const ip: string = st?.status?.network?.ip ?? '';
      if (st && (st.status?.state !== 'SANDBOX_READY' || !ip.startsWith(`${TEST_SUBNET}.`))) {
        recordError(t, timedAs ?? 'setup/teardown', 'PodSandboxStatus', new Error(`state ${st.status?.state}, ip "${ip}": not READY with an IP in ${TEST_SUBNET}.0/24`));
      }
      await rpc('StopPodSandbox', { pod_sandbox_id: id });
      if (await rpc('RemovePodSandbox', { pod_sandbox_id: id })) t.pods.delete(id);
      else await removePod(t, id);
    };
    // untimed: the first ADD makes the bridge (and iptables chains) in the namespace
    for (const t of ts) await cycle(t, 'cniw');
    await interleaved(o.iterations, o.concurrency, (t, i) => cycle(t, `cni-${i}`, w), ts);

    await pluginFloor(o, d, w, ts);

    const log = d.logs();
    extraPhases[`${a.id} cni`] = phasesFromLog(log);
    const rpc = rpcTimesFromLog(log);
    const parts = ['RunPodSandbox', 'PodSandboxStatus', 'StopPodSandbox', 'RemovePodSandbox']
      .filter((k) => rpc[k]?.length)
      .map((k) => `${k} ${summarize(rpc[k]!)!.p50.toFixed(1)}`);
    if (parts.length) notes.push(`${a.id} cni server-side p50 ms (its daemon's log "response" lines, warm-up included): ${parts.join(', ')}`);
  } finally {
    for (const t of ts) await stop(t);
    for (const t of [...extraTargets]) await stop(t);
  }
}

/**
 * The plugins alone (hack/bench/cni-floor.ts), in A's namespace once its pods are gone: the
 * same conflist, ADD and DEL chains into namespaces of our own, plus the loopback network
 * containerd also runs. What is left of each side's RunPodSandbox p50 once its plugin execs
 * are taken out is what the runtime itself costs around them.
 */
async function pluginFloor(o: Opts, d: TestDaemon, w: string, ts: Target[]): Promise<void> {
  const n = Math.min(Math.max(o.iterations, 5), 20);
  const names = Array.from({ length: n }, (_, i) => `cm-bench-floor-${runId}-${i}`);
  const made: string[] = [];
  try {
    for (const ns of names) {
      execFileSync('ip', ['netns', 'add', ns]);
      made.push(ns);
    }
    const tsx = join(projectRoot(), 'node_modules', '.bin', 'tsx');
    const out = execFileSync('ip', ['netns', 'exec', d.netnsName!, tsx, join(projectRoot(), 'hack', 'bench', 'cni-floor.ts'), d.ipamDir, ...names.map((x) => `/run/netns/${x}`)], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { add: number[]; del: number[]; lo: number[] };
    const add = summarize(r.add)!.p50;
    const del = summarize(r.del)!.p50;
    const lo = summarize(r.lo)!.p50;
    notes.push(`cni plugins alone (n = ${n}, from a Node process in A's namespace, no runtime): ADD chain p50 ${add.toFixed(1)} ms, DEL chain ${del.toFixed(1)} ms, containerd's extra loopback network ${lo.toFixed(1)} ms`);
    const p50 = (t: Target, op: string) => summarize(rec(w, op).samples[t.id] ?? [])?.p50 ?? NaN;
    const around = ts.map((t) => {
      const floor = add + (t.reference ? lo : 0);
      return { t, run: p50(t, 'RunPodSandbox') - floor, stop: p50(t, 'StopPodSandbox') - del - (t.reference ? lo : 0) };
    });
    notes.push(
      `cni around the plugins (p50 minus the plugin floor): ${around.map((x) => `${x.t.id} RunPodSandbox ${x.run.toFixed(1)} ms, StopPodSandbox ${x.stop.toFixed(1)} ms`).join('; ')}` +
        (around.length === 2 ? `; B/A ${(around[1]!.run / around[0]!.run).toFixed(2)}x and ${(around[1]!.stop / around[0]!.stop).toFixed(2)}x` : ''),
    );
  } catch (e) {
    notes.push(`cni plugins alone: not measured (${errText(e)})`);
  } finally {
    for (const ns of made) {
      try {
        execFileSync('ip', ['netns', 'del', ns]);
      } catch (e) {
        say(`cannot delete the network namespace ${ns}: ${errText(e)}`);
      }
    }
  }
}

/** A daemon of our own besides A's, with A's build and flags; cleanup() tears it down if the workload cannot. */
async function extraDaemon(o: Opts, prefix: string, opts: { importImages: boolean; flags?: string[] }): Promise<TestDaemon> {
  const d = await TestDaemon.start({
    from: o.daemon,
    logLevel: o.logLevel,
    logTo: 'file',
    detached: true,
    importImages: opts.importImages,
    prefix,
    flags: [...o.daemonFlag, ...(opts.flags ?? [])],
  });
  extraDaemons.add(d);
  return d;
}

async function dropDaemon(d: TestDaemon, o: Opts): Promise<void> {
  if (extraDaemons.delete(d)) await d.teardown(o.setupConcurrency);
}

/**
 * One soak cycle: a pod; two containers one after the other, each created, started, exec'd into,
 * stopped and removed; the pod stopped and removed. Timed under workload w; untimed (warm-up)
 * without. After a failed call the rest is skipped and the pod removed untimed. False if a call failed.
 */
async function soakCycle(t: Target, name: string, o: Opts, w?: string): Promise<boolean> {
  const rpc = (op: string, req: object) => (w ? timed(t, w, op, req) : call(t, op, req));
  const config = podCfg(t, name);
  const pod: string | undefined = (await rpc('RunPodSandbox', { config }))?.pod_sandbox_id;
  if (!pod) return false;
  t.pods.add(pod);
  let ok = true;
  for (const c of ['a', 'b']) {
    const id: string | undefined = (await rpc('CreateContainer', { pod_sandbox_id: pod, config: ctrCfg(c), sandbox_config: config }))?.container_id;
    ok = !!id && !!(await rpc('StartContainer', { container_id: id }));
    if (ok) {
      const r = await rpc('ExecSync', { container_id: id, cmd: ['true'], timeout: 10 });
      if (r && r.exit_code !== 0) recordError(t, w ?? 'setup/teardown', 'ExecSync', new Error(`exit code ${r.exit_code}: ${String(r.stderr)}`));
      ok = r?.exit_code === 0;
    }
    ok = ok && !!(await rpc('StopContainer', { container_id: id, timeout: o.stopTimeout })) && !!(await rpc('RemoveContainer', { container_id: id }));
    if (!ok) break;
  }
  ok = ok && !!(await rpc('StopPodSandbox', { pod_sandbox_id: pod })) && !!(await rpc('RemovePodSandbox', { pod_sandbox_id: pod }));
  if (ok) t.pods.delete(pod);
  else await removePod(t, pod);
  return ok;
}

/**
 * Soak: --soak N cycles against a daemon the run started, then what it holds and what the
 * cycles left behind (test/helpers/leaks.ts, which the soak test asserts on): fds, mounts,
 * cgroups, runtime/provisioner dirs, records, processes, and its RSS.
 */
async function soak(o: Opts, runs: SoakRun[]): Promise<void> {
  const n = o.soak ?? 1000;
  const w = `soak ${n}`;
  const OPS = ['RunPodSandbox', 'CreateContainer', 'StartContainer', 'ExecSync', 'StopContainer', 'RemoveContainer', 'StopPodSandbox', 'RemovePodSandbox'];
  declare(w, ['cycle', ...OPS]);
  for (const t of targets) {
    if (!t.daemon || !t.pid) {
      notes.push(`${t.id} soak: skipped; it needs a daemon the benchmark starts`);
      continue;
    }
    const start = await leftovers(t.daemon);
    // JIT, lazily loaded code and caches grow the RSS in the first cycles: not part of the baseline.
    for (let i = 0; i < o.soakWarmup; i++) await soakCycle(t, `sw-${i}`, o);
    await sleep(SOAK_SETTLE_MS);
    const before = await leftovers(t.daemon);
    let maxRss = before.rssKb;
    let failed = 0;
    const every = Math.max(1, Math.round(n / 10));
    const cycles = (rec(w, 'cycle').samples[t.id] ??= []);
    const rssTrace: SoakRun['rssTrace'] = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      if (await soakCycle(t, `s-${i}`, o, w)) cycles.push(Number(process.hrtime.bigint() - t0) / 1e6);
      else failed++;
      maxRss = Math.max(maxRss, rssKb(t.pid));
      if ((i + 1) % every === 0) {
        rssTrace.push({ cycle: i + 1, rssKb: rssKb(t.pid) });
        const p50 = summarize(cycles)?.p50 ?? NaN;
        say(`  soak ${t.id}: ${i + 1}/${n} cycles, p50 ${p50.toFixed(0)} ms, daemon fds ${readdirSync(`/proc/${t.pid}/fd`).length}, RSS ${(rssKb(t.pid) / 1024).toFixed(1)} MB`);
      }
    }
    await sleep(SOAK_SETTLE_MS);
    const after = await leftovers(t.daemon);
    runs.push({ runtime: t.id, cycles: cycles.length, failed, warmup: o.soakWarmup, settleMs: SOAK_SETTLE_MS, start, before, after, leaked: leaked(before, after), maxRssKb: maxRss, rssTrace });
  }
}

/** Does something accept connections on the unix socket? */
function accepts(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(socket);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Recovery speed: a daemon of its own with --restart-pods pods × 2 running containers; per round,
 * kill -9 it, kill --restart-kill containers' processes (pids from ContainerStatus verbose info)
 * while it is down, start it again and time, from the new process's spawn, when its socket accepts,
 * when it first answers (Version), when ListContainers lists everything, and when every pod and
 * container shows its right state.
 */
async function restart(o: Opts, runs: RestartRun[]): Promise<void> {
  const a = targets.find((t) => t.daemon);
  if (!a) {
    notes.push('restart: skipped; it needs a daemon the benchmark starts (no --endpoint)');
    return;
  }
  say(`  starting a cri-mesos daemon for ${o.restartPods} pods × 2 running containers`);
  const d = await extraDaemon(o, 'cri-mesos-bench-restart', { importImages: true });
  // A's id and config; its own daemon, client and pods
  const t: Target = { ...a, client: d.client, socket: d.socket, daemon: d, pid: d.pid, pods: new Set() };
  try {
    const ctrs: { id: string; killed: boolean }[] = [];
    const t0 = Date.now();
    await pool(Array.from({ length: o.restartPods }, (_, i) => i), o.setupConcurrency, async (i) => {
      const p = await runPod(t, `rs-${i}`);
      for (const name of p ? ['a', 'b'] : []) {
        const c = await call(t, 'CreateContainer', { pod_sandbox_id: p!.id, config: ctrCfg(name), sandbox_config: p!.config });
        if (c && (await call(t, 'StartContainer', { container_id: c.container_id }))) ctrs.push({ id: c.container_id, killed: false });
      }
    });
    say(`  ${t.pods.size} pods, ${ctrs.length} running containers in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    for (let round = 1; round <= o.restartRounds; round++) {
      const alive = ctrs.filter((c) => !c.killed);
      const step = Math.max(1, Math.floor(alive.length / Math.max(1, o.restartKill)));
      const victims = alive.filter((_, i) => i % step === 0).slice(0, o.restartKill);
      const byPid = new Map(listProcs().map((p) => [p.pid, p]));
      const pids: { pid: number; helper: number }[] = [];
      for (const v of victims) {
        const s = await call(t, 'ContainerStatus', { container_id: v.id, verbose: true });
        const pid = Number(JSON.parse(s?.info?.info ?? '{}').pid);
        // its parent is the container's launch helper, which exits with it
        if (pid > 0) pids.push({ pid, helper: byPid.get(pid)?.ppid ?? pid });
      }
      await d.kill9();
      // Only processes of containers this run started.
      for (const p of pids) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // exited by itself
        }
      }
      for (const v of victims) v.killed = true;
      await waitFor('the killed containers and their helpers to exit', () => pids.every((p) => exited(p.pid) && exited(p.helper)), 30_000);
      const logFrom = d.logs().length;
      const spawnedAt = Date.now();
      const since = performance.now();
      const launching = d.launch();
      const r = await Promise.all([launching, watchRecovery(d.socket, since, t.pods.size, ctrs)]).then(([, m]) => m);
      t.client = d.client;
      const log = d.logs().slice(logFrom);
      const sinceSpawn = (at: number | null) => (at === null ? null : at - spawnedAt);
      runs.push({
        runtime: t.id,
        round,
        pods: t.pods.size,
        containers: ctrs.length,
        killed: ctrs.filter((c) => c.killed).length,
        servingMs: sinceSpawn(logTime(log, 'serving CRI')),
        recoveredMs: sinceSpawn(logTime(log, 'recovery done')),
        ...r,
      });
      say(`  round ${round}: first answer ${r.versionMs.toFixed(0)} ms after the spawn, all in their state after ${r.allRightMs?.toFixed(0) ?? '-'} ms`);
    }
    await removeAllPods(t, [...t.pods], o.setupConcurrency);
  } finally {
    mkdirSync(resolve(o.out), { recursive: true });
    writeFileSync(join(resolve(o.out), `daemon-${a.id}-restart.log`), d.logs());
    await dropDaemon(d, o);
  }
}

/** The new daemon's first answers, in ms from performance.now() `since` (its spawn). */
async function watchRecovery(
  socket: string,
  since: number,
  pods: number,
  ctrs: { id: string; killed: boolean }[],
): Promise<Omit<RestartRun, 'runtime' | 'round' | 'pods' | 'containers' | 'killed' | 'servingMs' | 'recoveredMs'>> {
  const ms = () => Math.round((performance.now() - since) * 10) / 10;
  // made now: its channel connects at the first call, after the socket accepts
  const client = new CriClient(socket);
  try {
    // The old socket file is still there: poll until the new daemon listens on it.
    while (!(await accepts(socket))) {
      if (performance.now() - since > 60_000) throw new Error('the restarted daemon does not accept connections');
      await sleep(2);
    }
    const acceptMs = ms();
    await client.call('Version', {}, 60_000);
    const versionMs = ms();
    const killed = new Set(ctrs.filter((c) => c.killed).map((c) => c.id));
    let listMs = NaN;
    let listed = 0;
    let killedExitedMs: number | null = null;
    let allRightMs: number | null = null;
    while (allRightMs === null && performance.now() - since < 60_000) {
      const c = await client.call('ListContainers', {});
      const at = ms();
      if (Number.isNaN(listMs)) [listMs, listed] = [at, c.containers?.length ?? 0];
      const state = new Map<string, string>((c.containers ?? []).map((x: { id: string; state: string }) => [x.id, x.state]));
      const killedOk = [...killed].every((id) => state.get(id) === 'CONTAINER_EXITED');
      if (killedOk) killedExitedMs ??= at;
      const others = ctrs.every((x) => killed.has(x.id) || state.get(x.id) === 'CONTAINER_RUNNING');
      const ready = ((await client.call('ListPodSandbox', {})).items ?? []).filter((x: { state: string }) => x.state === 'SANDBOX_READY').length;
      if (killedOk && others && ready === pods) allRightMs = ms();
      else await sleep(5);
    }
    return { acceptMs, versionMs, listMs, listed, killedExitedMs, allRightMs };
  } finally {
    client.close();
  }
}

interface ScaleState {
  running: { pod: string; config: object }[];
  pods: number;
  containers: number;
}

/** Grow a target to `size` pods and `size` containers: the first 100 pods get a running container, the
 *  rest are stopped right away (NOTREADY, still listed); containers beyond 100 are created, not started,
 *  spread over the running pods. */
async function grow(t: Target, st: ScaleState, size: number, o: Opts): Promise<void> {
  const newPods = Array.from({ length: Math.max(0, size - st.pods) }, (_, k) => st.pods + k);
  await pool(newPods, o.setupConcurrency, async (i) => {
    const p = await runPod(t, `ls-${i}`, { 'cri-mesos-bench-list': '1' });
    if (!p) return;
    st.pods++;
    if (i < RUNNING_CAP) {
      const c = await call(t, 'CreateContainer', { pod_sandbox_id: p.id, config: ctrCfg('c'), sandbox_config: p.config });
      if (c && (await call(t, 'StartContainer', { container_id: c.container_id }))) {
        st.running.push({ pod: p.id, config: p.config });
        st.containers++;
      }
    } else {
      await call(t, 'StopPodSandbox', { pod_sandbox_id: p.id });
    }
  });
  const extra = Array.from({ length: Math.max(0, size - st.containers) }, (_, k) => st.containers + k);
  if (extra.length && !st.running.length) throw new Error(`${t.id}: no running pod to put containers in`);
  await pool(extra, o.setupConcurrency, async (i) => {
    const p = st.running[i % st.running.length]!;
    const c = await call(t, 'CreateContainer', { pod_sandbox_id: p.pod, config: ctrCfg(`x${i}`), sandbox_config: p.config });
    if (c) st.containers++;
  });
}

/** "cri-mesos-launch pause" / "cri-mesos-launch container" for cri-mesos's helpers (comm is cut to 15 chars). */
function helperKind(p: Proc): string | undefined {
  const argv = p.cmdline.split(' ');
  if (!p.comm.startsWith('cri-mesos-launc') && !/(^|\/)cri-mesos-launch$/.test(argv[0] ?? '')) return undefined;
  return `cri-mesos-launch ${argv[1] ?? ''}`.trim();
}

async function measureResources(t: Target, st: ScaleState): Promise<Resources> {
  const procs = listProcs();
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const helpers = new Map<number, string>();
  // the sandbox ("pause") process of every pod, as the runtime reports it
  for (const p of st.running) {
    const s = await call(t, 'PodSandboxStatus', { pod_sandbox_id: p.pod, verbose: true });
    try {
      const pid = Number(JSON.parse(s?.info?.info ?? '{}').pid);
      const pr = byPid.get(pid);
      if (pr) helpers.set(pid, helperKind(pr) ?? `${pr.comm} (pause)`);
    } catch {
      // no verbose info
    }
  }
  if (t.kind === 'cri-mesos' && t.pid) {
    for (const p of descendants(procs, t.pid)) {
      const k = helperKind(p);
      if (k) helpers.set(p.pid, k);
    }
  }
  for (const p of procs) {
    const ours = p.cmdline.includes(`-address ${t.socket} `) || p.cmdline.endsWith(`-address ${t.socket}`);
    if (ours && /^\S*containerd-shim/.test(p.cmdline)) {
      helpers.set(p.pid, 'containerd-shim-runc-v2');
    }
  }
  const kinds: Record<string, number> = {};
  let rss = 0;
  let pss = 0;
  for (const [pid, kind] of helpers) {
    kinds[kind] = (kinds[kind] ?? 0) + 1;
    rss += rssKb(pid);
    pss += pssKb(pid);
  }
  const running = await call(t, 'ListContainers', { filter: { state: { state: 'CONTAINER_RUNNING' } } });
  return {
    runtime: t.id,
    runningContainers: running?.containers?.length ?? st.running.length,
    pods: st.pods,
    daemonRssKb: t.pid ? rssKb(t.pid) : 0,
    helperCount: helpers.size,
    helperRssKb: rss,
    helperPssKb: pss,
    helperKinds: kinds,
  };
}

async function lists(o: Opts, resources: Resources[]): Promise<void> {
  const states = new Map<string, ScaleState>(targets.map((t) => [t.id, { running: [], pods: 0, containers: 0 }]));
  let measured = false;
  for (const size of o.listSizes) {
    const w = `list ${size}`;
    declare(w, ['ListPodSandbox', 'ListContainers', 'ListContainerStats', 'ListPodSandboxStats']);
    for (const t of targets) {
      const t0 = Date.now();
      await grow(t, states.get(t.id)!, size, o);
      const s = states.get(t.id)!;
      say(`  ${t.id}: ${s.pods} pods, ${s.containers} containers (${s.running.length} running) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    if (!measured && size >= RUNNING_CAP) {
      await sleep(1000);
      for (const t of targets) resources.push(await measureResources(t, states.get(t.id)!));
      measured = true;
    }
    for (const t of targets) {
      const p = await call(t, 'ListPodSandbox', {});
      const c = await call(t, 'ListContainers', {});
      if ((p?.items?.length ?? 0) < size || (c?.containers?.length ?? 0) < size) {
        notes.push(`${t.id} ${w}: the runtime listed ${p?.items?.length} pods and ${c?.containers?.length} containers (expected ≥ ${size})`);
      }
    }
    await interleaved(o.iterations, o.concurrency, async (t) => {
      await timed(t, w, 'ListPodSandbox', {});
      await timed(t, w, 'ListContainers', {});
      // Stats of every container (size, of which up to 100 running) and every pod.
      await timed(t, w, 'ListContainerStats', {});
      await timed(t, w, 'ListPodSandboxStats', {});
    });
    for (const t of targets.filter((x) => x.kind === 'cri-mesos')) {
      // What the stats sampler costs the daemon (verbose Status: its last pass).
      const s = await call(t, 'Status', { verbose: true });
      const pass = s?.info?.stats ? (JSON.parse(s.info.stats) as { windowMs: number; lastPassMs: number; lastPassBusyMs: number; objects: number; full: number }) : undefined;
      if (pass) {
        notes.push(
          `${t.id} ${w}: the stats sampler's last pass read ${pass.objects} pods and containers (${pass.full} in full) in ${pass.lastPassMs.toFixed(1)} ms, ` +
            `${pass.lastPassBusyMs.toFixed(1)} ms of it reading (${((pass.lastPassBusyMs / pass.objects) * 1000).toFixed(0)} µs each), once per ${pass.windowMs} ms window`,
        );
      }
    }
  }
  for (const t of targets) {
    const t0 = Date.now();
    const mine = await call(t, 'ListPodSandbox', { filter: { label_selector: { 'cri-mesos-bench': runId, 'cri-mesos-bench-list': '1' } } });
    await removeAllPods(t, (mine?.items ?? []).map((p: { id: string }) => p.id), o.setupConcurrency);
    say(`  ${t.id}: removed the list pods in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

/**
 * The kubelet at rest on a node of 100 pods, each with a running container: its generic PLEG
 * makes one unfiltered ListPodSandbox and one ListContainers per second; every 10 s (the
 * housekeeping period) it asks for every container's and pod's stats. Nothing changes, so no
 * status calls. One target at a time, `--steady-seconds` each; the result is the runtime's CPU
 * over that time (utime+stime of the daemon; containerd's shims are not in it), as a share of
 * one core.
 */
async function steady(o: Opts): Promise<void> {
  const w = 'steady 100';
  declare(w, ['ListPodSandbox', 'ListContainers', 'ListContainerStats', 'ListPodSandboxStats']);
  for (const t of targets) {
    const st: ScaleState = { running: [], pods: 0, containers: 0 };
    await grow(t, st, RUNNING_CAP, o);
    say(`  ${t.id}: ${st.pods} pods, ${st.running.length} running containers; ${STEADY_SETTLE_MS / 1000} s to settle, then ${o.steadySeconds} s of kubelet calls`);
    // What the objects' creation started (first full stats reads, writable-layer walks) is not steady state.
    await sleep(STEADY_SETTLE_MS);
    const before = t.pid ? cpuSeconds(t.pid) : undefined;
    const t0 = performance.now();
    for (let sec = 0; sec < o.steadySeconds; sec++) {
      const tick = t0 + (sec + 1) * 1000;
      await timed(t, w, 'ListPodSandbox', {});
      await timed(t, w, 'ListContainers', {});
      if (sec % 10 === 0) {
        await timed(t, w, 'ListContainerStats', {});
        await timed(t, w, 'ListPodSandboxStats', {});
      }
      await sleep(Math.max(0, tick - performance.now()));
    }
    const wall = (performance.now() - t0) / 1000;
    const after = t.pid ? cpuSeconds(t.pid) : undefined;
    if (before && after) {
      const pct = ((after.self - before.self) / wall) * 100;
      steadyCpu.push({ runtime: t.id, seconds: wall, cpuPercent: pct });
      notes.push(`${t.id} ${w}: the daemon used ${pct.toFixed(2)}% of one core over ${wall.toFixed(0)} s of kubelet steady state (100 pods, 100 running containers)`);
    } else notes.push(`${t.id} ${w}: no daemon pid, no CPU figure`);
    const mine = await call(t, 'ListPodSandbox', { filter: { label_selector: { 'cri-mesos-bench': runId, 'cri-mesos-bench-list': '1' } } });
    await removeAllPods(t, (mine?.items ?? []).map((p: { id: string }) => p.id), o.setupConcurrency);
  }
}

// ---- targets ---------------------------------------------------------------------------

function newestMtime(dir: string): number {
  let m = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) m = Math.max(m, newestMtime(p));
    else if (e.name.endsWith('.ts')) m = Math.max(m, statSync(p).mtimeMs);
  }
  return m;
}

async function ownDaemon(id: string, o: Opts): Promise<Target> {
  if (o.daemon === 'dist') {
    const cli = join(projectRoot(), BUNDLE_FILE);
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build (or use --daemon src)`);
    if (statSync(cli).mtimeMs < newestMtime(join(projectRoot(), 'src'))) {
      notes.push('dist/ is older than src/: the benchmarked daemon may not be the current source (run npm run build:ts build:bundle)');
    }
  }
  say(`${id}: starting a cri-mesos daemon from ${o.daemon}/ with temp dirs`);
  // Its own process group, so a Ctrl-C in the terminal reaches only us (and we
  // remove what we made); a log file, so it does not die of EPIPE if we exit first.
  const daemon = await TestDaemon.start({
    from: o.daemon,
    logLevel: o.logLevel,
    logTo: 'file',
    detached: true,
    prefix: 'cri-mesos-bench-daemon',
    flags: o.daemonFlag,
  });
  const flags = o.daemonFlag.length ? ` ${o.daemonFlag.join(' ')}` : '';
  return makeTarget(id, daemon.socket, daemon.client, `own daemon (${o.daemon}/, --log-level ${o.logLevel}${flags})`, { daemon, pid: daemon.pid });
}

/**
 * "A docker": a cri-mesos daemon of its own (A's build and flags) with --containerizers
 * mesos,docker on a dockerd of its own (test/helpers/dockerd.ts: temp data root, no bridge, no
 * iptables, stopped by its PID), for the pod and container workloads with runtime_handler docker
 * (pods on network NODE, containers of the same busybox, loaded into the Engine as a docker
 * archive). One untimed pod and container first: the pause image import is not measured.
 */
async function dockerTargetStart(o: Opts): Promise<Target> {
  say('A docker: starting a dockerd and a cri-mesos daemon with --containerizers mesos,docker');
  const dockerd = await TestDockerd.start('cri-mesos-bench-dockerd');
  let daemon: TestDaemon | undefined;
  const stopDockerd = async () => {
    const left = await dockerd.containers().catch(() => []);
    const leaked = await dockerd.stop();
    if (left.length || leaked.length) notes.push(`A docker: left behind: ${[...left, ...leaked].join(', ')}`);
  };
  try {
    daemon = await TestDaemon.start({
      from: o.daemon,
      logLevel: o.logLevel,
      logTo: 'file',
      detached: true,
      prefix: 'cri-mesos-bench-docker',
      flags: [...o.daemonFlag, '--containerizers', 'mesos,docker', '--docker-host', dockerd.host],
    });
  } catch (e) {
    await stopDockerd();
    throw e;
  }
  const t = await makeTarget('A docker', daemon.socket, daemon.client, `own daemon (${o.daemon}/) on a dockerd of its own, runtime_handler docker`, {
    daemon,
    pid: daemon.pid,
    own: true,
    handler: 'docker',
    image: DOCKER_BUSYBOX,
    label: 'cri-mesos docker handler',
    after: stopDockerd,
  });
  extraTargets.add(t);
  const warm = await runPod(t, 'dockerw');
  if (!warm) throw new Error('A docker: the warm-up pod failed');
  const c = await call(t, 'CreateContainer', { pod_sandbox_id: warm.id, config: ctrCfg('warm', t.image), sandbox_config: warm.config });
  if (c) await call(t, 'StartContainer', { container_id: c.container_id });
  await removePod(t, warm.id);
  return t;
}

/**
 * "floor": hack/bench/null-runtime.ts (built into dist/), run with bin/cri-mesos's node flags and
 * malloc settings (keep the two in step): a grpc-js server with the daemon's service definitions that keeps pods and
 * containers in two Maps. Its column is what no work at all costs at this client, in the same
 * interleaved rounds; B/floor is the most any runtime served by grpc-js could show.
 */
async function floorTargetStart(): Promise<Target> {
  const script = join(projectRoot(), 'dist', 'hack', 'bench', 'null-runtime.js');
  if (!existsSync(script)) throw new Error(`--floor: ${script} is missing; run npm run build`);
  const dir = mkdtempSync(join(tmpdir(), 'cri-mesos-bench-floor-'));
  const socket = join(dir, 'null.sock');
  const env = { ...process.env, MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '1048576', MALLOC_TRIM_THRESHOLD_: '4194304' };
  const child = spawn(process.execPath, ['--max-semi-space-size=1', script, '--socket', socket], { stdio: ['ignore', 'ignore', 'inherit'], env });
  const gone = new Promise<void>((res) => child.on('exit', () => res()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await gone;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('the null runtime\'s socket', () => existsSync(socket), 10_000);
    const t = await makeTarget('floor', socket, new CriClient(socket), 'hack/bench/null-runtime.ts: grpc-js, the daemon\'s service definitions, pods and containers in memory, no work', {
      pid: child.pid,
      own: true,
      label: 'null grpc-js runtime',
      after: stop,
    });
    extraTargets.add(t);
    return t;
  } catch (e) {
    await stop();
    throw e;
  }
}

const REFERENCE_SCRIPT = () => join(projectRoot(), 'hack', 'bench', 'containerd-reference.sh');

/** containerd-reference.sh start (env: a second instance's dirs, CNI, netns); its socket. */
async function startReference(env: Record<string, string> = {}): Promise<string> {
  const imagesDir = join(tmp, 'reference-images');
  if (!existsSync(join(imagesDir, 'pause.tar'))) await buildReferenceImages(imagesDir);
  const script = REFERENCE_SCRIPT();
  const out = await new Promise<string>((res, rej) => {
    const p = spawn('bash', [script, 'start', imagesDir], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let s = '';
    p.stdout.on('data', (d: Buffer) => (s += d.toString()));
    p.on('exit', (code) => (code === 0 ? res(s) : rej(new Error(`${script} start failed (${code})`))));
  });
  return out.trim().split('\n').pop()!;
}

async function stopReference(env: Record<string, string> = {}): Promise<void> {
  await new Promise<void>((res) =>
    spawn('bash', [REFERENCE_SCRIPT(), 'stop'], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } }).on('exit', () => res()),
  );
}

async function reference(id: string): Promise<Target> {
  say(`${id}: starting Debian's containerd via ${REFERENCE_SCRIPT()}`);
  const socket = await startReference();
  const client = new CriClient(socket);
  return makeTarget(id, socket, client, 'containerd-reference.sh', { reference: true });
}

async function makeTarget(
  id: string,
  socket: string,
  client: CriClient,
  origin: string,
  extra: {
    daemon?: TestDaemon;
    pid?: number;
    reference?: boolean;
    referenceEnv?: Record<string, string>;
    logName?: string;
    after?: () => void | Promise<void>;
    own?: boolean;
    handler?: string;
    image?: string;
    label?: string;
  },
): Promise<Target> {
  const v = await client.call('Version', {}, 10_000);
  const pid = extra.pid ?? socketOwner(socket);
  const name: string = v.runtime_name;
  const kind = name === 'cri-mesos' ? 'cri-mesos' : name === 'containerd' ? 'containerd' : 'other';
  if (!pid) notes.push(`${id}: could not find the process listening on ${socket}: no daemon RSS/CPU`);
  const logRoot = join(tmp, 'logs', id);
  mkdirSync(logRoot, { recursive: true });
  const t: Target = {
    id,
    client,
    socket,
    kind,
    pid,
    daemon: extra.daemon,
    reference: extra.reference,
    referenceEnv: extra.referenceEnv,
    logName: extra.logName,
    after: extra.after,
    handler: extra.handler,
    image: extra.image,
    pods: new Set(),
    logRoot,
    info: { id, label: extra.label ?? name, endpoint: `unix://${socket}`, runtimeName: name, runtimeVersion: v.runtime_version, pid, origin },
  };
  // own: a workload's target of its own (cni), not one of the run's
  if (!extra.own) targets.push(t);
  return t;
}

async function cleanupTarget(t: Target, o: Opts): Promise<void> {
  try {
    const mine = await t.client.call('ListPodSandbox', { filter: { label_selector: { 'cri-mesos-bench': runId } } }, 10_000);
    for (const p of mine.items ?? []) t.pods.add(p.id);
  } catch {
    // daemon gone: the sweeps below handle it
  }
  if (t.pods.size) {
    say(`${t.id}: removing ${t.pods.size} pods left by the run`);
    await pool([...t.pods], o.setupConcurrency, async (id) => {
      await t.client.call('StopPodSandbox', { pod_sandbox_id: id }, 30_000).catch(() => undefined);
      if (await t.client.call('RemovePodSandbox', { pod_sandbox_id: id }, 30_000).then(() => true, () => false)) t.pods.delete(id);
    }, true);
  }
  if (t.daemon) {
    mkdirSync(resolve(o.out), { recursive: true });
    writeFileSync(join(resolve(o.out), t.logName ?? `daemon-${t.id}.log`), t.daemon.logs());
    await t.daemon.teardown(o.setupConcurrency);
  } else {
    t.client.close();
  }
  if (t.reference) await stopReference(t.referenceEnv);
  await t.after?.();
}

let cleaning: Promise<void> | undefined;
function cleanup(o: Opts): Promise<void> {
  cleaning ??= (async () => {
    aborted = true;
    // a workload's own targets first: the main reference containerd's stop kills what is left in its k8s.io cgroups
    for (const t of [...extraTargets, ...targets]) {
      extraTargets.delete(t);
      try {
        await cleanupTarget(t, o);
      } catch (e) {
        say(`${t.id}: cleanup failed: ${errText(e)}`);
      }
    }
    for (const d of extraDaemons) {
      extraDaemons.delete(d);
      await d.teardown(o.setupConcurrency).catch((e: unknown) => say(`cleanup of ${d.dir} failed: ${errText(e)}`));
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}

// ---- main ------------------------------------------------------------------------------

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
const int = (s: string) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${s}`);
  return n;
};

const program = new Command('bench')
  .description('CRI benchmark: cri-mesos against another CRI runtime, side by side, interleaved')
  .option('--endpoint <socket>', 'CRI socket of the runtime under test (default: start our own cri-mesos daemon with temp dirs)')
  .option('--vs <socket|reference>', 'a second CRI runtime to run the same workloads against; "reference" starts Debian\'s containerd (hack/bench/containerd-reference.sh)')
  .option('-n, --iterations <n>', 'iterations per workload (and per list size)', int, 20)
  .option('-c, --concurrency <n>', 'parallel iterations per round', int, 1)
  .option('--workloads <list>', `comma-separated subset of ${WORKLOADS.join(',')} (default: ${DEFAULT_WORKLOADS.join(',')})`, list, [...DEFAULT_WORKLOADS])
  .option('--list-sizes <list>', 'object counts for ListPodSandbox/ListContainers', (s) => list(s).map(int), [100, 1000])
  .option('--burst <pods>', 'pods started at once in the burst workload', int, 100)
  .option('--burst-rounds <n>', 'bursts per runtime', int, 2)
  .option('--front-calls <n>', 'Status calls per variant in the front workload', int, 2000)
  .option('--soak <cycles>', 'soak workload: cycles of a pod with two containers, then leaks and RSS growth; without --workloads, only the soak runs (default cycles 1000)', int)
  .option('--soak-warmup <cycles>', 'untimed soak cycles before the baseline', int, 10)
  .option('--restart-pods <n>', 'restart workload: pods with two running containers each', int, 100)
  .option('--restart-kill <n>', "restart workload: containers whose process is killed while the daemon is down, per round", int, 20)
  .option('--restart-rounds <n>', 'restart workload: kill -9 and restarts', int, 3)
  .option('--steady-seconds <s>', 'steady workload: seconds of kubelet calls per runtime', int, 30)
  .option('--setup-concurrency <n>', 'parallel calls when creating/removing objects outside measurements', int, 8)
  .option('--stop-timeout <s>', 'StopContainer timeout (the containers run sleep as PID 1, which ignores SIGTERM)', int, 0)
  .option('--out <dir>', 'where to write bench.json, bench.svg and bench.txt', 'bench-out')
  .addOption(new Option('--daemon <from>', 'run our own daemon from the built dist/ or from src/ through tsx').choices(['dist', 'src']).default('dist'))
  .option('--docker', 'add an "A docker" target (pod and container workloads, runtime_handler docker) on a dockerd and daemon of its own; default: when dockerd is installed and the run starts its own daemon')
  .option('--no-docker', 'no "A docker" target')
  .option('--floor', 'add a "floor" target (pod and container workloads): hack/bench/null-runtime.ts, a grpc-js CRI server that does no work, so its column is what the client, the transport and grpc-js cost', false)
  .option('--log-level <level>', 'log level of our own daemon (info gives the state-transition breakdown)', 'info')
  .option('--daemon-flag <flag>', 'extra flag for our own daemon, repeatable (e.g. --daemon-flag=--cgroup-favor-dynmods=true)', (v: string, acc: string[]) => [...acc, v], [] as string[]);

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<Opts>();
  if (o.soak !== undefined && program.getOptionValueSource('workloads') === 'default') o.workloads = ['soak'];
  for (const w of o.workloads) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w} (known: ${WORKLOADS.join(', ')})`);
  if (o.iterations < 1) throw new Error('--iterations must be ≥ 1');
  o.concurrency = Math.max(1, o.concurrency);
  o.listSizes = [...o.listSizes].sort((a, b) => a - b);
  tmp = mkdtempSync(join(tmpdir(), 'cri-mesos-bench-'));

  let firstSignal = 0;
  const onSignal = (sig: string) => {
    // npm and tsx relay the terminal's SIGINT to us as well: repeats within 2 s are the same Ctrl-C
    if (firstSignal && Date.now() - firstSignal < 2000) return;
    if (firstSignal) {
      say(`second ${sig}: exiting without finishing the cleanup (temp dir ${tmp})`);
      process.exit(130);
    }
    firstSignal = Date.now();
    say(`${sig}: stopping the workloads and cleaning up … (press Ctrl-C again to exit at once)`);
    void cleanup(o).finally(() => process.exit(130));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  const startedAt = new Date().toISOString();
  const load0 = loadavg();
  const bursts: BurstRun[] = [];
  const resources: Resources[] = [];
  const soakRuns: SoakRun[] = [];
  const restartRuns: RestartRun[] = [];
  const cpuStart = new Map<string, { self: number; children: number }>();
  const cpu = new Map<string, CpuUse>();
  try {
    if (o.endpoint) {
      const c = new CriClient(resolve(o.endpoint));
      await makeTarget('A', resolve(o.endpoint), c, 'external', {});
    } else {
      await ownDaemon('A', o);
    }
    if (o.vs === 'reference') await reference('B');
    else if (o.vs) await makeTarget('B', resolve(o.vs), new CriClient(resolve(o.vs)), 'external', {});
    const lifecycle = o.workloads.includes('pod') || o.workloads.includes('container');
    if (o.docker === true && o.endpoint) notes.push('A docker: skipped; it needs a daemon the benchmark starts (no --endpoint)');
    else if (o.docker === true && !TestDockerd.available()) notes.push('A docker: skipped; no dockerd (hack/deps.sh --test installs docker.io)');
    else if (lifecycle && !o.endpoint && (o.docker ?? TestDockerd.available())) dockerTarget = await dockerTargetStart(o);
    if (o.floor && lifecycle) floorTarget = await floorTargetStart();

    for (const t of lifecycleTargets()) {
      if (t.pid) cpuStart.set(t.id, cpuSeconds(t.pid) ?? { self: 0, children: 0 });
      cpu.set(t.id, { runtime: t.id, totalSeconds: 0, childrenSeconds: 0, perWorkload: {} });
    }
    /** ownCpu false: the workload runs on a daemon of its own, so the targets' CPU time says nothing about it */
    const phase = async (name: string, fn: () => Promise<void>, ownCpu = true) => {
      const before = new Map(lifecycleTargets().map((t) => [t.id, t.pid ? cpuSeconds(t.pid) : undefined]));
      const t0 = Date.now();
      say(`workload: ${name}`);
      await fn();
      for (const t of lifecycleTargets()) {
        if (t === dockerTarget && name !== 'pod' && name !== 'container') continue;
        const b = before.get(t.id);
        const a = t.pid ? cpuSeconds(t.pid) : undefined;
        if (a && b && ownCpu) cpu.get(t.id)!.perWorkload[name] = a.self - b.self;
      }
      say(`  done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    };
    if (o.workloads.includes('pod')) await phase('pod', () => podLifecycle(o));
    if (o.workloads.includes('container')) await phase('container', () => containerLifecycle(o));
    if (o.workloads.includes('exec')) await phase('exec', () => execSync(o));
    if (o.workloads.includes('stream')) await phase('stream', () => streaming(o));
    if (o.workloads.includes('front')) await phase('front', () => frontCost(o));
    if (o.workloads.includes('burst')) await phase('burst', () => burst(o, bursts));
    if (o.workloads.includes('list')) await phase('list', () => lists(o, resources));
    if (o.workloads.includes('steady')) await phase('steady', () => steady(o));
    if (o.workloads.includes('cni')) await phase('cni', () => cniPods(o), false);
    if (o.workloads.includes('soak')) await phase('soak', () => soak(o, soakRuns));
    if (o.workloads.includes('restart')) await phase('restart', () => restart(o, restartRuns), false);
    for (const t of lifecycleTargets()) {
      const s = cpuStart.get(t.id);
      const e = t.pid ? cpuSeconds(t.pid) : undefined;
      if (s && e) Object.assign(cpu.get(t.id)!, { totalSeconds: e.self - s.self, childrenSeconds: e.children - s.children });
    }
  } catch (e) {
    if (aborted) {
      // the signal handler cleans up and exits; no report from a cut-short run
      await cleanup(o);
      return;
    }
    say(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    notes.push(`the run failed: ${errText(e)}`);
  }

  // cri-mesos's own view: state transitions and server-side RPC times from its log
  const phases: RawResults['phases'] = {};
  for (const t of lifecycleTargets()) {
    if (!t.daemon) continue;
    const log = t.daemon.logs();
    phases[t.id] = phasesFromLog(log);
    const rpc = rpcTimesFromLog(log);
    const parts = Object.entries(rpc)
      .filter(([k]) => !['Version', 'ListPodSandbox', 'ListContainers'].includes(k))
      .map(([k, v]) => `${k} ${summarize(v)!.p50.toFixed(1)}`);
    if (parts.length) notes.push(`${t.id} server-side p50 ms (daemon log "response" lines, all workloads): ${parts.join(', ')}`);
  }
  // What the stack costs by itself: B against a runtime that does no work, per lifecycle call.
  const b = targets.find((t) => t.id === 'B');
  if (floorTarget && b) {
    const parts: string[] = [];
    for (const r of ops.values()) {
      if (r.workload !== 'pod lifecycle' && r.workload !== 'container lifecycle') continue;
      const f = summarize(r.samples[floorTarget.id] ?? [])?.p50;
      const v = summarize(r.samples[b.id] ?? [])?.p50;
      if (f && v) parts.push(`${r.op} ${(v / f).toFixed(2)}x`);
    }
    if (parts.length) notes.push(`floor: B/floor p50, the most a runtime served by grpc-js could show to this client: ${parts.join(', ')}`);
  }
  Object.assign(phases, extraPhases);
  const finishedAt = new Date().toISOString();
  const raw: RawResults = {
    startedAt,
    finishedAt,
    host: { cpus: cpus().length, kernel: release(), loadavgStart: load0, loadavgEnd: loadavg(), memTotalMb: memTotalMb() },
    params: {
      iterations: o.iterations,
      concurrency: o.concurrency,
      workloads: o.workloads,
      listSizes: o.listSizes,
      burst: o.burst,
      burstRounds: o.burstRounds,
      stopTimeout: o.stopTimeout,
      ...(o.workloads.includes('soak') ? { soakCycles: o.soak ?? 1000, soakWarmup: o.soakWarmup } : {}),
      ...(o.workloads.includes('restart') ? { restartPods: o.restartPods, restartKill: o.restartKill, restartRounds: o.restartRounds } : {}),
      image: BENCH_IMAGE,
      command: ['sleep', '3600'],
      interleave: 'per round: A,B then B,A',
    },
    networkMode: o.workloads.some((w) => w !== 'cni')
      ? `host network (NamespaceOption network NODE, no CNI)${o.workloads.includes('cni') ? '; cni: network POD through CNI (bridge conflist)' : ''}`
      : 'network POD through CNI (bridge + host-local + portmap + loopback, each runtime in a netns of its own)',
    runtimes: lifecycleTargets().map((t) => t.info),
    ops: [...ops.values()].filter((x) => Object.keys(x.samples).length || Object.keys(x.errors).length),
    bursts,
    resources,
    steady: steadyCpu,
    cpu: [...cpu.values()],
    phases,
    soak: soakRuns,
    restart: restartRuns,
    notes: [
      ...(o.workloads.includes('list')
        ? [`list ${o.listSizes.join('/')}: pods beyond ${RUNNING_CAP} are stopped right after RunPodSandbox (NOTREADY, still listed); containers beyond ${RUNNING_CAP} are created, not started, spread over the ${RUNNING_CAP} running pods`]
        : []),
      ...notes,
    ],
  };
  const report = buildReport(raw);
  const outDir = resolve(o.out);
  mkdirSync(outDir, { recursive: true });
  const text = renderTable(report);
  writeFileSync(join(outDir, 'bench.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(outDir, 'bench.svg'), renderSvg(report));
  writeFileSync(join(outDir, 'bench.txt'), text);
  process.stdout.write('\n' + text);
  say(`wrote ${join(outDir, 'bench.json')}, bench.svg, bench.txt`);

  await cleanup(o);
  const failed = report.ops.some((x) => Object.keys(x.errors).length) || notes.some((n) => n.startsWith('the run failed'));
  process.exit(failed ? 1 : 0);
}

main().catch(async (e: unknown) => {
  say(`fatal: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  const o = program.opts<Opts>();
  await cleanup(o).catch(() => undefined);
  process.exit(2);
});
