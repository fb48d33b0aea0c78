// `cri-mesos agent`: a standalone node agent, the kubelet's static-pod mode. It runs one pod per
// manifest file, talks only the CRI to the runtime, and keeps its own state in its root dir.
// Pods outlive the agent: a restarted agent adopts the pods it finds by their labels (same
// manifest → same uid), and removes the ones whose manifest is gone.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../log.js';
import { agentPodsDir, agentSeccompDir } from '../paths.js';
import { Backoff, DEFAULT_BACKOFF_INITIAL_MS, DEFAULT_BACKOFF_MAX_MS } from './backoff.js';
import { CriClient } from './cri-client.js';
import { ContainerLogManager, logPolicy } from './log-manager.js';
import { formatManifestErrors, parseManifest } from './manifest.js';
import { defaultNodeIP, defaultNodeName, nodeInfo } from './node-info.js';
import { Pleg, type RelistedPod } from './pleg.js';
import { PodWorker, removePod, type AgentContext } from './pod-worker.js';
import { ANNOTATION_CONFIG_SOURCE, FILE_SOURCE } from './static-pod.js';
import { StatusServer, type ManifestReport } from './status-server.js';
import type { Pod } from './types.js';
import type { FieldError } from './validate.js';
import { ManifestWatcher, type ManifestChanges } from './watcher.js';

export interface AgentOptions {
  manifests: string;
  runtimeEndpoint: string;
  root: string;
  statusAddress: string;
  nodeName?: string;
  /** the node's address (the kubelet's --node-ip): host-network pods' IP, where their probes go */
  nodeIP?: string;
  podLogsDir: string;
  /** the kubelet's --cgroup-root: pods' cgroups are <root>/kubepods/... */
  cgroupRoot: string;
  /** the kubelet's --resolv-conf: the node's resolver for pods ("" = none) */
  resolvConf: string;
  containerLogMaxSize: string;
  containerLogMaxFiles: number;
  containerLogMonitorIntervalMs?: number;
  eventedPleg: boolean;
  /** test hooks: a shorter restart back-off (the kubelet's: 10 s to 5 min) */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  fileCheckFrequencyMs?: number;
}

export class Agent {
  private readonly workers = new Map<string, PodWorker>();
  private readonly invalid = new Map<string, FieldError[]>();
  /** files refused because another file's pod has the same name: tried again when a pod goes */
  private readonly duplicates = new Map<string, string>();
  /** uid → its removal in progress */
  private readonly removing = new Map<string, Promise<void>>();
  /** per manifest file: changes are applied one after the other (kill, then start) */
  private readonly fileQueues = new Map<string, Promise<void>>();
  private readonly ctx: AgentContext;
  private readonly watcher: ManifestWatcher;
  private readonly plegLoop: Pleg;
  private readonly logs: ContainerLogManager;
  private readonly status: StatusServer;
  private runtimeName = 'cri';
  private stopped = false;
  /** the address the status server listens on */
  statusPort = 0;

  private constructor(
    readonly opts: AgentOptions,
    private readonly log: Logger,
  ) {
    const cri = new CriClient(opts.runtimeEndpoint);
    const nodeName = (opts.nodeName || defaultNodeName()).toLowerCase();
    this.ctx = {
      cri,
      log,
      config: { root: opts.root, podLogsDir: opts.podLogsDir, cgroupRoot: opts.cgroupRoot, resolvConf: opts.resolvConf, node: nodeInfo() },
      nodeName,
      hostIPs: [opts.nodeIP || defaultNodeIP()],
      runtimeName: () => this.runtimeName,
      backoff: new Backoff(opts.backoffInitialMs ?? DEFAULT_BACKOFF_INITIAL_MS, opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS),
      imageBackoff: new Backoff(opts.backoffInitialMs ?? DEFAULT_BACKOFF_INITIAL_MS, opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS),
      agentStart: Date.now(),
    };
    this.watcher = new ManifestWatcher(resolve(opts.manifests), (changes) => this.onManifests(changes), log, opts.fileCheckFrequencyMs);
    this.plegLoop = new Pleg(cri, {
      evented: opts.eventedPleg,
      log,
      onPodEvent: (uid) => this.workerByUid(uid)?.queue(0),
      onRelist: (pods) => this.cleanupOrphans(pods),
    });
    this.logs = new ContainerLogManager(cri, logPolicy(opts.containerLogMaxSize, opts.containerLogMaxFiles), log, opts.containerLogMonitorIntervalMs);
    this.status = new StatusServer({ pods: () => this.pods(), manifests: () => this.manifests() });
  }

  static async start(opts: AgentOptions, log: Logger): Promise<Agent> {
    const agent = new Agent(opts, log);
    await agent.run();
    return agent;
  }

  get nodeName(): string {
    return this.ctx.nodeName;
  }

  /** The PLEG's mode and relist period now (evented: 300 s; generic, or after a fall-back: 1 s). */
  get pleg(): { mode: 'generic' | 'evented'; relistPeriodMs: number } {
    return { mode: this.plegLoop.mode, relistPeriodMs: this.plegLoop.relistPeriodMs };
  }

  private async run(): Promise<void> {
    mkdirSync(agentPodsDir(this.opts.root), { recursive: true, mode: 0o750 });
    mkdirSync(agentSeccompDir(this.opts.root), { recursive: true, mode: 0o750 });
    const addr = await this.status.listen(this.opts.statusAddress);
    this.statusPort = addr.port;
    try {
      const v = await this.ctx.cri.version();
      this.runtimeName = v.runtime_name || 'cri';
      this.log.info('runtime', { name: v.runtime_name, version: v.runtime_version, api: v.runtime_api_version });
    } catch (err) {
      this.log.warn('the runtime does not answer yet; going on', { endpoint: this.opts.runtimeEndpoint, error: (err as { details?: string }).details ?? (err as Error).message });
      void this.learnRuntimeName();
    }
    // Every manifest is read before the first relist, so that no pod of ours looks orphaned.
    this.watcher.scan();
    this.watcher.start();
    this.plegLoop.start();
    this.logs.start();
    this.log.info('agent started', {
      node: this.ctx.nodeName,
      manifests: this.watcher.dir,
      status: `${addr.address}:${addr.port}`,
      pleg: this.plegLoop.mode,
      pods: this.workers.size,
    });
  }

  private async learnRuntimeName(): Promise<void> {
    while (!this.stopped) {
      await new Promise((r) => setTimeout(r, 2000));
      try {
        this.runtimeName = (await this.ctx.cri.version()).runtime_name || 'cri';
        return;
      } catch {
        // still down
      }
    }
  }

  /** Stops watching and serving; the pods keep running (as when a kubelet stops). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher.stop();
    this.plegLoop.stop();
    this.logs.stop();
    for (const w of this.workers.values()) w.stopWorker();
    await this.status.close();
    this.ctx.cri.close();
  }

  /** Waits for removals in progress (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.fileQueues.values(), ...this.removing.values()]);
  }

  private workerByUid(uid: string): PodWorker | undefined {
    for (const w of this.workers.values()) if (w.uid === uid) return w;
    return undefined;
  }

  private onManifests(changes: ManifestChanges): void {
    for (const [file, text] of changes) {
      const prev = this.fileQueues.get(file) ?? Promise.resolve();
      const next = prev.then(() => this.applyManifest(file, text)).catch((err) => {
        this.log.error('manifest change failed', { file, error: (err as Error).message });
      });
      this.fileQueues.set(file, next);
      void next.then(() => {
        if (this.fileQueues.get(file) === next) this.fileQueues.delete(file);
      });
    }
  }

  private async applyManifest(file: string, text: string | undefined): Promise<void> {
    if (this.stopped) return;
    const old = this.workers.get(file);
    let pod: Pod | undefined;
    if (text !== undefined) {
      const res = parseManifest(text, file, this.ctx.nodeName);
      if (!res.ok) {
        this.invalid.set(file, res.errors);
        this.log.error(`invalid manifest: ${formatManifestErrors(file, res.errors)}`, { file });
      } else {
        const dup = [...this.workers.entries()].find(([f, w]) => f !== file && w.pod.metadata.name === res.pod.metadata.name && w.pod.metadata.namespace === res.pod.metadata.namespace);
        if (dup) {
          const errors = [{ field: 'metadata.name', reason: `Duplicate value: "${res.pod.metadata.name}": the pod of ${dup[0]} has this name` }];
          this.invalid.set(file, errors);
          this.duplicates.set(file, text);
          this.log.error(`invalid manifest: ${formatManifestErrors(file, errors)}`, { file });
        } else {
          this.invalid.delete(file);
          pod = res.pod;
        }
      }
    } else this.invalid.delete(file);
    if (!this.invalid.has(file)) this.duplicates.delete(file);
    if (old && pod && old.pod.metadata.uid === pod.metadata.uid) return; // same pod (comments, key order)
    if (old) {
      this.workers.delete(file);
      this.log.info(pod ? 'manifest changed: replacing the pod' : 'manifest removed or invalid: removing the pod', { file, pod: old.pod.metadata.name, uid: old.uid });
      await this.track(old.uid, old.terminate());
      // A file refused for the name of this pod may run now.
      const retry: ManifestChanges = new Map([...this.duplicates].filter(([f]) => f !== file));
      if (retry.size > 0) this.onManifests(retry);
    }
    if (pod && !this.stopped) {
      // A removal of the same uid (a file put back) must end before the pod starts again.
      await this.removing.get(pod.metadata.uid);
      const w = new PodWorker(pod, file, this.ctx);
      this.workers.set(file, w);
      this.log.info('pod added', { file, pod: pod.metadata.name, uid: pod.metadata.uid });
      w.start();
    }
  }

  private track(uid: string, p: Promise<void>): Promise<void> {
    const done = p.catch((err) => {
      this.log.error('pod removal failed', { uid, error: (err as { details?: string }).details ?? (err as Error).message });
    });
    this.removing.set(uid, done);
    void done.then(() => {
      if (this.removing.get(uid) === done) this.removing.delete(uid);
    });
    return done;
  }

  /**
   * HandlePodCleanups: a pod of ours in the runtime (a file-source static pod of this node) that
   * no manifest asks for any more is killed and removed. Others' pods are left alone.
   */
  private cleanupOrphans(pods: Map<string, RelistedPod>): void {
    if (this.stopped || this.fileQueues.size > 0) return;
    const wanted = new Set([...this.workers.values()].map((w) => w.uid));
    for (const p of pods.values()) {
      if (wanted.has(p.uid) || this.removing.has(p.uid)) continue;
      const ours = p.sandboxes.some((s) => s.annotations[ANNOTATION_CONFIG_SOURCE] === FILE_SOURCE) && p.name.endsWith(`-${this.ctx.nodeName}`);
      if (!ours) continue;
      this.log.info('removing a pod no manifest asks for', { pod: p.name, uid: p.uid });
      void this.track(p.uid, removePod(this.ctx, p.uid, undefined));
    }
  }

  pods(): Pod[] {
    return [...this.workers.values()].map((w) => w.apiPod()).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }

  manifests(): ManifestReport[] {
    const out: ManifestReport[] = [];
    for (const [file, w] of this.workers) out.push({ file, pod: w.pod.metadata.name, uid: w.uid });
    for (const [file, errors] of this.invalid) out.push({ file, errors });
    return out.sort((a, b) => a.file.localeCompare(b.file));
  }
}
