// The pod lifecycle event generator (pkg/kubelet/pleg/generic.go, evented.go). Generic: relist
// every second (ListPodSandbox + ListContainers), compare each container's and sandbox's state
// with the last relist, and wake the worker of every pod that changed. Evented (the kubelet's
// alpha EventedPLEG): the runtime's GetContainerEvents stream wakes the workers and the relist
// runs every 300 s; when the stream fails 5 times in a row, back to the 1 s relist for good.
import type { Logger } from '../log.js';
import type { CriClient } from './cri-client.js';
import { LABEL_POD_UID } from './labels.js';

export const GENERIC_RELIST_PERIOD_MS = 1_000;
export const EVENTED_RELIST_PERIOD_MS = 300_000;
export const EVENTED_MAX_STREAM_RETRIES = 5;
/** A pause between attempts to reopen the event stream. */
const STREAM_RETRY_DELAY_MS = 1_000;

/** What one relist saw of a pod of the runtime. */
export interface RelistedPod {
  uid: string;
  name: string;
  namespace: string;
  sandboxes: { id: string; state: string; annotations: Record<string, string> }[];
  containers: { id: string; state: string }[];
}

export interface PlegOptions {
  evented: boolean;
  log: Logger;
  /** a pod changed (or an event named it): sync its worker */
  onPodEvent(uid: string): void;
  /** every successful relist, with everything the runtime has */
  onRelist(pods: Map<string, RelistedPod>): void;
  relistPeriodMs?: number;
}

export class Pleg {
  private last = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private relisting = false;
  private period: number;
  private eventsAbort: AbortController | undefined;
  /** the evented mode gave up: generic relisting at the 1 s period */
  private fellBack = false;
  private relistError = '';

  constructor(
    private readonly cri: CriClient,
    private readonly opts: PlegOptions,
  ) {
    this.period = opts.relistPeriodMs ?? (opts.evented ? EVENTED_RELIST_PERIOD_MS : GENERIC_RELIST_PERIOD_MS);
  }

  /** The current relist period (300 s while the event stream works, else 1 s). */
  get relistPeriodMs(): number {
    return this.period;
  }

  get mode(): 'generic' | 'evented' {
    return this.opts.evented && !this.fellBack ? 'evented' : 'generic';
  }

  start(): void {
    this.stopped = false;
    void this.relistLoop();
    if (this.opts.evented) void this.watchEvents();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.eventsAbort?.abort();
  }

  /** Relist now (also what a failed stream forces). */
  async relist(): Promise<void> {
    if (this.relisting) return;
    this.relisting = true;
    try {
      const [boxes, ctrs] = await Promise.all([this.cri.listPodSandbox(), this.cri.listContainers()]);
      const pods = new Map<string, RelistedPod>();
      const podOf = (uid: string, name = '', namespace = '') => {
        let p = pods.get(uid);
        if (!p) pods.set(uid, (p = { uid, name, namespace, sandboxes: [], containers: [] }));
        if (name && !p.name) p.name = name;
        if (namespace && !p.namespace) p.namespace = namespace;
        return p;
      };
      for (const b of boxes) {
        const uid = b.labels?.[LABEL_POD_UID] ?? b.metadata?.uid;
        if (!uid) continue;
        podOf(uid, b.metadata?.name, b.metadata?.namespace).sandboxes.push({ id: b.id, state: b.state, annotations: b.annotations ?? {} });
      }
      for (const c of ctrs) {
        const uid = c.labels?.[LABEL_POD_UID];
        if (!uid) continue;
        podOf(uid).containers.push({ id: c.id, state: c.state });
      }
      const now = new Map<string, string>();
      for (const p of pods.values()) {
        for (const s of p.sandboxes) now.set(`${p.uid}/s/${s.id}`, s.state);
        for (const c of p.containers) now.set(`${p.uid}/c/${c.id}`, c.state);
      }
      const changed = new Set<string>();
      for (const [k, v] of now) if (this.last.get(k) !== v) changed.add(k.split('/')[0]!);
      for (const k of this.last.keys()) if (!now.has(k)) changed.add(k.split('/')[0]!);
      this.last = now;
      if (this.relistError) this.opts.log.info('relist works again');
      this.relistError = '';
      this.opts.onRelist(pods);
      for (const uid of changed) this.opts.onPodEvent(uid);
    } catch (err) {
      const msg = (err as { details?: string }).details ?? (err as Error).message;
      if (msg !== this.relistError) this.opts.log.warn('relist failed (is the runtime up?)', { error: msg });
      this.relistError = msg;
    } finally {
      this.relisting = false;
    }
  }

  private async relistLoop(): Promise<void> {
    if (this.stopped) return;
    await this.relist();
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.relistLoop(), this.period);
  }

  /** Sets the relist period; the next relist comes at the new period. */
  private setPeriod(ms: number): void {
    this.period = ms;
    if (this.timer) clearTimeout(this.timer);
    if (!this.stopped) this.timer = setTimeout(() => void this.relistLoop(), 0);
  }

  private async watchEvents(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      this.eventsAbort = new AbortController();
      let got = false;
      try {
        await this.cri.containerEvents((e) => {
          got = true;
          const uid = e.pod_sandbox_status?.labels?.[LABEL_POD_UID] ?? e.pod_sandbox_status?.metadata?.uid ?? e.containers_statuses?.[0]?.labels?.[LABEL_POD_UID];
          if (uid) this.opts.onPodEvent(uid);
        }, this.eventsAbort.signal);
        if (this.stopped) return;
        throw new Error('the event stream ended');
      } catch (err) {
        if (this.stopped) return;
        if (got) failures = 0;
        failures++;
        this.opts.log.warn('container event stream failed', { attempt: failures, error: (err as { details?: string }).details ?? (err as Error).message });
        // Catch up on what the stream missed.
        await this.relist();
        if (failures >= EVENTED_MAX_STREAM_RETRIES) {
          this.opts.log.warn('falling back to the generic PLEG: relisting every second');
          this.fellBack = true;
          this.setPeriod(GENERIC_RELIST_PERIOD_MS);
          return;
        }
        await new Promise((r) => setTimeout(r, STREAM_RETRY_DELAY_MS));
      }
    }
  }
}
