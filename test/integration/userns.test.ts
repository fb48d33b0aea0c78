// User namespaces as Kubernetes' hostUsers: false asks for them (userns_options mode POD, the
// same mappings on the pod and its containers), observed from inside the container and from
// the host: the mapping, the image's root files showing as root, the process unprivileged on
// the host, idmapped mounts, the rootfs' upper dir owned by the mapped ids, the pod's own
// network (loopback, and CNI in a second daemon), and what is refused.
import test, { type ExecutionContext } from 'ava';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { MNT_DETACH, native } from '../../src/native/index.js';
import { podConfig, TestDaemon, TEST_SUBNET, waitFor } from '../helpers/daemon.js';
import { tempDir, useDaemon } from '../helpers/suite.js';

// The kubelet's shape: container ids 0..65535 are host ids 100000..165535.
const HOST = 100000;
const SIZE = 65536;
const K8S = { mode: 'POD', uids: [{ container_id: 0, host_id: HOST, length: SIZE }], gids: [{ container_id: 0, host_id: HOST, length: SIZE }] };
const NOBODY = 65534;

const [major = 0, minor = 0] = release().split('.').map(Number);
const kernelCan = major > 5 || (major === 5 && minor >= 19);

/** security_context.namespace_options with userns_options (and any other fields). */
const withUserns = (userns: object | null | undefined, sc: Record<string, unknown> = {}, ns: Record<string, unknown> = {}) => ({
  linux: { security_context: { ...sc, namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', ...ns, ...(userns ? { userns_options: userns } : {}) } } },
});

const uidLine = (pid: number) => /^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.split(/\s+/).map(Number);

const d = useDaemon('user namespace tests');
if (d) {
  const sh = async (id: string, script: string) => {
    const r = await d.client.call('ExecSync', { container_id: id, cmd: ['sh', '-c', script], timeout: 10 });
    return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exit_code as number };
  };

  const runPod = async (t: ExecutionContext, name: string, userns: object | null = K8S, extra: Record<string, unknown> = {}) => {
    const sandbox = podConfig(name, { ...withUserns(userns), ...extra });
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    t.teardown(async () => {
      await d.client.call('StopPodSandbox', { pod_sandbox_id: pod }).catch(() => undefined);
      await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined);
    });
    return { pod: pod as string, sandbox };
  };

  const podPid = async (pod: string) =>
    waitFor('pod pid', async () => {
      const s = await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true });
      return (JSON.parse(s.info.info) as { pid: number }).pid || undefined;
    });

  const grpcError = async (t: ExecutionContext, p: Promise<unknown>, code: number, re: RegExp) => {
    const e = (await t.throwsAsync(p)) as unknown as { code: number; details: string };
    t.is(e.code, code, e.details);
    t.regex(e.details, re);
  };

  test.serial('Status advertises user_namespaces where the kernel can (Linux 5.19+)', async (t) => {
    const s = await d.client.call('Status', {});
    const handler = s.runtime_handlers.find((h: { name: string }) => h.name === '');
    t.is(handler.features.user_namespaces, kernelCan);
  });

  if (!kernelCan) {
    test.skip('user namespace pods need Linux 5.19+', () => {});
  } else {
    test.serial('the container runs in the pod user namespace: the mapping, root files as root, unprivileged on the host', async (t) => {
      const { pod, sandbox } = await runPod(t, 'userns-basic');
      const c = await d.runContainer(pod, sandbox, 'main', ['sleep', '3600'], withUserns(K8S));

      // Inside: the kubelet's mapping, and root.
      const maps = await sh(c.id, 'cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g');
      t.is(maps.code, 0, maps.err);
      const lines = maps.out.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
      t.deepEqual(lines, [`0 ${HOST} ${SIZE}`, `0 ${HOST} ${SIZE}`, '0', '0']);
      // The image's files: root's are root's, the tester's (uid 1000) the tester's; "/" is root's too.
      const owners = await sh(c.id, 'stat -c "%u:%g %n" /bin/busybox /etc/passwd /home/tester /');
      t.deepEqual(owners.out.trim().split('\n'), ['0:0 /bin/busybox', '0:0 /etc/passwd', '1000:1000 /home/tester', '0:0 /']);

      // On the host: the command (PID 1 of its own PID namespace) and the pause helper run as the mapped root.
      t.deepEqual(uidLine(c.pid), [HOST, HOST, HOST, HOST]);
      const pp = await podPid(pod);
      t.deepEqual(uidLine(pp), [HOST, HOST, HOST, HOST]);
      t.is(readFileSync(`/proc/${c.pid}/uid_map`, 'utf8').trim().split(/\s+/).join(' '), `0 ${HOST} ${SIZE}`);
      // One user namespace, the pod's: not the host's.
      t.is(readlinkSync(`/proc/${c.pid}/ns/user`), readlinkSync(`/proc/${pp}/ns/user`));
      t.not(readlinkSync(`/proc/${c.pid}/ns/user`), readlinkSync('/proc/self/ns/user'));
      t.is((await sh(c.id, 'cat /proc/1/comm')).out.trim(), 'sleep');

      // Writing to the rootfs: the upper dir's file is the mapped root's on the host; the layer is untouched.
      t.is((await sh(c.id, 'echo hi > /newfile && mkdir /newdir && echo x >> /etc/motd')).code, 0);
      const upper = join(d.workDir, 'provisioner', c.id, 'upper');
      for (const f of ['newfile', 'newdir', 'etc/motd']) {
        const st = statSync(join(upper, f));
        t.deepEqual([st.uid, st.gid], [HOST, HOST], f);
      }
      t.deepEqual([statSync(upper).uid, statSync(upper).gid], [HOST, HOST], 'the upper dir root is the namespace root');
      // No layer was chowned: the image's busybox is still the host root's.
      const layers = join(d.workDir, 'images');
      const busybox = findFile(layers, 'bin/busybox');
      t.truthy(busybox, 'a layer holds bin/busybox');
      t.is(statSync(busybox!).uid, 0);
      // Staging mounts of the idmapped layers are gone once the overlay is up.
      t.false(existsSync(join(d.workDir, 'provisioner', c.id, 'idmapped')));

      // Devices (the host's, bound), /proc, sysfs and devpts from inside the namespace.
      const dev = await sh(c.id, 'echo x > /dev/null && head -c 4 /dev/zero | wc -c && ls /sys/class/net && test -c /dev/ptmx -o -L /dev/ptmx && grep -c . /proc/self/mountinfo >/dev/null && echo ok');
      t.is(dev.code, 0, dev.err);
      t.regex(dev.out, /^4\n(.*\n)*lo\n(.*\n)*ok\n$/);
      // The pod's loopback is up in its own network namespace.
      t.is((await sh(c.id, 'cat /sys/class/net/lo/operstate; hostname')).out, 'unknown\nuserns-basic\n');
      t.not(readlinkSync(`/proc/${c.pid}/ns/net`), readlinkSync('/proc/self/ns/net'));
    });

    test.serial('the pod network namespace is owned by its user namespace: CAP_NET_ADMIN there administers it', async (t) => {
      const { pod, sandbox } = await runPod(t, 'userns-netadmin');
      const c = await d.runContainer(pod, sandbox, 'admin', ['sleep', '3600'], withUserns(K8S, { capabilities: { add_capabilities: ['NET_ADMIN'], drop_capabilities: [] } }));
      const r = await sh(c.id, 'ip link set lo mtu 1400 && cat /sys/class/net/lo/mtu');
      t.is(r.code, 0, r.err);
      t.is(r.out.trim(), '1400');
    });

    test.serial('a second container (pid POD) and an exec join the same user namespace; a non-root user is mapped too', async (t) => {
      const { pod, sandbox } = await runPod(t, 'userns-two');
      const a = await d.runContainer(pod, sandbox, 'a', ['sleep', '3600'], withUserns(K8S));
      // b shares the pod's PID namespace (the kubelet's shareProcessNamespace): the pause helper is its PID 1.
      const b = await d.runContainer(pod, sandbox, 'b', ['sleep', '3600'], withUserns(K8S, { run_as_username: 'tester' }, { pid: 'POD' }));
      t.is(readlinkSync(`/proc/${a.pid}/ns/user`), readlinkSync(`/proc/${b.pid}/ns/user`));
      t.deepEqual(uidLine(b.pid), [HOST + 1000, HOST + 1000, HOST + 1000, HOST + 1000]);
      const ids = await sh(b.id, 'id -u; id -g; readlink /proc/self/ns/user');
      t.deepEqual(ids.out.trim().split('\n'), ['1000', '1000', readlinkSync(`/proc/${b.pid}/ns/user`)]);
      t.is((await sh(b.id, 'cat /proc/1/comm')).out.trim(), 'cri-mesos-launc');
      // The exec's own process is unprivileged on the host as well.
      const hostUid = await sh(a.id, 'cat /proc/self/status | grep ^Uid');
      t.regex(hostUid.out, /^Uid:\s+0\s+0\s+0\s+0$/m, 'inside: root');
      const exec = await sh(a.id, 'sleep 30 & echo $!');
      const inner = Number(exec.out.trim());
      t.true(inner > 0);
      // The exec's sleep is a process of the container: find it on the host by its namespace.
      const onHost = await waitFor('the exec sleep on the host', () => findByNs(readlinkSync(`/proc/${a.pid}/ns/pid`), 'sleep', a.pid));
      t.deepEqual(uidLine(onHost), [HOST, HOST, HOST, HOST]);
    });

    test.serial('CRI mounts are idmapped: the host root files show as root, writes land as the host root, foreign ids as nobody', async (t) => {
      const dir = await tempDir(t, 'cm-userns-');
      writeFileSync(join(dir, 'rootfile'), 'root\n');
      writeFileSync(join(dir, 'mapped'), 'mapped\n');
      chownSync(join(dir, 'mapped'), HOST, HOST);
      const { pod, sandbox } = await runPod(t, 'userns-mounts');
      const c = await d.runContainer(pod, sandbox, 'm', ['sleep', '3600'], {
        ...withUserns(K8S),
        mounts: [{ container_path: '/data', host_path: dir, readonly: false }],
      });
      const st = await sh(c.id, 'stat -c "%u:%g %n" /data /data/rootfile /data/mapped /etc/hosts /dev/shm');
      t.deepEqual(st.out.trim().split('\n'), ['0:0 /data', '0:0 /data/rootfile', `${NOBODY}:${NOBODY} /data/mapped`, '0:0 /etc/hosts', '0:0 /dev/shm']);
      // Root of the namespace writes through the idmapped mount as the host's root would.
      t.is((await sh(c.id, 'echo new > /data/created && mkdir /data/sub')).code, 0);
      t.deepEqual([statSync(join(dir, 'created')).uid, statSync(join(dir, 'created')).gid], [0, 0]);
      t.is(statSync(join(dir, 'sub')).uid, 0);
      // The host's files are the host's: a file of a foreign owner stays unwritable to the pod's root.
      const w = await sh(c.id, 'echo x >> /data/mapped');
      t.not(w.code, 0);
      t.is(readFileSync(join(dir, 'mapped'), 'utf8'), 'mapped\n');
    });

    test.serial('refused: mounts on a filesystem without idmapped mounts (FAILED_PRECONDITION naming the mount)', async (t) => {
      // An overlay cannot be idmapped itself (Linux 6.18 still): mount one as the CRI source.
      const ok = await tempDir(t, 'cm-userns-ok-');
      const dir = await tempDir(t, 'cm-userns-ovl-');
      for (const sub of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(dir, sub));
      native().mount('overlay', join(dir, 'merged'), 'overlay', 0, `lowerdir=${join(dir, 'lower')},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`);
      t.teardown(() => native().umount2(join(dir, 'merged'), MNT_DETACH));
      const { pod, sandbox } = await runPod(t, 'userns-noidmap');
      await grpcError(
        t,
        d.client.call('CreateContainer', {
          pod_sandbox_id: pod,
          config: {
            metadata: { name: 'x', attempt: 0 },
            image: { image: 'cri-mesos.test/busybox:latest' },
            command: ['true'],
            ...withUserns(K8S),
            mounts: [
              { container_path: '/ok', host_path: ok, readonly: true },
              { container_path: '/bad', host_path: join(dir, 'merged'), readonly: true },
            ],
          },
          sandbox_config: sandbox,
        }),
        9,
        /^mounts\[1\]\.host_path ".*merged": its filesystem \(overlay\) does not support idmapped mounts/,
      );
      // A mount under the source counts too (the bind is recursive): the message names it.
      await grpcError(
        t,
        d.client.call('CreateContainer', {
          pod_sandbox_id: pod,
          config: {
            metadata: { name: 'y', attempt: 0 },
            image: { image: 'cri-mesos.test/busybox:latest' },
            command: ['true'],
            ...withUserns(K8S),
            mounts: [{ container_path: '/parent', host_path: dir, readonly: true }],
          },
          sandbox_config: sandbox,
        }),
        9,
        /^mounts\[0\]\.host_path ".*": its filesystem \(ext4\) or one mounted under it \(overlay on .*merged\) does not support idmapped mounts/,
      );
      // Nothing of the container is left: its rootfs was removed.
      const list = await d.client.call('ListContainers', { filter: { pod_sandbox_id: pod } });
      t.is(list.containers.length, 0);
    });

    test.serial('refused: bad or mismatched user namespaces, host namespaces, unmapped users (INVALID_ARGUMENT naming the field)', async (t) => {
      const U = 'config\\.linux\\.security_context\\.namespace_options';
      // Pods.
      const pod = (name: string, userns: object, ns: Record<string, unknown> = {}, sc: Record<string, unknown> = {}) =>
        d.client.call('RunPodSandbox', { config: podConfig(name, withUserns(userns, sc, ns)) });
      await grpcError(t, pod('bad-len', { ...K8S, uids: [{ container_id: 0, host_id: HOST, length: 0 }] }), 3, new RegExp(`^${U}\\.userns_options\\.uids\\[0\\]\\.length must be greater than 0`));
      await grpcError(t, pod('no-gids', { ...K8S, gids: [] }), 3, new RegExp(`^${U}\\.userns_options\\.gids must not be empty with mode POD`));
      await grpcError(t, pod('target', { ...K8S, mode: 'TARGET' }), 3, new RegExp(`^${U}\\.userns_options\\.mode TARGET: unsupported user namespace mode`));
      await grpcError(t, pod('hostnet', K8S, { network: 'NODE' }), 3, new RegExp(`^${U}\\.userns_options: a user namespace \\(mode POD\\) cannot be used with ${U}\\.network NODE`));
      await grpcError(t, pod('unmapped', K8S, {}, { run_as_user: { value: 70000 } }), 3, /^config\.linux\.security_context\.run_as_user: uid 70000 is not mapped/);
      t.is((await d.client.call('ListPodSandbox', {})).items.length, 0, 'no pod was left behind');

      // Containers against their pods.
      const create = (p: { pod: string; sandbox: object }, name: string, userns: object | undefined, sc: Record<string, unknown> = {}) =>
        d.client.call('CreateContainer', {
          pod_sandbox_id: p.pod,
          config: { metadata: { name, attempt: 0 }, image: { image: 'cri-mesos.test/busybox:latest' }, command: ['true'], ...withUserns(userns, sc) },
          sandbox_config: p.sandbox,
        });
      const hostPod = await runPod(t, 'userns-hostpod', null);
      await grpcError(t, create(hostPod, 'asks', K8S), 3, /^config\.linux\.security_context\.namespace_options\.userns_options: the container asks for a user namespace \(mode POD\) but its pod \w+ runs in the host's/);
      const nsPod = await runPod(t, 'userns-nspod');
      await grpcError(t, create(nsPod, 'none', undefined), 3, /userns_options: pod \w+ runs in a user namespace; its containers must ask for it/);
      await grpcError(t, create(nsPod, 'node', { mode: 'NODE' }), 3, /userns_options: pod \w+ runs in a user namespace/);
      await grpcError(
        t,
        create(nsPod, 'other', { ...K8S, uids: [{ container_id: 0, host_id: 200000, length: SIZE }] }),
        3,
        /^config\.linux\.security_context\.namespace_options\.userns_options\.uids differ from the pod's \(0:100000:65536\)/,
      );
      await grpcError(t, create(nsPod, 'bigid', K8S, { run_as_user: { value: 70000 } }), 3, /^config\.linux\.security_context\.run_as_user: uid 70000 is not mapped in the pod's user namespace/);
      t.is((await d.client.call('ListContainers', {})).containers.length, 0, 'no container was left behind');
    });

    test.serial('in the user namespace too: pod sysctls, a terminal, oom_score_adj, readonly_rootfs, masked paths, a privileged container', async (t) => {
      const logDir = join(d.logDir, 'userns-more');
      const sysctls = { 'kernel.shm_rmid_forced': '1', 'net.ipv4.ip_unprivileged_port_start': '80' };
      const { pod, sandbox } = await runPod(t, 'userns-more', K8S, { log_directory: logDir, linux: { sysctls, ...withUserns(K8S).linux } });
      const c = await d.runContainer(pod, sandbox, 'more', ['sh', '-c', 'tty; exec sleep 3600'], {
        ...withUserns(K8S, { readonly_rootfs: true }),
        tty: true,
        linux: { ...withUserns(K8S, { readonly_rootfs: true }).linux, resources: { oom_score_adj: 500 } },
      });
      const r = await sh(c.id, 'cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/1/oom_score_adj; touch /x 2>&1; wc -c < /proc/timer_list; ls /proc/acpi | wc -l; echo end');
      t.is(r.out.split('\n')[0], '1');
      t.is(r.out.split('\n')[1], '80');
      t.is(r.out.split('\n')[2], '500');
      t.regex(r.out, /Read-only file system/);
      t.regex(r.out, /^0\n0\nend\n$/m, 'timer_list and /proc/acpi are masked');
      const log = await waitFor('the tty line in the log', () => {
        const text = existsSync(join(logDir, 'more', '0.log')) ? readFileSync(join(logDir, 'more', '0.log'), 'utf8') : '';
        return /\/dev\/pts\/\d+/.test(text) ? text : undefined;
      });
      t.regex(log, /stdout F \/dev\/pts\/\d+/);
      // A privileged container of a privileged pod (its own: sysfs' read-only flag is its
      // superblock's, shared by a pod's containers): the host's devices bound in, /sys writable,
      // every capability, in the namespace only.
      const priv = await runPod(t, 'userns-priv', K8S, { linux: withUserns(K8S, { privileged: true }).linux });
      const p = await d.runContainer(priv.pod, priv.sandbox, 'priv', ['sleep', '3600'], withUserns(K8S, { privileged: true }));
      const pr = await sh(p.id, 'test -c /dev/kmsg && grep ^CapEff /proc/self/status && grep -q " /sys sysfs rw" /proc/self/mounts && echo sys-rw');
      t.is(pr.code, 0, pr.out + pr.err);
      t.regex(pr.out, /CapEff:\s+0000[0-9a-f]+\nsys-rw\n$/);
      t.deepEqual(uidLine(p.pid), [HOST, HOST, HOST, HOST]);
      // Its capabilities are the namespace's, not the host's: the kernel log wants CAP_SYSLOG of the host.
      t.not((await sh(p.id, 'head -c1 /dev/kmsg')).code, 0);
    });

    test.serial('RemovePodSandbox removes the pinned user namespace and the container rootfs', async (t) => {
      const sandbox = podConfig('userns-remove', withUserns(K8S));
      const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
      const c = await d.runContainer(pod, sandbox, 'r', ['sleep', '3600'], withUserns(K8S));
      const pin = join(d.runtimeDir, 'containers', pod, 'userns');
      t.true(existsSync(pin));
      t.true(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${pin} `), 'the namespace is pinned by a mount');
      await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
      await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
      t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${pin} `));
      t.false(existsSync(pin));
      t.false(existsSync(join(d.workDir, 'provisioner', c.id)));
    });

    test.serial('after a kill -9 of the daemon the pod keeps its namespace: exec joins it, remove unpins it', async (t) => {
      const sandbox = podConfig('userns-restart', withUserns(K8S));
      const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
      const c = await d.runContainer(pod, sandbox, 'r', ['sleep', '3600'], withUserns(K8S));
      await d.kill9();
      await d.launch();
      const r = await sh(c.id, 'cat /proc/self/uid_map; id -u');
      t.is(r.code, 0, r.err);
      t.is(r.out.trim().split(/\s+/).join(' '), `0 ${HOST} ${SIZE} 0`);
      t.deepEqual(uidLine(c.pid), [HOST, HOST, HOST, HOST], 'the same container');
      const pin = join(d.runtimeDir, 'containers', pod, 'userns');
      await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
      await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
      t.false(existsSync(pin));
      t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${pin} `));
    });

    test.serial('CNI: the pod gets an address in a network namespace its user namespace owns, and reaches the bridge', async (t) => {
      const cni = new TestDaemon({ cni: true, prefix: 'cm-userns-cni' });
      t.teardown(() => cni.teardown());
      await cni.init();
      const sandbox = podConfig('userns-cni', withUserns(K8S));
      const { pod_sandbox_id: pod } = await cni.client.call('RunPodSandbox', { config: sandbox });
      const status = await cni.client.call('PodSandboxStatus', { pod_sandbox_id: pod });
      const ip: string = status.status.network.ip;
      t.true(ip.startsWith(`${TEST_SUBNET}.`), ip);
      const c = await cni.runContainer(pod, sandbox, 'net', ['sleep', '3600'], withUserns(K8S));
      const r = await cni.client.call('ExecSync', { container_id: c.id, cmd: ['sh', '-c', `ip -4 addr show eth0; ping -c 1 -W 5 ${TEST_SUBNET}.1 >/dev/null && echo reached`], timeout: 15 });
      const out = Buffer.from(r.stdout).toString();
      t.is(r.exit_code, 0, Buffer.from(r.stderr).toString());
      t.true(out.includes(`inet ${ip}/`), out);
      t.regex(out, /reached/);
      t.deepEqual(uidLine(c.pid), [HOST, HOST, HOST, HOST]);
      await cni.client.call('StopPodSandbox', { pod_sandbox_id: pod });
      await cni.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    });
  }
}

/** A file named `rel` under some directory of `root` (the image store's layer dirs), searched breadth-first. */
function findFile(root: string, rel: string): string | undefined {
  const queue = [root];
  for (let n = 0; queue.length && n < 500; n++) {
    const dir = queue.shift()!;
    if (existsSync(join(dir, rel))) return join(dir, rel);
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) queue.push(join(dir, e.name));
  }
  return undefined;
}

/** A process on the host in the PID namespace `pidNs` whose comm is `comm`, other than `not`. */
function findByNs(pidNs: string, comm: string, not: number): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === not) continue;
    try {
      if (readlinkSync(`/proc/${name}/ns/pid`) !== pidNs) continue;
      if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() === comm) return Number(name);
    } catch {
      // gone
    }
  }
  return undefined;
}
