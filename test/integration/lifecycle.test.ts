// Pod + container lifecycle over the socket, as kubelet drives it.
import test from 'ava';
import { readFileSync, existsSync } from 'node:fs';
import { busyboxLayer, writeOciLayout } from '../../hack/build-test-images.js';
import { importImage } from '../../src/images/import.js';
import { ImageStore } from '../../src/images/store.js';
import { join } from 'node:path';
import { CRI_LOG_LINE, podConfig, containerConfig, privilegedPodConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';


const d = useDaemon('lifecycle tests');
if (d) {

  test.serial('a container that prints and exits 3 is EXITED with code 3, timestamps and a CRI-format log', async (t) => {
    const logDir = join(d.logDir, 'exit3');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: podConfig('exit3', {}, logDir) });
    const cfg = containerConfig('printer', ['sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 3']);
    const { container_id: ctr } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: cfg, sandbox_config: podConfig('exit3') });
    const created = await d.client.call('ContainerStatus', { container_id: ctr });
    t.is(created.status.state, 'CONTAINER_CREATED');
    t.is(created.status.started_at, '0');
    await d.client.call('StartContainer', { container_id: ctr });
    const st = await d.waitExited(ctr);
    t.is(st.exit_code, 3);
    t.is(st.reason, 'Error');
    t.true(BigInt(st.created_at) > 0n);
    t.true(BigInt(st.started_at) >= BigInt(st.created_at));
    t.true(BigInt(st.finished_at) >= BigInt(st.started_at));
    t.is(st.log_path, join(logDir, 'printer/0.log'));
    const lines = readFileSync(st.log_path, 'utf8').trim().split('\n');
    const parsed = lines.map((l) => CRI_LOG_LINE.exec(l));
    t.true(parsed.every(Boolean), lines.join('\n'));
    const byStream = Object.fromEntries(parsed.map((m) => [m![2], m![4]]));
    t.is(byStream.stdout, 'to-stdout');
    t.is(byStream.stderr, 'to-stderr');
    t.true(parsed.every((m) => m![3] === 'F'));
    await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    t.false(existsSync(join(d.runtimeDir, 'containers', pod)));
  });

  test.serial('the command runs with the default capability set (add/drop honoured) and no_new_privs when asked', async (t) => {
    const logDir = join(d.logDir, 'caps');
    // Privileged, so that it may also hold the privileged container below.
    const cfg = privilegedPodConfig('caps', logDir);
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const run = async (name: string, sc: object) => {
      const { container_id } = await d.client.call('CreateContainer', {
        pod_sandbox_id: pod,
        config: containerConfig(name, ['sh', '-c', 'grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status'], { linux: { security_context: sc } }),
        sandbox_config: cfg,
      });
      await d.client.call('StartContainer', { container_id });
      const st = await d.waitExited(container_id);
      t.is(st.exit_code, 0);
      return Object.fromEntries(
        readFileSync(st.log_path, 'utf8')
          .trim()
          .split('\n')
          .map((l) => /stdout F (\w+):\s+(\S+)/.exec(l)!)
          .map((m) => [m[1], m[2]]),
      );
    };
    const def = await run('default', {});
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
    t.is(def.CapEff, '00000000a80425fb');
    t.is(def.CapBnd, '00000000a80425fb');
    t.is(def.NoNewPrivs, '0');
    const adjusted = await run('adjusted', { capabilities: { add_capabilities: ['NET_ADMIN'], drop_capabilities: ['CAP_MKNOD'] }, no_new_privs: true });
    // + NET_ADMIN (bit 12), - MKNOD (bit 27)
    t.is(adjusted.CapEff, ((0xa80425fbn | (1n << 12n)) & ~(1n << 27n)).toString(16).padStart(16, '0'));
    t.is(adjusted.NoNewPrivs, '1');
    // ExecSync (a DEBUG container) gets the container's capabilities too, not the daemon's.
    const { container_id: sleeper } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('sleeper', ['sleep', '3600'], { linux: { security_context: { no_new_privs: true } } }),
      sandbox_config: cfg,
    });
    await d.client.call('StartContainer', { container_id: sleeper });
    const ex = await d.client.call('ExecSync', { container_id: sleeper, cmd: ['grep', '-E', '^(CapEff|CapBnd|NoNewPrivs)', '/proc/self/status'], timeout: 5 });
    t.regex(ex.stdout.toString(), /CapEff:\s+00000000a80425fb/);
    t.regex(ex.stdout.toString(), /CapBnd:\s+00000000a80425fb/);
    t.regex(ex.stdout.toString(), /NoNewPrivs:\s+1/);
    const priv = await run('privileged', { privileged: true });
    t.not(priv.CapEff, def.CapEff);
    // ALL is every capability the runtime holds (its bounding set), as with containerd: on a host
    // without CAP_SYS_RESOURCE, asking for more made capset fail and the container die.
    const own = /^CapBnd:\s+(\w+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1];
    const all = await run('all', { capabilities: { add_capabilities: ['ALL'] } });
    t.is(all.CapEff, own);
    t.is(all.CapBnd, own);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('the image config is applied the CRI way: Entrypoint+Cmd, Env, WorkingDir, User (resolved in the image), Volumes', async (t) => {
    const layout = join(d.dir, 'configured-oci');
    await writeOciLayout(layout, [
      {
        tags: ['cri-mesos.test/configured:1'],
        layers: [await busyboxLayer()],
        config: {
          Entrypoint: ['/bin/sh', '-c'],
          Cmd: ['echo "$GREETING"; id -u; id -g; pwd; test -d /data/vol && echo vol-ok'],
          Env: ['PATH=/bin', 'GREETING=from-image'],
          WorkingDir: '/tmp',
          User: 'tester',
          Volumes: { '/data/vol': {} },
          ExposedPorts: { '8080/tcp': {} },
        },
      },
    ]);
    // Imported while the daemon runs: it sees the image without a restart.
    await importImage(new ImageStore(join(d.workDir, 'images')), layout);
    const logDir = join(d.logDir, 'configured');
    const cfg = podConfig('configured', {}, logDir);
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const runOnce = async (name: string, extra: Record<string, unknown>) => {
      const { container_id } = await d.client.call('CreateContainer', {
        pod_sandbox_id: pod,
        config: { metadata: { name }, image: { image: 'cri-mesos.test/configured:1' }, log_path: `${name}.log`, ...extra },
        sandbox_config: cfg,
      });
      await d.client.call('StartContainer', { container_id });
      const st = await d.waitExited(container_id);
      t.is(st.exit_code, 0, readFileSync(st.log_path, 'utf8'));
      return readFileSync(st.log_path, 'utf8').trim().split('\n').map((l) => l.split(' ').slice(3).join(' '));
    };
    t.deepEqual(await runOnce('defaults', {}), ['from-image', '1000', '1000', '/tmp', 'vol-ok']);
    // CRI args replace Cmd (Entrypoint kept); CRI env overrides the image's; CRI working_dir and run_as_user win.
    t.deepEqual(
      await runOnce('overridden', {
        args: ['echo "$GREETING"; id -u; pwd'],
        envs: [{ key: 'GREETING', value: Buffer.from('from-cri') }],
        working_dir: '/',
        linux: { security_context: { run_as_user: { value: 0 } } },
      }),
      ['from-cri', '0', '/'],
    );
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });
}
