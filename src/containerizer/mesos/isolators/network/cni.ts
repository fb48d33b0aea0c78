// network/cni (Mesos' isolators/network/cni/cni.cpp), for pods on the POD network:
//   prepare  - the network and the CNI arguments are checkpointed (work dir), a new network
//              namespace is pinned at <pod runtime dir>/netns (made on a native thread), and
//              CNI ADD starts; its result is cached next to the checkpoint. The pod's helper
//              joins that namespace (a join in its launch). A pod with a user namespace gets
//              one owned by it (made by a child process in the namespace namespaces/user
//              pinned), as containerd 2.0 makes it inside the pod's mappings: otherwise the
//              pod's root could not administer its own network, nor mount sysfs.
//   isolate  - the held helper waits for the ADD, so the pod starts networked.
//   status   - the pod's IPs from the ADD result.
//   cleanup  - CNI DEL with the cached result (retried; idempotent), then the state is dropped.
//   remove   - (RemovePodSandbox) the pinned namespace is unmounted and removed.
//   recover  - cached results are read back; running pods are CHECKed in the background (a
//              failure is reported, the CRI layer marks the pod NOTREADY); state of pods the
//              containerizer no longer knows (a reboot) gets its DEL, so no IP leaks.
// Containers join the pod's namespaces as with network/loopback; NODE pods, and POD pods
// while no valid network config exists, are network/loopback's.
import { listDir } from '../../../../util/listdir.js';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cniPodFile, cniStateDir, runtimeFile } from '../../../../paths.js';
import { faultPoint } from '../../../../fault.js';
import { MNT_DETACH, native } from '../../../../native/index.js';
import type { Logger } from '../../../../log.js';
import { readCheckpoint, writeCheckpoint, type Versioned } from '../../../../store/checkpoint.js';
import { resultIps, type CniExec, type CniResult, type Invocation, type NetworkList } from '../../../../network/cni.js';
import type { NetworkConfigWatcher } from '../../../../network/conf-dir.js';
import { idString, type ContainerConfig, type ContainerId, type IsolatorStatus, type LaunchInfo } from '../../isolator.js';
import { LoopbackNetworkIsolator } from './loopback.js';
import { podUsernsPath } from '../namespaces/user.js';

/** network.json: what the ADD was given, so DEL can undo it after a restart or a reboot. */
interface NetworkRecord {
  list: NetworkList;
  file: string;
  invocation: Invocation;
}

interface PodState {
  record: NetworkRecord;
  result?: CniResult;
  problem?: string;
  /** The ADD of a launch in progress. */
  adding?: Promise<void>;
}

const DEL_ATTEMPTS = 3;

export class CniNetworkIsolator extends LoopbackNetworkIsolator {
  override readonly name = 'network/cni';
  private readonly pods = new Map<string, PodState>();
  /** Called when a recovered pod's CHECK fails (the CRI layer marks it NOTREADY). */
  onProblem?: (id: ContainerId, problem: string) => void;
  /** Settles when recovery's background CHECKs and orphan DELs are done. */
  recovered: Promise<void> = Promise.resolve();

  constructor(
    private readonly workDir: string,
    private readonly networks: NetworkConfigWatcher,
    private readonly exec: CniExec,
    private readonly log: Logger,
  ) {
    super();
  }

  override async prepare(config: ContainerConfig): Promise<Partial<LaunchInfo>> {
    if (config.kind !== 'pod' || config.namespaces.network !== 'POD') return this.launchInfo(config);
    const net = this.networks.state();
    if (!net.ready || !net.list || !net.file) {
      this.log.warn('no CNI network: the pod gets loopback only', { pod: config.id.value, reason: net.reason, message: net.message });
      return this.launchInfo(config);
    }
    const netns = runtimeFile(config.runtimeDir, 'netns');
    const record: NetworkRecord = { list: net.list, file: net.file, invocation: invocation(config, netns) };
    const state: PodState = { record };
    // The checkpoint before the namespace and the ADD: whatever a crash leaves, cleanup finds it.
    const file = cniPodFile(this.workDir, config.id.value, 'network');
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeCheckpoint(file, record);
    this.pods.set(idString(config.id), state);
    if (config.userNamespace) {
      await native().nsPin({ joinUser: podUsernsPath(config), unshare: ['net'], pins: [{ type: 'net', path: netns }] });
    } else {
      await native().pinNetns(netns);
    }
    // The ADD runs while the other isolators prepare and the helper is forked; isolate() holds
    // the helper until it is done (as Mesos runs it in isolate), so the pod's own setup
    // (sysctls) finds eth0. The rejection is isolate's (or teardown's) to report.
    state.adding = this.add(config.id.value, state);
    state.adding.catch(() => undefined);
    return this.launchInfo(config, netns);
  }

  private async add(pod: string, state: PodState): Promise<void> {
    faultPoint('cni-add:before');
    const t0 = performance.now();
    const result = await this.exec.add(state.record.list, state.record.invocation);
    const ms = performance.now() - t0;
    faultPoint('cni-add:after');
    writeCheckpoint(cniPodFile(this.workDir, pod, 'result'), result);
    state.result = result;
    // ms: the plugins' share of the pod's start (the benchmark reads it).
    this.log.info('CNI ADD', { pod, network: state.record.list.name, ips: resultIps(result), ms: Number(ms.toFixed(1)) });
  }

  override async isolate(id: ContainerId): Promise<void> {
    if (id.parent) return;
    await this.pods.get(idString(id))?.adding;
  }

  async networkStatus(id: ContainerId): Promise<Pick<IsolatorStatus, 'ips' | 'networkProblem'>> {
    const state = this.pods.get(idString(id));
    if (!state) return {};
    return { ips: resultIps(state.result), ...(state.problem ? { networkProblem: state.problem } : {}) };
  }

  override async cleanup(id: ContainerId): Promise<void> {
    if (id.parent) return;
    await this.teardown(id.value);
  }

  async remove(config: ContainerConfig): Promise<void> {
    if (config.kind !== 'pod') return;
    // A DEL that failed at stop is tried again: the IP must not outlive the pod.
    await this.teardown(config.id.value);
    unpinNetns(runtimeFile(config.runtimeDir, 'netns'));
  }

  override async recover(configs: ContainerConfig[]): Promise<void> {
    const known = new Set<string>();
    const checks: [ContainerConfig, PodState][] = [];
    for (const config of configs) {
      if (config.kind !== 'pod') continue;
      known.add(config.id.value);
      const state = this.readState(config.id.value);
      if (!state) continue;
      this.pods.set(idString(config.id), state);
      if (state.result && existsSync(runtimeFile(config.runtimeDir, 'pid'))) checks.push([config, state]);
    }
    // State of pods the containerizer does not know (their runtime dir is gone: a reboot, or a
    // crash before the containerizer's checkpoint): DEL them, so host-local frees their IPs.
    // A pod whose namespace file is still there has runtime state the containerizer could not
    // read (a quarantined checkpoint): left alone, like its container.
    const orphans = listDir(cniStateDir(this.workDir)).filter((pod) => {
      if (known.has(pod)) return false;
      const netns = this.readState(pod)?.record.invocation.netns;
      if (netns && existsSync(netns)) {
        this.log.warn('CNI state of a pod the containerizer cannot read; left alone', { pod, netns });
        return false;
      }
      return true;
    });
    this.recovered = runBounded([...checks.map((c) => () => this.checkPod(c[0], c[1])), ...orphans.map((pod) => () => this.teardown(pod))], 8);
  }

  /** CHECK a recovered pod; a failure is kept and reported. */
  private async checkPod(config: ContainerConfig, state: PodState): Promise<void> {
    try {
      await this.exec.check(state.record.list, state.record.invocation, state.result!);
    } catch (err) {
      state.problem = `CNI CHECK of network ${state.record.list.name} failed: ${(err as Error).message}`;
      this.log.warn('pod network is broken', { pod: config.id.value, problem: state.problem });
      this.onProblem?.(config.id, state.problem);
    }
  }

  /** DEL (retried) from the checkpoint, then drop the state; nothing to do without one. */
  private async teardown(pod: string): Promise<void> {
    const key = pod;
    const state = this.pods.get(key) ?? this.readState(pod);
    if (!state) return;
    // A launch that failed elsewhere may leave its ADD running: DEL after it, or its IP leaks.
    await state.adding?.catch(() => undefined);
    faultPoint('cni-del:before');
    for (let attempt = 1; ; attempt++) {
      try {
        const t0 = performance.now();
        await this.exec.del(state.record.list, state.record.invocation, state.result);
        this.log.info('CNI DEL', { pod, network: state.record.list.name, ms: Number((performance.now() - t0).toFixed(1)) });
        break;
      } catch (err) {
        if (attempt >= DEL_ATTEMPTS) {
          this.log.error('CNI DEL failed; kept for another try', { pod, error: (err as Error).message });
          throw err;
        }
        await sleep(100 * attempt);
      }
    }
    faultPoint('cni-del:after');
    this.pods.delete(key);
    rmSync(dirname(cniPodFile(this.workDir, pod, 'network')), { recursive: true, force: true });
  }

  private readState(pod: string): PodState | undefined {
    let record: NetworkRecord;
    try {
      const { version: _v, ...r } = readCheckpoint<NetworkRecord & Versioned>(cniPodFile(this.workDir, pod, 'network'));
      record = r;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      // Not ours to guess: leave it for an operator, as any unreadable checkpoint.
      this.log.error('cannot read a pod CNI checkpoint; left alone', { pod, error: String(err) });
      return undefined;
    }
    let result: CniResult | undefined;
    try {
      const { version: _v, ...r } = readCheckpoint<CniResult & Versioned>(cniPodFile(this.workDir, pod, 'result'));
      result = r as CniResult;
    } catch (err) {
      // No result: the crash came between the ADD and its cache. DEL works without prevResult.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn('unreadable CNI result cache; DEL goes without it', { pod, error: String(err) });
    }
    return { record, ...(result ? { result } : {}) };
  }
}

/** The CNI_* arguments of a pod, as containerd passes them. */
function invocation(config: ContainerConfig, netns: string): Invocation {
  const n = config.network;
  const capabilityArgs: Record<string, unknown> = {};
  if (n?.portMappings.length) capabilityArgs.portMappings = n.portMappings;
  if (n?.bandwidth) {
    // containerd: the burst is unlimited (MaxUint32); the rate is what the annotation says.
    const bw: Record<string, number> = {};
    if (n.bandwidth.ingressRate) Object.assign(bw, { ingressRate: n.bandwidth.ingressRate, ingressBurst: 4294967295 });
    if (n.bandwidth.egressRate) Object.assign(bw, { egressRate: n.bandwidth.egressRate, egressBurst: 4294967295 });
    capabilityArgs.bandwidth = bw;
  }
  if (config.dns) capabilityArgs.dns = { servers: config.dns.servers, searches: config.dns.searches, options: config.dns.options };
  if (config.cgroupParent) capabilityArgs.cgroupPath = config.cgroupParent;
  return {
    containerId: config.id.value,
    netns,
    ifName: 'eth0',
    // Without IgnoreUnknown=1, bridge and host-local refuse the K8S_* keys.
    args: [
      ['IgnoreUnknown', '1'],
      ['K8S_POD_NAMESPACE', n?.podNamespace ?? ''],
      ['K8S_POD_NAME', n?.podName ?? ''],
      ['K8S_POD_INFRA_CONTAINER_ID', config.id.value],
      ['K8S_POD_UID', n?.podUid ?? ''],
    ],
    capabilityArgs,
  };
}

/** Unmount the pinned namespace and remove its file; both may be gone already. */
function unpinNetns(path: string): void {
  try {
    native().umount2(path, MNT_DETACH);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOENT') throw err;
  }
  rmSync(path, { force: true });
}


/** Run the tasks, at most `limit` at a time; never rejects (each task logs its own errors). */
async function runBounded(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]!().catch(() => undefined);
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}
