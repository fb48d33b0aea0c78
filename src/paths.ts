// Every file cri-mesos keeps on disk, in one place (Mesos' paths.hpp). No
// other module spells a file name; the launch helper gets its names from the
// plan.
//
// Runtime dir (default /run/cri-mesos, tmpfs: gone after a reboot, as the
// containers are):
//
//   docker/containers/<pod>/              a docker pod (the Docker containerizer; apart from the
//                                         Mesos ones so neither recovers the other's)
//     config.json      the containerizer's checkpoint, written before the infra container is created
//     containers/<ctr>/                  a CRI container of a docker pod
//       config.json    as above
//       executor.log   the docker-executor's own diagnostics
//       executor.pid   the docker-executor's pid (it runs in a session of its own)
//       started        the executor started the docker container
//       exit.json      {exitCode, finishedAt, oomKilled}, written by the executor when it exited
//       ctl.fifo       control lines to the executor ("reopen": ReopenContainerLog)
//   removed/<id>/                         a removed pod's or container's runtime dir, renamed here by
//                                         remove() and deleted in the background (recovery deletes
//                                         what a crash left)
//   containers/<pod>/                     a pod: the Mesos top-level container
//     config.json      the containerizer's checkpoint of the container, written
//                      before anything of it is created
//     plan             the launch plan (launcher/plan.ts)
//     launch.log       the launch helper's own diagnostics
//     pid, pid.start   the helper's pid and its start time (PIDs are reused)
//     termination      how it ended, once destroyed
//     shm/             the pod's /dev/shm (a tmpfs), when it has its own IPC namespace
//     hostname, hosts, resolv.conf     bind-mounted into the pod's containers
//     netns            the pod's network namespace, pinned by a bind mount (network/cni),
//                      unmounted and removed by RemovePodSandbox
//     userns           the pod's user namespace (userns_options mode POD), pinned by a bind
//                      mount (namespaces/user), unmounted and removed by RemovePodSandbox
//     containers/<ctr>/                a CRI container: the nested container
//       config.json plan launch.log pid pid.start termination   as above
//       exec.fifo      holds the created container until StartContainer writes a byte
//       ctl.fifo       control lines to the helper ("reopen": ReopenContainerLog)
//       attach.sock    the helper's attach socket (stdin, output, resize; containerizer/mesos/attach.ts)
//       held           its helper answered and waits on exec.fifo (none: a launch a crash cut short)
//       started        StartContainer wrote its byte
//       status         "<wait status> <unix ns>", written by the helper when the command exits
//
// Work dir (default /var/lib/cri-mesos, persistent):
//
//   meta/sandboxes/<pod>.json, meta/containers/<ctr>.json   the CRI records
//   meta/quarantine/     checkpoints that could not be read, moved aside (never deleted)
//   images/              the image store (its own layout: images/store.ts)
//   provisioner/<ctr>/{upper,work,rootfs}                    a container's overlay
//   provisioner/.removed-<ctr>        a removed container's dir while its tree is deleted in the
//                                     background (PROVISIONER_TRASH_PREFIX; recovery deletes it)
//   provisioner/<ctr>/idmapped/<n>   while the overlay of a container in a user namespace is
//                      mounted: layer n, idmapped, attached here to be named as a lowerdir
//                      (detached right after; destroy detaches any a crash left)
//   isolators/network/cni/<pod>/     the network/cni isolator's state (Mesos' cni/paths.hpp):
//     network.json     the network list and the CNI arguments of the ADD, written before it
//     result.json      the ADD result, cached for CHECK and DEL (also after a restart or reboot)
//   docker/cni/<pod>/                the same for docker pods (the Docker containerizer's)
//
// CNI conf dir (cni_conf_dir, default /etc/cni/net.d; the network's, we only read it but for):
//
//   10-cri-mesos.conflist    written from cni_conf_template (containerd's is 10-containerd-net.conflist)
import { join } from 'node:path';
import type { ContainerId } from './containerizer/mesos/isolator.js';

/** File names inside a container's runtime dir. */
export const RUNTIME_FILES = {
  config: 'config.json',
  plan: 'plan',
  launchLog: 'launch.log',
  pid: 'pid',
  pidStart: 'pid.start',
  termination: 'termination',
  shm: 'shm',
  hostname: 'hostname',
  hosts: 'hosts',
  resolvConf: 'resolv.conf',
  execFifo: 'exec.fifo',
  ctlFifo: 'ctl.fifo',
  attachSock: 'attach.sock',
  held: 'held',
  started: 'started',
  status: 'status',
  netns: 'netns',
  executorLog: 'executor.log',
  executorPid: 'executor.pid',
  exit: 'exit.json',
  userns: 'userns',
} as const;

export type RuntimeFile = keyof typeof RUNTIME_FILES;

/** <run>/containers: every top-level container's dir is in here. */
export function containersDir(runtimeDir: string): string {
  return join(runtimeDir, 'containers');
}

/** <run>/docker/containers: the Docker containerizer's pods. */
export function dockerContainersDir(runtimeDir: string): string {
  return join(runtimeDir, 'docker', 'containers');
}

/** The pod pool's pause helpers' own diagnostics (`<pool id>.log`) until a pod takes one; emptied at recovery. */
export function podPoolDir(runtimeDir: string): string {
  return join(runtimeDir, 'pod-pool');
}

export function podPoolLog(runtimeDir: string, poolId: string): string {
  return join(podPoolDir(runtimeDir), `${poolId}.log`);
}

/** <run>/removed: runtime dirs of removed containers while they are deleted. */
export function removedRuntimeDirs(runtimeDir: string): string {
  return join(runtimeDir, 'removed');
}

/** The runtime dir of a docker pod or container: docker/containers/<pod>[/containers/<ctr>]. */
export function dockerContainerDir(runtimeDir: string, id: ContainerId): string {
  return id.parent ? join(dockerContainerDir(runtimeDir, id.parent), 'containers', id.value) : join(dockerContainersDir(runtimeDir), id.value);
}

/** The runtime dir of a container: containers/<pod>[/containers/<ctr>]. */
export function containerDir(runtimeDir: string, id: ContainerId): string {
  return id.parent ? join(containerDir(runtimeDir, id.parent), 'containers', id.value) : join(containersDir(runtimeDir), id.value);
}

/** The nested containers' dirs live in here. */
export function nestedContainersDir(containerRuntimeDir: string): string {
  return join(containerRuntimeDir, 'containers');
}

/** A file of a container's runtime dir. */
export function runtimeFile(containerRuntimeDir: string, file: RuntimeFile): string {
  return join(containerRuntimeDir, RUNTIME_FILES[file]);
}

export function sandboxRecordsDir(workDir: string): string {
  return join(workDir, 'meta', 'sandboxes');
}

export function containerRecordsDir(workDir: string): string {
  return join(workDir, 'meta', 'containers');
}

export function quarantineDir(workDir: string): string {
  return join(workDir, 'meta', 'quarantine');
}

export function imagesDir(workDir: string): string {
  return join(workDir, 'images');
}

/** Prefix of a removed container's dir under provisionerDir while it is deleted. */
export const PROVISIONER_TRASH_PREFIX = '.removed-';

export function provisionerDir(workDir: string): string {
  return join(workDir, 'provisioner');
}

/** The config written into the CNI conf dir from cni_conf_template. */
export function cniTemplateConfFile(confDir: string): string {
  return join(confDir, '10-cri-mesos.conflist');
}

/** The network/cni isolator's state of every pod. */
export function cniStateDir(workDir: string): string {
  return join(workDir, 'isolators', 'network', 'cni');
}

/** The Docker containerizer's CNI state of every docker pod. */
export function dockerCniStateDir(workDir: string): string {
  return join(workDir, 'docker', 'cni');
}

/** The files of one pod's CNI state in a state dir (see the top). */
export function podNetworkFile(stateDir: string, pod: string, file: 'network' | 'result'): string {
  return join(stateDir, pod, file === 'network' ? 'network.json' : 'result.json');
}

/** The files of one pod's CNI state (see the top). */
export function cniPodFile(workDir: string, pod: string, file: 'network' | 'result'): string {
  return podNetworkFile(cniStateDir(workDir), pod, file);
}

// ---------------------------------------------------------------------------------------------
// The node agent (`cri-mesos agent`, src/agent/), a CRI client: its own files, laid out as the
// kubelet's (pkg/kubelet/kubelet_getters.go, kuberuntime/helpers.go).
//
// Agent root (--root, default /var/lib/cri-mesos-agent; the kubelet's /var/lib/kubelet):
//
//   pods/<uid>/                              a pod's dir, removed with the pod
//     etc-hosts                              the pod's /etc/hosts, mounted into its containers
//     volumes/kubernetes.io~empty-dir/<vol>  an emptyDir (a tmpfs mounted here for medium: Memory)
//     containers/<ctr>/<8 hex digits>        one container instance's termination message file,
//                                            mounted at its terminationMessagePath
//   seccomp/<profile>                        Localhost seccomp profiles (localhostProfile is relative to it)
//
// Pod logs dir (--pod-logs-dir, default /var/log/pods; the runtime writes the files, the agent
// makes the dirs, rotates and removes them):
//
//   <namespace>_<pod name>_<uid>/<container>/<restart count>.log
//     <restart count>.log.<YYYYMMDD-hhmmss>[.gz]   rotated files (container log manager)

/** The agent's default root dir. */
export const AGENT_DEFAULT_ROOT = '/var/lib/cri-mesos-agent';
/** The kubelet's default pod logs dir. */
export const AGENT_DEFAULT_POD_LOGS_DIR = '/var/log/pods';

export function agentPodsDir(root: string): string {
  return join(root, 'pods');
}

export function agentPodDir(root: string, uid: string): string {
  return join(agentPodsDir(root), uid);
}

export function agentPodEtcHosts(root: string, uid: string): string {
  return join(agentPodDir(root, uid), 'etc-hosts');
}

export function agentEmptyDirsDir(root: string, uid: string): string {
  return join(agentPodDir(root, uid), 'volumes', 'kubernetes.io~empty-dir');
}

export function agentEmptyDir(root: string, uid: string, volume: string): string {
  return join(agentEmptyDirsDir(root, uid), volume);
}

/** A new termination message file of one container instance (`instance`: 8 hex digits). */
export function agentTerminationMessageFile(root: string, uid: string, container: string, instance: string): string {
  return join(agentPodDir(root, uid), 'containers', container, instance);
}

export function agentSeccompDir(root: string): string {
  return join(root, 'seccomp');
}

/** The pod's log directory, the sandbox's log_directory: <logs>/<ns>_<name>_<uid>. */
export function agentPodLogDir(logsDir: string, namespace: string, name: string, uid: string): string {
  return join(logsDir, `${namespace}_${name}_${uid}`);
}

/** A container's log dir: <logs>/<ns>_<name>_<uid>/<ctr>. */
export function agentContainerLogDir(logsDir: string, namespace: string, name: string, uid: string, container: string): string {
  return join(agentPodLogDir(logsDir, namespace, name, uid), container);
}

/** A container's log path relative to the pod's log directory (the CRI log_path): <ctr>/<restart>.log. */
export function agentContainerLogPath(container: string, restartCount: number): string {
  return join(container, `${restartCount}.log`);
}
