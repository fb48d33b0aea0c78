// --cgroup-favor-dynmods: the daemon turns the kernel mode on with a named
// cgroup hierarchy of its own (removed with the test's dirs), and pods run.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { favorDynmodsActive } from '../../src/cgroups/favordynmods.js';
import { podConfig, containerConfig } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

test('favordynmods is recognised on cgroup and cgroup2 mounts only', (t) => {
  const line = (fs: string, opts: string) => `42 27 0:39 / /x rw,relatime - ${fs} ${fs} ${opts}`;
  t.true(favorDynmodsActive(line('cgroup', 'rw,favordynmods,name=x')));
  t.true(favorDynmodsActive(line('cgroup2', 'rw,nsdelegate,favordynmods')));
  t.false(favorDynmodsActive(line('cgroup', 'rw,cpu')));
  t.false(favorDynmodsActive(line('tmpfs', 'rw,favordynmods')));
});

const d = useDaemon('favordynmods tests', { flags: ['--cgroup-favor-dynmods', 'true'] });
if (d) {
  test.serial('the daemon turns favordynmods on and pods still run', async (t) => {
    t.true(favorDynmodsActive());
    const ours = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(`${d.runtimeDir}/cgroup-favordynmods`));
    // Either we mounted it, or the host already had the mode on and we left it alone.
    t.true(ours.length <= 1);
    t.regex(d.logs(), /cgroup favordynmods is on/);
    const cfg = podConfig('fdm');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const { container_id } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('c', ['true'], { log_path: '' }), sandbox_config: cfg });
    await d.client.call('StartContainer', { container_id });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });
}
