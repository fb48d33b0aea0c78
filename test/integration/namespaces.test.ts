// Namespace sharing as the DESIGN §2 table promises, checked against the kernel:
// /proc/<pid>/ns/* of the container inits on the host, and what commands run
// with ExecSync see from inside.
import test from 'ava';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname as hostHostname } from 'node:os';
import { podConfig, containerConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

const d = useDaemon('namespace tests');
if (d) {

  const run = (pod: string, sandbox: object, name: string, command: string[], extra: Record<string, unknown> = {}) =>
    d.runContainer(pod, sandbox, name, command, extra);

  const exec = async (id: string, cmd: string[]): Promise<{ stdout: string; stderr: string; exit_code: number }> => {
    const r = await d.client.call('ExecSync', { container_id: id, cmd, timeout: 10 });
    return { stdout: Buffer.from(r.stdout).toString(), stderr: Buffer.from(r.stderr).toString(), exit_code: r.exit_code };
  }

  const ns = (pid: number | 'self', type: string) => readlinkSync(`/proc/${pid}/ns/${type}`);

  const pidMode = (pid: string, target_id?: string) => {
    return { linux: { security_context: { namespace_options: { pid, ...(target_id ? { target_id } : {}) } } } };
  }


  test.serial('containers of one pod share hostname and network namespace, not the mount namespace', async (t) => {
    const sandbox = podConfig('ns-share');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    try {
      const a = await run(pod, sandbox, 'a', ['sleep', '3600']);
      const b = await run(pod, sandbox, 'b', ['sh', '-c', 'while true; do sleep 1; done']);

      // UTS: both report the pod's hostname, which is not the host's.
      const ha = await exec(a.id, ['hostname']);
      const hb = await exec(b.id, ['hostname']);
      t.is(ha.exit_code, 0, ha.stderr);
      t.is(ha.stdout.trim(), 'ns-share');
      t.is(hb.stdout.trim(), 'ns-share');
      t.is(ns(a.pid, 'uts'), ns(b.pid, 'uts'));
      t.not(ns(a.pid, 'uts'), ns('self', 'uts'));

      // Network: the same namespace, seen from the host and from inside; not the host's.
      t.is(ns(a.pid, 'net'), ns(b.pid, 'net'));
      t.not(ns(a.pid, 'net'), ns('self', 'net'));
      const na = await exec(a.id, ['readlink', '/proc/self/ns/net']);
      const nb = await exec(b.id, ['readlink', '/proc/self/ns/net']);
      t.is(na.stdout.trim(), ns(a.pid, 'net'));
      t.is(nb.stdout.trim(), ns(a.pid, 'net'));

      // IPC (pod option POD): shared too.
      t.is(ns(a.pid, 'ipc'), ns(b.pid, 'ipc'));
      t.not(ns(a.pid, 'ipc'), ns('self', 'ipc'));

      // Mount: each container has its own, and neither is the host's.
      t.not(ns(a.pid, 'mnt'), ns(b.pid, 'mnt'));
      t.not(ns(a.pid, 'mnt'), ns('self', 'mnt'));
      t.not(ns(b.pid, 'mnt'), ns('self', 'mnt'));
      // An exec joins its container's mount namespace.
      const ma = await exec(a.id, ['readlink', '/proc/self/ns/mnt']);
      t.is(ma.stdout.trim(), ns(a.pid, 'mnt'));
      // A file written in a's filesystem is not in b's.
      t.is((await exec(a.id, ['sh', '-c', 'echo x > /tmp/only-in-a'])).exit_code, 0);
      t.is((await exec(a.id, ['cat', '/tmp/only-in-a'])).stdout.trim(), 'x');
      t.not((await exec(b.id, ['cat', '/tmp/only-in-a'])).exit_code, 0);
    } finally {
      await d.removePod(pod);
    }
  });

  test.serial('PID POD containers see each other; PID CONTAINER sees only itself; TARGET joins the target', async (t) => {
    const sandbox = podConfig('ns-pid');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    try {
      const podPid = await waitFor('pod pid', async () => {
        const s = await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true });
        const pid = (JSON.parse(s.info.info) as { pid: number }).pid;
        return pid > 0 ? pid : undefined;
      });
      const p1 = await run(pod, sandbox, 'pod1', ['sleep', '3601'], pidMode('POD'));
      const p2 = await run(pod, sandbox, 'pod2', ['sleep', '3602'], pidMode('POD'));
      const own = await run(pod, sandbox, 'own', ['sleep', '3603'], pidMode('CONTAINER'));

      // Host view: POD containers are in the pod's PID namespace, CONTAINER in a new one.
      t.is(ns(p1.pid, 'pid'), ns(podPid, 'pid'));
      t.is(ns(p2.pid, 'pid'), ns(podPid, 'pid'));
      t.not(ns(podPid, 'pid'), ns('self', 'pid'));
      t.not(ns(own.pid, 'pid'), ns(podPid, 'pid'));
      t.not(ns(own.pid, 'pid'), ns('self', 'pid'));

      // Inside: ps in pod1 lists pod2's process, and not the CONTAINER one's.
      const ps1 = await exec(p1.id, ['ps', '-o', 'pid,args']);
      t.is(ps1.exit_code, 0, ps1.stderr);
      t.regex(ps1.stdout, /sleep 3601/);
      t.regex(ps1.stdout, /sleep 3602/);
      t.notRegex(ps1.stdout, /sleep 3603/);

      // ps in the CONTAINER one sees its own process only: no other container's, no host's.
      const psOwn = await exec(own.id, ['ps', '-o', 'pid,args']);
      t.is(psOwn.exit_code, 0, psOwn.stderr);
      t.regex(psOwn.stdout, /sleep 3603/);
      t.notRegex(psOwn.stdout, /sleep 360[12]/);
      t.false(psOwn.stdout.includes('cri-mesos-launch pause'), psOwn.stdout);
      // Its command is PID 1 of its namespace, as with runc; the launch helper stays outside.
      t.is((await exec(own.id, ['cat', '/proc/1/cmdline'])).stdout, 'sleep\x003603\x00');
      t.notRegex(psOwn.stdout, /cri-mesos-launch/);
      // With pid POD the pod's pause helper is PID 1, as with containerd's pause container.
      t.regex((await exec(p1.id, ['cat', '/proc/1/cmdline'])).stdout, /^cri-mesos-launch\x00pause\x00/);
      t.true((await exec(own.id, ['ls', '/proc'])).stdout.split(/\s+/).filter((x) => /^\d+$/.test(x)).length < 10);

      // TARGET: joins the target container's PID namespace (own), not the pod's.
      const tgt = await run(pod, sandbox, 'debug', ['sleep', '3604'], pidMode('TARGET', own.id));
      t.is(ns(tgt.pid, 'pid'), ns(own.pid, 'pid'));
      t.not(ns(tgt.pid, 'pid'), ns(podPid, 'pid'));
      const psT = await exec(tgt.id, ['ps', '-o', 'pid,args']);
      t.regex(psT.stdout, /sleep 3603/);
      t.regex(psT.stdout, /sleep 3604/);
      t.notRegex(psT.stdout, /sleep 360[12]/);
      // … and the target sees the debug container's process.
      t.regex((await exec(own.id, ['ps', '-o', 'pid,args'])).stdout, /sleep 3604/);
      // TARGET still shares the pod's network and UTS namespaces, with its own mounts.
      t.is(ns(tgt.pid, 'net'), ns(own.pid, 'net'));
      t.is(ns(tgt.pid, 'uts'), ns(own.pid, 'uts'));
      t.not(ns(tgt.pid, 'mnt'), ns(own.pid, 'mnt'));
    } finally {
      await d.removePod(pod);
    }
  });

  test.serial('a TARGET naming an unknown container is refused with NOT_FOUND', async (t) => {
    const sandbox = podConfig('ns-badtarget');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    try {
      const err = await t.throwsAsync(
        d.client.call('CreateContainer', {
          pod_sandbox_id: pod,
          config: containerConfig('dbg', ['sleep', '10'], pidMode('TARGET', 'f'.repeat(64))),
          sandbox_config: sandbox,
        }),
      );
      t.is((err as { code?: number }).code, 5);
    } finally {
      await d.removePod(pod);
    }
  });

  test.serial('a pod with network NODE: containers are in the host network and UTS namespaces', async (t) => {
    const sandbox = podConfig('ns-hostnet', {
      linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } },
    });
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    try {
      const c = await run(pod, sandbox, 'hostnet', ['sleep', '3600']);
      t.is(ns(c.pid, 'net'), ns('self', 'net'));
      const inside = await exec(c.id, ['readlink', '/proc/self/ns/net']);
      t.is(inside.exit_code, 0, inside.stderr);
      t.is(inside.stdout.trim(), ns('self', 'net'));
      // Host network implies the host's UTS namespace: the node's hostname.
      t.is(ns(c.pid, 'uts'), ns('self', 'uts'));
      t.is((await exec(c.id, ['hostname'])).stdout.trim(), hostHostname());
      // Mounts are still private; IPC (POD) is the pod's own, not the host's.
      t.not(ns(c.pid, 'mnt'), ns('self', 'mnt'));
      t.not(ns(c.pid, 'ipc'), ns('self', 'ipc'));
    } finally {
      await d.removePod(pod);
    }
  });

  test.serial('a pod with network, PID and IPC NODE: a PID NODE container is in the host PID and IPC namespaces', async (t) => {
    const sandbox = podConfig('ns-allnode', {
      linux: { security_context: { namespace_options: { network: 'NODE', pid: 'NODE', ipc: 'NODE' } } },
    });
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    try {
      const c = await run(pod, sandbox, 'hostpid', ['sleep', '3605'], pidMode('NODE'));
      for (const type of ['net', 'uts', 'ipc', 'pid']) t.is(ns(c.pid, type), ns('self', type), type);
      t.not(ns(c.pid, 'mnt'), ns('self', 'mnt'));
      // Inside, the host's processes are visible: this test process among them.
      const r = await exec(c.id, ['cat', `/proc/${process.pid}/cmdline`]);
      t.is(r.exit_code, 0, r.stderr);
      t.is(r.stdout, readFileSync(`/proc/${process.pid}/cmdline`, 'utf8'));
    } finally {
      await d.removePod(pod);
    }
  });

  test.serial("a host-network pod: /etc/resolv.conf from dns_config when given, else the host's; /etc/hosts the host's", async (t) => {
    const hostNet = { linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } } };
    const dns = { servers: ['10.96.0.10', '10.96.0.11'], searches: ['kube-system.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5', 'timeout:2'] };
    const withDns = podConfig('ns-hostdns', { ...hostNet, dns_config: dns });
    const without = podConfig('ns-hostnodns', hostNet);
    const a = (await d.client.call('RunPodSandbox', { config: withDns })).pod_sandbox_id as string;
    t.teardown(() => d.removePod(a).catch(() => undefined));
    const b = (await d.client.call('RunPodSandbox', { config: without })).pod_sandbox_id as string;
    t.teardown(() => d.removePod(b).catch(() => undefined));
    const ca = await run(a, withDns, 'c', ['sleep', '3600']);
    const cb = await run(b, without, 'c', ['sleep', '3600']);
    const cat = async (id: string, file: string) => {
      const r = await exec(id, ['cat', file]);
      t.is(r.exit_code, 0, r.stderr);
      return r.stdout;
    };
    t.is(
      await cat(ca.id, '/etc/resolv.conf'),
      'nameserver 10.96.0.10\nnameserver 10.96.0.11\nsearch kube-system.svc.cluster.local svc.cluster.local\noptions ndots:5 timeout:2\n',
    );
    t.is(await cat(cb.id, '/etc/resolv.conf'), readFileSync('/etc/resolv.conf', 'utf8'));
    for (const c of [ca, cb]) t.is(await cat(c.id, '/etc/hosts'), readFileSync('/etc/hosts', 'utf8'));
  });

  test.serial("a POD-network pod gets a generated /etc/hosts (localhost and its own hostname), not the host's", async (t) => {
    const sandbox = podConfig('ns-hosts');
    const pod = (await d.client.call('RunPodSandbox', { config: sandbox })).pod_sandbox_id as string;
    t.teardown(() => d.removePod(pod).catch(() => undefined));
    const c = await run(pod, sandbox, 'c', ['sleep', '3600']);
    const r = await exec(c.id, ['cat', '/etc/hosts']);
    t.is(r.exit_code, 0, r.stderr);
    t.is(r.stdout, '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tns-hosts\n');
  });

}
