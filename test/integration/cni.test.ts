// Pod networking through CNI (the network/cni isolator), with Debian's plugins from /usr/lib/cni.
// The daemon runs inside a network namespace this test made (TestDaemon option `cni`): the
// bridge, the iptables rules of portmap, the IPs and the host ports all live in it and die
// with it. The conflist is bridge + host-local (10.88.0.0/24) + portmap + loopback.
import test, { type ExecutionContext } from 'ava';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as grpcStatus } from '@grpc/grpc-js';
import { FAULT_POINTS } from '../../src/fault.js';
import { containersDir, cniStateDir } from '../../src/paths.js';
import { TEST_SUBNET, podConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

const d = useDaemon('CNI networking tests', { cni: true });
if (d) {
  const netName = 'cri-mesos-test';
  /** IPs host-local holds (files named by address in its store). */
  const leasedIps = () => {
    const dir = join(d.ipamDir, netName);
    return existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
  };
  const netnsMounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(d.runtimeDir) && l.includes('netns'));
  const networkReady = async () => {
    const s = await d.client.call('Status', {});
    return s.status.conditions.find((c: { type: string }) => c.type === 'NetworkReady') as { status: boolean; reason: string; message: string };
  };
  const runPod = async (name: string, extra: Record<string, unknown> = {}) => {
    const config = podConfig(name, extra);
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config });
    return { pod: pod as string, config };
  };
  const podIp = async (pod: string) => (await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod })).status.network.ip as string;
  const removePod = (pod: string) => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }, 30_000);
  const exec = async (ctr: string, cmd: string[]) => {
    const r = await d.client.call('ExecSync', { container_id: ctr, cmd, timeout: 10 });
    return { code: r.exit_code as number, out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString() };
  };
  /** A TCP server in the container answering every connection with `text`. */
  const server = (port: number, text: string) => ['sh', '-c', `while true; do echo ${text} | nc -l -p ${port}; done`];

  test.serial('NetworkReady is true with a valid conflist', async (t) => {
    const c = await waitFor('NetworkReady', async () => ((await networkReady()).status ? networkReady() : undefined));
    t.true(c.status);
  });

  test.serial('a pod gets an IP (PodSandboxStatus), dns_config in resolv.conf, two containers talk over localhost', async (t) => {
    const dns = { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5'] };
    const { pod, config } = await runPod('net-a', { dns_config: dns });
    t.teardown(() => removePod(pod).catch(() => undefined));
    const ip = await podIp(pod);
    t.regex(ip, new RegExp(`^${TEST_SUBNET.replaceAll('.', '\\.')}\\.\\d+$`));
    const srv = await d.runContainer(pod, config, 'srv', server(8080, 'hello-localhost'));
    const cli = await d.runContainer(pod, config, 'cli', ['sleep', '1000']);
    // The container sees the address on eth0 of the pod's namespace.
    t.true((await exec(cli.id, ['ip', 'addr', 'show', 'eth0'])).out.includes(`inet ${ip}/24`));
    const resolv = (await exec(cli.id, ['cat', '/etc/resolv.conf'])).out;
    t.is(resolv, 'nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n');
    const got = await waitFor('the server over localhost', async () => {
      const r = await exec(cli.id, ['sh', '-c', 'nc -w 2 127.0.0.1 8080 </dev/null']);
      return r.out.includes('hello-localhost') ? r.out : undefined;
    });
    t.true(got.includes('hello-localhost'));
    void srv;
  });

  test.serial('two pods reach each other by IP', async (t) => {
    const a = await runPod('net-server');
    const b = await runPod('net-client');
    t.teardown(async () => {
      await removePod(a.pod).catch(() => undefined);
      await removePod(b.pod).catch(() => undefined);
    });
    const ipA = await podIp(a.pod);
    const ipB = await podIp(b.pod);
    t.not(ipA, ipB);
    await d.runContainer(a.pod, a.config, 'srv', server(9000, 'hello-from-a'));
    const cli = await d.runContainer(b.pod, b.config, 'cli', ['sleep', '1000']);
    const out = await waitFor('pod b to reach pod a', async () => {
      const r = await exec(cli.id, ['sh', '-c', `nc -w 2 ${ipA} 9000 </dev/null`]);
      return r.out.includes('hello-from-a') ? r.out : undefined;
    });
    t.true(out.includes('hello-from-a'));
  });

  test.serial('a hostPort answers at the daemon namespace address and on 127.0.0.1', async (t) => {
    // An address of the daemon's own namespace, on a veth pair made in it (no dummy module here).
    d.inNetns(['ip', 'link', 'add', 'nodeif0', 'type', 'veth', 'peer', 'name', 'nodeif1']);
    d.inNetns(['ip', 'addr', 'add', '192.168.77.1/24', 'dev', 'nodeif0']);
    d.inNetns(['ip', 'link', 'set', 'nodeif0', 'up']);
    d.inNetns(['ip', 'link', 'set', 'nodeif1', 'up']);
    t.teardown(() => d.inNetns(['ip', 'link', 'del', 'nodeif0']));
    const { pod, config } = await runPod('net-hostport', { port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: 18080, host_ip: '' }] });
    t.teardown(() => removePod(pod).catch(() => undefined));
    await d.runContainer(pod, config, 'srv', server(80, 'hello-hostport'));
    for (const host of ['192.168.77.1', '127.0.0.1']) {
      const out = await waitFor(`hostPort at ${host}`, () => {
        try {
          const o = d.inNetns(['busybox', 'sh', '-c', `busybox nc -w 2 ${host} 18080 </dev/null`]);
          return o.includes('hello-hostport') ? o : undefined;
        } catch {
          return undefined;
        }
      });
      t.true(out.includes('hello-hostport'), host);
    }
    // The mapping is portmap's: its DNAT chain exists in the daemon's namespace only.
    t.regex(d.inNetns(['iptables', '-t', 'nat', '-S']), /--dport 18080/);
    await removePod(pod);
    t.notRegex(d.inNetns(['iptables', '-t', 'nat', '-S']), /--dport 18080/);
  });

  test.serial('100 pods get 100 distinct IPs, all released after removal', async (t) => {
    const pods: string[] = [];
    t.teardown(async () => {
      for (const p of pods) await removePod(p).catch(() => undefined);
    });
    for (let i = 0; i < 100; i++) pods.push((await runPod(`many-${i}`)).pod);
    const ips = await Promise.all(pods.map(podIp));
    t.is(new Set(ips).size, 100);
    t.true(ips.every((ip) => ip.startsWith(`${TEST_SUBNET}.`)));
    t.is(leasedIps().length, 100);
    for (let i = 0; i < pods.length; i += 10) await Promise.all(pods.slice(i, i + 10).map(removePod));
    pods.length = 0;
    t.deepEqual(leasedIps(), []);
    t.deepEqual(netnsMounts(), []);
    t.deepEqual(existsSync(cniStateDir(d.workDir)) ? readdirSync(cniStateDir(d.workDir)) : [], []);
  });

  test.serial('NetworkReady turns false when the config goes and true when it is back; a broken conflist names the problem', async (t) => {
    const file = join(d.cniConfDir, '10-test.conflist');
    const aside = join(d.dir, 'conflist.aside');
    t.teardown(() => {
      if (!existsSync(file)) writeFileSync(file, d.testConflist());
      rmSync(aside, { force: true });
    });
    renameSync(file, aside);
    const gone = await waitFor('NetworkReady false', async () => {
      const c = await networkReady();
      return c.status ? undefined : c;
    });
    t.is(gone.reason, 'NoCNIConfig');
    t.true(gone.message.includes(d.cniConfDir));
    renameSync(aside, file);
    await waitFor('NetworkReady true again', async () => (await networkReady()).status);
    // Broken: bad JSON, then a plugin that does not exist.
    writeFileSync(file, '{"cniVersion": "1.0.0", "name": ');
    const broken = await waitFor('NetworkReady false (bad JSON)', async () => {
      const c = await networkReady();
      return c.status ? undefined : c;
    });
    t.is(broken.reason, 'InvalidCNIConfig');
    t.regex(broken.message, /10-test\.conflist: invalid JSON/);
    writeFileSync(file, JSON.stringify({ cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'no-such-plugin' }] }));
    const missing = await waitFor('NetworkReady false (missing plugin)', async () => {
      const c = await networkReady();
      return !c.status && c.message.includes('no-such-plugin') ? c : undefined;
    });
    t.regex(missing.message, /no executable "no-such-plugin" in \/usr\/lib\/cni/);
    writeFileSync(file, d.testConflist());
    await waitFor('NetworkReady true again', async () => (await networkReady()).status);
  });

  test.serial('a recovered pod whose network is broken (CHECK fails) is NOTREADY with the reason', async (t) => {
    const { pod } = await runPod('net-check');
    t.teardown(() => removePod(pod).catch(() => undefined));
    await d.kill9();
    // Break the pod's network behind the daemon's back: its eth0 goes.
    const netns = join(containersDir(d.runtimeDir), pod, 'netns');
    d.inNetns(['nsenter', `--net=${netns}`, 'ip', 'link', 'del', 'eth0']);
    await d.launch();
    const s = await waitFor('the pod NOTREADY', async () => {
      const r = await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true });
      return r.status.state === 'SANDBOX_NOTREADY' ? r : undefined;
    });
    t.regex(JSON.parse(s.info.info).networkProblem, /CNI CHECK of network cri-mesos-test failed/);
    await removePod(pod);
    t.deepEqual(leasedIps(), []);
  });

  test.serial('an ADD that fails half-way is undone: the error names the plugin, DEL frees the IP, nothing is left', async (t) => {
    // bridge + host-local take an IP, then tuning fails on a sysctl that does not exist.
    const file = join(d.cniConfDir, '10-test.conflist');
    const good = d.testConflist();
    const list = JSON.parse(good) as { plugins: object[] };
    list.plugins.splice(1, 0, { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.no_such_key': '1' } });
    writeFileSync(file, JSON.stringify(list));
    t.teardown(() => writeFileSync(file, good));
    // The watcher has it once the tuning plugin was asked for its versions: wait for a pod to fail on it.
    const err = await waitFor('a pod to fail in tuning', async () => {
      try {
        const { pod } = await runPod(`net-tuning-${Date.now()}`);
        await removePod(pod);
        return undefined;
      } catch (e) {
        return String((e as Error).message).includes('tuning') ? (e as { code: number; details: string }) : undefined;
      }
    });
    t.regex(err.details, /tuning/);
    t.regex(err.details, /no_such_key/);
    t.deepEqual((await d.client.call('ListPodSandbox', {})).items, []);
    await waitFor('no IP held', () => leasedIps().length === 0 || undefined, 15_000);
    t.deepEqual(netnsMounts(), []);
    t.deepEqual(readdirSync(containersDir(d.runtimeDir)), []);
    t.deepEqual(existsSync(cniStateDir(d.workDir)) ? readdirSync(cniStateDir(d.workDir)) : [], []);
  });

  const useConflist = (t: ExecutionContext, list: { plugins: object[] }) => d.useConflist(t, list);
  /** The test conflist with `change` applied to a copy of it. */
  const conflistWith = (change: (list: { plugins: Record<string, unknown>[] }) => void) => {
    const list = JSON.parse(d.testConflist());
    change(list);
    return list;
  };
  /** The name of a daemon-namespace link by its index. */
  const linkName = (index: number) => {
    const links = JSON.parse(d.inNetns(['ip', '-j', 'link', 'show'])) as { ifindex: number; ifname: string; link_type: string }[];
    return links.find((l) => l.ifindex === index)?.ifname;
  };
  const qdiscs = (dev: string) =>
    JSON.parse(d.inNetns(['tc', '-j', 'qdisc', 'show', 'dev', dev])) as { kind: string; handle: string; options?: { rate?: number; burst?: number } }[];

  test.serial('bandwidth plugin: the ingress/egress-bandwidth annotations become tbf qdiscs (host veth for ingress, an ifb for egress), gone with the pod', async (t) => {
    await useConflist(t, conflistWith((l) => l.plugins.push({ type: 'bandwidth', capabilities: { bandwidth: true } })));
    const { pod, config } = await runPod('net-bw', {
      annotations: { 'kubernetes.io/ingress-bandwidth': '1M', 'kubernetes.io/egress-bandwidth': '2M' },
    });
    t.teardown(() => removePod(pod).catch(() => undefined));
    const ctr = await d.runContainer(pod, config, 'c', ['sleep', '1000']);
    // The host side of the pod's veth: eth0's peer, by the index the container sees.
    const peer = Number((await exec(ctr.id, ['cat', '/sys/class/net/eth0/iflink'])).out.trim());
    const veth = linkName(peer);
    t.truthy(veth, `no link ${peer} in the daemon's namespace`);
    // Ingress (towards the pod) is shaped where it leaves the host: a tbf on the host veth.
    const ingress = qdiscs(veth!).find((q) => q.kind === 'tbf');
    t.truthy(ingress, JSON.stringify(qdiscs(veth!)));
    t.is(ingress?.options?.rate, 1_000_000 / 8); // tc -j gives bytes per second
    // Egress (from the pod) arrives on the host veth's ingress and is redirected to an ifb,
    // which carries the other tbf.
    const filters = d.inNetns(['tc', 'filter', 'show', 'dev', veth!, 'parent', 'ffff:']);
    const ifb = /Redirect to device (\S+)\)/.exec(filters)?.[1];
    t.truthy(ifb, filters);
    t.regex(d.inNetns(['ip', '-d', 'link', 'show', ifb!]), /\bifb\b/);
    const egress = qdiscs(ifb!).find((q) => q.kind === 'tbf');
    t.truthy(egress, JSON.stringify(qdiscs(ifb!)));
    t.is(egress?.options?.rate, 2_000_000 / 8);
    t.regex(d.inNetns(['tc', 'qdisc', 'show', 'dev', ifb!]), /tbf .* rate 2Mbit/);
    t.regex(d.inNetns(['tc', 'qdisc', 'show', 'dev', veth!]), /tbf .* rate 1Mbit/);
    await removePod(pod);
    t.notRegex(d.inNetns(['ip', 'link', 'show']), new RegExp(`\\b${ifb}\\b`));
  });

  test.serial('dual-stack: host-local with an IPv4 and an IPv6 range; ip is the IPv4, additional_ips the IPv6; the container has both on eth0 and answers on both', async (t) => {
    const v6Subnet = 'fd00:10:88::';
    await useConflist(
      t,
      conflistWith((l) => {
        const bridge = l.plugins[0] as { ipam: { ranges: unknown[]; routes: unknown[] } };
        bridge.ipam.ranges.push([{ subnet: `${v6Subnet}/64` }]);
        bridge.ipam.routes.push({ dst: '::/0' });
      }),
    );
    const { pod, config } = await runPod('net-dual');
    t.teardown(() => removePod(pod).catch(() => undefined));
    const net = (await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod })).status.network;
    t.regex(net.ip, new RegExp(`^${TEST_SUBNET.replaceAll('.', '\\.')}\\.\\d+$`));
    t.is(net.additional_ips.length, 1);
    const v6 = net.additional_ips[0].ip as string;
    t.true(v6.startsWith(v6Subnet), v6);
    await d.runContainer(pod, config, 'srv', server(8080, 'hello-dual'));
    const addr = (await exec((await d.runContainer(pod, config, 'cli', ['sleep', '1000'])).id, ['ip', 'addr', 'show', 'eth0'])).out;
    t.true(addr.includes(`inet ${net.ip}/24`), addr);
    t.true(addr.includes(`inet6 ${v6}/64`), addr);
    // The pod answers from the daemon's namespace (the bridge's side) on both addresses.
    for (const host of [net.ip, v6]) {
      const out = await waitFor(`the pod at ${host}`, () => {
        try {
          const o = d.inNetns(['busybox', 'sh', '-c', `busybox nc -w 2 ${host} 8080 </dev/null`]);
          return o.includes('hello-dual') ? o : undefined;
        } catch {
          return undefined;
        }
      });
      t.true(out.includes('hello-dual'), host);
    }
    // host-local frees both addresses.
    await removePod(pod);
    const leases = readdirSync(join(d.ipamDir, netName));
    t.false(leases.includes(v6), leases.join(' '));
    t.false(leases.includes(net.ip), leases.join(' '));
  });

  test.serial("namespaced net.* sysctls are set in the pod's network namespace, not the daemon's; NODE pods may not set them", async (t) => {
    const sysctls = { 'net.ipv4.ip_unprivileged_port_start': '80', 'net.ipv4.ping_group_range': '0 2147483647' };
    const ns = (network: string) => ({ security_context: { namespace_options: { network, pid: 'CONTAINER', ipc: 'POD' } } });
    const outside = () => ({
      port: d.inNetns(['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start']).trim(),
      ping: d.inNetns(['cat', '/proc/sys/net/ipv4/ping_group_range']).trim(),
    });
    const before = outside();
    t.not(before.port, '80');
    const { pod, config } = await runPod('net-sysctl', { linux: { sysctls, ...ns('POD') } });
    t.teardown(() => removePod(pod).catch(() => undefined));
    const c = await d.runContainer(pod, config, 'c', ['sleep', '1000']);
    t.is((await exec(c.id, ['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start'])).out.trim(), '80');
    t.is((await exec(c.id, ['cat', '/proc/sys/net/ipv4/ping_group_range'])).out.trim().split(/\s+/).join(' '), '0 2147483647');
    // The pod's namespace is the CNI one (it has eth0), and the daemon's keeps its values.
    t.true((await exec(c.id, ['ip', 'addr', 'show', 'eth0'])).out.includes(`inet ${await podIp(pod)}/`));
    t.deepEqual(outside(), before);
    // A host-network pod would write the node's values: refused, naming the field, and nothing runs.
    const err = (await t.throwsAsync(d.client.call('RunPodSandbox', { config: podConfig('net-sysctl-node', { linux: { sysctls, ...ns('NODE') } }) }))) as unknown as {
      code: number;
      details: string;
    };
    t.is(err.code, grpcStatus.INVALID_ARGUMENT, err.details);
    t.regex(err.details, /config\.linux\.sysctls\["net\.ipv4\.[a-z_]+"\].*namespace_options\.network is NODE/);
    t.deepEqual(outside(), before);
    t.false(((await d.client.call('ListPodSandbox', {})).items as { metadata: { name: string } }[]).some((p) => p.metadata.name === 'net-sysctl-node'));
  });

  // kill -9 at each CNI fault point (the others are walked by fault-injection.test.ts), then
  // as a kubelet: restart, retry, remove. The restarted daemon runs the DEL; no IP leaks.
  for (const point of FAULT_POINTS.filter((p) => p.startsWith('cni-'))) {
    test.serial(`kill -9 at ${point}: the restarted daemon runs DEL, host-local keeps no IP, nothing is left`, async (t) => {
      d.setEnv({ CRI_MESOS_FAULT: point });
      await d.kill9();
      await d.launch();
      const name = `fault-${point.replace(/[^a-z]/g, '-')}`;
      let pod: string | undefined;
      try {
        pod = (await runPod(name)).pod;
        await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
        t.fail(`${point} was not reached`);
      } catch (err) {
        t.true([grpcStatus.UNAVAILABLE, grpcStatus.CANCELLED, grpcStatus.INTERNAL].includes((err as { code: number }).code), String(err));
      }
      await waitFor('the daemon to die', () => d.exited(), 5000);
      t.true(d.logs().includes(`fault injection: SIGKILL at ${point}`));
      d.setEnv(undefined);
      await d.launch();
      // A pod whose ADD never answered is destroyed in the background (its DEL included).
      if (point.startsWith('cni-add')) await waitFor('no IP left after recovery', () => leasedIps().length === 0 || undefined, 15_000);
      for (const p of (await d.client.call('ListPodSandbox', {})).items) await removePod(p.id);
      t.deepEqual(leasedIps(), [], point);
      t.deepEqual(netnsMounts(), [], point);
      t.deepEqual(readdirSync(containersDir(d.runtimeDir)), [], point);
      t.deepEqual(existsSync(cniStateDir(d.workDir)) ? readdirSync(cniStateDir(d.workDir)) : [], [], point);
    });
  }
}
