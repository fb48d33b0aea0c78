import { Steps } from '../../util/steps.js';
import { join } from 'node:path';
import type { CreateContainerRequest__Output } from '../../../api/generated/runtime/v1/CreateContainerRequest.js';
import type { CreateContainerResponse } from '../../../api/generated/runtime/v1/CreateContainerResponse.js';
import type { ContainerConfig__Output } from '../../../api/generated/runtime/v1/ContainerConfig.js';
import type { ContainerConfig, UserNamespaceConfig } from '../../containerizer/mesos/isolator.js';
import { DEFAULT_PATH } from '../../containerizer/mesos/containerizer.js';
import { mkdirp } from '../../util/mkdirp.js';
import type { ImageRecord } from '../../images/store.js';
import { readImageUser } from '../../provisioner/user.js';
import { containerName, type ProcessSpec, type SandboxRecord } from '../../store/metadata.js';
import { containerId, containerRuntimeDir, DOCKER_HANDLER, podId, type RuntimeContext } from '../context.js';
import { createDockerContainer } from './create-docker-container.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from '../../errors.js';
import { checkIds, checkName, containerCreated, createdRecord, criStopSignal, destroyFailedLaunch, findContainer, groupsPolicy, mustSandbox, namespaceModes, newId, resolveLogPath, toLimits, type GroupsPolicy } from './common.js';
import { checkContainerUserns, checkMapped, userNamespace } from './userns.js';
import { ambientMask, capabilityMask, capabilityNames, runtimeBoundingSet } from './capabilities.js';
import { chooseSeccomp, hostTarget, seccompFilter } from '../../security/seccomp/compile.js';
import { appArmorProfile, thisHost } from '../../security/apparmor.js';
import { criDevices, hostDevices } from './devices.js';
import { criMounts } from './mounts.js';
import { holdCreate } from '../../fault.js';
import { containerPreLaunchHook } from './pre-launch-hook.js';
import { prepareLaunch, type PreparedLaunch } from './container-launch.js';

export async function createContainer(ctx: RuntimeContext, req: CreateContainerRequest__Output): Promise<CreateContainerResponse> {
  const config = req.config;
  if (!config) throw invalidArgument('config is required');
  if (!config.metadata) throw invalidArgument('config.metadata is required');
  checkName('config.metadata.name', config.metadata.name);
  const sandbox = mustSandbox(ctx, req.pod_sandbox_id);
  if (sandbox.runtimeHandler === DOCKER_HANDLER) return createDockerContainer(ctx, config, sandbox);
  if (ctx.config.launcher === 'posix') {
    // Like Mesos' filesystem/posix: no mount namespace, so no image rootfs.
    throw failedPrecondition('the posix launcher cannot run container images (no mount namespace or rootfs); start the daemon with --launcher=linux');
  }
  if (sandbox.state !== 'SANDBOX_READY') throw failedPrecondition(`pod sandbox ${sandbox.id} is not ready (pod_sandbox_id)`);
  const imageRef = config.image?.image;
  if (!imageRef) throw invalidArgument('config.image.image is required');
  const id = newId();
  const steps = new Steps();
  // Resolved and leased at once: RemoveImage cannot take the image (or its
  // layers) from under the rootfs before the container record holds it.
  const lease = await ctx.images.lease(imageRef, `${id} (being created)`);
  steps.mark('image lease');
  if (!lease) throw notFound(`image "${imageRef}" not found (config.image.image); import it with \`cri-mesos images import\``);
  try {
    return await createWithImage(ctx, config, sandbox, id, imageRef, lease.image, steps);
  } finally {
    // Success: the record holds the image now (imageUsers). Failure: cleanup is done.
    lease.release();
  }
}

async function createWithImage(
  ctx: RuntimeContext,
  config: ContainerConfig__Output,
  sandbox: SandboxRecord,
  id: string,
  imageRef: string,
  image: ImageRecord,
  steps: Steps,
): Promise<CreateContainerResponse> {
  const logPath = resolveLogPath(sandbox, config);
  const sc = config.linux?.security_context;
  const field = 'config.linux.security_context';
  // The pod's user namespace, which the kubelet repeats for each container: it must match.
  const userns = userNamespace(sc?.namespace_options, field);
  checkContainerUserns(userns, sandbox.mesos.userNamespace, field, sandbox.id);
  const mounts = criMounts(config.mounts, userns);
  const resources = toLimits(config.linux?.resources, 'config.linux.resources');

  const privileged = sc?.privileged ?? false;
  // As containerd and CRI-O (their words): only a privileged pod may hold a privileged container.
  if (privileged && !sandbox.config.linux?.security_context?.privileged) {
    throw invalidArgument(
      `no privileged container allowed in sandbox: config.linux.security_context.privileged is true but the pod's linux.security_context.privileged is not (pod ${sandbox.id})`,
    );
  }
  // The host's devices first: a CRI device may put one of them at another path too.
  const devices = [...(privileged ? hostDevices() : []), ...criDevices(config.devices)];
  // The CRI: run_as_group only with run_as_user or run_as_username, or the runtime must error.
  if (sc?.run_as_group && !sc.run_as_user && !sc.run_as_username) {
    throw invalidArgument('config.linux.security_context.run_as_group needs run_as_user or run_as_username');
  }
  const security: Security = {
    ...(userns ? { userns } : {}),
    groupsPolicy: groupsPolicy(sc?.supplemental_groups_policy, field),
    supplementalGroups: checkIds(sc?.supplemental_groups ?? [], `${field}.supplemental_groups`),
    apparmor: appArmorProfile(sc, thisHost(), field),
  };
  const pidMode = namespaceModes(sc?.namespace_options).pid;
  let targetPid: number | undefined;
  if (pidMode === 'TARGET') {
    const target = findContainer(ctx, sc?.namespace_options?.target_id ?? '', 'linux.security_context.namespace_options.target_id');
    if (!target || target.sandboxId !== sandbox.id) {
      throw notFound(`target container "${sc?.namespace_options?.target_id ?? ''}" not found in this pod (linux.security_context.namespace_options.target_id)`);
    }
    targetPid = ctx.containerizer.pid(containerId(target));
    if (targetPid === undefined) {
      throw failedPrecondition(`target container ${target.id} is not running (namespace_options.target_id)`);
    }
  }
  const name = containerName(config, sandbox.config);
  const owner = ctx.names.reserve(name, id);
  if (owner) throw alreadyExists(`container name "${name}" (config.metadata) is reserved for ${owner}`);
  // Before anything is made: a refusal leaves only the name to release. The hook's env and
  // labels are in `config` from here on, so the record and the process get them.
  steps.mark('checks');
  try {
    config = await containerPreLaunchHook(ctx, id, sandbox, config, { ref: imageRef, id: image.id });
  } catch (err) {
    ctx.names.release(name);
    throw err;
  }

  const pod = sandbox.mesos;
  const mesos: ContainerConfig = {
    id: { value: id, parent: podId(sandbox.id) },
    kind: 'container',
    runtimeHandler: sandbox.runtimeHandler,
    cgroupParent: pod.cgroupParent,
    resources,
    runtimeDir: containerRuntimeDir(ctx.config, sandbox.id, id),
    namespaces: { network: pod.namespaces.network, pid: pidMode, ipc: pod.namespaces.ipc, targetPid },
    parentPid: ctx.containerizer.pid(podId(sandbox.id)),
    mounts,
    shmPath: pod.shmPath,
    sandboxFilesDir: pod.sandboxFilesDir,
    privileged,
    devices,
    readonlyRootfs: sc?.readonly_rootfs ?? false,
    maskedPaths: sc?.masked_paths,
    readonlyPaths: sc?.readonly_paths,
    oomScoreAdj: resources.oomScoreAdj,
    imageVolumes: Object.keys(image.config.Volumes ?? {}),
    tty: config.tty,
    stdin: config.stdin,
    stdinOnce: config.stdin_once,
    ...(userns ? { userNamespace: userns } : {}),
  };
  let processSpec: ProcessSpec | undefined;
  const record = createdRecord({
    id,
    sandboxId: sandbox.id,
    config,
    imageId: image.id,
    imageRef,
    logPath,
    process: { argv: [], env: [], cwd: '/', uid: 0, gid: 0, groups: [] },
    // CRI stop_signal (1.33+) over the image's StopSignal.
    stopSignal: criStopSignal(config, image.config.StopSignal ?? ''),
    mesos,
  });
  steps.mark('hook');
  let launch: PreparedLaunch | undefined;
  try {
    if (logPath) mkdirp(join(logPath, '..'));
    // Up to the fork; the rest goes on behind the answer (container-launch.ts).
    launch = await prepareLaunch(ctx, id, config.metadata?.name ?? '', {
      config: mesos,
      runtimeHandler: sandbox.runtimeHandler,
      image,
      logPath,
      process: async (rootfs) => {
        await holdCreate(config.metadata?.name ?? '');
        return (processSpec = await buildProcess(ctx, config, image, rootfs, sandbox, security));
      },
    });
    steps.mark('launch prepared');
    ctx.containers.put({ ...record, process: processSpec! });
    launch.recorded();
    steps.mark('record');
  } catch (err) {
    launch?.abandon();
    await destroyFailedLaunch(ctx, containerId(record));
    ctx.names.release(name);
    throw err;
  }
  const answer = containerCreated(ctx, record);
  ctx.log.debug('rpc steps', { rpc: 'CreateContainer', container: id, ms: steps.fields() });
  return answer;
}

/** Docker/CRI rules, not Mesos': command replaces Entrypoint, args replace Cmd. */
export function mergeArgv(config: Pick<ContainerConfig__Output, 'command' | 'args'>, image: ImageRecord): string[] {
  const entrypoint = config.command.length ? config.command : (image.config.Entrypoint ?? []);
  const cmd = config.args.length ? config.args : config.command.length ? [] : (image.config.Cmd ?? []);
  return [...entrypoint, ...cmd];
}

export function mergeEnv(imageEnv: string[], criEnv: { key: string; value: Buffer | string }[], hostname: string): string[] {
  const env = new Map<string, string>();
  for (const e of imageEnv) {
    const i = e.indexOf('=');
    if (i > 0) env.set(e.slice(0, i), e.slice(i + 1));
  }
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  if (hostname) env.set('HOSTNAME', hostname);
  // KeyValue.value is bytes on the wire; environment values are text.
  for (const { key, value } of criEnv) if (key) env.set(key, Buffer.isBuffer(value) ? value.toString('utf8') : value);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/** Security settings checked before anything is created, applied once the process is built. */
interface Security {
  groupsPolicy: GroupsPolicy;
  supplementalGroups: number[];
  /** The AppArmor profile to apply; undefined: none. */
  apparmor: string | undefined;
  /** The pod's user namespace: the process's ids must be mapped in it. */
  userns?: UserNamespaceConfig;
}

/**
 * The process's groups, as containerd 2.0 sets them and ContainerStatus.user reports them: the
 * primary gid first, then with Merge the groups the image's /etc/group lists the user in, then
 * supplemental_groups; with Strict nothing from the image's /etc/group.
 */
export function effectiveGroups(user: { gid: number; additionalGids: number[] }, supplemental: number[], policy: GroupsPolicy): number[] {
  const fromImage = policy === 'Strict' ? [user.gid] : [user.gid, ...user.additionalGids];
  return [...new Set([...fromImage, ...supplemental])];
}

async function buildProcess(
  ctx: RuntimeContext,
  config: ContainerConfig__Output,
  image: ImageRecord,
  rootfs: string | undefined,
  sandbox: SandboxRecord,
  security: Security,
): Promise<ProcessSpec> {
  const argv = mergeArgv(config, image);
  if (argv.length === 0) throw invalidArgument('no command specified: config.command, config.args and the image Entrypoint/Cmd are all empty');
  const sc = config.linux?.security_context;
  let userSpec = image.config.User ?? '';
  if (sc?.run_as_username) userSpec = sc.run_as_username;
  else if (sc?.run_as_user) userSpec = String(sc.run_as_user.value);
  if (sc?.run_as_group && userSpec) userSpec = `${userSpec.split(':')[0]}:${String(sc.run_as_group.value)}`;
  const user = rootfs ? await readImageUser(rootfs, userSpec || '0') : { uid: 0, gid: 0, additionalGids: [] };
  const groups = effectiveGroups(user, security.supplementalGroups, security.groupsPolicy);
  if (security.userns) {
    // The ids the process runs as are the namespace's: each must be mapped, or setuid would fail.
    const f = 'config.linux.security_context';
    const uidFrom = sc?.run_as_username ? `${f}.run_as_username` : sc?.run_as_user ? `${f}.run_as_user` : "the image's user (config.image)";
    checkMapped([user.uid], security.userns.uids, uidFrom, 'uid');
    checkMapped([user.gid], security.userns.gids, sc?.run_as_group ? `${f}.run_as_group` : uidFrom, 'gid');
    for (const g of groups) {
      const from = security.supplementalGroups.includes(g) ? `${f}.supplemental_groups` : g === user.gid ? uidFrom : "the image's /etc/group";
      checkMapped([g], security.userns.gids, from, 'gid');
    }
  }
  const hostname = sandbox.mesos.namespaces.network === 'NODE' ? '' : sandbox.config.hostname;
  const caps = capabilityMask(sc?.privileged ?? false, sc?.capabilities?.add_capabilities ?? [], sc?.capabilities?.drop_capabilities ?? []);
  if (caps.unavailable.length) ctx.log.warn('capabilities the runtime does not hold are not given', { pod: sandbox.id, container: config.metadata?.name, capabilities: caps.unavailable });
  const ambient = ambientMask(sc?.capabilities?.add_ambient_capabilities ?? [], caps.mask);
  // Raising needs the capability inheritable: a privileged container with ambient ones gets its
  // (unchanged) full set written out, so the helper sets it.
  const keptCaps = caps.mask ?? (ambient ? runtimeBoundingSet() : undefined);
  const field = 'linux.security_context';
  const seccomp = seccompFilter(
    chooseSeccomp(sc, ctx.config.seccompDefault, field),
    // Privileged (no mask) is unconfined.
    hostTarget(capabilityNames(caps.mask ?? 0n)),
    field,
  );
  return {
    ...(seccomp !== undefined ? { seccomp } : {}),
    ...(keptCaps !== undefined ? { capabilities: keptCaps.toString(16) } : {}),
    ...(ambient ? { ambient: ambient.toString(16) } : {}),
    ...(security.apparmor !== undefined ? { apparmor: security.apparmor } : {}),
    noNewPrivs: sc?.no_new_privs ?? false,
    argv,
    env: mergeEnv(image.config.Env ?? [], config.envs, hostname),
    cwd: config.working_dir || image.config.WorkingDir || '/',
    uid: user.uid,
    gid: user.gid,
    groups,
  };
}
