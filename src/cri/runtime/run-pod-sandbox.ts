import { Steps } from '../../util/steps.js';
import { runtimeFile } from '../../paths.js';
import type { RunPodSandboxRequest__Output } from '../../../api/generated/runtime/v1/RunPodSandboxRequest.js';
import type { RunPodSandboxResponse } from '../../../api/generated/runtime/v1/RunPodSandboxResponse.js';
import type { ContainerConfig, PodNetwork } from '../../containerizer/mesos/isolator.js';
import type { PodSandboxConfig__Output } from '../../../api/generated/runtime/v1/PodSandboxConfig.js';
import type { LinuxSandboxSecurityContext__Output } from '../../../api/generated/runtime/v1/LinuxSandboxSecurityContext.js';
import type { Int64Value__Output } from '../../../api/generated/runtime/v1/Int64Value.js';
import { sandboxName, type SandboxRecord } from '../../store/metadata.js';
import { alreadyExists, failedPrecondition, invalidArgument, unimplemented } from '../../errors.js';
import type { NamespaceOption__Output } from '../../../api/generated/runtime/v1/NamespaceOption.js';
import { DOCKER_HANDLER, nowNanos, podId, podRuntimeDir, type RuntimeContext } from '../context.js';
import { MESOS_HANDLERS } from '../../containerizer/mesos/containerizer.js';
import type { DockerLaunch } from '../../containerizer/docker/containerizer.js';
import { capabilityNames, runtimeBoundingSet } from './capabilities.js';
import { chooseSeccomp, hostTarget, seccompFilter } from '../../security/seccomp/compile.js';
import { unappliedSandboxFields } from './unapplied.js';
import { checkId, checkIds, checkName, destroyFailedLaunch, groupsPolicy, namespaceModes, newId, toLimits } from './common.js';
import { checkMapped, userNamespace, userNamespacesSupported } from './userns.js';
import { checkSysctls, podHostname } from '../../security/sysctl.js';
import { appArmorProfile, thisHost } from '../../security/apparmor.js';
import { podPreLaunchHook } from './pre-launch-hook.js';

export async function runPodSandbox(ctx: RuntimeContext, req: RunPodSandboxRequest__Output): Promise<RunPodSandboxResponse> {
  const steps = new Steps();
  const config = req.config;
  if (!config) throw invalidArgument('config is required');
  const meta = config.metadata;
  if (!meta) throw invalidArgument('config.metadata is required');
  checkName('config.metadata.name', meta.name);
  checkName('config.metadata.namespace', meta.namespace);
  if (!meta.uid) throw invalidArgument('config.metadata.uid is required');
  const handler = req.runtime_handler ?? '';
  const handlers = runtimeHandlers(ctx.config.containerizers);
  if (!handlers.includes(handler)) {
    throw invalidArgument(`runtime_handler "${handler}" is not claimed by any containerizer (handlers: ${handlers.map((h) => `"${h}"`).join(', ')})`);
  }
  const docker = handler === DOCKER_HANDLER;

  const resources = toLimits(config.linux?.resources, 'config.linux.resources');
  const psc = config.linux?.security_context;
  const field = 'config.linux.security_context';
  if (psc?.run_as_group && !psc.run_as_user) throw invalidArgument(`${field}.run_as_group needs run_as_user`);
  const modes = namespaceModes(psc?.namespace_options);
  if (docker) refuseForDockerPod(psc?.namespace_options);
  const userns = userNamespace(psc?.namespace_options, field);
  if (userns) checkPodUserns(ctx, modes, field);
  const podUser = pauseUser(psc);
  if (userns && podUser) {
    checkMapped([podUser.uid], userns.uids, `${field}.run_as_user`, 'uid');
    checkMapped([podUser.gid], userns.gids, `${field}.run_as_group`, 'gid');
    checkMapped(podUser.groups, userns.gids, `${field}.supplemental_groups`, 'gid');
  }
  // The pause helper has no image: no /etc/group to merge, so Merge and Strict are the same here.
  groupsPolicy(psc?.supplemental_groups_policy, field);
  // Confinement the host cannot give is refused (as containerd does); where AppArmor is enabled the
  // pause helper is not confined yet, which is logged below.
  const podAppArmor = appArmorProfile(psc, thisHost(), field);
  checkSysctls(config.linux?.sysctls, modes);
  const hostname = podHostname(config.hostname, config.linux?.sysctls);
  // As containerd does for its pause container: the pod's profile confines the pause helper, which
  // installs it as root with the runtime's capabilities (before it takes the pod's user, if any).
  const seccomp = seccompFilter(
    chooseSeccomp(psc, ctx.config.seccompDefault, 'config.linux.security_context'),
    hostTarget(capabilityNames(runtimeBoundingSet())),
    'config.linux.security_context',
  );
  steps.mark('checks');
  const id = newId();
  const name = sandboxName(config);
  const owner = ctx.names.reserve(name, id);
  if (owner) throw alreadyExists(`pod sandbox name "${name}" (config.metadata) is reserved for ${owner}`);

  // The launcher makes Mesos pods' namespaces; the Engine makes docker pods'.
  if (!docker && ctx.config.launcher === 'posix' && (modes.network !== 'NODE' || modes.pid !== 'NODE' || modes.ipc !== 'NODE')) {
    ctx.names.release(name);
    throw failedPrecondition(
      'the posix launcher cannot create namespaces: set linux.security_context.namespace_options network, pid and ipc to NODE, or start the daemon with --launcher=linux',
    );
  }
  // Mesos pods: the hook before anything is made (a refusal leaves only the name to release).
  // Docker pods: in the containerizer, once the pause image is in the Engine (the seed's order).
  let labels = config.labels;
  if (!docker) {
    try {
      labels = await podPreLaunchHook(ctx, id, handler, config);
    } catch (err) {
      ctx.names.release(name);
      throw err;
    }
  }
  steps.mark('hook');
  const rundir = podRuntimeDir(ctx.config, id, handler);
  const dns = config.dns_config;
  const mesos: ContainerConfig = {
    id: podId(id),
    kind: 'pod',
    runtimeHandler: handler,
    cgroupParent: config.linux?.cgroup_parent || undefined,
    resources,
    runtimeDir: rundir,
    namespaces: { network: modes.network, pid: modes.pid === 'NODE' ? 'NODE' : 'POD', ipc: modes.ipc },
    hostname: hostname || undefined,
    // Docker pods: the infra container's IPC namespace has the Engine's /dev/shm; the Engine writes hosts and resolv.conf.
    shmPath: modes.ipc === 'POD' && !docker ? runtimeFile(rundir, 'shm') : undefined,
    sandboxFilesDir: docker ? undefined : rundir,
    dns: dns ? { servers: dns.servers, searches: dns.searches, options: dns.options } : undefined,
    sysctls: config.linux?.sysctls,
    network: podNetwork(config),
    ...(userns ? { userNamespace: userns } : {}),
  };
  const record: SandboxRecord = { id, config: { ...config, labels }, runtimeHandler: handler, createdAt: nowNanos(), state: 'SANDBOX_NOTREADY', mesos };
  try {
    // Checkpoint first: a crash mid-launch leaves a record that recovery can clean up.
    ctx.sandboxes.put(record);
    steps.mark('record');
    const result = await ctx.containerizer.launch({
      config: mesos,
      runtimeHandler: handler,
      ...(seccomp !== undefined ? { seccomp } : {}),
      ...(podUser ? { podUser } : {}),
      ...(docker ? { docker: infraSpec(config, async (spec) => void (spec.labels = labels = await podPreLaunchHook(ctx, id, handler, config))) } : {}),
    });
    if (result === 'NOT_SUPPORTED') throw failedPrecondition(`no containerizer claims runtime_handler "${handler}"`);
    steps.mark('launch');
    ctx.sandboxes.update(id, { state: 'SANDBOX_READY', ...(docker ? { config: { ...config, labels } } : {}) });
    // As containerd 1.7+: a pod's events carry its own id, CREATED and STARTED once it runs.
    ctx.events.emit('CONTAINER_CREATED_EVENT', id, id);
    ctx.events.emit('CONTAINER_STARTED_EVENT', id, id);
    ctx.watchSandbox(id);
    ctx.log.info('pod sandbox ready', { pod: id, name });
    const networked = modes.network === 'POD' && (await ctx.containerizer.status(podId(id))).ips.length > 0;
    const unapplied = unappliedSandboxFields(config, networked);
    if (podAppArmor !== undefined) unapplied.push('linux.security_context.apparmor');
    // The docker pause container runs as root and unconfined: its image is ours, its command a shell.
    if (docker && podUser) unapplied.push('linux.security_context.run_as_user (docker pause container)');
    if (docker && seccomp !== undefined) unapplied.push('linux.security_context.seccomp (docker pause container)');
    // NODE docker pods are on the node's network: the Engine gives them the node's resolv.conf
    // (POD ones get dns_config as the infra container's Dns, DnsSearch and DnsOptions).
    if (docker && dns && modes.network === 'NODE') unapplied.push('dns_config (docker pods on the node network)');
    if (unapplied.length) ctx.log.warn('pod sandbox fields accepted but not applied', { pod: id, fields: unapplied });
    steps.mark('ready');
    ctx.log.debug('rpc steps', { rpc: 'RunPodSandbox', pod: id, ms: steps.fields() });
    return { pod_sandbox_id: id };
  } catch (err) {
    await destroyFailedLaunch(ctx, podId(id));
    ctx.sandboxes.delete(id);
    ctx.names.release(name);
    throw err;
  }
}

/** What docker pods cannot have yet: a user namespace. */
function refuseForDockerPod(opts: NamespaceOption__Output | null | undefined): void {
  if (opts?.userns_options && opts.userns_options.mode !== 'NODE') {
    throw unimplemented('config.linux.security_context.namespace_options.userns_options: user namespaces are not implemented for docker pods (runtime_handler "docker")');
  }
}

/** The handlers the configured containerizers claim: Mesos '', mesos and runc; Docker docker. */
export function runtimeHandlers(containerizers: string[]): string[] {
  return containerizers.flatMap((c) => (c === 'mesos' ? [...MESOS_HANDLERS] : c === 'docker' ? [DOCKER_HANDLER] : []));
}

/** The docker pod's infra container: the pause image's own command, the pod's labels and annotations, and the hook. */
function infraSpec(config: PodSandboxConfig__Output, hook: (spec: DockerLaunch) => Promise<void>): DockerLaunch {
  const spec: DockerLaunch = {
    entrypoint: [],
    cmd: [],
    env: [],
    workingDir: '',
    user: '',
    groupAdd: [],
    capAdd: [],
    capDrop: [],
    noNewPrivs: false,
    labels: config.labels ?? {},
    annotations: config.annotations ?? {},
    devices: [],
    preLaunch: () => hook(spec),
  };
  return spec;
}

/**
 * Where a pod's user namespace can be had: the linux launcher, a kernel that supports what it
 * needs (Status says so), and the pod's own network, PID and IPC namespaces (Kubernetes refuses
 * hostUsers: false with hostNetwork, hostPID or hostIPC: the host's would not be the pod's).
 */
function checkPodUserns(ctx: RuntimeContext, modes: ReturnType<typeof namespaceModes>, field: string): void {
  const f = `${field}.namespace_options`;
  for (const [name, mode] of Object.entries(modes)) {
    if (mode === 'NODE') throw invalidArgument(`${f}.userns_options: a user namespace (mode POD) cannot be used with ${f}.${name} NODE`);
  }
  if (ctx.config.launcher !== 'linux') throw failedPrecondition(`${f}.userns_options: the posix launcher cannot create user namespaces; start the daemon with --launcher=linux`);
  if (!userNamespacesSupported()) {
    throw failedPrecondition(`${f}.userns_options: this kernel cannot run pods in user namespaces (it needs user namespaces, idmapped mounts and an overlay over idmapped layers: Linux 5.19+); the runtime handler does not advertise user_namespaces`);
  }
}

/**
 * The pause helper's user, as containerd runs the pause container: run_as_user (else root),
 * run_as_group (else 0), and the primary gid plus supplemental_groups as its groups. Undefined:
 * none of them set, it stays root.
 */
function pauseUser(psc: LinuxSandboxSecurityContext__Output | null | undefined) {
  if (!psc || (!psc.run_as_user && !psc.supplemental_groups.length)) return undefined;
  const field = 'config.linux.security_context';
  const one = (v: Int64Value__Output | null, name: string) => (v ? checkId(v.value, `${field}.${name}`) : 0);
  const uid = one(psc.run_as_user, 'run_as_user');
  const gid = one(psc.run_as_group, 'run_as_group');
  const groups = [...new Set([gid, ...checkIds(psc.supplemental_groups, `${field}.supplemental_groups`)])];
  return { uid, gid, groups };
}

const PROTOCOLS = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' } as const;

/** What CNI gets of the pod (containerd's cniNamespaceOpts): names, port mappings, bandwidth. */
function podNetwork(config: PodSandboxConfig__Output): PodNetwork {
  const meta = config.metadata!;
  const portMappings: PodNetwork['portMappings'] = [];
  config.port_mappings.forEach((pm, i) => {
    // As containerd: a mapping without a host port is informational.
    if (pm.host_port <= 0) return;
    const protocol = PROTOCOLS[pm.protocol as keyof typeof PROTOCOLS];
    if (!protocol) throw invalidArgument(`config.port_mappings[${i}].protocol "${String(pm.protocol)}" is not TCP, UDP or SCTP`);
    if (pm.host_port > 65535) throw invalidArgument(`config.port_mappings[${i}].host_port ${pm.host_port} is not a port`);
    if (pm.container_port <= 0 || pm.container_port > 65535) throw invalidArgument(`config.port_mappings[${i}].container_port ${pm.container_port} is not a port`);
    portMappings.push({ hostPort: pm.host_port, containerPort: pm.container_port, protocol, hostIP: pm.host_ip ?? '' });
  });
  const net: PodNetwork = { podName: meta.name, podNamespace: meta.namespace, podUid: meta.uid, portMappings };
  const ingress = bandwidth(config.annotations, 'kubernetes.io/ingress-bandwidth');
  const egress = bandwidth(config.annotations, 'kubernetes.io/egress-bandwidth');
  if (ingress || egress) net.bandwidth = { ...(ingress ? { ingressRate: ingress } : {}), ...(egress ? { egressRate: egress } : {}) };
  return net;
}

const SUFFIXES: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

/** A bandwidth annotation (a Kubernetes quantity such as "10M") in bits per second; undefined when absent. */
export function bandwidth(annotations: Record<string, string> | undefined, key: string): number | undefined {
  const text = annotations?.[key];
  if (text === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)([a-zA-Z]*)$/.exec(text.trim());
  const mult = m ? SUFFIXES[m[2]!] : undefined;
  if (!m || mult === undefined) throw invalidArgument(`config.annotations["${key}"] "${text}" is not a quantity such as 10M`);
  const bits = Math.floor(Number(m[1]) * mult);
  // The kubelet's own limits: 1 kbit/s to 1 Pbit/s.
  if (bits < 1000 || bits > 1e15) throw invalidArgument(`config.annotations["${key}"] "${text}" is outside 1k..1P bits per second`);
  return bits;
}
