// Docker pods' networking and streaming, against a real dockerd of this file's own: the daemon
// AND that dockerd run in a network namespace this test made (TestDaemon `cni`), so bridges,
// IPs, iptables rules and ports (host network pods included) stay there. Exec, Attach and
// PortForward go over the stream server as kubelet drives them (test/helpers/stream-client.ts).
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, Socket, type Server } from 'node:net';
import { native } from '../../src/native/index.js';
import { TEST_SUBNET, TestDaemon, containerConfig, isRoot, podConfig, waitFor } from '../helpers/daemon.js';
import { dockerCniStateDir } from '../../src/paths.js';
import { DOCKER_BUSYBOX, TestDockerd } from '../helpers/dockerd.js';
import { collect, exitCodeOf, spdyExec, spdyPortForward, wsExec, type ExecClient } from '../helpers/stream-client.js';

const usable = isRoot() && TestDockerd.available();
if (!usable) test.skip('docker tests need root and dockerd (hack/deps.sh --test installs docker.io)', () => {});

function dockerPod(name: string, logDir: string, network: 'NODE' | 'POD' = 'NODE', extra: Record<string, unknown> = {}) {
  return podConfig(name, { linux: { security_context: { namespace_options: { network, pid: 'POD', ipc: 'POD' } } }, ...extra }, logDir);
}

function dockerCtr(name: string, command: string[], extra: Record<string, unknown> = {}) {
  return containerConfig(name, command, { image: { image: DOCKER_BUSYBOX }, ...extra });
}

/** Text of a stream as it arrives; until() waits for a pattern. */
function watch(r: Readable | null | undefined) {
  let text = '';
  r?.on('data', (b: Buffer) => (text += b.toString()));
  return { text: () => text, until: (re: RegExp) => waitFor(`${re} in ${JSON.stringify(text.slice(-200))}`, () => re.test(text), 15_000) };
}

const finish = async (c: ExecClient) => {
  const [out, err, st] = await Promise.all([c.stdout ? collect(c.stdout) : Buffer.alloc(0), c.stderr ? collect(c.stderr) : Buffer.alloc(0), c.status]);
  return { out: out.toString(), err: err.toString(), code: exitCodeOf(st), status: st };
};

let dockerd: TestDockerd | undefined;
let d: TestDaemon;

/**
 * The stream server listens on 127.0.0.1 inside the daemon's namespace: a proxy on this
 * namespace's loopback connects each client into it (the addon's connectInNetns).
 */
const proxies = new Map<number, Promise<number>>();
const servers: Server[] = [];
function viaProxy(url: string): Promise<string> {
  const u = new URL(url);
  const inner = Number(u.port);
  if (!proxies.has(inner)) {
    proxies.set(
      inner,
      new Promise((resolve) => {
        const srv = createServer((client) => {
          client.pause();
          native()
            .connectInNetns(`/run/netns/${d.netnsName}`, inner)
            .then((fd) => {
              const up = new Socket({ fd, readable: true, writable: true });
              up.on('error', () => client.destroy());
              client.on('error', () => up.destroy());
              client.pipe(up).pipe(client);
              client.resume();
            })
            .catch(() => client.destroy());
        });
        servers.push(srv);
        srv.listen(0, '127.0.0.1', () => resolve((srv.address() as { port: number }).port));
      }),
    );
  }
  return proxies.get(inner)!.then((p) => {
    u.port = String(p);
    return u.toString();
  });
}

if (usable) {
  d = new TestDaemon({ prefix: 'cm-docknet', cni: true, netnsPrefix: 'cm-docknet' });
  test.serial.before(async () => {
    d.makeNetns();
    dockerd = await TestDockerd.start('cm-docknet-dockerd', { netns: `/run/netns/${d.netnsName}` });
    await d.init({ flags: ['--containerizers', 'mesos,docker', '--docker-host', dockerd.host] });
  });
  test.afterEach.always((t) => {
    if (!t.passed) t.log(d.logs().split('\n').slice(-40).join('\n'));
  });
  test.after.always(async () => {
    for (const s of servers) s.close();
    await d.teardown();
    await dockerd?.stopAndCheck();
  });

  const run = async (pod: string, sandbox: object, name: string, command: string[], extra: Record<string, unknown> = {}) => {
    const { container_id: id } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: dockerCtr(name, command, extra), sandbox_config: sandbox });
    await d.client.call('StartContainer', { container_id: id });
    await waitFor(`container ${name} to run`, async () => (await d.client.call('ContainerStatus', { container_id: id })).status.state === 'CONTAINER_RUNNING', 15_000);
    return id as string;
  };

  // ---- streaming -------------------------------------------------------------------------

  test.serial('docker pod: Exec with stdout, stderr, stdin and exit code; a tty exec resizes; Attach and PortForward', async (t) => {
    const cfg = dockerPod('streams', join(d.logDir, 'streams'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    t.teardown(() => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined));
    const ticker = await run(pod, cfg, 'ticker', ['sh', '-c', 'i=0; while true; do echo tick $i; echo tock $i >&2; i=$((i+1)); sleep 0.2; done']);
    const execUrl = async (cmd: string[], o: { stdin?: boolean; stdout?: boolean; stderr?: boolean; tty?: boolean }, container = ticker) =>
      viaProxy((await d.client.call('Exec', { container_id: container, cmd, stdin: !!o.stdin, stdout: o.stdout ?? true, stderr: o.stderr ?? !o.tty, tty: !!o.tty })).url as string);

    // stdout, stderr, exit code 7; 0 for true.
    const r = await finish(await spdyExec(await execUrl(['sh', '-c', 'echo out; echo err >&2; exit 7'], {}), { stdout: true, stderr: true }));
    t.is(r.out, 'out\n');
    t.is(r.err, 'err\n');
    t.is(r.code, 7);
    t.is((await finish(await spdyExec(await execUrl(['true'], {}), { stdout: true, stderr: true }))).code, 0);
    // A command the image does not have: the Engine's error, not a success.
    t.not((await finish(await spdyExec(await execUrl(['no-such-command-x'], {}), { stdout: true, stderr: true }))).code, 0);

    // stdin over both transports, closing it is EOF.
    for (const transport of ['spdy', 'websocket'] as const) {
      const url = await execUrl(['sh', '-c', 'cat; echo after-eof'], { stdin: true });
      const c = transport === 'spdy' ? await spdyExec(url, { stdin: true, stdout: true, stderr: true }) : await wsExec(url, { stdin: true, stdout: true, stderr: true });
      const payload = randomBytes(200_000).toString('hex');
      c.stdin!.end(payload);
      const s = await finish(c);
      t.is(s.out, payload + 'after-eof\n', transport);
      t.is(s.code, 0, transport);
    }

    // tty: a terminal, its size from the resize stream, exit code 3.
    const tc = await spdyExec(await execUrl(['sh'], { stdin: true, tty: true }), { stdin: true, stdout: true, tty: true });
    const tout = watch(tc.stdout);
    tc.resize(123, 45);
    await sleep(300);
    tc.stdin!.write('tty; stty size; exit 3\n');
    await tout.until(/45 123/);
    t.regex(tout.text(), /\/dev\/pts\/\d+/);
    t.is(exitCodeOf(await tc.status), 3);

    // Attach to the logging container: both streams; detaching leaves it running.
    const aurl = await viaProxy((await d.client.call('Attach', { container_id: ticker, stdout: true, stderr: true })).url as string);
    const a = await spdyExec(aurl, { stdout: true, stderr: true });
    const [ao, ae] = [watch(a.stdout), watch(a.stderr)];
    await Promise.all([ao.until(/tick \d+/), ae.until(/tock \d+/)]);
    a.close();
    await sleep(300);
    t.is((await d.client.call('ContainerStatus', { container_id: ticker })).status.state, 'CONTAINER_RUNNING');

    // PortForward to busybox httpd (the pod is on the node network: the test's namespace).
    const port = 20000 + randomBytes(2).readUInt16BE() % 20000;
    await run(pod, cfg, 'web', ['httpd', '-f', '-p', String(port), '-h', '/etc']);
    const pf = await spdyPortForward(await viaProxy((await d.client.call('PortForward', { pod_sandbox_id: pod, port: [] })).url as string));
    t.teardown(() => pf.close());
    let body = '';
    for (let i = 0; i < 50 && !/^HTTP\/1\.[01] 200/.test(body); i++) {
      const c = await pf.open(port);
      const got = collect(c.data);
      c.data.end('GET /hostname HTTP/1.0\r\n\r\n');
      body = (await got).toString();
      if (!body) await sleep(100);
    }
    t.regex(body, /^HTTP\/1\.[01] 200/);
    const big = randomBytes(4 * 1024 * 1024);
    await run(pod, cfg, 'echo', ['sh', '-c', `while true; do nc -l -p ${port + 1} -e cat; done`]);
    let conn;
    for (let i = 0; ; i++) {
      conn = await pf.open(port + 1);
      const probe = await Promise.race([conn.error.then((e) => e), sleep(500).then(() => '')]);
      if (!probe) break;
      if (i > 20) throw new Error(`echo server never listened: ${probe}`);
      await sleep(200);
    }
    const back = collect(conn.data);
    conn.data.end(big);
    t.is(createHash('sha256').update(await back).digest('hex'), createHash('sha256').update(big).digest('hex'));
  });

  test.serial('docker pod: Attach with stdin to a tty container; stdin_once closes stdin when the attach ends', async (t) => {
    const cfg = dockerPod('attach', join(d.logDir, 'attach'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    t.teardown(() => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined));
    const tty = await run(pod, cfg, 'tty', ['sh'], { tty: true, stdin: true });
    const c = await spdyExec(await viaProxy((await d.client.call('Attach', { container_id: tty, stdin: true, stdout: true, tty: true })).url as string), { stdin: true, stdout: true, tty: true });
    const out = watch(c.stdout);
    c.resize(77, 22);
    await sleep(300);
    c.stdin!.write('echo attached-$((6*7)); stty size\n');
    await out.until(/attached-42/);
    await out.until(/22 77/);
    c.close();
    const st = (await d.client.call('ContainerStatus', { container_id: tty })).status;
    await waitFor('the log to carry the output', () => readFileSync(st.log_path, 'utf8').includes('attached-42'), 10_000);

    const once = await run(pod, cfg, 'once', ['sh', '-c', 'cat; echo stdin-closed; exit 4'], { stdin: true, stdin_once: true });
    const o = await spdyExec(await viaProxy((await d.client.call('Attach', { container_id: once, stdin: true, stdout: true, stderr: true })).url as string), { stdin: true, stdout: true, stderr: true });
    const oo = watch(o.stdout);
    o.stdin!.write('first-line\n');
    await oo.until(/first-line/);
    o.stdin!.end();
    const ost = await d.waitExited(once);
    t.is(ost.exit_code, 4);
    await waitFor('the log to carry stdin-closed', () => readFileSync(ost.log_path, 'utf8').includes('stdin-closed'), 10_000);
    o.close();
  });

  // ---- CNI networking --------------------------------------------------------------------

  const netName = 'cri-mesos-test';
  /** IPs host-local holds (files named by address in its store). */
  const leasedIps = () => {
    const dir = join(d.ipamDir, netName);
    return existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
  };
  const netnsMounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(d.runtimeDir) && l.includes('netns'));
  const dockerCniState = () => (existsSync(dockerCniStateDir(d.workDir)) ? readdirSync(dockerCniStateDir(d.workDir)) : []);
  const podIp = async (pod: string) => (await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod })).status.network.ip as string;
  const removePod = (pod: string) => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }, 30_000);
  const execOut = async (ctr: string, cmd: string[]) => {
    const r = await d.client.call('ExecSync', { container_id: ctr, cmd, timeout: 10 });
    return { code: r.exit_code as number, out: Buffer.from(r.stdout).toString() };
  };
  /** A TCP server answering every connection with `text`. */
  const server = (port: number, text: string) => ['sh', '-c', `while true; do echo ${text} | nc -l -p ${port}; done`];
  const reach = (ctr: string, ip: string, port: number, text: string) =>
    waitFor(`${text} from ${ip}:${port}`, async () => {
      const r = await execOut(ctr, ['sh', '-c', `nc -w 2 ${ip} ${port} </dev/null`]);
      return r.out.includes(text) ? r.out : undefined;
    });
  const subnet = new RegExp(`^${TEST_SUBNET.replaceAll('.', '\\.')}\\.\\d+$`);

  test.serial('docker pod on network POD: an IP of the test subnet, its hostname and dns_config; it and a mesos pod reach each other by IP; removal frees the IP', async (t) => {
    await waitFor('NetworkReady', async () => (await d.client.call('Status', {})).status.conditions.find((c: { type: string }) => c.type === 'NetworkReady')?.status);
    const dns = { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local'], options: ['ndots:5'] };
    const dcfg = dockerPod('dnet', join(d.logDir, 'dnet'), 'POD', { dns_config: dns, hostname: 'docker-net-host' });
    const { pod_sandbox_id: dpod } = await d.client.call('RunPodSandbox', { config: dcfg, runtime_handler: 'docker' });
    const mcfg = podConfig('mnet', {}, join(d.logDir, 'mnet'));
    const { pod_sandbox_id: mpod } = await d.client.call('RunPodSandbox', { config: mcfg });
    t.teardown(async () => {
      await removePod(dpod).catch(() => undefined);
      await removePod(mpod).catch(() => undefined);
    });
    const dip = await podIp(dpod);
    const mip = await podIp(mpod);
    t.regex(dip, subnet);
    t.regex(mip, subnet);
    t.not(dip, mip);
    t.is(leasedIps().length, 2);

    const dsrv = await run(dpod, dcfg, 'srv', server(9001, 'hello-from-docker'));
    const dcli = await run(dpod, dcfg, 'cli', ['sleep', '1000']);
    // The container is in the infra's netns: the CNI address on its eth0, nothing of the node's.
    t.true((await execOut(dcli, ['ip', 'addr', 'show', 'eth0'])).out.includes(`inet ${dip}/24`));
    // Same hostname in both containers: the pod's (Docker copies the infra's with the network mode).
    t.is((await execOut(dcli, ['hostname'])).out.trim(), 'docker-net-host');
    t.is((await execOut(dsrv, ['hostname'])).out.trim(), 'docker-net-host');
    // dns_config: the infra container's resolv.conf, shared by the containers that join its network.
    const resolv = (await execOut(dcli, ['cat', '/etc/resolv.conf'])).out;
    t.regex(resolv, /^nameserver 10\.96\.0\.10$/m);
    t.regex(resolv, /^search default\.svc\.cluster\.local$/m);
    t.regex(resolv, /^options ndots:5$/m);
    // Over localhost within the pod, and across pods by IP both ways.
    t.true((await reach(dcli, '127.0.0.1', 9001, 'hello-from-docker')).includes('hello-from-docker'));
    await d.runContainer(mpod, mcfg, 'srv', server(9000, 'hello-from-mesos'));
    const mcli = await d.runContainer(mpod, mcfg, 'cli', ['sleep', '1000']);
    t.true((await reach(dcli, mip, 9000, 'hello-from-mesos')).includes('hello-from-mesos'));
    t.true((await reach(mcli.id, dip, 9001, 'hello-from-docker')).includes('hello-from-docker'));
    // Its interfaces, read through the infra container's /proc/<pid>/net/dev: eth0, with that traffic.
    const dnet = await waitFor('docker pod network stats', async () => (await d.client.call('PodSandboxStats', { pod_sandbox_id: dpod })).stats.linux.network);
    t.is(dnet.default_interface.name, 'eth0');
    t.deepEqual(dnet.interfaces.map((i: { name: string }) => i.name), ['eth0']);
    t.true(Number(dnet.default_interface.rx_bytes.value) > 0 && Number(dnet.default_interface.tx_bytes.value) > 0);

    // Stop DELs (the IP goes), remove unpins the namespace; nothing is left.
    await d.client.call('StopPodSandbox', { pod_sandbox_id: dpod });
    t.is(leasedIps().length, 1);
    t.is((await d.client.call('PodSandboxStatus', { pod_sandbox_id: dpod })).status.network.ip, '');
    await removePod(dpod);
    await removePod(mpod);
    t.deepEqual(leasedIps(), []);
    t.deepEqual(dockerCniState(), []);
    t.deepEqual(netnsMounts(), []);
  });

  test.serial('docker pod: a hostPort answers on 127.0.0.1 of the daemon\'s namespace (portmap), gone with the pod', async (t) => {
    const cfg = dockerPod('dhostport', join(d.logDir, 'dhostport'), 'POD', { port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: 18081, host_ip: '' }] });
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    t.teardown(() => removePod(pod).catch(() => undefined));
    await run(pod, cfg, 'srv', server(80, 'hello-hostport'));
    const out = await waitFor('the hostPort on 127.0.0.1', () => {
      try {
        const o = d.inNetns(['busybox', 'sh', '-c', 'busybox nc -w 2 127.0.0.1 18081 </dev/null']);
        return o.includes('hello-hostport') ? o : undefined;
      } catch {
        return undefined;
      }
    });
    t.true(out.includes('hello-hostport'));
    t.regex(d.inNetns(['iptables', '-t', 'nat', '-S']), /--dport 18081/);
    await removePod(pod);
    t.notRegex(d.inNetns(['iptables', '-t', 'nat', '-S']), /--dport 18081/);
    t.deepEqual(leasedIps(), []);
  });

  test.serial('docker pods after kill -9 of the daemon: the IP is kept, DEL runs at stop; a pod whose infra was removed meanwhile has its IP freed', async (t) => {
    const acfg = dockerPod('dkill-a', join(d.logDir, 'dkill-a'), 'POD');
    const bcfg = dockerPod('dkill-b', join(d.logDir, 'dkill-b'), 'POD');
    const { pod_sandbox_id: a } = await d.client.call('RunPodSandbox', { config: acfg, runtime_handler: 'docker' });
    const { pod_sandbox_id: b } = await d.client.call('RunPodSandbox', { config: bcfg, runtime_handler: 'docker' });
    t.teardown(async () => {
      await removePod(a).catch(() => undefined);
      await removePod(b).catch(() => undefined);
    });
    const ipA = await podIp(a);
    t.regex(ipA, subnet);
    t.is(leasedIps().length, 2);
    // bridge's ipMasq rules name the pod (CNI_CONTAINERID): they must go with its DEL.
    t.true(d.inNetns(['iptables', '-t', 'nat', '-S']).includes(b));
    await d.kill9();
    // Pod b's infra container goes behind the daemon's back.
    const infraB = (await dockerd!.containers()).find((n) => n.includes(b) && !n.includes(`${b}.`));
    t.truthy(infraB);
    await dockerd!.engine.remove(infraB!.replace(/^\//, ''));
    await d.launch();
    t.is(await podIp(a), ipA);
    await waitFor('pod b\'s IP to be freed', () => leasedIps().length === 1);
    t.deepEqual(leasedIps(), [ipA]);
    await waitFor('pod b\'s masquerading rules to go', () => !d.inNetns(['iptables', '-t', 'nat', '-S']).includes(b));
    await d.client.call('StopPodSandbox', { pod_sandbox_id: a });
    t.deepEqual(leasedIps(), []);
    await removePod(a);
    await removePod(b);
    t.deepEqual(dockerCniState(), []);
    t.deepEqual(netnsMounts(), []);
  });

  test.serial('docker pod: an ADD that fails half-way is undone: the error names the plugin, the IP is freed, nothing is left', async (t) => {
    // bridge + host-local take an IP, then tuning fails on a sysctl that does not exist.
    const list = JSON.parse(d.testConflist()) as { plugins: object[] };
    list.plugins.splice(1, 0, { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.no_such_key': '1' } });
    await d.useConflist(t, list);
    const before = (await dockerd!.containers()).length;
    const err = (await t.throwsAsync(
      d.client.call('RunPodSandbox', { config: dockerPod('dtuning', join(d.logDir, 'dtuning'), 'POD'), runtime_handler: 'docker' }),
    )) as unknown as { details: string };
    t.regex(err.details, /tuning/);
    t.regex(err.details, /no_such_key/);
    t.deepEqual((await d.client.call('ListPodSandbox', {})).items, []);
    t.deepEqual(leasedIps(), []);
    t.deepEqual(dockerCniState(), []);
    t.deepEqual(netnsMounts(), []);
    t.is((await dockerd!.containers()).length, before);
  });

  test.serial('docker pod: a client that leaves mid-exec takes the exec\'s process with it', async (t) => {
    const cfg = dockerPod('dleave', join(d.logDir, 'dleave'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    t.teardown(() => removePod(pod).catch(() => undefined));
    const ctr = await run(pod, cfg, 'sleeper', ['sleep', '1000']);
    const marker = String(900_000 + randomBytes(2).readUInt16BE());
    const url = await viaProxy((await d.client.call('Exec', { container_id: ctr, cmd: ['sleep', marker], stdout: true, stderr: true })).url as string);
    const c = await spdyExec(url, { stdout: true, stderr: true });
    const running = async () => (await execOut(ctr, ['sh', '-c', `ps -o args | grep -c "^sleep ${marker}"`])).out.trim();
    await waitFor('the exec to run', async () => (await running()) === '1', 10_000);
    c.close();
    await waitFor('the exec to be killed', async () => (await running()) === '0', 10_000);
    t.is(await running(), '0');
  });
}
