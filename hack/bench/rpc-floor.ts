// Where the time of a cheap RPC goes: Version, PodSandboxStatus, ContainerStatus and the two
// List calls against a daemon of its own (dist/ through bin/cri-mesos, as the bench runs it),
// one grpc-js client, sequential calls. For each call it records, besides the latency at the
// client, the CPU the daemon's main thread used meanwhile (/proc/<pid>/task/<pid>/schedstat,
// in ns) and the client's own CPU (process.cpuUsage): on a VM shared with other jobs those
// two stay put while latencies swing with the load. See README.md, "Where the time goes".
//
//   tsx hack/bench/rpc-floor.ts [-n 2000] [--sizes 100,1000] [--flag=--cri-front=false ...]
//       warm: a bare grpc-js server in this process (the floor), then -n rounds of Version,
//       PodSandboxStatus and ContainerStatus after 200 untimed ones; --sizes grows to that many
//       pods and containers (pods past the first stopped, containers created) and times the Lists
//   tsx hack/bench/rpc-floor.ts --lifecycle 20 [--pause 100] [--prewarm -n 3000]
//       cold, as the bench's pod and container workloads: each status right after the call that
//       changed its object, then twice more; each Remove right after its Stop; --prewarm runs the
//       warm rounds first
//       --idle <s>: after each size, the daemon's CPU while nothing calls it
//       --endpoint <socket> --endpoint-pid <pid>: the same calls against another CRI runtime (for
//       example containerd-reference.sh's), its CPU summed over all its threads
//   RPC_FLOOR_PROF=<dir> tsx hack/bench/rpc-floor.ts ...
//       the daemon writes a CPU profile (cpu-profile-hook.mjs) and <dir>/windows.json the timed
//       windows; tsx hack/bench/profile-layers.ts <dir> splits each window's time by layer
import * as grpc from '@grpc/grpc-js';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CriClient, TestDaemon } from '../../test/helpers/daemon.js';
import { criServiceDefinitions } from '../../src/cri/service-definitions.js';
import { projectRoot } from '../../src/util/paths.js';
import { BENCH_IMAGE } from './images.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const N = Number(opt('-n', '2000'));
const SIZES = opt('--sizes', '')
  .split(',')
  .filter(Boolean)
  .map(Number);
const FLAGS = argv.filter((a) => a.startsWith('--flag=')).map((a) => a.slice('--flag='.length));
const PROF = process.env.RPC_FLOOR_PROF;
const LIFECYCLE = Number(opt('--lifecycle', '0'));
const PAUSE_MS = Number(opt('--pause', '100'));
const IDLE_S = Number(opt('--idle', '0'));
const ENDPOINT = opt('--endpoint', '');
const ENDPOINT_PID = Number(opt('--endpoint-pid', '0'));

let daemonPid = 0;
/** ns the daemon's main thread has run so far (schedstat's first field); another runtime's: all its threads */
function daemonCpuNs(): number {
  if (!daemonPid) return 0;
  const ns = (tid: number | string) => Number(readFileSync(`/proc/${daemonPid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  if (!ENDPOINT) return ns(daemonPid);
  let sum = 0;
  for (const tid of readdirSync(`/proc/${daemonPid}/task`)) {
    try {
      sum += ns(tid);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return sum;
}
/** minor page faults of a process so far (/proc/<pid>/stat's minflt) */
function minflt(pid: number | 'self'): number {
  return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[7]);
}
/** µs this process has run, all threads */
function clientCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

interface Samples {
  ms: number[];
  daemonNs: number[];
  clientUs: number[];
  /** page faults during the call: the daemon's (all its threads) and this process's */
  daemonFlt: number[];
  clientFlt: number[];
}
const samples = new Map<string, Samples>();
/** timed windows in CLOCK_MONOTONIC µs, the clock of a .cpuprofile's timestamps */
const windows: { label: string; fromUs: number; toUs: number; calls: number }[] = [];

async function timed(client: CriClient, label: string, rpc: string, req: object, keep = true): Promise<{ fromUs: number; toUs: number }> {
  const f0 = daemonPid ? minflt(daemonPid) : 0;
  const g0 = minflt('self');
  const c0 = daemonCpuNs();
  const u0 = clientCpuUs();
  const t0 = process.hrtime.bigint();
  await client.call(rpc, req);
  const t1 = process.hrtime.bigint();
  const u1 = clientCpuUs();
  const c1 = daemonCpuNs();
  const g1 = minflt('self');
  const f1 = daemonPid ? minflt(daemonPid) : 0;
  if (keep) {
    const s = samples.get(label) ?? samples.set(label, { ms: [], daemonNs: [], clientUs: [], daemonFlt: [], clientFlt: [] }).get(label)!;
    s.ms.push(Number(t1 - t0) / 1e6);
    if (daemonPid) {
      s.daemonNs.push(c1 - c0);
      s.daemonFlt.push(f1 - f0);
    }
    s.clientUs.push(u1 - u0);
    s.clientFlt.push(g1 - g0);
  }
  return { fromUs: Number(t0 / 1000n), toUs: Number(t1 / 1000n) };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function report(label: string): void {
  const s = samples.get(label);
  if (!s) return;
  const mean = s.ms.reduce((a, b) => a + b, 0) / s.ms.length;
  const daemon = s.daemonNs.length ? `  | daemon CPU µs p50 ${(pct(s.daemonNs, 50) / 1000).toFixed(0)}, faults ${pct(s.daemonFlt, 50)}` : '';
  console.log(
    `${label.padEnd(36)} n=${String(s.ms.length).padStart(5)}  ms p50 ${pct(s.ms, 50).toFixed(3)}  p95 ${pct(s.ms, 95).toFixed(3)}  mean ${mean.toFixed(3)}  min ${pct(s.ms, 0).toFixed(3)}${daemon}  | client CPU µs p50 ${pct(s.clientUs, 50).toFixed(0)}, faults ${pct(s.clientFlt, 50)}`,
  );
}

/** n rounds over the calls, after `warm` untimed rounds (round-robin, so drift hits all alike) */
async function rounds(client: CriClient, calls: [string, string, object][], n: number, warm = 200): Promise<void> {
  let fromUs = 0;
  for (let i = 0; i < warm + n; i++) {
    if (i === warm) fromUs = Number(process.hrtime.bigint() / 1000n);
    for (const [label, rpc, req] of calls) await timed(client, label, rpc, req, i >= warm);
  }
  windows.push({ label: calls.map(([l]) => l).join(' + '), fromUs, toUs: Number(process.hrtime.bigint() / 1000n), calls: n * calls.length });
  for (const [label] of calls) report(label);
}

/** The floor: a grpc-js server in this process answering Version from a constant. */
async function bareGrpc(n: number): Promise<void> {
  const server = new grpc.Server();
  const res = { version: '0.1.0', runtime_name: 'bare', runtime_version: '0', runtime_api_version: 'v1' };
  server.addService(criServiceDefinitions().runtime, { Version: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, res) });
  const dir = mkdtempSync(join(tmpdir(), 'rpc-floor-'));
  const sock = join(dir, 'bare.sock');
  await new Promise<void>((ok, ko) => server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? ko(e) : ok())));
  const client = new CriClient(sock);
  try {
    await rounds(client, [['bare grpc-js Version (this process)', 'Version', {}]], n);
  } finally {
    client.close();
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  }
}

type Config = (name: string) => object;

/** As the bench's pod and container workloads: each status right after the change, then twice more. */
async function lifecycle(c: CriClient, pod: string, p0: object, podConfig: Config, ctrConfig: Config, n: number): Promise<void> {
  const pause = () => new Promise((r) => setTimeout(r, PAUSE_MS));
  const statuses = async (what: string, rpc: string, req: object) => {
    const w = await timed(c, `${rpc} after ${what}`, rpc, req);
    windows.push({ label: `${rpc} after ${what}`, ...w, calls: 1 });
    await timed(c, `${rpc} 2nd`, rpc, req);
    await timed(c, `${rpc} 3rd`, rpc, req);
  };
  const removal = async (rpc: string, req: object) => {
    const w = await timed(c, `${rpc} after Stop`, rpc, req);
    windows.push({ label: `${rpc} after Stop`, ...w, calls: 1 });
  };
  for (let i = 0; i < n; i++) {
    const id: string = (await c.call('RunPodSandbox', { config: podConfig(`lc${i}`) })).pod_sandbox_id;
    await statuses('Run', 'PodSandboxStatus', { pod_sandbox_id: id });
    await c.call('StopPodSandbox', { pod_sandbox_id: id });
    await removal('RemovePodSandbox', { pod_sandbox_id: id });
    await pause();
    const ctr: string = (await c.call('CreateContainer', { pod_sandbox_id: pod, config: ctrConfig(`lc${i}`), sandbox_config: p0 })).container_id;
    await c.call('StartContainer', { container_id: ctr });
    await statuses('Start', 'ContainerStatus', { container_id: ctr });
    await c.call('StopContainer', { container_id: ctr, timeout: 0 });
    await removal('RemoveContainer', { container_id: ctr });
    await pause();
  }
  for (const what of ['PodSandboxStatus after Run', 'PodSandboxStatus 2nd', 'PodSandboxStatus 3rd', 'RemovePodSandbox after Stop']) report(what);
  for (const what of ['ContainerStatus after Start', 'ContainerStatus 2nd', 'ContainerStatus 3rd', 'RemoveContainer after Stop']) report(what);
}

/** --endpoint: the lifecycle against a runtime this script did not start (it needs the bench image). */
async function endpointLifecycle(): Promise<void> {
  if (!LIFECYCLE) throw new Error('--endpoint is for --lifecycle runs');
  daemonPid = ENDPOINT_PID;
  const logDir = mkdtempSync(join(tmpdir(), 'rpc-floor-logs-'));
  const c = new CriClient(ENDPOINT);
  const pods: string[] = [];
  try {
    const { podConfig, ctrConfig } = configs(logDir);
    const p0 = podConfig('p0');
    const pod: string = (await c.call('RunPodSandbox', { config: p0 })).pod_sandbox_id;
    pods.push(pod);
    await lifecycle(c, pod, p0, podConfig, ctrConfig, LIFECYCLE);
  } finally {
    for (const id of pods) {
      await c.call('StopPodSandbox', { pod_sandbox_id: id });
      await c.call('RemovePodSandbox', { pod_sandbox_id: id });
    }
    c.close();
    rmSync(logDir, { recursive: true, force: true });
  }
}

function configs(logDir: string): { podConfig: Config; ctrConfig: Config } {
  const podConfig = (name: string) => {
    mkdirSync(join(logDir, name), { recursive: true });
    return {
      metadata: { name, namespace: 'rpc-floor', uid: name, attempt: 0 },
      log_directory: join(logDir, name),
      labels: { app: 'rpc-floor' },
      annotations: {},
      linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } },
    };
  };
  const ctrConfig = (name: string) => ({ metadata: { name, attempt: 0 }, image: { image: BENCH_IMAGE }, command: ['sleep', '3600'], log_path: `${name}.log`, labels: { app: 'rpc-floor' } });
  return { podConfig, ctrConfig };
}

async function main(): Promise<void> {
  console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; daemon flags ${FLAGS.join(' ') || '(none)'}`);
  if (ENDPOINT) return endpointLifecycle();
  if (!LIFECYCLE) await bareGrpc(N);
  if (PROF) mkdirSync(PROF, { recursive: true });
  const d = await TestDaemon.start({
    from: 'dist',
    logLevel: 'info',
    logTo: 'file',
    prefix: 'cri-mesos-rpc-floor',
    flags: FLAGS,
    // node 20 refuses --cpu-prof in NODE_OPTIONS; a preloaded module runs the inspector's profiler instead
    env: PROF ? { NODE_OPTIONS: `--import=${join(projectRoot(), 'hack', 'bench', 'cpu-profile-hook.mjs')}`, CPU_PROFILE_DIR: PROF } : undefined,
  });
  const c = d.client;
  daemonPid = d.pid!;
  try {
    const { podConfig, ctrConfig } = configs(join(d.workDir, 'logs'));
    const p0 = podConfig('p0');
    const pod: string = (await c.call('RunPodSandbox', { config: p0 })).pod_sandbox_id;
    const ctr: string = (await c.call('CreateContainer', { pod_sandbox_id: pod, config: ctrConfig('c0'), sandbox_config: p0 })).container_id;
    await c.call('StartContainer', { container_id: ctr });
    if (!LIFECYCLE || argv.includes('--prewarm')) {
      await rounds(c, [
        ['Version', 'Version', {}],
        ['PodSandboxStatus', 'PodSandboxStatus', { pod_sandbox_id: pod }],
        ['ContainerStatus', 'ContainerStatus', { container_id: ctr }],
      ], N);
    }
    if (LIFECYCLE) await lifecycle(c, pod, p0, podConfig, ctrConfig, LIFECYCLE);
    let pods = 1;
    let ctrs = 1;
    const defs = criServiceDefinitions().runtime;
    for (const size of SIZES) {
      const t0 = Date.now();
      // as the bench's list workload past 100: pods stopped right away, containers created only
      const worker = async () => {
        while (pods < size) {
          pods++;
          const id: string = (await c.call('RunPodSandbox', { config: podConfig(`p${pods}`) })).pod_sandbox_id;
          await c.call('StopPodSandbox', { pod_sandbox_id: id });
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      while (ctrs < size) {
        const batch = Array.from({ length: Math.min(8, size - ctrs) }, (_, k) =>
          c.call('CreateContainer', { pod_sandbox_id: pod, config: ctrConfig(`c${ctrs + k}`), sandbox_config: p0 }),
        );
        await Promise.all(batch);
        ctrs += batch.length;
      }
      const bytes = async (rpc: string) => defs[rpc]!.responseSerialize(await c.call(rpc, {})).length;
      console.log(
        `${pods} pods, ${ctrs} containers (grown in ${((Date.now() - t0) / 1000).toFixed(1)} s): ListPodSandbox ${await bytes('ListPodSandbox')} bytes, ListContainers ${await bytes('ListContainers')} bytes`,
      );
      await rounds(c, [
        [`ListPodSandbox ${size}`, 'ListPodSandbox', {}],
        [`ListContainers ${size}`, 'ListContainers', {}],
      ], Math.max(20, Math.round(N / (size / 10))), 20);
      console.log(`daemon RSS ${(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${daemonPid}/status`, 'utf8'))?.[1]) / 1024).toFixed(1)} MB`);
      if (IDLE_S) {
        const c0 = daemonCpuNs();
        const fromUs = Number(process.hrtime.bigint() / 1000n);
        await new Promise((r) => setTimeout(r, IDLE_S * 1000));
        windows.push({ label: `idle ${IDLE_S} s with ${size} pods`, fromUs, toUs: Number(process.hrtime.bigint() / 1000n), calls: 1 });
        console.log(`daemon CPU while idle for ${IDLE_S} s with ${size} pods: ${((daemonCpuNs() - c0) / 1e6).toFixed(0)} ms`);
      }
    }
  } finally {
    await d.teardown(8);
    if (PROF) writeFileSync(join(PROF, 'windows.json'), JSON.stringify(windows));
  }
}

await main();
