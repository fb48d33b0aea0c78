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
import { existsSync } from 'node:fs';
import { cniStateDir, runtimeFile } from '../../../../paths.js';
import { native, unpinNamespace } from '../../../../native/index.js';
import type { Logger } from '../../../../log.js';
import type { CniExec } from '../../../../network/cni.js';
import type { NetworkConfigWatcher } from '../../../../network/conf-dir.js';
import { PodNetworks, runBounded, type PodNetworkState } from '../../../../network/pod-network.js';
import { type ContainerConfig, type ContainerId, type IsolatorStatus, type LaunchInfo } from '../../isolator.js';
import { LoopbackNetworkIsolator } from './loopback.js';
import { podUsernsPath } from '../namespaces/user.js';

export class CniNetworkIsolator extends LoopbackNetworkIsolator {
  override readonly name = 'network/cni';
  /** The pods' CNI state (shared with the Docker containerizer's, in a state dir of its own). */
  readonly net: PodNetworks;
  /** Called when a recovered pod's CHECK fails (the CRI layer marks it NOTREADY). */
  onProblem?: (id: ContainerId, problem: string) => void;
  /** Settles when recovery's background CHECKs and orphan DELs are done. */
  recovered: Promise<void> = Promise.resolve();

  constructor(
    workDir: string,
    networks: NetworkConfigWatcher,
    exec: CniExec,
    private readonly log: Logger,
  ) {
    super();
    this.net = new PodNetworks(cniStateDir(workDir), networks, exec, log);
  }

  override async prepare(config: ContainerConfig): Promise<Partial<LaunchInfo>> {
    if (config.kind !== 'pod' || config.namespaces.network !== 'POD') return this.launchInfo(config);
    const netns = runtimeFile(config.runtimeDir, 'netns');
    // The checkpoint before the namespace and the ADD: whatever a crash leaves, cleanup finds it.
    const state = this.net.begin(config, netns);
    if (!state) return this.launchInfo(config);
    if (config.userNamespace) {
      await native().nsPin({ joinUser: podUsernsPath(config), unshare: ['net'], pins: [{ type: 'net', path: netns }] });
    } else {
      await native().pinNetns(netns);
    }
    // The ADD runs while the other isolators prepare and the helper is forked; isolate() holds
    // the helper until it is done (as Mesos runs it in isolate), so the pod's own setup
    // (sysctls) finds eth0. The rejection is isolate's (or teardown's) to report.
    void this.net.add(config.id.value, state).catch(() => undefined);
    return this.launchInfo(config, netns);
  }

  override async isolate(id: ContainerId): Promise<void> {
    if (id.parent) return;
    await this.net.get(id.value)?.adding;
  }

  async networkStatus(id: ContainerId): Promise<Pick<IsolatorStatus, 'ips' | 'networkProblem'>> {
    if (id.parent) return {};
    return this.net.status(id.value);
  }

  override async cleanup(id: ContainerId): Promise<void> {
    if (id.parent) return;
    await this.net.teardown(id.value);
  }

  async remove(config: ContainerConfig): Promise<void> {
    // A NODE pod never had CNI state nor a pinned namespace (prepare), so there is nothing to read.
    if (config.kind !== 'pod' || config.namespaces.network !== 'POD') return;
    // A DEL that failed at stop is tried again: the IP must not outlive the pod.
    await this.net.teardown(config.id.value);
    unpinNamespace(runtimeFile(config.runtimeDir, 'netns'));
  }

  override async recover(configs: ContainerConfig[]): Promise<void> {
    const known = new Set<string>();
    const checks: [ContainerConfig, PodNetworkState][] = [];
    for (const config of configs) {
      if (config.kind !== 'pod') continue;
      known.add(config.id.value);
      const state = this.net.recover(config.id.value);
      if (!state) continue;
      if (state.result && existsSync(runtimeFile(config.runtimeDir, 'pid'))) checks.push([config, state]);
    }
    // State of pods the containerizer does not know (their runtime dir is gone: a reboot, or a
    // crash before the containerizer's checkpoint): DEL them, so host-local frees their IPs.
    // A pod whose namespace file is still there has runtime state the containerizer could not
    // read (a quarantined checkpoint): left alone, like its container.
    const orphans = this.net.onDisk().filter((pod) => {
      if (known.has(pod)) return false;
      const netns = this.net.readState(pod)?.record.invocation.netns;
      if (netns && existsSync(netns)) {
        this.log.warn('CNI state of a pod the containerizer cannot read; left alone', { pod, netns });
        return false;
      }
      return true;
    });
    this.recovered = runBounded(
      [
        ...checks.map(([config, state]) => async () => {
          const problem = await this.net.check(config.id.value, state);
          if (problem) this.onProblem?.(config.id, problem);
        }),
        ...orphans.map((pod) => () => this.net.teardown(pod)),
      ],
      8,
    );
  }
}
