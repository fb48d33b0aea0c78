// Probe workers (pkg/kubelet/prober/worker.go, prober_manager.go): one per container and probe
// type, ticking every periodSeconds. Results are per container instance (its id): a restarted
// container starts over — readiness Failure, liveness Success, startup Unknown until probed.
// A result counts once it repeats successThreshold / failureThreshold times; a failed liveness
// or startup probe holds the worker until the container is replaced.
import type { CriClient } from './cri-client.js';
import { runProbe, type ProbeResult } from './probe.js';
import type { Container, Pod, Probe } from './types.js';

export type ProbeType = 'liveness' | 'readiness' | 'startup';

/** What a worker needs to know of its container, from the pod worker's view of the runtime. */
export interface ProbedContainer {
  id: string;
  running: boolean;
  /** ms since the epoch */
  startedAt: number;
  terminated: boolean;
}

export interface ProbeTarget {
  container(name: string): ProbedContainer | undefined;
  podIP(): string;
  /** the pod reached Succeeded or Failed: the workers stop */
  podTerminal(): boolean;
}

export interface ProbeEvent {
  type: ProbeType;
  container: string;
  containerId: string;
  result: ProbeResult;
  output: string;
}

const INITIAL: Record<ProbeType, ProbeResult> = { readiness: 'Failure', liveness: 'Success', startup: 'Unknown' };

class Worker {
  private timer: NodeJS.Timeout | undefined;
  private containerId = '';
  private onHold = false;
  private lastResult: ProbeResult = 'Unknown';
  private resultRun = 0;
  private stopped = false;
  private running = false;

  constructor(
    private readonly mgr: ProbeManager,
    readonly type: ProbeType,
    readonly container: Container,
    readonly spec: Probe,
  ) {}

  start(jitter: boolean): void {
    const period = (this.spec.periodSeconds ?? 10) * 1000;
    const first = jitter ? Math.random() * period : 0;
    const tick = async () => {
      if (this.stopped) return;
      const keep = await this.doProbe().catch(() => true);
      if (!keep) {
        this.stop();
        return;
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), period);
    };
    this.timer = setTimeout(() => void tick(), first);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** One round; false stops the worker (doProbe's return). */
  private async doProbe(): Promise<boolean> {
    if (this.running) return true;
    if (this.mgr.target.podTerminal()) return false;
    const c = this.mgr.target.container(this.container.name);
    if (!c || !c.id) return true;
    if (c.id !== this.containerId) {
      if (this.containerId) this.mgr.remove(this.type, this.containerId);
      this.containerId = c.id;
      this.mgr.set(this.type, this.container.name, c.id, INITIAL[this.type], '', false);
      this.onHold = false;
      this.resultRun = 0;
      this.lastResult = 'Unknown';
    }
    if (this.onHold) return true;
    if (!c.running) {
      // An exited container fails its probes (a created one is about to run: it is left alone).
      if (c.terminated) this.mgr.set(this.type, this.container.name, c.id, 'Failure', '', false);
      return true;
    }
    if ((Date.now() - c.startedAt) / 1000 < (this.spec.initialDelaySeconds ?? 0)) return true;
    const started = this.mgr.started(this.container, c.id);
    // The startup probe stops once the container has started; the others wait for that.
    if (started ? this.type === 'startup' : this.type !== 'startup') return true;
    this.running = true;
    let outcome;
    try {
      outcome = await runProbe(this.spec, this.container, c.id, this.mgr.target.podIP(), this.mgr.cri);
    } finally {
      this.running = false;
    }
    if (this.stopped || outcome.error !== undefined) return true; // an error is thrown away
    const result = outcome.result;
    if (result === this.lastResult) this.resultRun++;
    else {
      this.lastResult = result;
      this.resultRun = 1;
    }
    if ((result === 'Failure' && this.resultRun < (this.spec.failureThreshold ?? 3)) || (result === 'Success' && this.resultRun < (this.spec.successThreshold ?? 1))) {
      return true;
    }
    this.mgr.set(this.type, this.container.name, c.id, result, outcome.output);
    if ((this.type === 'liveness' || this.type === 'startup') && result === 'Failure') {
      // The container will be killed: probe no more until it is replaced.
      this.onHold = true;
      this.resultRun = 0;
    }
    return true;
  }
}

export class ProbeManager {
  private readonly workers: Worker[] = [];
  private readonly results = new Map<string, ProbeResult>();

  constructor(
    readonly pod: Pod,
    readonly target: ProbeTarget,
    readonly cri: CriClient,
    private readonly onResult: (e: ProbeEvent) => void,
    /** when the agent started: within a period of it, the first probes are spread over the period (as after a kubelet restart) */
    private readonly agentStart = Date.now(),
  ) {}

  start(): void {
    for (const c of this.pod.spec.containers) {
      for (const [type, spec] of [
        ['liveness', c.livenessProbe],
        ['readiness', c.readinessProbe],
        ['startup', c.startupProbe],
      ] as const) {
        if (!spec) continue;
        const w = new Worker(this, type, c, spec);
        this.workers.push(w);
        w.start(Date.now() - this.agentStart < (spec.periodSeconds ?? 10) * 1000);
      }
    }
  }

  stop(): void {
    for (const w of this.workers) w.stop();
    this.workers.length = 0;
  }

  /** Records a result; `probed`: it came from running the probe (a stopped container's Failure did not). */
  set(type: ProbeType, container: string, containerId: string, result: ProbeResult, output = '', probed = true): void {
    const key = `${type}/${containerId}`;
    const prev = this.results.get(key);
    this.results.set(key, result);
    if (prev !== result && probed) this.onResult({ type, container, containerId, result, output });
  }

  remove(type: ProbeType, containerId: string): void {
    this.results.delete(`${type}/${containerId}`);
  }

  get(type: ProbeType, containerId: string): ProbeResult | undefined {
    return this.results.get(`${type}/${containerId}`);
  }

  /** Started: no startup probe, or it has succeeded for this instance. */
  started(container: Container, containerId: string): boolean {
    if (!container.startupProbe) return true;
    return this.get('startup', containerId) === 'Success';
  }

  /** Ready: started, and no readiness probe or it has succeeded for this instance. */
  ready(container: Container, containerId: string): boolean {
    if (!this.started(container, containerId)) return false;
    if (!container.readinessProbe) return true;
    return this.get('readiness', containerId) === 'Success';
  }
}
