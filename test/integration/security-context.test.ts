// Security contexts (issue 11): users and groups (supplemental_groups_policy, the pod's user),
// sysctls, AppArmor, SELinux and user namespaces, as a container's processes observe them.
import test from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { podConfig, containerConfig } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';
import { thisHost } from '../../src/security/apparmor.js';

const d = useDaemon('security context tests');
if (d) {
  const NS = { network: 'POD', pid: 'CONTAINER', ipc: 'POD' };

  /** The command's output lines (stdout and stderr) from the CRI log. */
  const output = (logPath: string) =>
    readFileSync(logPath, 'utf8')
      .split('\n')
      .map((l) => /^\S+ (?:stdout|stderr) [PF] (.*)$/.exec(l)?.[1])
      .filter((l): l is string => l !== undefined);

  async function runPod(name: string, linux: object = {}, extra: object = {}) {
    const cfg = podConfig(name, { linux: { security_context: { namespace_options: NS }, ...linux }, ...extra }, join(d!.logDir, name));
    const { pod_sandbox_id: pod } = await d!.client.call('RunPodSandbox', { config: cfg });
    return { pod, cfg };
  }

  async function removePod(pod: string) {
    await d!.client.call('StopPodSandbox', { pod_sandbox_id: pod });
    await d!.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  }

  /** Runs `script` to its end; its output lines and its ContainerStatus. */
  async function run(pod: { pod: string; cfg: object }, name: string, script: string, linux: object = {}) {
    const { container_id } = await d!.client.call('CreateContainer', {
      pod_sandbox_id: pod.pod,
      config: containerConfig(name, ['sh', '-c', script], { linux }),
      sandbox_config: pod.cfg,
    });
    await d!.client.call('StartContainer', { container_id });
    const st = await d!.waitExited(container_id);
    const lines = output(st.log_path);
    if (st.exit_code !== 0) throw new Error(`container ${name} exited ${st.exit_code}: ${lines.join('\n')}`);
    return { lines, status: st, id: container_id as string };
  }

  const sortedIds = (line: string | undefined) =>
    (line ?? '')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .sort((a, b) => a - b);

  // The busybox test image (hack/build-test-images.ts): tester is 1000:1000 and, in its
  // /etc/group, a member of wheel (10) and users (100).
  test.serial('supplemental groups: Merge adds the image /etc/group membership, Strict does not; id -G, ExecSync and ContainerStatus.user agree', async (t) => {
    const features = (await d.client.call('Status', {})).features;
    t.true(features.supplemental_groups_policy, 'Status advertises supplemental_groups_policy');
    const pod = await runPod('groups');
    const ID = 'id -u; id -g; id -G';
    const cases: { name: string; sc: object; uid: number; gid: number; groups: number[] }[] = [
      { name: 'merge-default', sc: { run_as_username: 'tester', supplemental_groups: ['1234'] }, uid: 1000, gid: 1000, groups: [1000, 10, 100, 1234] },
      { name: 'merge', sc: { run_as_username: 'tester', supplemental_groups: ['1234'], supplemental_groups_policy: 'Merge' }, uid: 1000, gid: 1000, groups: [1000, 10, 100, 1234] },
      { name: 'strict', sc: { run_as_username: 'tester', supplemental_groups: ['1234'], supplemental_groups_policy: 'Strict' }, uid: 1000, gid: 1000, groups: [1000, 1234] },
      // run_as_group replaces the primary group; the user's image groups still come with Merge.
      { name: 'merge-group', sc: { run_as_user: { value: '1000' }, run_as_group: { value: '3000' }, supplemental_groups: ['4000'] }, uid: 1000, gid: 3000, groups: [3000, 10, 100, 4000] },
      { name: 'strict-group', sc: { run_as_user: { value: '1000' }, run_as_group: { value: '3000' }, supplemental_groups: ['4000'], supplemental_groups_policy: 'Strict' }, uid: 1000, gid: 3000, groups: [3000, 4000] },
      // A uid without a passwd entry: gid 0, nothing to merge.
      { name: 'strict-nouser', sc: { run_as_user: { value: '4242' }, supplemental_groups_policy: 'Strict' }, uid: 4242, gid: 0, groups: [0] },
    ];
    for (const c of cases) {
      const { lines, status: st, id } = await run(pod, c.name, ID, { security_context: c.sc });
      t.is(lines[0], String(c.uid), `${c.name}: id -u`);
      t.is(lines[1], String(c.gid), `${c.name}: id -g`);
      t.deepEqual(sortedIds(lines[2]), [...c.groups].sort((a, b) => a - b), `${c.name}: id -G`);
      // As containerd 2.0 reports it: the primary gid first, int64s as the wire has them.
      t.deepEqual(st.user, { linux: { uid: String(c.uid), gid: String(c.gid), supplemental_groups: c.groups.map(String) } }, `${c.name}: ContainerStatus.user`);
      t.is(lines.length, 3, lines.join('\n'));
      await d.client.call('RemoveContainer', { container_id: id });
    }
    // ExecSync processes get the same groups.
    const { container_id } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod.pod,
      config: containerConfig('strict-exec', ['sleep', '3600'], { linux: { security_context: { run_as_username: 'tester', supplemental_groups: ['1234'], supplemental_groups_policy: 'Strict' } } }),
      sandbox_config: pod.cfg,
    });
    await d.client.call('StartContainer', { container_id });
    const ex = await d.client.call('ExecSync', { container_id, cmd: ['id', '-G'], timeout: 10 });
    t.deepEqual(sortedIds(ex.stdout.toString()), [1000, 1234]);
    // Bad values are refused naming the field.
    for (const [sc, re] of [
      [{ supplemental_groups: ['-1'] }, /supplemental_groups\[0\]/],
      [{ supplemental_groups_policy: 7 }, /supplemental_groups_policy/],
    ] as const) {
      const err = await t.throwsAsync(d.client.call('CreateContainer', { pod_sandbox_id: pod.pod, config: containerConfig('bad-groups', ['true'], { linux: { security_context: sc } }), sandbox_config: pod.cfg }));
      t.is((err as { code?: number }).code, status.INVALID_ARGUMENT, err!.message);
      t.regex(err!.message, re);
    }
    await removePod(pod.pod);
  });

  test.serial("masked and read-only paths: containerd's defaults, and the CRI lists replacing them", async (t) => {
    const pod = await runPod('paths');
    t.teardown(() => removePod(pod.pod).catch(() => undefined));
    const probe = [
      'echo timer_list=$(wc -c < /proc/timer_list)',
      'echo firmware=$(ls -A /sys/firmware 2>/dev/null | wc -l)',
      '(echo h > /proc/sysrq-trigger) 2>/dev/null; echo sysrq=$?',
      'grep -E " /proc/sys (ro|rw)," /proc/self/mountinfo | cut -d" " -f5,6 | cut -d, -f1',
      'echo motd=$(wc -c < /etc/motd)',
      '(touch /tmp/x) 2>/dev/null; echo tmp=$?',
    ].join('; ');
    const field = (lines: string[], k: string) => lines.find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1);
    const def = (await run(pod, 'defaults', probe)).lines;
    t.is(field(def, 'timer_list'), '0', def.join('\n'));
    t.is(field(def, 'firmware'), '0');
    t.not(field(def, 'sysrq'), '0');
    t.true(def.includes('/proc/sys ro'), def.join('\n'));
    t.not(field(def, 'motd'), '0');
    t.is(field(def, 'tmp'), '0');
    // The CRI's lists replace the defaults (the kubelet sends them in full).
    const own = (await run(pod, 'own', probe, { security_context: { masked_paths: ['/etc/motd'], readonly_paths: ['/tmp'] } })).lines;
    t.is(field(own, 'motd'), '0', own.join('\n'));
    t.not(field(own, 'tmp'), '0');
    t.not(field(own, 'timer_list'), '0');
    t.false(own.includes('/proc/sys ro'));
  });

  test.serial('add_ambient_capabilities: a non-root command keeps them across exec (CapAmb, CapEff), ExecSync too; one outside the container set is refused', async (t) => {
    const pod = await runPod('ambient');
    t.teardown(() => removePod(pod.pod).catch(() => undefined));
    const NET_BIND = 1n << 10n;
    const capLine = (lines: string[], name: string) => BigInt('0x' + (lines.find((l) => l.startsWith(`${name}:`))?.split(/\s+/)[1] ?? 'x'));
    const script = 'grep -E "^Cap(Amb|Eff|Inh)" /proc/self/status; sleep 1000';
    const sc = (extra: object) => ({ security_context: { run_as_user: { value: 1000 }, ...extra } });
    // With ambient NET_BIND_SERVICE (in containerd's default set): effective after exec as uid 1000.
    const { container_id: amb } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod.pod,
      config: containerConfig('amb', ['sh', '-c', script], { linux: sc({ capabilities: { add_ambient_capabilities: ['NET_BIND_SERVICE'] } }) }),
      sandbox_config: pod.cfg,
    });
    await d.client.call('StartContainer', { container_id: amb });
    const st = await d.client.call('ContainerStatus', { container_id: amb });
    let lines: string[] = [];
    for (let i = 0; i < 100 && !lines.some((l) => l.startsWith('CapEff:')); i++) {
      await new Promise((r) => setTimeout(r, 50));
      lines = output(st.status.log_path);
    }
    t.is(capLine(lines, 'CapAmb'), NET_BIND, lines.join('\n'));
    t.is(capLine(lines, 'CapEff'), NET_BIND);
    const ex = await d.client.call('ExecSync', { container_id: amb, cmd: ['grep', '-E', '^Cap(Amb|Eff)', '/proc/self/status'], timeout: 10 });
    const exLines = Buffer.from(ex.stdout).toString().split('\n');
    t.is(capLine(exLines, 'CapAmb'), NET_BIND, exLines.join('\n'));
    t.is(capLine(exLines, 'CapEff'), NET_BIND);
    // Without: uid 1000 has no capability after exec.
    const plain = await run(pod, 'plain', 'grep -E "^Cap(Amb|Eff)" /proc/self/status', sc({}));
    t.is(capLine(plain.lines, 'CapAmb'), 0n);
    t.is(capLine(plain.lines, 'CapEff'), 0n);
    // Not among the container's capabilities (SYS_ADMIN is not in the default set): refused.
    const err = await t.throwsAsync(
      d.client.call('CreateContainer', {
        pod_sandbox_id: pod.pod,
        config: containerConfig('amb-bad', ['true'], { linux: sc({ capabilities: { add_ambient_capabilities: ['SYS_ADMIN'] } }) }),
        sandbox_config: pod.cfg,
      }),
    );
    t.is((err as unknown as { code: number }).code, status.INVALID_ARGUMENT);
    t.regex(err!.message, /add_ambient_capabilities: SYS_ADMIN is not among the container's capabilities/);
  });

  test.serial("the pod's run_as_user, run_as_group and supplemental_groups are the pause helper's, as containerd runs the pause container", async (t) => {
    const pod = await runPod('pause-user', {
      security_context: { namespace_options: { ...NS, pid: 'POD' }, run_as_user: { value: '1001' }, run_as_group: { value: '1002' }, supplemental_groups: ['1003'] },
    });
    // With the pod's PID namespace the pause helper is PID 1.
    const { lines } = await run(pod, 'look', "grep -E '^(Uid|Gid|Groups):' /proc/1/status", { security_context: { namespace_options: { ...NS, pid: 'POD' } } });
    t.deepEqual(
      lines.map((l) => l.replace(/\s+/g, ' ').trim()),
      ['Uid: 1001 1001 1001 1001', 'Gid: 1002 1002 1002 1002', 'Groups: 1002 1003'],
    );
    // Containers still join its namespaces, and it stops and is removed as any pod.
    const again = await run(pod, 'again', 'echo joined', { security_context: { namespace_options: { ...NS, pid: 'POD' } } });
    t.deepEqual(again.lines, ['joined']);
    await removePod(pod.pod);
    t.deepEqual((await d.client.call('ListPodSandbox', {})).items.filter((p: { id: string }) => p.id === pod.pod), []);
    const logs = d.logs();
    t.false(/fields accepted but not applied[^\n]*run_as_user/.test(logs), 'run_as_user is no longer listed as unapplied');
  });

  const hostValue = (key: string) => readFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, 'utf8').trim();

  test.serial("namespaced sysctls land in the pod's IPC, network and UTS namespaces, and the host keeps its values", async (t) => {
    const keys = ['kernel.shmmax', 'kernel.msgmax', 'kernel.sem', 'fs.mqueue.msg_max', 'net.ipv4.ip_unprivileged_port_start', 'kernel.domainname'];
    const before = Object.fromEntries(keys.map((k) => [k, hostValue(k)]));
    const sysctls = {
      'kernel.shmmax': '123456789',
      'kernel.msgmax': '12345',
      'kernel.sem': '250\t32000\t32\t129',
      'fs.mqueue.msg_max': '17',
      // The '/' form: the kubelet passes keys with dots in a name (interfaces) that way.
      'net/ipv4/ip_unprivileged_port_start': '81',
      'kernel.domainname': 'sysctl.test',
    };
    const pod = await runPod('sysctls', { sysctls });
    const script = keys.map((k) => `echo "${k}=$(cat /proc/sys/${k.replace(/\./g, '/')})"`).join('; ');
    const { lines } = await run(pod, 'read', script);
    const seen = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).replace(/\s+/g, ' ')]));
    t.deepEqual(seen, {
      'kernel.shmmax': '123456789',
      'kernel.msgmax': '12345',
      'kernel.sem': '250 32000 32 129',
      'fs.mqueue.msg_max': '17',
      'net.ipv4.ip_unprivileged_port_start': '81',
      'kernel.domainname': 'sysctl.test',
    });
    for (const k of keys) t.is(hostValue(k), before[k], `the host's ${k} is unchanged`);
    await removePod(pod.pod);
  });

  test.serial('kernel.hostname: accepted when it is the pod hostname (or the pod has none), refused when it conflicts', async (t) => {
    const pod = await runPod('named', { sysctls: { 'kernel.hostname': 'named' } });
    const { lines } = await run(pod, 'host', 'hostname; cat /etc/hostname');
    t.deepEqual(lines, ['named', 'named']);
    await removePod(pod.pod);
    const unnamed = await runPod('unnamed', { sysctls: { 'kernel.hostname': 'from-sysctl' } }, { hostname: '' });
    const u = await run(unnamed, 'host', 'hostname; cat /etc/hostname');
    t.deepEqual(u.lines, ['from-sysctl', 'from-sysctl'], 'the sysctl names the pod: its hostname file agrees');
    await removePod(unnamed.pod);
    const err = await t.throwsAsync(runPod('conflict', { sysctls: { 'kernel.hostname': 'other' } }));
    t.is((err as { code?: number }).code, status.INVALID_ARGUMENT);
    t.regex(err!.message, /linux\.sysctls\["kernel\.hostname"\].*conflicts with config\.hostname/);
  });

  test.serial('sysctls that are not namespaced, or whose namespace is the host’s, are refused before anything is created', async (t) => {
    const hostIpc = { ...NS, ipc: 'NODE' };
    const hostNet = { ...NS, network: 'NODE' };
    const cases: { sysctls: Record<string, string>; ns: object; re: RegExp }[] = [
      { sysctls: { 'kernel.panic': '10' }, ns: NS, re: /linux\.sysctls\["kernel\.panic"\]: not a namespaced sysctl/ },
      { sysctls: { 'vm.swappiness': '10' }, ns: NS, re: /linux\.sysctls\["vm\.swappiness"\]: not a namespaced sysctl/ },
      { sysctls: { 'kernel.shmmax': '1', 'kernel.yama.ptrace_scope': '1' }, ns: NS, re: /linux\.sysctls\["kernel\.yama\.ptrace_scope"\]/ },
      { sysctls: { 'net.ipv4.ip_forward': '1' }, ns: hostNet, re: /linux\.sysctls\["net\.ipv4\.ip_forward"\]: needs the pod's own network namespace/ },
      { sysctls: { 'kernel.domainname': 'x' }, ns: hostNet, re: /linux\.sysctls\["kernel\.domainname"\]: needs the pod's own UTS namespace/ },
      { sysctls: { 'kernel.shmmax': '1' }, ns: hostIpc, re: /linux\.sysctls\["kernel\.shmmax"\]: needs the pod's own IPC namespace/ },
      { sysctls: { 'fs.mqueue.msg_max': '1' }, ns: hostIpc, re: /linux\.sysctls\["fs\.mqueue\.msg_max"\]: needs the pod's own IPC namespace/ },
      { sysctls: { 'net.ipv4..x': '1' }, ns: NS, re: /not a sysctl name/ },
    ];
    const freezer = d.cgroupDir('freezer')!;
    const podCgroups = () => (existsSync(freezer) ? readdirSync(freezer, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name) : []);
    const cgBefore = podCgroups();
    const before = { shmmax: hostValue('kernel.shmmax'), ipForward: hostValue('net.ipv4.ip_forward') };
    for (const [i, c] of cases.entries()) {
      const err = await t.throwsAsync(runPod(`refused-${i}`, { sysctls: c.sysctls, security_context: { namespace_options: c.ns } }));
      t.is((err as { code?: number }).code, status.INVALID_ARGUMENT, err!.message);
      t.regex(err!.message, c.re);
    }
    // Nothing was created: no pod listed, no cgroup, no runtime dir, no record; the host is as it was.
    t.deepEqual((await d.client.call('ListPodSandbox', {})).items, []);
    t.deepEqual(podCgroups(), cgBefore);
    t.deepEqual(readdirSync(join(d.runtimeDir, 'containers')), []);
    t.deepEqual(readdirSync(join(d.workDir, 'meta', 'sandboxes')), []);
    t.is(hostValue('kernel.shmmax'), before.shmmax);
    t.is(hostValue('net.ipv4.ip_forward'), before.ipForward);
    // The names are free: the same pod without the sysctl runs.
    const ok = await runPod('refused-0');
    await removePod(ok.pod);
  });

  // This kernel has no AppArmor; on one that has, these refusals do not apply.
  (thisHost().enabled ? test.serial.skip : test.serial)('AppArmor on a host without it: any profile but Unconfined is refused naming the field; Unconfined runs', async (t) => {
    const pod = await runPod('apparmor');
    const refused: [object, RegExp][] = [
      [{ apparmor: { profile_type: 'RuntimeDefault' } }, /linux\.security_context\.apparmor \(RuntimeDefault\): AppArmor is not enabled on this host/],
      [{ apparmor: {} }, /linux\.security_context\.apparmor \(RuntimeDefault\)/],
      [{ apparmor: { profile_type: 'Localhost', localhost_ref: 'my-profile' } }, /linux\.security_context\.apparmor \(Localhost "my-profile"\): AppArmor is not enabled/],
      [{ apparmor_profile: 'runtime/default' }, /linux\.security_context\.apparmor_profile \(RuntimeDefault\)/],
      [{ apparmor_profile: 'localhost/my-profile' }, /linux\.security_context\.apparmor_profile \(Localhost "my-profile"\)/],
    ];
    for (const [sc, re] of refused) {
      const err = await t.throwsAsync(
        d.client.call('CreateContainer', { pod_sandbox_id: pod.pod, config: containerConfig('confined', ['true'], { linux: { security_context: sc } }), sandbox_config: pod.cfg }),
      );
      t.is((err as { code?: number }).code, status.FAILED_PRECONDITION, err!.message);
      t.regex(err!.message, re);
    }
    const bad = await t.throwsAsync(
      d.client.call('CreateContainer', { pod_sandbox_id: pod.pod, config: containerConfig('bad', ['true'], { linux: { security_context: { apparmor_profile: 'weird' } } }), sandbox_config: pod.cfg }),
    );
    t.is((bad as { code?: number }).code, status.INVALID_ARGUMENT);
    t.regex(bad!.message, /apparmor_profile: unknown profile "weird"/);
    t.deepEqual((await d.client.call('ListContainers', { filter: { pod_sandbox_id: pod.pod } })).containers, [], 'no container was created');
    // Unconfined (both forms) runs, and the process is unconfined.
    for (const [name, sc] of [['unconfined', { apparmor: { profile_type: 'Unconfined' } }], ['unconfined-path', { apparmor_profile: 'unconfined' }]] as const) {
      const { lines } = await run(pod, name, 'echo ran', { security_context: sc });
      t.deepEqual(lines, ['ran']);
    }
    // The pod's own profile too.
    const err = await t.throwsAsync(runPod('apparmor-pod', { security_context: { namespace_options: NS, apparmor: { profile_type: 'RuntimeDefault' } } }));
    t.is((err as { code?: number }).code, status.FAILED_PRECONDITION);
    t.regex(err!.message, /config\.linux\.security_context\.apparmor \(RuntimeDefault\)/);
    await removePod(pod.pod);
  });

  test.serial('SELinux options are accepted, not applied, and logged; a container cannot ask for a user namespace its pod has not', async (t) => {
    const selinux = { user: 'system_u', role: 'system_r', type: 'container_t', level: 's0:c1,c2' };
    const pod = await runPod('selinux', { security_context: { namespace_options: NS, selinux_options: selinux } });
    const { lines, id } = await run(pod, 'labelled', 'echo ran', { security_context: { selinux_options: selinux } });
    t.deepEqual(lines, ['ran']);
    const logs = d.logs();
    t.regex(logs, new RegExp(`container fields accepted but not applied[^\\n]*${id}[^\\n]*selinux_options`));
    t.regex(logs, /pod sandbox fields accepted but not applied[^\n]*selinux_options/);

    // User namespaces are the pod's (test/integration/userns.test.ts): a container alone cannot have one.
    const userns = { mode: 'POD', uids: [{ host_id: 100000, container_id: 0, length: 65536 }], gids: [{ host_id: 100000, container_id: 0, length: 65536 }] };
    const cerr = await t.throwsAsync(
      d.client.call('CreateContainer', {
        pod_sandbox_id: pod.pod,
        config: containerConfig('userns', ['true'], { linux: { security_context: { namespace_options: { ...NS, userns_options: userns } } } }),
        sandbox_config: pod.cfg,
      }),
    );
    t.is((cerr as { code?: number }).code, status.INVALID_ARGUMENT);
    t.regex(cerr!.message, /config\.linux\.security_context\.namespace_options\.userns_options: the container asks for a user namespace \(mode POD\) but its pod/);
    // The kubelet's hostUsers default (mode NODE) runs.
    const node = await run(pod, 'node-userns', 'echo ran', { security_context: { namespace_options: { ...NS, userns_options: { mode: 'NODE' } } } });
    t.deepEqual(node.lines, ['ran']);
    await removePod(pod.pod);
  });
}
