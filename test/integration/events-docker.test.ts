// GetContainerEvents for docker pods: the CRI layer sends the events, so a pod of the Docker
// containerizer has the same CREATED/STARTED/STOPPED/DELETED, for the pod and its container.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestDaemon, containerConfig, eventsClient, isRoot, podConfig, waitFor } from '../helpers/daemon.js';
import { DOCKER_BUSYBOX, TestDockerd } from '../helpers/dockerd.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Ev = any;

const usable = isRoot() && TestDockerd.available();
if (!usable) test.skip('docker events tests need root and dockerd (hack/deps.sh --test installs docker.io)', () => {});

let dockerd: TestDockerd | undefined;
let d: TestDaemon;

if (usable) {
  d = new TestDaemon({ prefix: 'cm-evdocker' });
  test.serial.before(async () => {
    dockerd = await TestDockerd.start();
    await d.init({ flags: ['--containerizers', 'mesos,docker', '--docker-host', dockerd.host] });
  });
  test.afterEach.always((t) => {
    if (!t.passed) t.log(d.logs().split('\n').slice(-40).join('\n'));
  });
  test.after.always(async () => {
    await d.teardown();
    await dockerd?.stopAndCheck();
  });

  test.serial('a docker pod and its container send CREATED, STARTED, STOPPED and DELETED with their statuses', async (t) => {
    const client = eventsClient(d.socket);
    const call = client.GetContainerEvents({});
    const events: Ev[] = [];
    let error: grpc.ServiceError | undefined;
    call.on('data', (e: Ev) => events.push(e));
    call.on('error', (e: grpc.ServiceError) => (error = e));
    t.teardown(() => (call.cancel(), client.close()));
    await d.client.call('Version', {});
    await sleep(300);
    const of = (id: string) => events.filter((e) => e.container_id === id).map((e) => e.container_event_type);

    const sandbox_config = podConfig('evdocker', { linux: { security_context: { namespace_options: { network: 'NODE', pid: 'POD', ipc: 'POD' } } } });
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox_config, runtime_handler: 'docker' }, 120_000);
    const { container_id: ctr } = await d.client.call(
      'CreateContainer',
      { pod_sandbox_id: pod, config: containerConfig('quitter', ['sh', '-c', 'sleep 0.5; exit 5'], { image: { image: DOCKER_BUSYBOX } }), sandbox_config },
      120_000,
    );
    await d.client.call('StartContainer', { container_id: ctr });
    await d.waitExited(ctr, 30_000);
    await waitFor('the STOPPED event', () => of(ctr).includes('CONTAINER_STOPPED_EVENT'));
    const stopped = events.find((e) => e.container_id === ctr && e.container_event_type === 'CONTAINER_STOPPED_EVENT');
    t.is(stopped.pod_sandbox_status.runtime_handler, 'docker');
    t.is(stopped.containers_statuses.find((c: Ev) => c.id === ctr).exit_code, 5);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }, 120_000);
    await waitFor('the pod DELETED event', () => of(pod).includes('CONTAINER_DELETED_EVENT'));
    t.deepEqual(of(ctr), ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT']);
    t.deepEqual(of(pod), ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT']);
    t.is(error, undefined);
  });
}
