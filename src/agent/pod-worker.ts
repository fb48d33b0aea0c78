// One pod's worker (the kubelet's pod worker + SyncPod + killPod, for one static pod). Syncs run
// one at a time: read the runtime's view of the pod, compute the actions, carry them out in the
// kubelet's order (kill, create the sandbox, the next init container, the containers), with the
// restart back-off and the lifecycle hooks. PLEG events, probe results and back-off timers queue
// syncs. terminate() kills and removes everything of the pod, also what is on disk.
import { readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { PodSandboxConfig } from '../../api/generated/runtime/v1/PodSandboxConfig.js';
import type { Logger } from '../log.js';
import { Backoff } from './backoff.js';
import { isNotFound, type CriClient } from './cri-client.js';
import { containerConfig, containerLogDir, podLogDir, restartCountFromLogDir, sandboxConfig, type ConfigOptions } from './cri-config.js';
import { agentPodLogDir } from '../paths.js';
import { ContainerConfigError } from './env.js';
import { ensureImageExists, StartError } from './images.js';
import { ANNOTATION_POD_TERMINATION_GRACE_PERIOD, ANNOTATION_PRESTOP_HANDLER } from './labels.js';
import { runHook } from './lifecycle.js';
import { computePodActions, type ContainerToKill } from './pod-actions.js';
import { removePodCgroup } from './pod-cgroup.js';
import { buildPodStatus } from './pod-status.js';
import { ProbeManager, type ProbeEvent } from './probe-manager.js';
import { getPodStatus, latestContainer, type RuntimeContainer, type RuntimePodStatus } from './runtime-status.js';
import { verifyRunAsNonRoot } from './security.js';
import type { Container, LifecycleHandler, Pod, PodCondition } from './types.js';
import { setUpVolumes, tearDownPodDir, VolumeError, type PodVolumePaths } from './volumes.js';
import { mkdirp } from '../util/mkdirp.js';

/** Containers get at least this long to stop (minimumGracePeriodInSeconds). */
export const MINIMUM_GRACE_PERIOD_SECONDS = 2;
/** How often a pod is synced with nothing else happening (--sync-frequency). */
export const SYNC_FREQUENCY_MS = 60_000;
/** How soon a pod whose volumes could not be set up is tried again. */
export const VOLUME_RETRY_MS = 10_000;
/** How soon a sync that failed (the runtime is down, say) is tried again. */
export const SYNC_ERROR_RETRY_MS = 2_000;

export interface AgentContext {
  cri: CriClient;
  log: Logger;
  config: ConfigOptions;
  nodeName: string;
  hostIPs: string[];
  /** Version().runtime_name, for container IDs ("<runtime>://<id>") */
  runtimeName(): string;
  /** container restarts (CrashLoopBackOff) */
  backoff: Backoff;
  /** image pulls (ImagePullBackOff) */
  imageBackoff: Backoff;
  agentStart: number;
}

/** Go's time.Duration.String for whole seconds: "10s", "1m20s", "5m0s". */
export function durationString(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  return `${Math.floor(m / 60)}h${m % 60}m${s % 60}s`;
}

/** format.Pod: name_namespace(uid). */
export function podDescription(pod: Pod): string {
  return `${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`;
}

export class PodWorker {
  private runtime: RuntimePodStatus = { sandboxes: [], containers: [] };
  private readonly reasons = new Map<string, { reason: string; message: string }>();
  private podError: { reason: string; message: string } | undefined;
  private readonly probes: ProbeManager;
  private startTime: Date | undefined;
  private conditions: PodCondition[] | undefined;
  /** the pod is done (Succeeded or Failed): nothing more to start */
  private done = false;
  private syncing: Promise<void> | undefined;
  private pending = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private terminating = false;
  private lastError = '';

  constructor(
    readonly pod: Pod,
    readonly file: string,
    private readonly ctx: AgentContext,
  ) {
    this.probes = new ProbeManager(
      pod,
      {
        container: (name) => {
          const c = latestContainer(this.runtime, name);
          return c && { id: c.id, running: c.state === 'CONTAINER_RUNNING', startedAt: c.startedAt, terminated: c.state === 'CONTAINER_EXITED' };
        },
        podIP: () => this.podIPs()[0] ?? '',
        podTerminal: () => this.done,
      },
      ctx.cri,
      (e) => this.onProbe(e),
      ctx.agentStart,
    );
  }

  get uid(): string {
    return this.pod.metadata.uid;
  }

  start(): void {
    this.probes.start();
    this.queue(0);
  }

  /** Queues a sync in `delayMs` (the earliest queued time wins). */
  queue(delayMs = 0): void {
    if (this.terminating) return;
    const at = Date.now() + delayMs;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = 0;
      void this.runSync();
    }, Math.max(0, delayMs));
  }

  private async runSync(): Promise<void> {
    if (this.syncing) {
      this.pending = true;
      return;
    }
    this.syncing = (async () => {
      do {
        this.pending = false;
        if (this.terminating) break;
        try {
          await this.syncPod();
          this.lastError = '';
          if (!this.done) this.queue(SYNC_FREQUENCY_MS);
        } catch (err) {
          const msg = (err as { details?: string }).details ?? (err as Error).message;
          if (msg !== this.lastError) this.ctx.log.warn('pod sync failed; retrying', { pod: podDescription(this.pod), error: msg });
          this.lastError = msg;
          this.queue(SYNC_ERROR_RETRY_MS);
        }
      } while (this.pending && !this.terminating);
    })();
    try {
      await this.syncing;
    } finally {
      this.syncing = undefined;
    }
  }

  private onProbe(e: ProbeEvent): void {
    if (e.result === 'Failure' && (e.type === 'liveness' || e.type === 'startup')) {
      this.ctx.log.info(`${e.type} probe failed`, { pod: podDescription(this.pod), container: e.container, output: e.output.slice(0, 200) });
      this.queue(0);
    } else if (e.type === 'startup' && e.result === 'Success') this.queue(0);
  }

  private podIPs(): string[] {
    if (this.pod.spec.hostNetwork) return this.ctx.hostIPs;
    return this.runtime.sandboxes.find((s) => s.state === 'SANDBOX_READY')?.ips ?? [];
  }

  private async syncPod(): Promise<void> {
    const { cri, log } = this.ctx;
    const status = await getPodStatus(cri, this.uid);
    this.runtime = status;
    this.startTime ??= new Date();
    const actions = computePodActions(this.pod, status, (type, id) => this.probes.get(type, id));

    if (actions.killPod && !actions.createSandbox && actions.containersToStart.length === 0 && !actions.nextInitContainer) {
      // Nothing will run again: stop what runs and the sandbox; the pod keeps its statuses.
      if (status.containers.some((c) => c.state === 'CONTAINER_RUNNING') || status.sandboxes.some((s) => s.state === 'SANDBOX_READY')) {
        for (const k of actions.containersToKill) this.ctx.log.info('killing container', { pod: podDescription(this.pod), container: k.container.name, reason: k.message });
        await this.killPod(status);
        this.runtime = await getPodStatus(cri, this.uid);
      }
      if (!this.done) log.info('pod is done', { pod: podDescription(this.pod), phase: this.apiPod().status?.phase });
      this.done = true;
      this.probes.stop();
      return;
    }

    // The volumes come first: no sandbox for a pod whose volumes cannot be had.
    let volumes: PodVolumePaths;
    try {
      volumes = await setUpVolumes(this.pod, this.ctx.config.root, this.ctx.config.node.memoryCapacity);
      this.podError = undefined;
    } catch (err) {
      if (!(err instanceof VolumeError)) throw err;
      if (this.podError?.message !== err.message) log.error('pod cannot start', { pod: podDescription(this.pod), file: this.file, error: err.message });
      this.podError = { reason: 'FailedMount', message: err.message };
      // A hostPath may appear: try again as the kubelet's pod worker does after an error.
      this.queue(VOLUME_RETRY_MS);
      return;
    }

    if (actions.killPod) {
      if (status.containers.some((c) => c.state === 'CONTAINER_RUNNING') || status.sandboxes.some((s) => s.state === 'SANDBOX_READY')) await this.killPod(status);
      // A new sandbox runs the init containers from the start.
      if (actions.createSandbox) for (const c of status.containers) if (this.isInit(c.name)) await this.removeContainer(c);
    } else {
      for (const k of actions.containersToKill) await this.killContainer(k.container, k.spec, k.reason, k.message);
    }
    await this.pruneInitContainers(status);

    let sandboxId = actions.sandboxId;
    const config = sandboxConfig(this.pod, actions.attempt, this.ctx.config);
    if (actions.createSandbox) {
      const created = await this.createSandbox(config);
      if (!created) return;
      sandboxId = created;
      this.runtime = await getPodStatus(cri, this.uid);
    }
    if (!sandboxId) return;

    // After each start the view is read again: the status and the probes see the new container at once.
    if (actions.nextInitContainer && (await this.startContainer(actions.nextInitContainer, sandboxId, config, volumes))) this.runtime = await getPodStatus(cri, this.uid);
    for (const c of actions.containersToStart) {
      if (await this.startContainer(c, sandboxId, config, volumes)) this.runtime = await getPodStatus(cri, this.uid);
    }
    if (actions.containersToKill.length > 0 && actions.containersToStart.length === 0) this.runtime = await getPodStatus(cri, this.uid);
    await this.collectGarbage(this.runtime);
  }

  private isInit(name: string): boolean {
    return (this.pod.spec.initContainers ?? []).some((c) => c.name === name);
  }

  private async createSandbox(config: PodSandboxConfig): Promise<string | undefined> {
    const { cri, log } = this.ctx;
    mkdirp(podLogDir(this.pod, this.ctx.config.podLogsDir), 0o755);
    try {
      const id = await cri.runPodSandbox({ config, runtime_handler: this.pod.spec.runtimeClassName ?? '' });
      log.info('pod sandbox created', { pod: podDescription(this.pod), sandbox: id, attempt: config.metadata?.attempt });
      this.podError = undefined;
      return id;
    } catch (err) {
      const msg = (err as { details?: string }).details ?? (err as Error).message;
      this.podError = { reason: 'FailedCreatePodSandBox', message: `Failed to create pod sandbox: ${msg}` };
      log.error('cannot create the pod sandbox', { pod: podDescription(this.pod), error: msg });
      this.queue(10_000);
      return undefined;
    }
  }

  /** doBackOff + startContainer; false when it did not start (the reason is recorded). */
  private async startContainer(c: Container, sandboxId: string, config: PodSandboxConfig, volumes: PodVolumePaths): Promise<boolean> {
    const { cri, log, backoff } = this.ctx;
    const status = this.runtime;
    const key = `${this.pod.metadata.name}_${this.pod.metadata.namespace}_${this.uid}_${c.name}`;
    const last = status.containers.find((x) => x.name === c.name && x.state === 'CONTAINER_EXITED');
    if (last) {
      if (backoff.isInBackOffSince(key, last.finishedAt)) {
        const message = `back-off ${durationString(backoff.get(key))} restarting failed container=${c.name} pod=${podDescription(this.pod)}`;
        this.reasons.set(c.name, { reason: 'CrashLoopBackOff', message });
        this.queue(Math.max(0, backoff.retryAt(key, last.finishedAt) - Date.now()) + 50);
        return false;
      }
      backoff.next(key, last.finishedAt);
    }
    try {
      const id = await this.createAndStart(c, sandboxId, config, volumes, status);
      this.reasons.delete(c.name);
      log.info('container started', { pod: podDescription(this.pod), container: c.name, id });
      return true;
    } catch (err) {
      const e = err instanceof StartError ? err : new StartError('RunContainerError', (err as { details?: string }).details ?? (err as Error).message);
      this.reasons.set(c.name, { reason: e.reason, message: e.message });
      log.warn('container did not start', { pod: podDescription(this.pod), container: c.name, reason: e.reason, error: e.message });
      if (e.retryAt) this.queue(Math.max(0, e.retryAt - Date.now()) + 50);
      return false;
    }
  }

  private async createAndStart(c: Container, sandboxId: string, config: PodSandboxConfig, volumes: PodVolumePaths, status: RuntimePodStatus): Promise<string> {
    const { cri } = this.ctx;
    const handler = this.pod.spec.runtimeClassName ?? '';
    const imageRef = await ensureImageExists(cri, this.ctx.imageBackoff, this.pod, c, config, handler);
    const prev = latestContainer(status, c.name);
    const restartCount = prev ? prev.restartCount + 1 : restartCountFromLogDir(containerLogDir(this.pod, this.ctx.config.podLogsDir, c.name));
    let imageUser: { uid?: number; username?: string } = {};
    try {
      const img = (await cri.imageStatus({ image: imageRef })).image;
      imageUser = { ...(img?.uid ? { uid: Number(img.uid.value) } : {}), ...(img?.username ? { username: img.username } : {}) };
    } catch {
      // the image was there a moment ago: let CreateContainer say what is wrong
    }
    const nonRoot = verifyRunAsNonRoot(this.pod, c, imageUser);
    if (nonRoot) throw new StartError('CreateContainerConfigError', nonRoot);
    let ccfg;
    try {
      ccfg = containerConfig({ pod: this.pod, container: c, restartCount, imageRef, imageUser, volumes, podIPs: this.podIPs(), hostIPs: this.ctx.hostIPs }, this.ctx.config);
    } catch (err) {
      if (err instanceof ContainerConfigError) throw new StartError('CreateContainerConfigError', err.message);
      throw err;
    }
    let id: string;
    try {
      id = await cri.createContainer({ pod_sandbox_id: sandboxId, config: ccfg, sandbox_config: config });
    } catch (err) {
      throw new StartError('CreateContainerError', (err as { details?: string }).details ?? (err as Error).message);
    }
    try {
      await cri.startContainer(id);
    } catch (err) {
      throw new StartError('RunContainerError', (err as { details?: string }).details ?? (err as Error).message);
    }
    const postStart = c.lifecycle?.postStart;
    if (postStart) {
      const failed = await runHook(cri, postStart, c, id, this.podIPs()[0] ?? '');
      if (failed) {
        this.ctx.log.warn('postStart hook failed', { pod: podDescription(this.pod), container: c.name, error: failed });
        const fresh = (await cri.containerStatus(id)).status;
        if (fresh) {
          const { toRuntimeContainer } = await import('./runtime-status.js');
          await this.killContainer(toRuntimeContainer(fresh, sandboxId), c, '', 'FailedPostStartHook');
        }
        throw new StartError('PostStartHookError', failed);
      }
    }
    return id;
  }

  /**
   * killContainer: the preStop hook within the grace period, then StopContainer with what is left
   * of it (at least 2 s). Without a spec (an orphan), the annotations say the grace and preStop.
   */
  private async killContainer(rc: RuntimeContainer, spec: Container | undefined, reason: ContainerToKill['reason'], message: string): Promise<void> {
    await killRuntimeContainer(this.ctx, rc, spec, this.pod, reason, this.podIPs()[0] ?? '');
    if (message) this.ctx.log.info('container killed', { pod: podDescription(this.pod), container: rc.name, reason: message });
  }

  /** killPodWithSyncResult: every running container at once, then every sandbox. */
  private async killPod(status: RuntimePodStatus): Promise<void> {
    await killPodContainers(this.ctx, status, this.pod, this.podIPs()[0] ?? '');
    for (const s of status.sandboxes) {
      if (s.state !== 'SANDBOX_READY') continue;
      await this.ctx.cri.stopPodSandbox(s.id).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
    }
  }

  private async removeContainer(c: RuntimeContainer): Promise<void> {
    await removeRuntimeContainer(this.ctx.cri, c);
  }

  /** Only the newest exited instance of each init container is kept before another starts. */
  private async pruneInitContainers(status: RuntimePodStatus): Promise<void> {
    for (const init of this.pod.spec.initContainers ?? []) {
      const exited = status.containers.filter((c) => c.name === init.name && (c.state === 'CONTAINER_EXITED' || c.state === 'CONTAINER_UNKNOWN'));
      for (const c of exited.slice(1)) await this.removeContainer(c);
    }
  }

  /**
   * The container GC (kuberuntime_gc.go) for a live pod: one dead instance per container name
   * is kept (MaxPerPodContainer=1), and dead sandboxes without containers but the newest go.
   */
  private async collectGarbage(status: RuntimePodStatus): Promise<void> {
    const byName = new Map<string, RuntimeContainer[]>();
    for (const c of status.containers) {
      if (c.state === 'CONTAINER_RUNNING') continue;
      byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
    }
    for (const list of byName.values()) for (const c of list.slice(1)) await this.removeContainer(c);
    const kept = new Set(status.containers.filter((c) => (byName.get(c.name)?.[0] ?? c) === c || c.state === 'CONTAINER_RUNNING').map((c) => c.podSandboxId));
    for (const s of status.sandboxes.slice(1)) {
      if (s.state === 'SANDBOX_READY' || kept.has(s.id)) continue;
      await this.ctx.cri.removePodSandbox(s.id).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
    }
  }

  /** The agent stops: no more syncs or probes; the pod keeps running. */
  stopWorker(): void {
    this.terminating = true;
    if (this.timer) clearTimeout(this.timer);
    this.probes.stop();
  }

  /** Stops the worker, kills the pod and removes all of it: containers, sandboxes, logs, volumes, cgroup. */
  async terminate(): Promise<void> {
    this.terminating = true;
    if (this.timer) clearTimeout(this.timer);
    this.probes.stop();
    while (this.syncing) await this.syncing.catch(() => undefined);
    await removePod(this.ctx, this.uid, this.pod);
  }

  /** The pod as the API shows it, with its status. */
  apiPod(): Pod {
    const status = buildPodStatus({
      pod: this.pod,
      runtime: this.runtime,
      runtimeName: this.ctx.runtimeName(),
      hostIPs: this.ctx.hostIPs,
      startTime: this.startTime,
      reasons: this.reasons,
      ready: (c, id) => this.probes.ready(c, id),
      started: (c, id) => this.probes.started(c, id),
      sandboxChanged: !this.runtime.sandboxes[0] || this.runtime.sandboxes[0].state !== 'SANDBOX_READY',
      previous: this.conditions,
      ...(this.podError ? { podError: this.podError } : {}),
    });
    this.conditions = status.conditions;
    return { ...this.pod, status };
  }
}

/** setTerminationGracePeriod: the pod's, or the failed probe's own; at least 2 s once preStop is done. */
function gracePeriod(pod: Pod | undefined, rc: RuntimeContainer, spec: Container | undefined, reason: ContainerToKill['reason']): number {
  if (pod?.metadata.deletionGracePeriodSeconds !== undefined) return pod.metadata.deletionGracePeriodSeconds;
  const podGrace = pod?.spec.terminationGracePeriodSeconds ?? Number.parseInt(rc.annotations[ANNOTATION_POD_TERMINATION_GRACE_PERIOD] ?? '', 10);
  if (!Number.isFinite(podGrace)) return MINIMUM_GRACE_PERIOD_SECONDS;
  if (reason === 'LivenessProbe' && spec?.livenessProbe?.terminationGracePeriodSeconds !== undefined) return spec.livenessProbe.terminationGracePeriodSeconds;
  if (reason === 'StartupProbe' && spec?.startupProbe?.terminationGracePeriodSeconds !== undefined) return spec.startupProbe.terminationGracePeriodSeconds;
  return podGrace;
}

export async function killRuntimeContainer(ctx: AgentContext, rc: RuntimeContainer, spec: Container | undefined, pod: Pod | undefined, reason: ContainerToKill['reason'], podIP: string): Promise<void> {
  let grace = gracePeriod(pod, rc, spec, reason);
  let preStop: LifecycleHandler | undefined = spec?.lifecycle?.preStop;
  if (!spec && rc.annotations[ANNOTATION_PRESTOP_HANDLER]) {
    try {
      preStop = JSON.parse(rc.annotations[ANNOTATION_PRESTOP_HANDLER]) as LifecycleHandler;
    } catch {
      preStop = undefined;
    }
  }
  if (preStop && grace > 0 && rc.state === 'CONTAINER_RUNNING') {
    const start = Date.now();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), grace * 1000);
    const failed = await Promise.race([
      runHook(ctx.cri, preStop, spec ?? { name: rc.name }, rc.id, podIP, abort.signal),
      new Promise<string>((resolve) => abort.signal.addEventListener('abort', () => resolve(''))),
    ]);
    clearTimeout(timer);
    if (failed) ctx.log.warn('preStop hook failed', { container: rc.name, id: rc.id, error: failed });
    grace -= Math.floor((Date.now() - start) / 1000);
  }
  if (grace < MINIMUM_GRACE_PERIOD_SECONDS) grace = MINIMUM_GRACE_PERIOD_SECONDS;
  try {
    await ctx.cri.stopContainer(rc.id, grace);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

async function killPodContainers(ctx: AgentContext, status: RuntimePodStatus, pod: Pod | undefined, podIP: string): Promise<void> {
  const running = status.containers.filter((c) => c.state === 'CONTAINER_RUNNING');
  const specs = [...(pod?.spec.initContainers ?? []), ...(pod?.spec.containers ?? [])];
  await Promise.all(running.map((c) => killRuntimeContainer(ctx, c, specs.find((s) => s.name === c.name), pod, '', podIP)));
}

/** removeContainerLog + RemoveContainer: the log file and its rotated files go with the container. */
export async function removeRuntimeContainer(cri: CriClient, c: RuntimeContainer): Promise<void> {
  if (c.logPath) {
    // <log>* as the kubelet's log manager Clean: the log and its rotated files.
    let names: string[] = [];
    try {
      names = readdirSync(dirname(c.logPath));
    } catch {
      // no dir, no logs
    }
    for (const n of names) if (n.startsWith(basename(c.logPath))) rmSync(join(dirname(c.logPath), n), { force: true });
  }
  try {
    await cri.removeContainer(c.id);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/**
 * Everything of a pod, known (`pod`) or orphaned (only its uid and what the runtime's labels and
 * annotations say): kill, remove containers and sandboxes, then its log dir, its dir with the
 * volumes, and its cgroup.
 */
export async function removePod(ctx: AgentContext, uid: string, pod: Pod | undefined): Promise<void> {
  const status = await getPodStatus(ctx.cri, uid);
  const podIP = pod?.spec.hostNetwork ? (ctx.hostIPs[0] ?? '') : (status.sandboxes.find((s) => s.state === 'SANDBOX_READY')?.ips[0] ?? '');
  await killPodContainers(ctx, status, pod, podIP);
  for (const s of status.sandboxes) {
    await ctx.cri.stopPodSandbox(s.id).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
  }
  for (const c of status.containers) await removeRuntimeContainer(ctx.cri, c);
  for (const s of status.sandboxes) {
    await ctx.cri.removePodSandbox(s.id).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
  }
  const logDirs = new Set<string>();
  if (pod) logDirs.add(podLogDir(pod, ctx.config.podLogsDir));
  for (const s of status.sandboxes) {
    if (s.name && s.namespace) logDirs.add(agentPodLogDir(ctx.config.podLogsDir, s.namespace, s.name, uid));
  }
  for (const d of logDirs) rmSync(d, { recursive: true, force: true });
  await tearDownPodDir(ctx.config.root, uid);
  const cgErr = await removePodCgroup(ctx.config.cgroupRoot, uid);
  if (cgErr) ctx.log.warn('cannot remove the pod cgroup', { uid, error: cgErr.message });
  ctx.backoff.forgetMatching(`_${uid}_`);
  ctx.imageBackoff.forgetMatching(`${uid}_`);
  ctx.log.info('pod removed', { pod: pod ? podDescription(pod) : uid });
}
