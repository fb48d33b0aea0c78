import { runtimeFile } from '../../paths.js';
import type { RunPodSandboxRequest__Output } from '../../../api/generated/runtime/v1/RunPodSandboxRequest.js';
import type { RunPodSandboxResponse } from '../../../api/generated/runtime/v1/RunPodSandboxResponse.js';
import type { ContainerConfig } from '../../containerizer/mesos/isolator.js';
import { sandboxName, type SandboxRecord } from '../../store/metadata.js';
import { alreadyExists, failedPrecondition, invalidArgument } from '../../errors.js';
import { nowNanos, podId, podRuntimeDir, type RuntimeContext } from '../context.js';
import { capabilityNames, runtimeBoundingSet } from './capabilities.js';
import { chooseSeccomp, hostTarget, seccompFilter } from '../../security/seccomp/compile.js';
import { unappliedSandboxFields } from './unapplied.js';
import { checkName, destroyFailedLaunch, namespaceModes, newId, toLimits } from './common.js';

export async function runPodSandbox(ctx: RuntimeContext, req: RunPodSandboxRequest__Output): Promise<RunPodSandboxResponse> {
  const config = req.config;
  if (!config) throw invalidArgument('config is required');
  const meta = config.metadata;
  if (!meta) throw invalidArgument('config.metadata is required');
  checkName('config.metadata.name', meta.name);
  checkName('config.metadata.namespace', meta.namespace);
  if (!meta.uid) throw invalidArgument('config.metadata.uid is required');
  const handler = req.runtime_handler ?? '';
  const handlerName = handler === '' ? 'mesos' : handler;
  if (!ctx.config.containerizers.includes(handlerName)) {
    throw invalidArgument(`runtime_handler "${handler}" is not configured (configured: ${ctx.config.containerizers.join(', ')})`);
  }

  const resources = toLimits(config.linux?.resources, 'config.linux.resources');
  const psc = config.linux?.security_context;
  if (psc?.run_as_group && !psc.run_as_user) throw invalidArgument('config.linux.security_context.run_as_group needs run_as_user');
  // As containerd does for its pause container: the pod's profile confines the pause helper, which
  // runs as root with the runtime's capabilities.
  const seccomp = seccompFilter(
    chooseSeccomp(psc, ctx.config.seccompDefault, 'config.linux.security_context'),
    hostTarget(capabilityNames(runtimeBoundingSet())),
    'config.linux.security_context',
  );
  const id = newId();
  const name = sandboxName(config);
  const owner = ctx.names.reserve(name, id);
  if (owner) throw alreadyExists(`pod sandbox name "${name}" (config.metadata) is reserved for ${owner}`);

  const modes = namespaceModes(config.linux?.security_context?.namespace_options);
  if (ctx.config.launcher === 'posix' && (modes.network !== 'NODE' || modes.pid !== 'NODE' || modes.ipc !== 'NODE')) {
    ctx.names.release(name);
    throw failedPrecondition(
      'the posix launcher cannot create namespaces: set linux.security_context.namespace_options network, pid and ipc to NODE, or start the daemon with --launcher=linux',
    );
  }
  const rundir = podRuntimeDir(ctx.config, id);
  const dns = config.dns_config;
  const mesos: ContainerConfig = {
    id: podId(id),
    kind: 'pod',
    runtimeHandler: handler,
    cgroupParent: config.linux?.cgroup_parent || undefined,
    resources,
    runtimeDir: rundir,
    namespaces: { network: modes.network, pid: modes.pid === 'NODE' ? 'NODE' : 'POD', ipc: modes.ipc },
    hostname: config.hostname || undefined,
    shmPath: modes.ipc === 'POD' ? runtimeFile(rundir, 'shm') : undefined,
    sandboxFilesDir: rundir,
    dns: dns ? { servers: dns.servers, searches: dns.searches, options: dns.options } : undefined,
    sysctls: config.linux?.sysctls,
  };
  const record: SandboxRecord = { id, config, runtimeHandler: handler, createdAt: nowNanos(), state: 'SANDBOX_NOTREADY', mesos };
  try {
    // Checkpoint first: a crash mid-launch leaves a record that recovery can clean up.
    ctx.sandboxes.put(record);
    const result = await ctx.containerizer.launch({ config: mesos, runtimeHandler: handler, ...(seccomp !== undefined ? { seccomp } : {}) });
    if (result === 'NOT_SUPPORTED') throw failedPrecondition(`no containerizer claims runtime_handler "${handler}"`);
    ctx.sandboxes.update(id, { state: 'SANDBOX_READY' });
    ctx.watchSandbox(id);
    ctx.log.info('pod sandbox ready', { pod: id, name });
    const unapplied = unappliedSandboxFields(config);
    if (unapplied.length) ctx.log.warn('pod sandbox fields accepted but not applied', { pod: id, fields: unapplied });
    return { pod_sandbox_id: id };
  } catch (err) {
    await destroyFailedLaunch(ctx, podId(id));
    ctx.sandboxes.delete(id);
    ctx.names.release(name);
    throw err;
  }
}
