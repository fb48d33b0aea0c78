// --launcher=posix (Mesos' SubprocessLauncher): process groups, no cgroups or
// namespaces. Pods run as a pause helper on the host; images are refused.
import test from 'ava';
import { existsSync, readlinkSync, readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { podConfig, containerConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

const d = useDaemon('posix launcher tests', { flags: ['--launcher', 'posix'] });
if (d) {
  test.serial('a pod runs in the host namespaces as its own process group, stops, and containers are refused clearly', async (t) => {
    const refused = (await t.throwsAsync(d.client.call('RunPodSandbox', { config: podConfig('isolated') }))) as unknown as { code: number; details: string };
    t.is(refused.code, status.FAILED_PRECONDITION);
    t.regex(refused.details, /namespace_options/);
    const cfg = podConfig('posix', { linux: { security_context: { namespace_options: { network: 'NODE', pid: 'NODE', ipc: 'NODE' } } }, hostname: '' });
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const st = await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true });
    t.is(st.status.state, 'SANDBOX_READY');
    const pid = JSON.parse(st.info.info).pid as number;
    t.true(pid > 0);
    for (const ns of ['net', 'pid', 'mnt', 'ipc']) t.is(readlinkSync(`/proc/${pid}/ns/${ns}`), readlinkSync(`/proc/self/ns/${ns}`));
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [pgid, sid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').slice(2, 4).map(Number);
    t.is(pgid, pid, 'its own process group');
    t.is(sid, pid, 'its own session');
    const err = (await t.throwsAsync(
      d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('c', ['true']), sandbox_config: cfg }),
    )) as unknown as { code: number; details: string };
    t.is(err.code, status.FAILED_PRECONDITION);
    t.regex(err.details, /posix launcher/);
    await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
    t.is((await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod })).status.state, 'SANDBOX_NOTREADY');
    await waitFor('pause helper gone', () => !existsSync(`/proc/${pid}`) || /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')));
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    t.deepEqual((await d.client.call('ListPodSandbox', {})).items, []);
  });
}
