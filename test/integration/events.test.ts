// GetContainerEvents: every subscriber gets every transition with the pod's status and its
// containers' statuses; pods send events under their own id; an exit while the daemon was
// down is a STOPPED event after the restart; a subscriber that does not read is cut off with
// RESOURCE_EXHAUSTED while the others and the runtime go on.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { containerConfig, eventsClient, podConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

const BUFFER = 8;
const confDir = mkdtempSync(join(tmpdir(), 'cm-events-conf-'));
const confFile = join(confDir, 'config.toml');
writeFileSync(confFile, `events_buffer = ${BUFFER}\n`);
test.after.always(() => rmSync(confDir, { recursive: true, force: true }));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Ev = any;

/** A subscription collecting every event and the stream's end status. */
class Sub {
  readonly events: Ev[] = [];
  status: grpc.StatusObject | undefined;
  error: grpc.ServiceError | undefined;
  readonly client;
  readonly call: grpc.ClientReadableStream<Ev>;
  constructor(socket: string) {
    this.client = eventsClient(socket);
    this.call = this.client.GetContainerEvents({});
    this.call.on('data', (e: Ev) => this.events.push(e));
    this.call.on('status', (s: grpc.StatusObject) => (this.status = s));
    this.call.on('error', (e: grpc.ServiceError) => (this.error = e));
  }
  of(id: string): Ev[] {
    return this.events.filter((e) => e.container_id === id);
  }
  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

const d = useDaemon('events tests', { flags: ['--config', confFile] });
if (d) {
  /** Connected: the server has it once an RPC sent after it was answered (same daemon, FIFO enough), plus a margin. */
  async function connected(): Promise<void> {
    await d!.client.call('Version', {});
    await sleep(300);
  }

  test.serial('two subscribers both get CREATED, STARTED, STOPPED and DELETED of pod and container, with statuses', async (t) => {
    const a = new Sub(d.socket);
    const b = new Sub(d.socket);
    t.teardown(() => (a.close(), b.close()));
    await connected();
    const sandbox_config = podConfig('events');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox_config });
    const { container_id: ctr } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('quick', ['sh', '-c', 'exit 3']),
      sandbox_config,
    });
    await d.client.call('StartContainer', { container_id: ctr });
    await d.waitExited(ctr);
    await d.client.call('RemoveContainer', { container_id: ctr });
    await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    await waitFor('both subscribers to get the pod DELETED event', () => [a, b].every((s) => s.of(pod).some((e) => e.container_event_type === 'CONTAINER_DELETED_EVENT')));

    for (const s of [a, b]) {
      t.deepEqual(
        s.of(ctr).map((e) => e.container_event_type),
        ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT'],
      );
      t.deepEqual(
        s.of(pod).map((e) => e.container_event_type),
        ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT'],
      );
      const [created, started, stopped, deleted] = s.of(ctr);
      for (const e of s.of(ctr)) {
        t.is(e.pod_sandbox_status.id, pod);
        t.is(e.pod_sandbox_status.metadata.name, 'events');
        t.true(BigInt(e.created_at) > 0n);
      }
      t.is(created.pod_sandbox_status.state, 'SANDBOX_READY');
      t.deepEqual(created.containers_statuses.map((c: Ev) => [c.id, c.state]), [[ctr, 'CONTAINER_CREATED']]);
      t.deepEqual(started.containers_statuses.map((c: Ev) => c.id), [ctr]);
      const st = stopped.containers_statuses[0];
      t.is(st.state, 'CONTAINER_EXITED');
      t.is(st.exit_code, 3);
      t.is(st.metadata.name, 'quick');
      // Deleted: the container is gone from its pod's list.
      t.deepEqual(deleted.containers_statuses, []);
      const podEvents = s.of(pod);
      t.is(podEvents[0].pod_sandbox_status.state, 'SANDBOX_READY');
      t.is(podEvents[2].pod_sandbox_status.state, 'SANDBOX_NOTREADY');
      t.is(podEvents[3].pod_sandbox_status.id, pod);
      t.true(BigInt(podEvents[0].created_at) <= BigInt(podEvents[3].created_at));
    }
    t.is(a.error, undefined);
  });

  test.serial('a command that exits at once still has STARTED before STOPPED', async (t) => {
    const s = new Sub(d.socket);
    t.teardown(() => s.close());
    await connected();
    const sandbox_config = podConfig('events-quick');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox_config });
    t.teardown(() => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { container_id } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig(`q${i}`, ['true']), sandbox_config });
      await d.client.call('StartContainer', { container_id });
      ids.push(container_id);
    }
    await waitFor('every STOPPED event', () => ids.every((id) => s.of(id).length === 3));
    for (const id of ids) {
      t.deepEqual(
        s.of(id).map((e) => e.container_event_type),
        ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT'],
      );
      t.is(s.of(id)[2].containers_statuses.find((c: Ev) => c.id === id).exit_code, 0);
    }
  });

  test.serial('a subscriber that does not read is cut off with RESOURCE_EXHAUSTED; another keeps receiving and RPCs keep working', async (t) => {
    const slow = new Sub(d.socket);
    const fast = new Sub(d.socket);
    t.teardown(() => (slow.close(), fast.close()));
    slow.call.pause();
    await connected();
    const sandbox_config = podConfig('events-slow');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox_config });
    t.teardown(() => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined));
    // Big annotations: every event carries all of the pod's container statuses, so HTTP/2's
    // window and the socket fill after a few events and the rest queues in the daemon.
    const big = 'x'.repeat(16 * 1024);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const { container_id } = await d.client.call('CreateContainer', {
        pod_sandbox_id: pod,
        config: containerConfig(`c${i}`, ['true'], { annotations: { big } }),
        sandbox_config,
      });
      ids.push(container_id);
      // The fast one reads each event as it comes (CreateContainer answers faster than a client
      // takes in events of up to 40 × 16 KB statuses).
      await waitFor('the fast subscriber to get the CREATED event', () => fast.of(container_id).length === 1);
    }
    await waitFor('the fast subscriber to get every CREATED event', () => ids.every((id) => fast.of(id).length === 1));
    // The runtime was never held up: a status answers now.
    t.is((await d.client.call('ContainerStatus', { container_id: ids[0] })).status.state, 'CONTAINER_CREATED');
    await waitFor('the daemon to log the cut-off', () => d.logs().includes('events subscriber cut off'));
    slow.call.resume();
    await waitFor('the slow stream to end', () => slow.status ?? slow.error, 30_000);
    t.is(slow.error?.code, grpc.status.RESOURCE_EXHAUSTED);
    t.regex(slow.error?.details ?? '', /fell behind/);
    t.true(slow.events.length < ids.length, `the slow subscriber got ${slow.events.length} events`);
    // The fast one still gets events after the cut-off.
    await d.client.call('RemoveContainer', { container_id: ids[0] });
    await waitFor('the fast subscriber to get DELETED after the cut-off', () => fast.of(ids[0]!).some((e) => e.container_event_type === 'CONTAINER_DELETED_EVENT'));
    t.is(fast.error, undefined);
  });

  test.serial('a container that exited while the daemon was down is a STOPPED event after the restart', async (t) => {
    const sandbox_config = podConfig('events-restart');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox_config });
    const { container_id: ctr } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('quitter', ['sh', '-c', 'sleep 1.5; exit 7']),
      sandbox_config,
    });
    await d.client.call('StartContainer', { container_id: ctr });
    const pid = JSON.parse((await d.client.call('ContainerStatus', { container_id: ctr, verbose: true })).info.info).pid as number;
    await d.kill9();
    await waitFor('the container to exit while the daemon is down', () => gone(pid), 20_000);
    await d.launch();
    const s = new Sub(d.socket);
    t.teardown(() => s.close());
    await waitFor('the STOPPED event after the restart', () => s.of(ctr).find((e) => e.container_event_type === 'CONTAINER_STOPPED_EVENT'));
    const ev = s.of(ctr).find((e) => e.container_event_type === 'CONTAINER_STOPPED_EVENT');
    const st = ev.containers_statuses.find((c: Ev) => c.id === ctr);
    t.is(st.state, 'CONTAINER_EXITED');
    t.is(st.exit_code, 7);
    t.is(ev.pod_sandbox_status.id, pod);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });
}

function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}
