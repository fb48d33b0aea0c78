// The Docker containerizer composed with the Mesos one (`--containerizers=mesos,docker`), against a
// real dockerd of this file's own (test/helpers/dockerd.ts): what a CRI client sees, what the
// Engine has, what the kernel shows.
import test, { type ExecutionContext } from 'ava';
import { status } from '@grpc/grpc-js';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUSYBOX, TestDaemon, criLogLines, containerConfig, isRoot, podConfig, waitFor } from '../helpers/daemon.js';
import { DOCKER_BUSYBOX, TestDockerd } from '../helpers/dockerd.js';
import { buildImage, registryAvailable, TestRegistry } from '../helpers/registry.js';
import { busyboxLayer } from '../../hack/build-test-images.js';


async function rejects(t: ExecutionContext, p: Promise<unknown>, code: number, msg: RegExp) {
  const err = await t.throwsAsync(p);
  t.is((err as { code?: number }).code, code, String(err));
  t.regex(String((err as { details?: string }).details), msg);
}

/** A docker pod: the node's network (docker-net.test.ts has the CNI ones), its own PID namespace for POD. */
function dockerPod(name: string, logDir: string, pid: 'POD' | 'CONTAINER' = 'POD') {
  return podConfig(name, { linux: { security_context: { namespace_options: { network: 'NODE', pid, ipc: 'POD' } } } }, logDir);
}

function dockerCtr(name: string, command: string[], extra: Record<string, unknown> = {}) {
  return containerConfig(name, command, { image: { image: DOCKER_BUSYBOX }, ...extra });
}

const criLines = criLogLines;

const usable = isRoot() && TestDockerd.available();
if (!usable) test.skip('docker tests need root and dockerd (hack/deps.sh --test installs docker.io)', () => {});

let dockerd: TestDockerd | undefined;
let d: TestDaemon;
let shared: string;
/** A registry on loopback that is only ever reached as the mirror of a host that does not exist. */
let mirror: TestRegistry | undefined;
const MIRRORED = 'mirror-only.invalid/test/mirrored:1';
/** Registries that want a login: one the CRI's PullImage auth opens, one the config's registry.auths opens. */
let criAuthed: TestRegistry | undefined;
let busyboxLayerCached: Awaited<ReturnType<typeof busyboxLayer>> | undefined;
let configAuthed: TestRegistry | undefined;

if (usable) {
  d = new TestDaemon({ prefix: 'cm-docker' });
  test.serial.before(async () => {
    dockerd = await TestDockerd.start();
    shared = mkdtempSync(join(tmpdir(), 'cm-docker-shared-'));
    // A pre-launch hook: containers get FROM_HOOK=yes and a label; one named hook-refused is refused.
    const hook = join(shared, 'hook.sh');
    writeFileSync(
      hook,
      `#!/bin/sh\nin=$(cat)\ncase "$in" in *'"name":"hook-refused"'*) echo "the test hook refuses this" >&2; exit 3;; esac\n` +
        `case "$in" in *'"kind":"container"'*) printf '%s' "$in" > ${shared}/last-container-input.json;; esac\n` +
        `case "$in" in *'"kind":"container"'*) echo '{"env":[{"key":"FROM_HOOK","value":"yes"}],"labels":{"hooked":"true"}}';; esac\n`,
      { mode: 0o755 },
    );
    let toml = `pre_launch_hook = "${hook}"\n`;
    if (registryAvailable()) {
      mirror = await TestRegistry.start();
      const img = buildImage([await busyboxLayer()], { docker: true, config: { Cmd: ['sh', '-c', 'echo mirrored'], Env: ['PATH=/bin'] } });
      await mirror.pushImage('test/mirrored', '1', img);
      criAuthed = await TestRegistry.start({ basic: { users: { alice: 'alice-secret' } } });
      configAuthed = await TestRegistry.start({ basic: { users: { bob: 'bob-secret' } } });
      const echo = (text: string) => buildImage([busyboxLayerCached!], { docker: true, config: { Cmd: ['sh', '-c', `echo ${text}`], Env: ['PATH=/bin'] } });
      busyboxLayerCached = await busyboxLayer();
      await criAuthed.pushImage('test/private', '1', echo('private-cri'));
      await criAuthed.pushImage('test/never-pulled', '1', echo('never'));
      await configAuthed.pushImage('test/private', '1', echo('private-config'));
      toml +=
        `[registry]\nmirrors = { "mirror-only.invalid" = ["http://${mirror.host}"] }\nfallback_to_upstream = false\n` +
        `[registry.auths."${configAuthed.host}"]\nusername = "bob"\npassword = "bob-secret"\n`;
    }
    const config = join(shared, 'config.toml');
    writeFileSync(config, toml);
    await d.init({ flags: ['--containerizers', 'mesos,docker', '--docker-host', dockerd.host, '--config', config] });
  });
  test.afterEach.always((t) => {
    if (!t.passed) t.log(d.logs().split('\n').slice(-40).join('\n'));
  });
  test.after.always(async () => {
    await d.teardown();
    await dockerd?.stopAndCheck();
    await mirror?.stop();
    await criAuthed?.stop();
    await configAuthed?.stop();
    if (shared) rmSync(shared, { recursive: true, force: true });
  });

  const run = async (pod: string, sandbox: object, name: string, command: string[], extra: Record<string, unknown> = {}) => {
    const { container_id: id } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: dockerCtr(name, command, extra), sandbox_config: sandbox });
    await d.client.call('StartContainer', { container_id: id });
    return id as string;
  };
  const exec = async (id: string, cmd: string[], timeout = 10) => d.client.call('ExecSync', { container_id: id, cmd, timeout });
  const text = (b: Buffer | string) => Buffer.from(b).toString('utf8');

  test.serial('Status lists the handlers of both containerizers, with their features', async (t) => {
    const st = await d.client.call('Status', {});
    const names = st.runtime_handlers.map((h: { name: string }) => h.name);
    t.deepEqual(names, ['', 'mesos', 'runc', 'docker']);
    const docker = st.runtime_handlers.find((h: { name: string }) => h.name === 'docker');
    t.false(docker.features.recursive_read_only_mounts);
    t.false(docker.features.user_namespaces);
  });

  test.serial('a handler nobody claims is refused, naming the handlers there are', async (t) => {
    await rejects(t, d.client.call('RunPodSandbox', { config: podConfig('nope'), runtime_handler: 'kata' }), status.INVALID_ARGUMENT, /"kata".*"mesos".*"docker"/);
    t.deepEqual((await d.client.call('ListPodSandbox', {})).items, []);
  });

  test.serial('a docker pod on network POD without a CNI config has loopback only (docker-net.test.ts has the CNI network)', async (t) => {
    const cfg = podConfig('podnet', {}, join(d.logDir, 'podnet'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    t.teardown(() => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined));
    t.is((await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod })).status.network.ip, '');
    const id = await run(pod, cfg, 'links', ['sleep', '1000']);
    const links = text((await exec(id, ['ls', '/sys/class/net'])).stdout).split(/\s+/).filter(Boolean);
    t.deepEqual(links, ['lo']);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('a mesos pod and a docker pod side by side: logs in the CRI format, exit codes, list RPCs merged', async (t) => {
    const mesosLogs = join(d.logDir, 'side-mesos');
    const dockerLogs = join(d.logDir, 'side-docker');
    const mcfg = podConfig('side-mesos', {}, mesosLogs);
    const dcfg = dockerPod('side-docker', dockerLogs);
    const { pod_sandbox_id: mpod } = await d.client.call('RunPodSandbox', { config: mcfg });
    const { pod_sandbox_id: dpod } = await d.client.call('RunPodSandbox', { config: dcfg, runtime_handler: 'docker' });
    const script = 'echo to-stdout; echo to-stderr >&2; head -c 20000 /dev/zero | tr "\\0" x; echo; printf unfinished; exit 3';
    const { container_id: mctr } = await d.client.call('CreateContainer', { pod_sandbox_id: mpod, config: containerConfig('printer', ['sh', '-c', script]), sandbox_config: mcfg });
    await d.client.call('StartContainer', { container_id: mctr });
    const dctr = await run(dpod, dcfg, 'printer', ['sh', '-c', script]);
    const pods = (await d.client.call('ListPodSandbox', {})).items;
    t.deepEqual(pods.map((p: { runtime_handler: string }) => p.runtime_handler).sort(), ['', 'docker']);
    const ctrs = (await d.client.call('ListContainers', {})).containers.map((c: { id: string }) => c.id).sort();
    t.deepEqual(ctrs, [mctr, dctr].sort());
    for (const ctr of [mctr, dctr]) {
      const st = await d.waitExited(ctr);
      t.is(st.exit_code, 3, ctr === dctr ? 'docker' : 'mesos');
      t.is(st.reason, 'Error');
      t.true(BigInt(st.finished_at) >= BigInt(st.started_at) && BigInt(st.started_at) > 0n);
      const lines = criLines(st.log_path);
      const out = lines.filter((l) => l.stream === 'stdout');
      t.deepEqual(
        out.map((l) => [l.tag, l.text.length]),
        [['F', 'to-stdout'.length], ['P', 16384], ['F', 20000 - 16384], ['P', 'unfinished'.length]],
        ctr === dctr ? 'docker' : 'mesos',
      );
      t.deepEqual(lines.filter((l) => l.stream === 'stderr').map((l) => l.text), ['to-stderr']);
    }
    // The docker pod is on the Engine (infra + container), the mesos pod is not.
    const names = await dockerd!.containers();
    t.true(names.some((n) => n.includes(dpod) && n.includes(dctr)));
    t.false(names.some((n) => n.includes(mpod)));
    for (const pod of [mpod, dpod]) await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('docker pod: an image only cri-mesos\' store has (PullImage, images import) is loaded into the Engine', async (t) => {
    t.falsy(await dockerd!.engine.inspectImage(BUSYBOX));
    const cfg = dockerPod('fromstore', join(d.logDir, 'fromstore'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const id = await run(pod, cfg, 'oci', ['sh', '-c', 'echo from-the-store; exit 0'], { image: { image: BUSYBOX } });
    const st = await d.waitExited(id);
    t.is(st.exit_code, 0);
    t.deepEqual(criLines(st.log_path).map((l) => l.text), ['from-the-store']);
    const img = await dockerd!.engine.inspectImage(BUSYBOX);
    t.truthy(img);
    // The same image: the Engine's id is the store's config digest.
    t.is(st.image_ref, img!.Id);
    // An image neither has: NOT_FOUND naming the field, after asking the Engine.
    await rejects(
      t,
      d.client.call('CreateContainer', { pod_sandbox_id: pod, config: dockerCtr('nothing', ['true'], { image: { image: '127.0.0.1:1/none:1' } }), sandbox_config: cfg }),
      status.NOT_FOUND,
      /config\.image\.image.*127\.0\.0\.1:1\/none/,
    );
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  // Needs Debian's docker-registry (hack/deps.sh --test); skipped, never passed, without it.
  (registryAvailable() ? test.serial : test.skip)('docker pod: an image neither has is pulled through the Engine from its host\'s mirror and tagged as upstream', async (t) => {
    const cfg = dockerPod('mirrored', join(d.logDir, 'mirrored'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const { container_id: id } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: { ...dockerCtr('mirrored', []), command: [], image: { image: MIRRORED } },
      sandbox_config: cfg,
    });
    await d.client.call('StartContainer', { container_id: id });
    const st = await d.waitExited(id);
    t.is(st.exit_code, 0);
    // The image's own Cmd ran: the Engine has the image under its upstream name.
    t.deepEqual(criLines(st.log_path).map((l) => l.text), ['mirrored']);
    t.truthy(await dockerd!.engine.inspectImage(MIRRORED));
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  // Registries with logins need Debian's docker-registry and htpasswd (hack/deps.sh --test).
  (registryAvailable() ? test.serial : test.skip)('docker pod: the Engine pulls with the credentials PullImage carried, or the config\'s registry.auths', async (t) => {
    const cfg = dockerPod('authed', join(d.logDir, 'authed'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const digests = async (ref: string) => ((await dockerd!.engine.call<{ RepoDigests?: string[] }>('GET', `/images/${encodeURIComponent(ref)}/json`)).body.RepoDigests ?? []);
    // The kubelet's way: PullImage with the pod's pull secret, then CreateContainer (which has no auth).
    const cri = `${criAuthed!.host}/test/private:1`;
    await d.client.call('PullImage', { image: { image: cri }, auth: { username: 'alice', password: 'alice-secret' } });
    const a = await run(pod, cfg, 'cri-auth', [], { command: [], image: { image: cri } });
    t.deepEqual(criLines((await d.waitExited(a)).log_path).map((l) => l.text), ['private-cri']);
    // Pulled by the Engine itself from the registry (a docker load has no RepoDigests).
    t.true((await digests(cri)).some((x) => x.startsWith(`${criAuthed!.host}/test/private@sha256:`)), String(await digests(cri)));
    // No PullImage before: the config's credentials for the host.
    const conf = `${configAuthed!.host}/test/private:1`;
    const b = await run(pod, cfg, 'config-auth', [], { command: [], image: { image: conf } });
    t.deepEqual(criLines((await d.waitExited(b)).log_path).map((l) => l.text), ['private-config']);
    t.true((await digests(conf)).some((x) => x.startsWith(`${configAuthed!.host}/test/private@sha256:`)));
    // A repository no credentials were given for: refused by the registry, and the error says so.
    await rejects(
      t,
      d.client.call('CreateContainer', { pod_sandbox_id: pod, config: dockerCtr('no-auth', [], { image: { image: `${criAuthed!.host}/test/never-pulled:1` } }), sandbox_config: cfg }),
      status.NOT_FOUND,
      /config\.image\.image.*never-pulled.*(unauthorized|authentication)/is,
    );
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('docker pod: the pre-launch hook adds env and labels to a docker container, and its refusal fails the create', async (t) => {
    const cfg = dockerPod('hooked', join(d.logDir, 'hooked'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const id = await run(pod, cfg, 'hooked', ['sh', '-c', 'echo "FROM_HOOK=$FROM_HOOK"']);
    const st = await d.waitExited(id);
    t.deepEqual(criLines(st.log_path).map((l) => l.text), ['FROM_HOOK=yes']);
    t.is(st.labels.hooked, 'true');
    // The seed's order, pull then hook: the hook saw the id of the image the Engine has.
    const input = JSON.parse(readFileSync(join(shared, 'last-container-input.json'), 'utf8'));
    t.is(input.container.metadata.name, 'hooked');
    t.is(input.container.image.ref, DOCKER_BUSYBOX);
    t.is(input.container.image.id, (await dockerd!.engine.inspectImage(DOCKER_BUSYBOX))!.Id);
    t.is(st.image_ref, input.container.image.id);
    const [c] = (await dockerd!.engine.list(['io.cri-mesos.kind=container'])).filter((x) => x.Labels['io.cri-mesos.id']?.endsWith(id));
    t.is(c!.Labels['io.cri-mesos.label.hooked'], 'true');
    await rejects(
      t,
      d.client.call('CreateContainer', { pod_sandbox_id: pod, config: dockerCtr('hook-refused', ['true']), sandbox_config: cfg }),
      status.FAILED_PRECONDITION,
      /the test hook refuses this/,
    );
    t.false((await dockerd!.containers()).some((n) => n.includes('hook-refused')));
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('docker pod: a tty container\'s terminal output is logged as stdout', async (t) => {
    const cfg = dockerPod('tty', join(d.logDir, 'tty'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const id = await run(pod, cfg, 'tty', ['sh', '-c', 'test -t 1 && echo on-a-tty; echo to-stderr >&2'], { tty: true });
    const st = await d.waitExited(id);
    t.is(st.exit_code, 0);
    t.deepEqual(criLines(st.log_path).map((l) => [l.stream, l.text]), [['stdout', 'on-a-tty'], ['stdout', 'to-stderr']]);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('docker pod: ExecSync gives stdout, stderr and the exit code, and a timeout', async (t) => {
    const cfg = dockerPod('execsync', join(d.logDir, 'execsync'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const id = await run(pod, cfg, 'sleeper', ['sleep', '1000']);
    const r = await exec(id, ['sh', '-c', 'echo out; echo err >&2; exit 4']);
    t.is(text(r.stdout), 'out\n');
    t.is(text(r.stderr), 'err\n');
    t.is(r.exit_code, 4);
    const started = Date.now();
    await rejects(t, exec(id, ['sleep', '30'], 1), status.DEADLINE_EXCEEDED, /timed out/);
    t.true(Date.now() - started < 10_000);
    // Exec over the stream server hands out a URL (docker-net.test.ts drives it).
    t.regex((await d.client.call('Exec', { container_id: id, cmd: ['true'], stdout: true })).url, /^http:\/\/127\.0\.0\.1:\d+\/exec\//);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('docker pod: StopContainer gives a SIGTERM-ignoring process its timeout, then SIGKILL', async (t) => {
    const cfg = dockerPod('stopper', join(d.logDir, 'stopper'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const id = await run(pod, cfg, 'stubborn', ['sh', '-c', 'trap "echo got-term" TERM; echo ready; while :; do sleep 0.1; done']);
    const st0 = await d.client.call('ContainerStatus', { container_id: id });
    await waitFor('ready in the log', () => existsSync(st0.status.log_path) && readFileSync(st0.status.log_path, 'utf8').includes('ready'));
    const t0 = Date.now();
    await d.client.call('StopContainer', { container_id: id, timeout: 2 });
    const took = Date.now() - t0;
    t.true(took >= 1900 && took < 15_000, `took ${took} ms`);
    const st = (await d.client.call('ContainerStatus', { container_id: id })).status;
    t.is(st.state, 'CONTAINER_EXITED');
    t.is(st.exit_code, 137);
    await waitFor('got-term in the log', () => readFileSync(st.log_path, 'utf8').includes('got-term'));
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('docker pod: resources are in the cgroup files, and UpdateContainerResources changes them', async (t) => {
    const cfg = dockerPod('limits', join(d.logDir, 'limits'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const id = await run(pod, cfg, 'limited', ['sleep', '1000'], {
      linux: {
        resources: { memory_limit_in_bytes: 64 << 20, cpu_shares: 512, cpu_quota: 50_000, cpu_period: 100_000, unified: { 'pids.max': '20' }, oom_score_adj: 500, cpuset_cpus: '0' },
      },
    });
    const info = JSON.parse((await d.client.call('ContainerStatus', { container_id: id, verbose: true })).info.info) as { pid: number };
    t.true(info.pid > 0);
    const cg = Object.fromEntries(
      readFileSync(`/proc/${info.pid}/cgroup`, 'utf8')
        .trim()
        .split('\n')
        .flatMap((l) => {
          const [, ctrls, path] = l.split(':');
          return ctrls!.split(',').map((c) => [c, path!]);
        }),
    ) as Record<string, string>;
    // Under the test dockerd's own cgroup parent (no CRI cgroup_parent was given).
    t.true(cg.memory!.startsWith(`/${dockerd!.cgroupParent}/`), cg.memory);
    const file = (ctrl: string, name: string) => readFileSync(join('/sys/fs/cgroup', ctrl, cg[ctrl]!, name), 'utf8').trim();
    t.is(file('memory', 'memory.limit_in_bytes'), String(64 << 20));
    t.is(file('cpu', 'cpu.shares'), '512');
    t.is(file('cpu', 'cpu.cfs_quota_us'), '50000');
    t.is(file('cpu', 'cpu.cfs_period_us'), '100000');
    t.is(file('pids', 'pids.max'), '20');
    t.is(file('cpuset', 'cpuset.cpus'), '0');
    t.is(readFileSync(`/proc/${info.pid}/oom_score_adj`, 'utf8').trim(), '500');
    await d.client.call('UpdateContainerResources', { container_id: id, linux: { memory_limit_in_bytes: 128 << 20, cpu_shares: 256 } });
    t.is(file('memory', 'memory.limit_in_bytes'), String(128 << 20));
    t.is(file('cpu', 'cpu.shares'), '256');
    const stats = (await d.client.call('ContainerStats', { container_id: id })).stats;
    t.true(Number(stats.memory.working_set_bytes.value) > 0);
    t.true(Number(stats.cpu.usage_core_nano_seconds.value) > 0);
    // The pod's usage is the infra container's plus its containers'.
    const ps = (await d.client.call('PodSandboxStats', { pod_sandbox_id: pod })).stats.linux;
    t.true(Number(ps.memory.working_set_bytes.value) > 0);
    t.true(Number(ps.cpu.usage_core_nano_seconds.value) >= Number(stats.cpu.usage_core_nano_seconds.value));
    t.deepEqual(ps.containers.map((c: { attributes: { id: string } }) => c.attributes.id), [id]);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('docker pod: stats from the containers\' own cgroups: nano cores, working set, processes, writable layer, pod metrics', async (t) => {
    const cfg = dockerPod('dstats', join(d.logDir, 'dstats'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    t.teardown(() => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined));
    const busy = await run(pod, cfg, 'busy', ['sh', '-c', 'sleep 1000 & while :; do :; done']);
    const idle = await run(pod, cfg, 'idle', ['sleep', '1000']);
    const n = (v: { value: string } | null | undefined) => (v ? Number(v.value) : undefined);
    const stats = async (id: string) => (await d.client.call('ContainerStats', { container_id: id })).stats;
    // Two sampler windows (1 s) after both run.
    await new Promise((r) => setTimeout(r, 2200));
    const cores = await waitFor('a rate for the busy loop', async () => n((await stats(busy)).cpu?.usage_nano_cores));
    t.true(cores > 0.5e9 && cores < 1.3e9, `busy loop: ${cores} nano cores`);
    t.true(n((await stats(idle)).cpu.usage_nano_cores)! < 0.05e9);
    t.true(n((await stats(idle)).memory.working_set_bytes)! > 0);
    // Its processes (sh and sleep), from cgroup.procs of its cgroup; the pod's: all of its containers'.
    const ps = (await d.client.call('PodSandboxStats', { pod_sandbox_id: pod })).stats.linux;
    t.is(n(ps.process.process_count), 3);
    t.true(n(ps.cpu.usage_nano_cores)! > 0.5e9, 'the pod: the infra container and its containers, summed');
    t.is(ps.network, null); // a pod on the node's network
    // The writable layer: the Engine's overlay2 upper dir.
    const before = await waitFor('the writable layer walked', async () => (await stats(idle)).writable_layer);
    t.regex(before.fs_id.mountpoint, /overlay2$/);
    t.is(text((await exec(idle, ['sh', '-c', 'dd if=/dev/zero of=/blob bs=1048576 count=4 2>/dev/null && echo ok'])).stdout).trim(), 'ok');
    const after = await waitFor('the walk to see the file', async () => {
      const w = (await stats(idle)).writable_layer;
      return n(w.used_bytes)! >= n(before.used_bytes)! + (4 << 20) ? w : undefined;
    });
    t.true(n(after.inodes_used)! > n(before.inodes_used)!);
    const m = (await d.client.call('ListPodSandboxMetrics', {})).pod_metrics.find((x: { pod_sandbox_id: string }) => x.pod_sandbox_id === pod);
    const procs = m.container_metrics.find((c: { container_id: string }) => c.container_id === busy).metrics.find((x: { name: string }) => x.name === 'container_processes');
    t.is(procs.value.value, '2');
  });

  test.serial('docker pod: a container over its memory limit is OOMKilled', async (t) => {
    const cfg = dockerPod('oom', join(d.logDir, 'oom'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    // One process that grows without end (tail keeps /dev/zero's single endless line), so the OOM
    // killer has only the container's main process to choose: with a pipeline it may take a helper
    // process instead, and the shell lives on.
    const id = await run(pod, cfg, 'hog', ['sh', '-c', 'exec tail /dev/zero'], {
      linux: { resources: { memory_limit_in_bytes: 16 << 20, memory_swap_limit_in_bytes: 16 << 20 } },
    });
    const st = await d.waitExited(id, 60_000);
    t.is(st.reason, 'OOMKilled');
    t.is(st.exit_code, 137);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('docker pod: containers share the infra container\'s net, IPC and (POD) PID namespaces and its hostname', async (t) => {
    for (const pid of ['POD', 'CONTAINER'] as const) {
      const cfg = dockerPod(`ns-${pid.toLowerCase()}`, join(d.logDir, `ns-${pid}`), pid);
      const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
      const secctx = { linux: { security_context: { namespace_options: { network: 'NODE', pid, ipc: 'POD' } } } };
      const a = await run(pod, cfg, 'a', ['sleep', '1001'], secctx);
      const b = await run(pod, cfg, 'b', ['sleep', '1002'], secctx);
      const probe = async (id: string) => text((await exec(id, ['sh', '-c', 'hostname; for n in net ipc pid; do readlink /proc/self/ns/$n; done; ps -o args'])).stdout);
      const [pa, pb] = [await probe(a), await probe(b)];
      const [hostA, netA, ipcA, pidA] = pa.split('\n');
      const [hostB, netB, ipcB, pidB] = pb.split('\n');
      t.is(hostA, hostB);
      t.is(netA, netB);
      // NODE networking: the node's network namespace; the IPC namespace is the pod's own.
      t.is(netA, readlinkSync('/proc/self/ns/net'));
      t.is(ipcA, ipcB);
      t.not(ipcA, readlinkSync('/proc/self/ns/ipc'));
      if (pid === 'POD') {
        t.is(pidA, pidB);
        t.true(pb.includes('sleep 1001'), pb);
        t.true(pb.includes('/bin/busybox sh -c'), 'the pause process is in the pod\'s PID namespace');
      } else {
        t.not(pidA, pidB);
        t.false(pb.includes('sleep 1001'), pb);
      }
      await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    }
  });

  test.serial('docker pod: ReopenContainerLog starts a new file at the log path', async (t) => {
    const cfg = dockerPod('reopen', join(d.logDir, 'reopen'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const id = await run(pod, cfg, 'ticker', ['sh', '-c', 'i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done']);
    const path = (await d.client.call('ContainerStatus', { container_id: id })).status.log_path;
    await waitFor('ticks', () => existsSync(path) && readFileSync(path, 'utf8').includes('tick 2'));
    renameSync(path, `${path}.1`);
    await d.client.call('ReopenContainerLog', { container_id: id });
    await waitFor('ticks in the new file', () => existsSync(path) && criLines(path).length >= 2);
    t.true(criLines(`${path}.1`).every((l) => l.text.startsWith('tick')));
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('kill -9 of the daemon: a running docker container and one that exits while it is down are recovered', async (t) => {
    const cfg = dockerPod('recover', join(d.logDir, 'recover'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const mounts = [{ container_path: '/shared', host_path: shared }];
    const running = await run(pod, cfg, 'runner', ['sleep', '1000']);
    const leaver = await run(pod, cfg, 'leaver', ['sh', '-c', 'echo before; while [ ! -e /shared/go ]; do sleep 0.1; done; echo after; exit 7'], { mounts });
    const logPath = (await d.client.call('ContainerStatus', { container_id: leaver })).status.log_path;
    await waitFor('before', () => existsSync(logPath) && readFileSync(logPath, 'utf8').includes('before'));
    await d.kill9();
    writeFileSync(join(shared, 'go'), '');
    // It exits while no daemon runs: the Engine says so.
    await waitFor('the leaver to exit', async () => {
      const all = await dockerd!.engine.list(['io.cri-mesos.kind=container']);
      return all.some((c) => c.Labels['io.cri-mesos.id']?.endsWith(leaver) && c.State === 'exited');
    });
    await d.launch();
    const st = await d.waitExited(leaver);
    t.is(st.exit_code, 7);
    t.deepEqual(criLines(st.log_path).map((l) => l.text), ['before', 'after']);
    const r = (await d.client.call('ContainerStatus', { container_id: running })).status;
    t.is(r.state, 'CONTAINER_RUNNING');
    t.is((await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod })).status.state, 'SANDBOX_READY');
    t.is(text((await exec(running, ['echo', 'still-here'])).stdout), 'still-here\n');
    await d.client.call('StopContainer', { container_id: running, timeout: 1 });
    t.is((await d.client.call('ContainerStatus', { container_id: running })).status.exit_code, 137);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('an executor that died with the daemon is replaced at recovery: the log goes on, the exit is recorded', async (t) => {
    const cfg = dockerPod('reexec', join(d.logDir, 'reexec'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const id = await run(pod, cfg, 'ticker', ['sh', '-c', 'trap "exit 9" TERM; i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done']);
    const path = (await d.client.call('ContainerStatus', { container_id: id })).status.log_path;
    await waitFor('ticks', () => existsSync(path) && readFileSync(path, 'utf8').includes('tick 2'));
    const pidFile = join(d.runtimeDir, 'docker', 'containers', pod, 'containers', id, 'executor.pid');
    const executor = Number(readFileSync(pidFile, 'utf8'));
    await d.kill9();
    // The executor our daemon forked (its pid from its own file): gone with the daemon.
    process.kill(executor, 'SIGKILL');
    await waitFor('the executor to die', () => !existsSync(`/proc/${executor}`) || readFileSync(`/proc/${executor}/stat`, 'utf8').split(' ')[2] === 'Z');
    const before = criLines(path).length;
    await d.launch();
    await waitFor('new ticks', () => criLines(path).length > before + 3);
    t.not(Number(readFileSync(pidFile, 'utf8')), executor);
    await d.client.call('StopContainer', { container_id: id, timeout: 5 });
    t.is((await d.client.call('ContainerStatus', { container_id: id })).status.exit_code, 9);
    t.true(existsSync(join(d.runtimeDir, 'docker', 'containers', pod, 'containers', id, 'exit.json')));
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('docker pod: user, env, working dir, read-only rootfs and mounts, devices, sysctls, capabilities, no_new_privs, seccomp, labels', async (t) => {
    const base = dockerPod('secure', join(d.logDir, 'secure'));
    const cfg = { ...base, linux: { ...base.linux, sysctls: { 'kernel.shmmax': '123456789' } } };
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    writeFileSync(join(shared, 'ro-file'), 'host-data');
    chmodSync(shared, 0o755);
    const id = await run(
      pod,
      cfg,
      'secure',
      ['sh', '-c', 'grep -E "^(Uid|Gid|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status; echo "env=$FOO cwd=$(pwd)"; cat /ro/ro-file; echo; touch /rootfs-file 2>/dev/null && echo rootfs-writable; touch /ro/x 2>/dev/null && echo mount-writable; id -G; test -c /dev/mynull && echo has-device; echo shmmax=$(cat /proc/sys/kernel/shmmax); exit 0'],
      {
        envs: [{ key: 'FOO', value: Buffer.from('bar') }],
        working_dir: '/tmp',
        mounts: [{ container_path: '/ro', host_path: shared, readonly: true }],
        devices: [{ host_path: '/dev/null', container_path: '/dev/mynull', permissions: 'rw' }],
        annotations: { 'example.com/note': 'kept' },
        linux: {
          security_context: {
            run_as_user: { value: 1000 },
            run_as_group: { value: 1000 },
            supplemental_groups: [4242],
            readonly_rootfs: true,
            no_new_privs: true,
            capabilities: { drop_capabilities: ['ALL'], add_capabilities: ['NET_BIND_SERVICE'] },
            seccomp: { profile_type: 'RuntimeDefault' },
            namespace_options: { network: 'NODE', pid: 'POD', ipc: 'POD' },
          },
        },
      },
    );
    const st = await d.waitExited(id);
    t.is(st.exit_code, 0);
    const out = criLines(st.log_path).map((l) => l.text);
    t.true(out.some((l) => /^Uid:\s+1000\s/.test(l)), out.join('\n'));
    t.true(out.some((l) => /^Gid:\s+1000\s/.test(l)));
    t.true(out.includes('CapBnd:\t0000000000000400'), out.join('\n'));
    t.true(out.includes('NoNewPrivs:\t1'));
    t.true(out.includes('Seccomp:\t2'));
    t.true(out.includes('env=bar cwd=/tmp'), out.join('\n'));
    t.true(out.includes('host-data'));
    t.false(out.includes('rootfs-writable'));
    t.false(out.includes('mount-writable'));
    t.true(out.some((l) => l.split(' ').includes('4242')), out.join('\n'));
    t.true(out.includes('has-device'), out.join('\n'));
    // The pod's IPC sysctl, set on the infra container, is seen in the IPC namespace it shares.
    t.true(out.includes('shmmax=123456789'), out.join('\n'));
    // CRI labels and annotations are on the docker container, under cri-mesos' prefixes.
    const [c] = (await dockerd!.engine.list(['io.cri-mesos.kind=container'])).filter((x) => x.Labels['io.cri-mesos.id']?.endsWith(id));
    t.is(c!.Labels['io.cri-mesos.label.container'], 'secure');
    t.is(c!.Labels['io.cri-mesos.annotation.example.com/note'], 'kept');
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('a docker container removed behind the daemon\'s back is recovered by no member: reported, not dropped', async (t) => {
    const cfg = dockerPod('vanish', join(d.logDir, 'vanish'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const id = await run(pod, cfg, 'gone', ['sleep', '1000']);
    await d.kill9();
    const [victim] = (await dockerd!.engine.list(['io.cri-mesos.kind=container'])).filter((c) => c.Labels['io.cri-mesos.id']?.endsWith(id));
    await dockerd!.engine.remove(victim!.Id);
    await d.launch();
    const st = (await d.client.call('ContainerStatus', { container_id: id })).status;
    t.is(st.state, 'CONTAINER_EXITED');
    t.is(st.reason, 'Unknown');
    t.regex(st.message, /no containerizer \(mesos, docker\) recovered/);
    t.regex(d.logs(), /container recovered by no containerizer after a restart.*handler=docker/);
    t.false(existsSync(join(d.runtimeDir, 'docker', 'containers', pod, 'containers', id)), 'its runtime dir is gone with it');
    // The pod's infra container survived: the pod is still READY.
    t.is((await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod })).status.state, 'SANDBOX_READY');
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('RemovePodSandbox leaves no docker container, volume or network behind', async (t) => {
    const cfg = dockerPod('cleanup', join(d.logDir, 'cleanup'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    await run(pod, cfg, 'one', ['sleep', '1000']);
    const created = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: dockerCtr('never-started', ['true']), sandbox_config: cfg });
    t.truthy(created.container_id);
    const networksBefore = (await dockerd!.engine.call<{ Name: string }[]>('GET', '/networks')).body.map((n) => n.Name).sort();
    t.true((await dockerd!.containers()).some((n) => n.includes(pod)));
    await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    // (The after hook checks that the Engine has no container at all once every pod is removed.)
    t.deepEqual((await dockerd!.containers()).filter((n) => n.includes(pod)), []);
    t.deepEqual((await dockerd!.engine.call<{ Volumes: unknown[] | null }>('GET', '/volumes')).body.Volumes ?? [], []);
    t.deepEqual((await dockerd!.engine.call<{ Name: string }[]>('GET', '/networks')).body.map((n) => n.Name).sort(), networksBefore);
    t.false(existsSync(join(d.runtimeDir, 'docker', 'containers', pod)));
  });
}
