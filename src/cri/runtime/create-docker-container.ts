// CreateContainer in a docker pod (runtime_handler "docker"): the same checks as for a Mesos
// pod, but the image is the Engine's (pulled through it) and the process is what the Engine
// makes of the image's config and the CRI fields (DockerLaunch), not a rootfs of ours.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerConfig__Output } from '../../../api/generated/runtime/v1/ContainerConfig.js';
import type { CreateContainerResponse } from '../../../api/generated/runtime/v1/CreateContainerResponse.js';
import type { ContainerConfig } from '../../containerizer/mesos/isolator.js';
import type { DockerLaunch } from '../../containerizer/docker/containerizer.js';
import { containerName, type SandboxRecord } from '../../store/metadata.js';
import { containerRuntimeDir, DOCKER_HANDLER, podId, type RuntimeContext } from '../context.js';
import { alreadyExists, failedPrecondition, invalidArgument, unimplemented } from '../../errors.js';
import { checkIds, checkName, containerCreated, createdRecord, criStopSignal, destroyFailedLaunch, groupsPolicy, namespaceModes, newId, resolveLogPath, toLimits } from './common.js';
import { userNamespace } from './userns.js';
import { containerPreLaunchHook } from './pre-launch-hook.js';
import { chooseSeccomp } from '../../security/seccomp/compile.js';
import { loadLocalhostProfile, runtimeDefaultProfile } from '../../security/seccomp/profile.js';
import { appArmorProfile, thisHost } from '../../security/apparmor.js';
import { criMounts } from './mounts.js';
import { mkdirp } from '../../util/mkdirp.js';

export async function createDockerContainer(ctx: RuntimeContext, criConfig: ContainerConfig__Output, sandbox: SandboxRecord): Promise<CreateContainerResponse> {
  let config = criConfig;
  checkName('config.metadata.name', config.metadata?.name);
  if (sandbox.state !== 'SANDBOX_READY') throw failedPrecondition(`pod sandbox ${sandbox.id} is not ready (pod_sandbox_id)`);
  const imageRef = config.image?.image;
  if (!imageRef) throw invalidArgument('config.image.image is required');
  const logPath = resolveLogPath(sandbox, config);
  const mounts = criMounts(config.mounts);
  mounts.forEach((m, i) => {
    if (m.recursiveReadOnly) throw unimplemented(`mounts[${i}].recursive_read_only: the Docker Engine (API 1.41) has no recursive read-only bind mounts`);
  });
  const resources = toLimits(config.linux?.resources, 'config.linux.resources');
  if (resources.hugepageLimits) throw unimplemented('config.linux.resources.hugepage_limits: not applied to docker containers yet');
  if (resources.unified) throw unimplemented('config.linux.resources.unified: cgroup2 keys are not applied to docker containers');
  const sc = config.linux?.security_context;
  const field = 'config.linux.security_context';
  const privileged = sc?.privileged ?? false;
  if (privileged && !sandbox.config.linux?.security_context?.privileged) {
    throw invalidArgument(
      `no privileged container allowed in sandbox: config.linux.security_context.privileged is true but the pod's linux.security_context.privileged is not (pod ${sandbox.id})`,
    );
  }
  if (sc?.run_as_group && !sc.run_as_user && !sc.run_as_username) throw invalidArgument(`${field}.run_as_group needs run_as_user or run_as_username`);
  if (userNamespace(sc?.namespace_options, field)) {
    throw unimplemented(`${field}.namespace_options.userns_options: user namespaces are not implemented for docker pods (runtime_handler "docker")`);
  }
  if (groupsPolicy(sc?.supplemental_groups_policy, field) === 'Strict') {
    throw unimplemented(`${field}.supplemental_groups_policy Strict: the Docker Engine always merges the image's /etc/group (docker pods)`);
  }
  const groups = checkIds(sc?.supplemental_groups ?? [], `${field}.supplemental_groups`);
  if (sc?.capabilities?.add_ambient_capabilities?.length) {
    throw unimplemented(`${field}.capabilities.add_ambient_capabilities: the Docker Engine has no ambient capabilities (docker pods)`);
  }
  const apparmor = appArmorProfile(sc, thisHost(), field);
  const pidMode = namespaceModes(sc?.namespace_options).pid;
  if (pidMode === 'TARGET') throw unimplemented(`${field}.namespace_options.pid TARGET is not implemented for docker pods`);
  const seccomp = chooseSeccomp(sc, ctx.config.seccompDefault, field);
  const seccompProfile =
    seccomp.kind === 'unconfined' ? undefined : JSON.stringify(seccomp.kind === 'runtime-default' ? runtimeDefaultProfile() : loadLocalhostProfile(seccomp.path, field));
  config.devices.forEach((d, i) => {
    if (!d.host_path || !d.host_path.startsWith('/')) throw invalidArgument(`devices[${i}].host_path "${d.host_path}" must be an absolute path`);
    if (!existsSync(d.host_path)) throw invalidArgument(`devices[${i}].host_path "${d.host_path}": no such device on the host`);
  });

  const id = newId();
  const name = containerName(config, sandbox.config);
  const owner = ctx.names.reserve(name, id);
  if (owner) throw alreadyExists(`container name "${name}" (config.metadata) is reserved for ${owner}`);
  let user = sc?.run_as_username || (sc?.run_as_user ? String(sc.run_as_user.value) : '');
  if (sc?.run_as_group && user) user = `${user}:${String(sc.run_as_group.value)}`;
  const spec: DockerLaunch = {
    image: imageRef,
    entrypoint: config.command,
    cmd: config.args,
    env: dockerEnv(config),
    workingDir: config.working_dir,
    user,
    groupAdd: groups.map(String),
    capAdd: sc?.capabilities?.add_capabilities ?? [],
    capDrop: sc?.capabilities?.drop_capabilities ?? [],
    ...(seccompProfile !== undefined ? { seccompProfile } : {}),
    noNewPrivs: sc?.no_new_privs ?? false,
    labels: config.labels ?? {},
    annotations: config.annotations ?? {},
    devices: config.devices.map((d) => ({ hostPath: d.host_path, containerPath: d.container_path || d.host_path, permissions: d.permissions })),
    ...(apparmor !== undefined ? { apparmor } : {}),
    // The seed's order: the containerizer pulls the image through the Engine, then calls the
    // hook (which so sees the image id), then runs the container.
    preLaunch: async (image) => {
      config = await containerPreLaunchHook(ctx, id, sandbox, config, image);
      spec.env = dockerEnv(config);
      spec.labels = config.labels ?? {};
    },
  };

  const pod = sandbox.mesos;
  const mesos: ContainerConfig = {
    id: { value: id, parent: podId(sandbox.id) },
    kind: 'container',
    runtimeHandler: DOCKER_HANDLER,
    cgroupParent: pod.cgroupParent,
    resources,
    runtimeDir: containerRuntimeDir(ctx.config, sandbox.id, id, DOCKER_HANDLER),
    namespaces: { network: pod.namespaces.network, pid: pidMode, ipc: pod.namespaces.ipc },
    mounts,
    privileged,
    readonlyRootfs: sc?.readonly_rootfs ?? false,
    ...(sc?.masked_paths?.length ? { maskedPaths: sc.masked_paths } : {}),
    ...(sc?.readonly_paths?.length ? { readonlyPaths: sc.readonly_paths } : {}),
    oomScoreAdj: resources.oomScoreAdj,
    tty: config.tty,
    stdin: config.stdin,
    stdinOnce: config.stdin_once,
  };
  const uid = /^\d+$/.test(user.split(':')[0] ?? '') ? Number(user.split(':')[0]) : 0;
  // After the launch: the hook may have added env and labels.
  const recordOf = () =>
    createdRecord({
      id,
      sandboxId: sandbox.id,
      config,
      imageId: spec.resolved?.imageId ?? imageRef,
      imageRef,
      logPath,
      process: { argv: [...config.command, ...config.args], env: spec.env, cwd: config.working_dir || '/', uid, gid: 0, groups },
      stopSignal: criStopSignal(config) || spec.resolved?.stopSignal || '',
      mesos,
    });
  try {
    if (logPath) mkdirp(join(logPath, '..'));
    // As containerd: a missing bind source is made (the Engine refuses a missing one).
    for (const m of mounts) if (!existsSync(m.hostPath)) mkdirSync(m.hostPath, { recursive: true });
    const result = await ctx.containerizer.launch({ config: mesos, runtimeHandler: DOCKER_HANDLER, logPath, docker: spec });
    if (result !== 'SUCCESS') throw failedPrecondition(`container launch was not accepted: ${result}`);
    const record = recordOf();
    ctx.containers.put(record);
    ctx.watchContainer(ctx.containers.get(record.id)!);
    return containerCreated(ctx, record);
  } catch (err) {
    await destroyFailedLaunch(ctx, mesos.id);
    ctx.names.release(name);
    throw err;
  }
}

/** CRI envs as the Engine's KEY=VALUE list. */
function dockerEnv(config: ContainerConfig__Output): string[] {
  return config.envs.filter((e) => e.key).map((e) => `${e.key}=${Buffer.isBuffer(e.value) ? e.value.toString('utf8') : e.value}`);
}
