// The pure rules of security contexts: sysctls, AppArmor, groups, user namespaces.
import test from 'ava';
import { Code, StatusError } from '../../src/errors.js';
import { checkSysctls, podHostname, sysctlNamespace } from '../../src/security/sysctl.js';
import { appArmorProfile, chooseAppArmor, DEFAULT_PROFILE, type AppArmorHost } from '../../src/security/apparmor.js';
import { effectiveGroups } from '../../src/cri/runtime/create-container.js';
import { checkIds, groupsPolicy } from '../../src/cri/runtime/common.js';
import { unappliedContainerFields, unappliedSandboxFields } from '../../src/cri/runtime/unapplied.js';
import type { SecurityProfile__Output } from '../../api/generated/runtime/v1/SecurityProfile.js';
import type { ContainerConfig__Output } from '../../api/generated/runtime/v1/ContainerConfig.js';
import type { PodSandboxConfig__Output } from '../../api/generated/runtime/v1/PodSandboxConfig.js';

const code = (e: unknown) => (e as StatusError).status;

test('sysctls: which namespace holds a key (the kubelet list), in dotted and slash form', (t) => {
  for (const k of ['kernel.shmmax', 'kernel.shmall', 'kernel.shmmni', 'kernel.shm_rmid_forced', 'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'fs.mqueue.msg_max', 'fs.mqueue.queues_max', 'kernel/shmmax']) {
    t.is(sysctlNamespace(k), 'ipc', k);
  }
  for (const k of ['net.ipv4.ip_forward', 'net.core.somaxconn', 'net/ipv4/conf/eth0.100/rp_filter']) t.is(sysctlNamespace(k), 'net', k);
  for (const k of ['kernel.domainname', 'kernel.hostname']) t.is(sysctlNamespace(k), 'uts', k);
  for (const k of ['kernel.panic', 'vm.swappiness', 'kernel.yama.ptrace_scope', 'fs.file-max', 'kernel.semx.y', 'kernel', 'net', 'fs.mqueue', 'user.max_user_namespaces']) {
    t.is(sysctlNamespace(k), undefined, k);
  }
});

test('sysctls: refused with INVALID_ARGUMENT naming the key, by the namespaces the pod has', (t) => {
  const own = { network: 'POD', ipc: 'POD' } as const;
  t.notThrows(() => checkSysctls({ 'kernel.shmmax': '1', 'net.ipv4.ip_forward': '1', 'kernel.domainname': 'x', 'fs.mqueue.msg_max': '10' }, own));
  t.notThrows(() => checkSysctls(undefined, own));
  const refuse = (s: Record<string, string>, ns: { network: 'POD' | 'NODE'; ipc: 'POD' | 'NODE' }, re: RegExp) => {
    const e = t.throws(() => checkSysctls(s, ns));
    t.is(code(e), Code.INVALID_ARGUMENT);
    t.regex(e!.message, re);
  };
  refuse({ 'kernel.panic': '1' }, own, /^config\.linux\.sysctls\["kernel\.panic"\]: not a namespaced sysctl/);
  refuse({ 'vm.swappiness': '1' }, own, /\["vm\.swappiness"\]/);
  refuse({ 'kernel.shmmax': '1' }, { network: 'POD', ipc: 'NODE' }, /\["kernel\.shmmax"\]: needs the pod's own IPC namespace/);
  refuse({ 'kernel.msgmax': '1' }, { network: 'NODE', ipc: 'NODE' }, /IPC namespace/);
  refuse({ 'net.ipv4.ip_forward': '1' }, { network: 'NODE', ipc: 'POD' }, /\["net\.ipv4\.ip_forward"\]: needs the pod's own network namespace/);
  refuse({ 'kernel.hostname': 'x' }, { network: 'NODE', ipc: 'POD' }, /UTS namespace/);
  refuse({ 'net..x': '1' }, own, /not a sysctl name/);
  refuse({ 'net/../x': '1' }, own, /not a sysctl name/);
  refuse({ 'net.a b': '1' }, own, /not a sysctl name/);
  refuse({ 'net.ipv4.ip_forward': '1\0' }, own, /NUL/);
  // IPC sysctls only need a private IPC namespace, also on a host-network pod.
  t.notThrows(() => checkSysctls({ 'kernel.shmmax': '1' }, { network: 'NODE', ipc: 'POD' }));
});

test('sysctls: kernel.hostname names the pod unless it conflicts with the CRI hostname', (t) => {
  t.is(podHostname('pod', undefined), 'pod');
  t.is(podHostname('pod', { 'kernel.hostname': 'pod' }), 'pod');
  t.is(podHostname('', { 'kernel/hostname': 'sys' }), 'sys');
  const e = t.throws(() => podHostname('pod', { 'kernel.hostname': 'other' }));
  t.is(code(e), Code.INVALID_ARGUMENT);
  t.regex(e!.message, /\["kernel\.hostname"\] "other" conflicts with config\.hostname "pod"/);
});

const profile = (profile_type: SecurityProfile__Output['profile_type'], localhost_ref = ''): SecurityProfile__Output => ({ profile_type, localhost_ref });
const host = (enabled: boolean, loaded: string[] | 'unreadable' = []): AppArmorHost => ({ enabled, loaded: (n) => (loaded === 'unreadable' ? undefined : loaded.includes(n)) });
const F = 'config.linux.security_context';

test('AppArmor choice: the message wins (zero value RuntimeDefault), then the deprecated path, else none', (t) => {
  t.deepEqual(chooseAppArmor(undefined, F), { kind: 'none' });
  t.deepEqual(chooseAppArmor({ apparmor_profile: '' }, F), { kind: 'none' });
  t.deepEqual(chooseAppArmor({ apparmor: profile('RuntimeDefault') }, F), { kind: 'runtime-default' });
  t.deepEqual(chooseAppArmor({ apparmor: { profile_type: 0 as unknown as 'RuntimeDefault', localhost_ref: '' } }, F), { kind: 'runtime-default' });
  t.deepEqual(chooseAppArmor({ apparmor: profile('Unconfined'), apparmor_profile: 'runtime/default' }, F), { kind: 'unconfined' });
  t.deepEqual(chooseAppArmor({ apparmor: profile('Localhost', 'p') }, F), { kind: 'localhost', profile: 'p' });
  t.deepEqual(chooseAppArmor({ apparmor_profile: 'unconfined' }, F), { kind: 'unconfined' });
  t.deepEqual(chooseAppArmor({ apparmor_profile: 'runtime/default' }, F), { kind: 'runtime-default' });
  t.deepEqual(chooseAppArmor({ apparmor_profile: 'localhost/p' }, F), { kind: 'localhost', profile: 'p' });
  for (const [sc, re] of [
    [{ apparmor_profile: 'weird' }, /apparmor_profile: unknown profile "weird"/],
    [{ apparmor_profile: 'localhost/' }, /unknown profile/],
    [{ apparmor: profile('Localhost') }, /apparmor\.localhost_ref: empty/],
    [{ apparmor: profile('RuntimeDefault', 'p') }, /only for a Localhost profile/],
    [{ apparmor: profile('Localhost', 'a\nb') }, /newline/],
    [{ apparmor: profile(9 as unknown as 'Localhost') }, /unknown type 9/],
  ] as const) {
    const e = t.throws(() => chooseAppArmor(sc, F));
    t.is(code(e), Code.INVALID_ARGUMENT);
    t.regex(e!.message, re);
  }
});

test('AppArmor without it on the host: any profile but Unconfined is FAILED_PRECONDITION naming the field, as containerd', (t) => {
  const off = host(false);
  t.is(appArmorProfile(undefined, off, F), undefined);
  t.is(appArmorProfile({ apparmor: profile('Unconfined') }, off, F), undefined);
  t.is(appArmorProfile({ apparmor_profile: 'unconfined' }, off, F), undefined);
  for (const [sc, re] of [
    [{ apparmor: profile('RuntimeDefault') }, /^config\.linux\.security_context\.apparmor \(RuntimeDefault\): AppArmor is not enabled on this host/],
    [{ apparmor: profile('RuntimeDefault'), privileged: true }, /apparmor \(RuntimeDefault\)/],
    [{ apparmor: profile('Localhost', 'p') }, /apparmor \(Localhost "p"\)/],
    [{ apparmor_profile: 'runtime/default' }, /apparmor_profile \(RuntimeDefault\)/],
    [{ apparmor_profile: 'localhost/p' }, /apparmor_profile \(Localhost "p"\)/],
  ] as const) {
    const e = t.throws(() => appArmorProfile(sc, off, F));
    t.is(code(e), Code.FAILED_PRECONDITION);
    t.regex(e!.message, re);
  }
});

test('AppArmor on a host with it: the profile planned, privileged RuntimeDefault unconfined, an unloaded profile NOT_FOUND', (t) => {
  const on = host(true, ['p', DEFAULT_PROFILE]);
  t.is(appArmorProfile({ apparmor: profile('Localhost', 'p') }, on, F), 'p');
  t.is(appArmorProfile({ apparmor_profile: 'localhost/p' }, on, F), 'p');
  t.is(appArmorProfile({ apparmor: profile('RuntimeDefault') }, on, F), DEFAULT_PROFILE);
  t.is(appArmorProfile({ apparmor: profile('RuntimeDefault'), privileged: true }, on, F), undefined);
  t.is(appArmorProfile({ apparmor: profile('Unconfined') }, on, F), undefined);
  t.is(appArmorProfile({}, on, F), undefined);
  const e = t.throws(() => appArmorProfile({ apparmor: profile('Localhost', 'missing') }, on, F));
  t.is(code(e), Code.NOT_FOUND);
  t.regex(e!.message, /AppArmor profile "missing" is not loaded/);
  const noDefault = t.throws(() => appArmorProfile({ apparmor: profile('RuntimeDefault') }, host(true, []), F));
  t.is(code(noDefault), Code.NOT_FOUND);
  t.regex(noDefault!.message, new RegExp(`"${DEFAULT_PROFILE}" is not loaded`));
  // When the loaded list cannot be read, the helper's write decides.
  t.is(appArmorProfile({ apparmor: profile('Localhost', 'x') }, host(true, 'unreadable'), F), 'x');
});

test('groups: Merge adds the image /etc/group membership, Strict only the primary gid and supplemental_groups', (t) => {
  const tester = { gid: 1000, additionalGids: [1000, 10, 100] };
  t.deepEqual(effectiveGroups(tester, [1234], 'Merge'), [1000, 10, 100, 1234]);
  t.deepEqual(effectiveGroups(tester, [1234, 10], 'Merge'), [1000, 10, 100, 1234]);
  t.deepEqual(effectiveGroups(tester, [1234], 'Strict'), [1000, 1234]);
  t.deepEqual(effectiveGroups({ gid: 3000, additionalGids: [3000, 10] }, [], 'Strict'), [3000]);
  t.deepEqual(effectiveGroups({ gid: 0, additionalGids: [] }, [5], 'Merge'), [0, 5]);
  t.is(groupsPolicy(undefined, F), 'Merge');
  t.is(groupsPolicy('Merge', F), 'Merge');
  t.is(groupsPolicy('Strict', F), 'Strict');
  t.is(groupsPolicy(1, F), 'Strict');
  const e = t.throws(() => groupsPolicy(5, F));
  t.is(code(e), Code.INVALID_ARGUMENT);
  t.regex(e!.message, /supplemental_groups_policy: unknown policy 5/);
  t.deepEqual(checkIds(['0', '4294967294', 7], 'g'), [0, 4294967294, 7]);
  for (const bad of ['-1', '4294967295', '1.5', 'x']) {
    const err = t.throws(() => checkIds(['1', bad], 'f.supplemental_groups'));
    t.regex(err!.message, /^f\.supplemental_groups\[1\]: /);
  }
});

test('unapplied: Strict, AppArmor, user namespaces and the pod user are no longer listed; SELinux still is', (t) => {
  const selinux = { user: 'u', role: '', type: '', level: '' };
  const container = {
    devices: [],
    CDI_devices: [],
    mounts: [],
    linux: {
      security_context: {
        supplemental_groups_policy: 'Strict',
        apparmor: profile('Unconfined'),
        selinux_options: selinux,
        namespace_options: { userns_options: { mode: 'NODE' } },
      },
    },
  } as unknown as ContainerConfig__Output;
  t.deepEqual(unappliedContainerFields(container), ['linux.security_context.selinux_options']);
  const pod = {
    port_mappings: [],
    linux: { security_context: { run_as_user: { value: '1' }, run_as_group: { value: '2' }, supplemental_groups: ['3'], supplemental_groups_policy: 'Strict', selinux_options: selinux } },
  } as unknown as PodSandboxConfig__Output;
  t.deepEqual(unappliedSandboxFields(pod, true), ['linux.security_context.selinux_options']);
  // The kubelet always sends overhead; empty (every field at its default) it is nothing to apply.
  const empty = { cpu_period: '0', cpu_quota: '0', cpu_shares: '0', memory_limit_in_bytes: '0', oom_score_adj: '0', cpuset_cpus: '', cpuset_mems: '', hugepage_limits: [], unified: {}, memory_swap_limit_in_bytes: '0' };
  const withOverhead = (overhead: object) => ({ port_mappings: [], linux: { overhead } }) as unknown as PodSandboxConfig__Output;
  t.deepEqual(unappliedSandboxFields(withOverhead(empty), true), []);
  t.deepEqual(unappliedSandboxFields(withOverhead({ ...empty, cpu_shares: '128' }), true), ['linux.overhead']);
  t.deepEqual(unappliedSandboxFields(withOverhead({ ...empty, unified: { 'memory.high': '1' } }), true), ['linux.overhead']);
});
