// A pod's CNI network, as both containerizers keep it (Mesos' isolators/network/cni/cni.cpp; the
// Mesos containerizer's network/cni isolator and the Docker containerizer share it):
//   begin    - the network list and the CNI arguments are checkpointed (<state dir>/<pod>/
//              network.json) before anything is made, so whatever a crash leaves, a DEL finds.
//   add      - CNI ADD; its result is cached next to the checkpoint (result.json).
//   status   - the pod's IPs from the result; a failed CHECK's problem.
//   teardown - CNI DEL with the cached result (retried; idempotent), after an ADD still running;
//              then the state is dropped. Works from the checkpoint alone (after a restart).
//   recover  - checkpoints read back; CHECK of running pods; DEL of pods nobody knows.
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { podNetworkFile } from '../paths.js';
import { faultPoint } from '../fault.js';
import type { Logger } from '../log.js';
import { readCheckpoint, writeCheckpoint, type Versioned } from '../store/checkpoint.js';
import { resultIps, type CniExec, type CniResult, type Invocation, type NetworkList } from './cni.js';
import type { NetworkConfigWatcher } from './conf-dir.js';
import { listDir } from '../util/listdir.js';
import type { ContainerConfig } from '../containerizer/mesos/isolator.js';

/** network.json: what the ADD was given, so DEL can undo it after a restart or a reboot. */
export interface NetworkRecord {
  list: NetworkList;
  file: string;
  invocation: Invocation;
}

export interface PodNetworkState {
  record: NetworkRecord;
  result?: CniResult;
  problem?: string;
  /** The ADD of a launch in progress. */
  adding?: Promise<void>;
}

const DEL_ATTEMPTS = 3;

export class PodNetworks {
  private readonly pods = new Map<string, PodNetworkState>();

  constructor(
    /** <state dir>/<pod>/{network,result}.json */
    readonly stateDir: string,
    readonly networks: NetworkConfigWatcher,
    private readonly exec: CniExec,
    private readonly log: Logger,
  ) {}

  /**
   * Checkpoint the pod's network and CNI arguments for an ADD on `netns`; undefined (logged)
   * when there is no valid network config: the pod gets loopback only.
   */
  begin(config: ContainerConfig, netns: string): PodNetworkState | undefined {
    const net = this.networks.state();
    if (!net.ready || !net.list || !net.file) {
      this.log.warn('no CNI network: the pod gets loopback only', { pod: config.id.value, reason: net.reason, message: net.message });
      return undefined;
    }
    const record: NetworkRecord = { list: net.list, file: net.file, invocation: podInvocation(config, netns) };
    const state: PodNetworkState = { record };
    const file = podNetworkFile(this.stateDir, config.id.value, 'network');
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeCheckpoint(file, record);
    this.pods.set(config.id.value, state);
    return state;
  }

  /** CNI ADD; its result cached. Kept as `state.adding` for a teardown to wait on. */
  add(pod: string, state: PodNetworkState): Promise<void> {
    state.adding = (async () => {
      faultPoint('cni-add:before');
      const t0 = performance.now();
      const result = await this.exec.add(state.record.list, state.record.invocation);
      const ms = performance.now() - t0;
      faultPoint('cni-add:after');
      writeCheckpoint(podNetworkFile(this.stateDir, pod, 'result'), result);
      state.result = result;
      // ms: the plugins' share of the pod's start (the benchmark reads it).
      this.log.info('CNI ADD', { pod, network: state.record.list.name, ips: resultIps(result), ms: Number(ms.toFixed(1)) });
    })();
    state.adding.catch(() => undefined);
    return state.adding;
  }

  get(pod: string): PodNetworkState | undefined {
    return this.pods.get(pod);
  }

  status(pod: string): { ips?: string[]; networkProblem?: string } {
    const state = this.pods.get(pod);
    if (!state) return {};
    return { ips: resultIps(state.result), ...(state.problem ? { networkProblem: state.problem } : {}) };
  }

  /** Read a pod's checkpoint back (recovery) and keep it; undefined without one. */
  recover(pod: string): PodNetworkState | undefined {
    const state = this.readState(pod);
    if (state) this.pods.set(pod, state);
    return state;
  }

  /** The pods with state on disk. */
  onDisk(): string[] {
    return listDir(this.stateDir);
  }

  /** CHECK a recovered pod; a failure is kept (status) and returned. */
  async check(pod: string, state: PodNetworkState): Promise<string | undefined> {
    if (!state.result) return undefined;
    try {
      await this.exec.check(state.record.list, state.record.invocation, state.result);
      return undefined;
    } catch (err) {
      state.problem = `CNI CHECK of network ${state.record.list.name} failed: ${(err as Error).message}`;
      this.log.warn('pod network is broken', { pod, problem: state.problem });
      return state.problem;
    }
  }

  /** DEL (retried) from the checkpoint, then drop the state; nothing to do without one. */
  async teardown(pod: string): Promise<void> {
    const state = this.pods.get(pod) ?? this.readState(pod);
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
    this.pods.delete(pod);
    rmSync(dirname(podNetworkFile(this.stateDir, pod, 'network')), { recursive: true, force: true });
  }

  /** The checkpoint and the cached result, without keeping them. */
  readState(pod: string): PodNetworkState | undefined {
    let record: NetworkRecord;
    try {
      const { version: _v, ...r } = readCheckpoint<NetworkRecord & Versioned>(podNetworkFile(this.stateDir, pod, 'network'));
      record = r;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      // Not ours to guess: leave it for an operator, as any unreadable checkpoint.
      this.log.error('cannot read a pod CNI checkpoint; left alone', { pod, error: String(err) });
      return undefined;
    }
    let result: CniResult | undefined;
    try {
      const { version: _v, ...r } = readCheckpoint<CniResult & Versioned>(podNetworkFile(this.stateDir, pod, 'result'));
      result = r as CniResult;
    } catch (err) {
      // No result: the crash came between the ADD and its cache. DEL works without prevResult.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn('unreadable CNI result cache; DEL goes without it', { pod, error: String(err) });
    }
    return { record, ...(result ? { result } : {}) };
  }
}

/** The CNI_* arguments of a pod, as containerd passes them. */
export function podInvocation(config: ContainerConfig, netns: string): Invocation {
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

/** Run the tasks, at most `limit` at a time; never rejects (each task logs its own errors). */
export async function runBounded(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]!().catch(() => undefined);
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}
