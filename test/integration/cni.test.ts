// Pod networking through CNI (the network/cni isolator), with Debian's plugins from /usr/lib/cni.
// The daemon runs inside a network namespace this test made (TestDaemon option `cni`): the
// bridge, the iptables rules of portmap, the IPs and the host ports all live in it and die
// with it. The conflist is bridge + host-local (10.88.0.0/24) + portmap + loopback.
import test from 'ava';
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
