// A CRI container's launch in two halves. CreateContainer answers once everything a bad request
// can fail on is done: the rootfs, the process and its plan, the record. The cgroups, the
// helper's fork into the pod's namespaces and its setup (mounts, pivot_root, the held exec FIFO)
// wait for StartContainer, or for a quiet moment before it, and StartContainer waits for them.
// containerd and CRI-O make nothing of the kind before StartContainer either, and on a 2-CPU node
// a launch run at once took the CPU the client needed for the answer: CreateContainer 9.5-10.8 ms
// at the client this way, 14.8-15.7 with the launch at once, Create + Start within the noise.
// A launch that fails behind the answer leaves the container EXITED with reason StartError and
// exit code 128, as containerd records a task that could not start. A crash before the helper
// answered: recovery launches it again (relaunchContainer), so an answered CreateContainer is
// never lost.
import type { LaunchRequest, LaunchResult } from '../../containerizer/containerizer.js';
import type { ContainerRecord } from '../../store/metadata.js';
import { Code, failedPrecondition, StatusError } from '../../errors.js';
import { holdLaunch } from '../../fault.js';
import { containerId, nowNanos, podId, type RuntimeContext } from '../context.js';
import { destroyFailedLaunch, findContainer, toLimits } from './common.js';

/**
 * How long a created container's launch waits at most for its StartContainer or a quiet moment:
 * on a node whose calls never pause, a created container still gets its helper (and a launch
 * that fails its StartError) soon after.
 */
const LAUNCH_WAIT_MS = 1000;

/** A launch that is prepared: the fork waits until the caller has stored the container's record. */
export interface PreparedLaunch {
  /** The record is stored: the launch goes on behind the answer, tracked for StartContainer. */
  recorded(): void;
  /** Not stored after all: the launch goes on only to find itself destroyed. */
  abandon(): void;
}

/**
 * Starts the launch and resolves once it is prepared (the fork waits for `recorded()`), or once
 * it ended if it never asked (a containerizer without the split). Rejects as the launch does.
 */
export async function prepareLaunch(ctx: RuntimeContext, id: string, name: string, req: LaunchRequest): Promise<PreparedLaunch> {
  let answer!: () => void;
  const prepared = new Promise<void>((resolve) => (answer = resolve));
  let go!: () => void;
  const released = new Promise<void>((resolve) => (go = resolve));
  // StartContainer aborts the wait for a quiet moment: the launch goes on at once.
  const startAsked = new AbortController();
  const launch = ctx.containerizer.launch({
    ...req,
    prepared: async () => {
      answer();
      await released;
      await ctx.quietMoment(LAUNCH_WAIT_MS, startAsked.signal);
      await holdLaunch(name);
    },
  });
  const ended = await Promise.race([prepared.then(() => undefined), launch]);
  if (ended !== undefined && ended !== 'SUCCESS') throw failedPrecondition(`container launch was not accepted: ${ended}`);
  return {
    recorded: () => {
      track(ctx, id, launch, () => startAsked.abort());
      go();
    },
    abandon: () => {
      go();
      void launch.catch(() => undefined);
    },
  };
}

/**
 * Recovery: a created container whose launch a crash cut short. What the launch made is
 * destroyed and removed by the containerizer, then the launch is run again from the record.
 */
export function relaunchContainer(ctx: RuntimeContext, record: ContainerRecord): void {
  track(ctx, record.id, relaunch(ctx, record), () => undefined);
}

async function relaunch(ctx: RuntimeContext, record: ContainerRecord): Promise<LaunchResult> {
  const id = containerId(record);
  await ctx.containerizer.destroy(id);
  await ctx.containerizer.remove(id);
  const sandbox = ctx.sandboxes.get(record.sandboxId);
  if (!sandbox) throw failedPrecondition(`pod sandbox ${record.sandboxId} is gone`);
  const image = await ctx.images.get(record.imageId);
  if (!image) throw failedPrecondition(`image ${record.imageId} (${record.imageRef}) is gone`);
  // Pids are looked up again: the pod's init is the same process, a target container may not be.
  const namespaces = { ...record.mesos.namespaces };
  if (namespaces.pid === 'TARGET') {
    const targetId = record.config.linux?.security_context?.namespace_options?.target_id ?? '';
    const target = findContainer(ctx, targetId);
    namespaces.targetPid = target ? ctx.containerizer.pid(containerId(target)) : undefined;
  }
  // The resources as the record has them now: an UpdateContainerResources may have come since.
  const resources = toLimits(record.config.linux?.resources, 'config.linux.resources');
  ctx.log.info('launching again a container whose launch the restart cut short', { container: record.id, pod: record.sandboxId });
  try {
    return await ctx.containerizer.launch({
      config: { ...record.mesos, resources, oomScoreAdj: resources.oomScoreAdj, namespaces, parentPid: ctx.containerizer.pid(podId(record.sandboxId)) },
      runtimeHandler: sandbox.runtimeHandler,
      image,
      logPath: record.logPath,
      process: () => Promise.resolve(record.process),
    });
  } finally {
    // A RemoveContainer while the containerizer did not know it (between the remove above and
    // this launch) found nothing to destroy: what this launch made goes now.
    if (!ctx.containers.get(record.id)) await destroyFailedLaunch(ctx, id);
  }
}

/** Keeps the launch's end where StartContainer finds it; watches the exit once it is held. */
function track(ctx: RuntimeContext, id: string, launch: Promise<LaunchResult>, go: () => void): void {
  const done: Promise<void> = launch
    .then((result) => {
      if (result !== 'SUCCESS') throw failedPrecondition(`container launch was not accepted: ${result}`);
      const record = ctx.containers.get(id);
      if (record) ctx.watchContainer(record);
    })
    .catch(async (err: unknown) => {
      await launchFailed(ctx, id, err);
      throw err;
    })
    .finally(() => {
      if (ctx.launches.get(id)?.done === done) ctx.launches.delete(id);
    });
  ctx.launches.set(id, { done, go });
  done.catch(() => undefined);
}

/** StartError (exit 128), unless a Stop, Remove or the pod's stop cut the launch short: they record the end. */
async function launchFailed(ctx: RuntimeContext, id: string, err: unknown): Promise<void> {
  const record = ctx.containers.get(id);
  if (err instanceof StatusError && err.status === Code.ABORTED) return;
  if (!record || record.state !== 'CONTAINER_CREATED') return;
  const message = err instanceof Error ? err.message : String(err);
  ctx.containers.update(id, { state: 'CONTAINER_EXITED', exitCode: 128, reason: 'StartError', message, finishedAt: nowNanos() });
  // Inside StartContainer, it sends the STOPPED (start-container.ts).
  if (!ctx.events.starting.has(id)) ctx.events.emit('CONTAINER_STOPPED_EVENT', id, record.sandboxId);
  ctx.log.warn('container launch failed after CreateContainer answered', { container: id, pod: record.sandboxId, error: message });
  try {
    await ctx.containerizer.destroy(containerId(record));
  } catch (e) {
    ctx.log.error('cleaning up a failed launch', { container: id, pod: record.sandboxId, error: String(e) });
  }
}
