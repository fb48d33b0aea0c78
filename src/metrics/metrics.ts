// The daemon's Prometheus metrics (issue 13 part 2), on a prom-client Registry of their own
// (never prom-client's global one, so nothing else in the process can add to them).
//
// Two kinds:
// - event metrics, moved by the code that sees the event: RPC latencies and errors (the one
//   wrapper in cri/server.ts), Mesos launch phases (the containerizer's transition()), image
//   pulls (cri/image/pull-image.ts, images/pull.ts), OOM kills (recordTermination), the last
//   recovery (daemon.ts);
// - state metrics, computed when scraped from what the daemon holds in memory anyway: pods and
//   containers by state, the containerizers' own states, launch helpers alive, event
//   subscribers. A scrape reads no file and makes no syscall for them.
//
// When metrics_address is '' no Metrics object exists (ctx.metrics is undefined): every hook is
// `ctx.metrics?.…`, one property read per event.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Code } from '../errors.js';
import type { Census } from '../containerizer/containerizer.js';

export const PREFIX = 'cri_mesos_';

/** gRPC code number → its name (NOT_FOUND, ...), as grpc-go's and containerd's metrics spell them. */
const CODE_NAMES = new Map<number, string>(Object.entries(Code).map(([name, n]) => [n, name]));
export function codeName(code: number): string {
  return CODE_NAMES.get(code) ?? String(code);
}

/** CRI's states: every one is reported, 0 included, so a series never vanishes. */
export const POD_STATES = ['SANDBOX_READY', 'SANDBOX_NOTREADY'] as const;
export const CONTAINER_STATES = ['CONTAINER_CREATED', 'CONTAINER_RUNNING', 'CONTAINER_EXITED', 'CONTAINER_UNKNOWN'] as const;

/** What the state metrics are read from at scrape time (daemon.ts binds it to the runtime). */
export interface ScrapeSource {
  /** every pod's CRI state and the containerizer that runs it */
  pods(): { state: string; containerizer: string }[];
  containers(): { state: string; containerizer: string }[];
  /** the configured containerizers, in order */
  containerizerNames(): string[];
  census(): { containerizer: string; census: Census }[];
  events(): { subscribers: number; sent: number; dropped: number };
}

/** The last recovery: its outcome per recovered container, and what it removed. */
export interface RecoverySummary {
  seconds: number;
  /** running, created, exited (died while the daemon was down), unverified, quarantined, lost (runtime state gone) */
  containers: Record<string, number>;
  /** cgroup (orphan cgroups killed), unrecorded (containers the CRI layer had no record of), rootfs (dirs no container knew) */
  orphans: Record<string, number>;
}

// Buckets: CRI calls take from 100 µs (List*, Status) to minutes (PullImage, a slow StopContainer).
const RPC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
// Launch phases: a FETCHING of a pod is ~0, a PROVISIONING of a big image or a FETCHING that waits for StartContainer can be long.
const PHASE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const PULL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export class Metrics {
  readonly registry = new Registry();
  private source?: ScrapeSource;

  private readonly rpcDuration: Histogram<'method'>;
  private readonly rpcErrors: Counter<'method' | 'code'>;
  private readonly launchPhaseDuration: Histogram<'phase' | 'kind'>;
  private readonly pullBytesTotal: Counter;
  private readonly pullDuration: Histogram;
  private readonly pullFailures: Counter<'code'>;
  private readonly oomKills: Counter<'containerizer'>;
  private readonly recoveryDuration: Gauge;
  private readonly recoveredContainers: Gauge<'outcome'>;
  private readonly recoveryOrphans: Gauge<'kind'>;

  constructor() {
    const registers = [this.registry];
    // The process's own CPU, memory, fds, event-loop lag and GC: prom-client's default set, under our prefix.
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });

    this.rpcDuration = new Histogram({
      name: `${PREFIX}rpc_duration_seconds`,
      help: 'Time to answer a CRI RPC (runtime.v1 RuntimeService and ImageService), from its arrival to its answer, errors included; by RPC name.',
      labelNames: ['method'],
      buckets: RPC_BUCKETS,
      registers,
    });
    this.rpcErrors = new Counter({
      name: `${PREFIX}rpc_errors_total`,
      help: 'CRI RPCs answered with an error, by RPC name and gRPC status code name (NOT_FOUND, ...).',
      labelNames: ['method', 'code'],
      registers,
    });
    this.launchPhaseDuration = new Histogram({
      name: `${PREFIX}launch_phase_duration_seconds`,
      help: 'Time a Mesos-containerizer container spent in a launch phase (STARTING, PROVISIONING, PREPARING, ISOLATING, FETCHING) or in DESTROYING, observed when it leaves it; kind pod (top-level) or container (nested).',
      labelNames: ['phase', 'kind'],
      buckets: PHASE_BUCKETS,
      registers,
    });
    this.pullBytesTotal = new Counter({
      name: `${PREFIX}image_pull_bytes_total`,
      help: 'Bytes of image layers downloaded from registries (as they arrive, failed pulls included).',
      registers,
    });
    this.pullDuration = new Histogram({
      name: `${PREFIX}image_pull_duration_seconds`,
      help: 'Time of successful registry pulls (PullImage), manifest to committed image.',
      buckets: PULL_BUCKETS,
      registers,
    });
    this.pullFailures = new Counter({
      name: `${PREFIX}image_pull_failures_total`,
      help: 'Registry pulls (PullImage) that failed, by gRPC status code name; a pull answered from the local store because the registry was unreachable counts too.',
      labelNames: ['code'],
      registers,
    });
    this.oomKills = new Counter({
      name: `${PREFIX}oom_kills_total`,
      help: 'Containers that ended OOMKilled (the kernel OOM killer killed in their cgroup), by containerizer.',
      labelNames: ['containerizer'],
      registers,
    });
    this.recoveryDuration = new Gauge({
      name: `${PREFIX}recovery_duration_seconds`,
      help: "Time the last recovery (at this daemon's start) took until the CRI gate opened.",
      registers,
    });
    this.recoveredContainers = new Gauge({
      name: `${PREFIX}recovery_containers`,
      help: 'Containers and pods the last recovery found, by outcome: running, created (held before StartContainer), exited (ended while the daemon was down), unverified (left alone), quarantined (unreadable checkpoint), lost (runtime state gone).',
      labelNames: ['outcome'],
      registers,
    });
    this.recoveryOrphans = new Gauge({
      name: `${PREFIX}recovery_orphans`,
      help: 'What the last recovery removed because nothing knew it: cgroup (orphan cgroups, killed), unrecorded (containers the CRI layer had no record of), rootfs (provisioner dirs).',
      labelNames: ['kind'],
      registers,
    });

    // ---- state, computed at scrape time ----
    const self = this;
    // Pods and containers by CRI state: every (state, containerizer) pair is there, 0 included.
    const byState = (what: 'pods' | 'containers', help: string, states: readonly string[]) =>
      new Gauge({
        name: `${PREFIX}${what}`,
        help,
        labelNames: ['state', 'containerizer'],
        registers,
        collect() {
          const src = self.source;
          if (!src) return;
          this.reset();
          for (const c of src.containerizerNames()) for (const state of states) this.set({ state, containerizer: c }, 0);
          for (const p of src[what]()) this.inc({ state: p.state, containerizer: p.containerizer });
        },
      });
    byState('pods', 'Pod sandboxes by CRI state and containerizer.', POD_STATES);
    byState('containers', 'Containers by CRI state and containerizer.', CONTAINER_STATES);
    new Gauge({
      name: `${PREFIX}containerizer_containers`,
      help: "Containers as the containerizers hold them, by their own state (Mesos: STARTING, PROVISIONING, PREPARING, ISOLATING, FETCHING, RUNNING, DESTROYING, TERMINATED) and kind (pod or container).",
      labelNames: ['containerizer', 'kind', 'state'],
      registers,
      collect() {
        const src = self.source;
        if (!src) return;
        this.reset();
        for (const { containerizer, census } of src.census()) {
          for (const s of census.states) this.inc({ containerizer, kind: s.kind, state: s.state }, s.count);
        }
      },
    });
    new Gauge({
      name: `${PREFIX}helper_processes`,
      help: 'Launch helpers (cri-mesos-launch) alive: a pod\'s pause helper (kind pod) or a container\'s supervisor (kind container).',
      labelNames: ['containerizer', 'kind'],
      registers,
      collect() {
        const src = self.source;
        if (!src) return;
        this.reset();
        for (const { containerizer, census } of src.census()) {
          if (!census.helpers) continue;
          for (const kind of ['pod', 'container'] as const) this.set({ containerizer, kind }, 0);
          for (const h of census.helpers) this.inc({ containerizer, kind: h.kind }, h.count);
        }
      },
    });
    new Gauge({
      name: `${PREFIX}event_subscribers`,
      help: 'GetContainerEvents streams connected now.',
      registers,
      collect() {
        if (self.source) this.set(self.source.events().subscribers);
      },
    });
    // The EventBus counts on its own; a scrape adds what it counted since the last one.
    let sentSeen = 0;
    new Counter({
      name: `${PREFIX}events_sent_total`,
      help: 'Container events handed to GetContainerEvents streams (one per subscriber).',
      registers,
      collect() {
        const n = self.source?.events().sent ?? sentSeen;
        if (n > sentSeen) this.inc(n - sentSeen);
        sentSeen = n;
      },
    });
    let droppedSeen = 0;
    new Counter({
      name: `${PREFIX}event_subscribers_dropped_total`,
      help: 'GetContainerEvents streams ended with RESOURCE_EXHAUSTED because the subscriber fell more than events_buffer events behind.',
      registers,
      collect() {
        const n = self.source?.events().dropped ?? droppedSeen;
        if (n > droppedSeen) this.inc(n - droppedSeen);
        droppedSeen = n;
      },
    });
  }

  /** Where the state metrics are read from at scrape time. */
  bind(source: ScrapeSource): void {
    this.source = source;
  }

  /** One CRI RPC answered: `code` 0 is OK. */
  rpc(method: string, seconds: number, code: number): void {
    this.rpcDuration.observe({ method }, seconds);
    if (code !== 0) this.rpcErrors.inc({ method, code: codeName(code) });
  }

  launchPhase(phase: string, kind: 'pod' | 'container', seconds: number): void {
    this.launchPhaseDuration.observe({ phase, kind }, seconds);
  }

  pullBytes(n: number): void {
    this.pullBytesTotal.inc(n);
  }

  pullDone(seconds: number): void {
    this.pullDuration.observe(seconds);
  }

  pullFailed(code: number): void {
    this.pullFailures.inc({ code: codeName(code) });
  }

  oomKilled(containerizer: string): void {
    this.oomKills.inc({ containerizer });
  }

  recovered(r: RecoverySummary): void {
    this.recoveryDuration.set(r.seconds);
    for (const [outcome, n] of Object.entries(r.containers)) this.recoveredContainers.set({ outcome }, n);
    for (const [kind, n] of Object.entries(r.orphans)) this.recoveryOrphans.set({ kind }, n);
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
