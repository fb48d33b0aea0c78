// GetContainerEvents: the CRI layer's state transitions, broadcast to every subscriber (as
// containerd 2.0; 1.7 hands each event to one subscriber only). Pod sandboxes send events
// under their own id, as containerd 1.7+: CREATED and STARTED from RunPodSandbox, STOPPED
// when the pod stops (StopPodSandbox, or its init died), DELETED from RemovePodSandbox.
//
// Every event carries the pod's PodSandboxStatus and the statuses of all its containers,
// taken from the records as they were when the transition happened (records are replaced,
// never mutated, so holding them is a snapshot). Events are built and sent in order on one
// chain: the pod's addresses need one asynchronous look-up.
//
// A slow subscriber never holds the runtime back: each has at most `events_buffer` events
// unsent (queued, or written and not yet taken by HTTP/2), and one more ends its stream with
// RESOURCE_EXHAUSTED. `dropped` counts the subscribers cut off that way (for the metrics).
//
// Recovery: transitions found while the daemon was down (a container that exited meanwhile)
// happen before any client can subscribe, so they are kept and replayed to every subscriber
// that connects within RECOVERY_REPLAY_MS after recovery.
import * as grpc from '@grpc/grpc-js';
import type { ContainerEventResponse } from '../../api/generated/runtime/v1/ContainerEventResponse.js';
import type { ContainerEventType } from '../../api/generated/runtime/v1/ContainerEventType.js';
import type { ContainerRecord, SandboxRecord } from '../store/metadata.js';
import type { RuntimeContext } from './context.js';
import { nowNanos } from '../util/time.js';
import { sandboxStatusOf } from './runtime/pod-sandbox-status.js';
import { containerStatusOf } from './runtime/container-status.js';

export type EventType = Extract<ContainerEventType, string>;

/** How long after recovery a new subscriber still gets the events recovery produced. */
export const RECOVERY_REPLAY_MS = 60_000;

interface Subscriber {
  call: grpc.ServerWritableStream<unknown, ContainerEventResponse>;
  queue: ContainerEventResponse[];
  /** Written to grpc-js, its write callback not yet called. */
  inflight: number;
  done: boolean;
}

export class EventBus {
  private readonly subscribers = new Set<Subscriber>();
  private chain: Promise<void> = Promise.resolve();
  private recovering = true;
  private recoveredAt = 0;
  private backlog: ContainerEventResponse[] = [];
  /**
   * Containers inside StartContainer: a short command can exit before start() returns, and its
   * STOPPED waits for the STARTED (start-container.ts).
   */
  readonly starting = new Set<string>();
  /** Events sent (handed to a subscriber's stream), and subscribers ended because they fell behind. */
  readonly counters = { sent: 0, dropped: 0 };

  constructor(
    private readonly ctx: () => RuntimeContext,
    private readonly limit: number,
  ) {}

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** A transition of container (or pod) `id` in pod `sandboxId`; the records are read now. */
  emit(type: EventType, id: string, sandboxId: string, sandbox?: SandboxRecord): void {
    // Nobody to send it to and no backlog to keep: no list scan or statuses on every CRI call.
    if (!this.recovering && this.subscribers.size === 0) return;
    const ctx = this.ctx();
    const pod = sandbox ?? ctx.sandboxes.get(sandboxId);
    const ctrs: ContainerRecord[] = ctx.containers.list().filter((c) => c.sandboxId === sandboxId);
    const createdAt = nowNanos();
    this.chain = this.chain
      .then(async () => {
        const ev: ContainerEventResponse = {
          container_id: id,
          container_event_type: type,
          created_at: createdAt,
          pod_sandbox_status: pod ? (await sandboxStatusOf(ctx, pod)).status : null,
          containers_statuses: ctrs.map((c) => containerStatusOf(c)),
        };
        this.broadcast(ev);
      })
      .catch((err: unknown) => {
        ctx.log.error('building a container event', { container: id, type, error: String(err) });
      });
  }

  /** Recovery is over: later subscribers get the events it produced for RECOVERY_REPLAY_MS more. */
  recovered(): void {
    this.chain = this.chain.then(() => {
      this.recovering = false;
      this.recoveredAt = Date.now();
    });
  }

  /** Serve one GetContainerEvents call until the client goes or falls behind. */
  subscribe(call: grpc.ServerWritableStream<unknown, ContainerEventResponse>): void {
    const sub: Subscriber = { call, queue: [], inflight: 0, done: false };
    const end = () => {
      sub.done = true;
      this.subscribers.delete(sub);
    };
    call.on('cancelled', end);
    call.on('close', end);
    call.on('error', end);
    if (this.recovering || Date.now() - this.recoveredAt < RECOVERY_REPLAY_MS) {
      for (const ev of this.backlog) this.push(sub, ev);
    } else {
      this.backlog = [];
    }
    if (!sub.done) this.subscribers.add(sub);
    this.ctx().log.info('events subscriber connected', { subscribers: this.subscribers.size });
  }

  private broadcast(ev: ContainerEventResponse): void {
    if (this.recovering && this.backlog.length < this.limit) this.backlog.push(ev);
    for (const sub of this.subscribers) this.push(sub, ev);
  }

  private push(sub: Subscriber, ev: ContainerEventResponse): void {
    if (sub.done) return;
    if (sub.queue.length + sub.inflight >= this.limit) {
      this.cutOff(sub);
      return;
    }
    sub.queue.push(ev);
    this.pump(sub);
  }

  private pump(sub: Subscriber): void {
    while (!sub.done && sub.queue.length > 0 && sub.inflight === 0) {
      const ev = sub.queue.shift()!;
      sub.inflight++;
      this.counters.sent++;
      // One message in grpc-js at a time: its callback comes when HTTP/2 took it, so a client
      // that does not read (its flow-control window shut) keeps the rest in our bounded queue.
      sub.call.write(ev, () => {
        sub.inflight--;
        this.pump(sub);
      });
    }
  }

  private cutOff(sub: Subscriber): void {
    sub.done = true;
    this.subscribers.delete(sub);
    this.counters.dropped++;
    const message = `the events subscriber fell behind: more than ${this.limit} events (events_buffer) were waiting to be sent, so its stream was ended; subscribe again and relist`;
    this.ctx().log.warn('events subscriber cut off', { limit: this.limit, dropped: this.counters.dropped });
    sub.queue = [];
    sub.call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: message, message });
  }
}
