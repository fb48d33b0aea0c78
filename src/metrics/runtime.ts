// Binds the metrics to the running daemon: what the state metrics read at scrape time, and
// the /healthz check (the daemon's own Status RPC, called in-process).
import { containerizerOf, type RuntimeContext } from '../cri/context.js';
import { status } from '../cri/runtime/status.js';
import type { Metrics, ScrapeSource } from './metrics.js';
import type { HealthCheck } from './server.js';

export function scrapeSource(ctx: RuntimeContext): ScrapeSource {
  return {
    pods: () => ctx.sandboxes.list().map((p) => ({ state: p.state, containerizer: containerizerOf(p.runtimeHandler) })),
    containers: () =>
      ctx.containers.list().map((c) => ({ state: c.state, containerizer: containerizerOf(ctx.sandboxes.get(c.sandboxId)?.runtimeHandler ?? '') })),
    containerizerNames: () => ctx.config.containerizers,
    census: () => ctx.containerizer.memberCensus(),
    events: () => ({ subscribers: ctx.events.subscriberCount, sent: ctx.events.counters.sent, dropped: ctx.events.counters.dropped }),
  };
}

/**
 * Healthy while recovery is done and the daemon's own Status says RuntimeReady (NetworkReady is
 * the node's business, as for the kubelet: a pod-less node without CNI is a healthy runtime).
 */
export function runtimeHealth(ctx: RuntimeContext, recovery: () => 'pending' | 'done' | { failed: string }): HealthCheck {
  return async () => {
    const r = recovery();
    if (r === 'pending') return { ok: false, reason: 'recovery is not done yet' };
    if (r !== 'done') return { ok: false, reason: `recovery failed: ${r.failed}` };
    const res = await status(ctx, { verbose: false });
    const ready = res.status?.conditions?.find((c) => c.type === 'RuntimeReady');
    if (ready?.status) return { ok: true };
    return { ok: false, reason: `RuntimeReady is false${ready ? `: ${ready.reason} ${ready.message}` : ''}` };
  };
}

/** Point `metrics` at the runtime and put it on the context (the RPC, pull and OOM hooks use ctx.metrics). */
export function attachMetrics(ctx: RuntimeContext, metrics: Metrics): void {
  metrics.bind(scrapeSource(ctx));
  ctx.metrics = metrics;
}
