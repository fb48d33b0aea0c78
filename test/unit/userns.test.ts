// User namespaces (userns_options): what the CRI layer accepts and refuses, and the mapping text
// the kernel gets. The namespaces themselves are tested in test/integration/userns.test.ts.
import test from 'ava';
import { Code, type StatusError } from '../../src/errors.js';
import { checkContainerUserns, checkMapped, userNamespace } from '../../src/cri/runtime/userns.js';
import { criMounts } from '../../src/cri/runtime/mounts.js';
import { hostIdOf, idMapText } from '../../src/containerizer/mesos/isolator.js';
import type { Mount__Output } from '../../api/generated/runtime/v1/Mount.js';

const F = 'config.linux.security_context';
const U = `${F}.namespace_options.userns_options`;
const code = (e: unknown) => (e as StatusError).status;
const range = (container_id: number, host_id: number, length: number) => ({ container_id, host_id, length });
const opts = (mode: string, uids: ReturnType<typeof range>[] = [], gids: ReturnType<typeof range>[] = uids) =>
  ({ network: 'POD', pid: 'CONTAINER', ipc: 'POD', target_id: '', userns_options: { mode, uids, gids } }) as never;
const K8S = [range(0, 100000, 65536)];

test('absent and mode NODE mean the host user namespace; NODE with mappings is refused naming the field', (t) => {
  t.is(userNamespace(undefined, F), undefined);
  t.is(userNamespace({ network: 'POD', pid: 'POD', ipc: 'POD', target_id: '', userns_options: null } as never, F), undefined);
  t.is(userNamespace(opts('NODE'), F), undefined);
  const e = t.throws(() => userNamespace(opts('NODE', K8S), F));
  t.is(code(e), Code.INVALID_ARGUMENT);
  t.regex(e!.message, new RegExp(`^${U.replace(/\./g, '\\.')}: mode NODE takes no mappings`));
});

test('mode POD: the kubelet mappings are taken as they are', (t) => {
  const u = userNamespace(opts('POD', K8S, [range(0, 200000, 65536)]), F)!;
  t.deepEqual(u.uids, [{ containerId: 0, hostId: 100000, length: 65536 }]);
  t.deepEqual(u.gids, [{ containerId: 0, hostId: 200000, length: 65536 }]);
  t.is(idMapText(u.uids), '0 100000 65536\n');
  t.is(hostIdOf(u.uids, 0), 100000);
  t.is(hostIdOf(u.uids, 65535), 165535);
  t.is(hostIdOf(u.uids, 65536), undefined);
  // Several ranges, in order, one line each.
  const two = userNamespace(opts('POD', [range(0, 100000, 1000), range(1000, 300000, 10)]), F)!;
  t.is(idMapText(two.uids), '0 100000 1000\n1000 300000 10\n');
});

test('mode POD: bad mappings are INVALID_ARGUMENT naming the range', (t) => {
  const refuse = (o: never, re: RegExp) => {
    const e = t.throws(() => userNamespace(o, F));
    t.is(code(e), Code.INVALID_ARGUMENT);
    t.regex(e!.message, re);
  };
  refuse(opts('POD', [], K8S), /userns_options\.uids must not be empty with mode POD/);
  refuse(opts('POD', K8S, []), /userns_options\.gids must not be empty with mode POD/);
  refuse(opts('POD', [range(0, 100000, 0)]), /userns_options\.uids\[0\]\.length must be greater than 0/);
  refuse(opts('POD', [range(0, 0xfffff000, 0x2000)]), /userns_options\.uids\[0\]: host_id 4294963200 \+ length 8192 overflows/);
  refuse(opts('POD', [range(0, 1, 1), range(0xffffff00, 5, 0x100)]), /userns_options\.uids\[1\]: container_id 4294967040 \+ length 256 overflows/);
  refuse(opts('POD', [range(0, 100000, 100), range(50, 300000, 100)]), /userns_options\.uids\[1\] overlaps .*uids\[0\] in container ids/);
  refuse(opts('POD', [range(0, 100000, 100), range(500, 100050, 100)]), /userns_options\.uids\[1\] overlaps .*uids\[0\] in host ids/);
  refuse(opts('POD', [range(1, 100000, 100)]), /userns_options\.uids must map container id 0/);
  refuse(opts('POD', Array.from({ length: 341 }, (_, i) => range(i, 100000 + i, 1))), /has 341 ranges; the kernel takes at most 340/);
});

test('modes other than POD and NODE are unsupported, as in containerd', (t) => {
  for (const mode of ['CONTAINER', 'TARGET']) {
    const e = t.throws(() => userNamespace(opts(mode, K8S), F));
    t.is(code(e), Code.INVALID_ARGUMENT);
    t.regex(e!.message, new RegExp(`userns_options\\.mode ${mode}: unsupported user namespace mode`));
  }
});

test("a container's user namespace must be its pod's", (t) => {
  const pod = userNamespace(opts('POD', K8S), F)!;
  t.notThrows(() => checkContainerUserns(pod, pod, F, 'p1'));
  t.notThrows(() => checkContainerUserns(undefined, undefined, F, 'p1'));
  const refuse = (c: typeof pod | undefined, p: typeof pod | undefined, re: RegExp) => {
    const e = t.throws(() => checkContainerUserns(c, p, F, 'p1'));
    t.is(code(e), Code.INVALID_ARGUMENT);
    t.regex(e!.message, re);
  };
  refuse(pod, undefined, /userns_options: the container asks for a user namespace \(mode POD\) but its pod p1 runs in the host's/);
  refuse(undefined, pod, /userns_options: pod p1 runs in a user namespace/);
  refuse({ ...pod, uids: [{ containerId: 0, hostId: 200000, length: 65536 }] }, pod, /userns_options\.uids differ from the pod's \(0:100000:65536\)/);
  refuse({ ...pod, gids: [{ containerId: 0, hostId: 100000, length: 1000 }] }, pod, /userns_options\.gids differ from the pod's/);
});

test('the process ids must be mapped', (t) => {
  const maps = [{ containerId: 0, hostId: 100000, length: 65536 }];
  t.notThrows(() => checkMapped([0, 1000, 65535], maps, `${F}.run_as_user`, 'uid'));
  const e = t.throws(() => checkMapped([70000], maps, `${F}.run_as_user`, 'uid'));
  t.is(code(e), Code.INVALID_ARGUMENT);
  t.regex(e!.message, /^config\.linux\.security_context\.run_as_user: uid 70000 is not mapped in the pod's user namespace \(userns_options 0:100000:65536\)/);
});

test("mounts in a user namespace: no bidirectional propagation; a mount's own mappings only as the pod's", (t) => {
  const pod = userNamespace(opts('POD', K8S), F)!;
  const mount = (extra: Partial<Mount__Output>): Mount__Output =>
    ({ container_path: '/data', host_path: '/tmp', readonly: false, recursive_read_only: false, propagation: 'PROPAGATION_PRIVATE', selinux_relabel: false, uidMappings: [], gidMappings: [], image: null, image_sub_path: '', mount_options: [], ...extra }) as Mount__Output;
  t.is(criMounts([mount({})], pod)[0]!.field, 'mounts[0]');
  const bidi = t.throws(() => criMounts([mount({}), mount({ propagation: 'PROPAGATION_BIDIRECTIONAL' })], pod));
  t.is(code(bidi), Code.INVALID_ARGUMENT);
  t.regex(bidi!.message, /^mounts\[1\]\.propagation PROPAGATION_BIDIRECTIONAL cannot be used in a user namespace/);
  // The pod's mappings: what the mount gets anyway.
  t.notThrows(() => criMounts([mount({ uidMappings: K8S, gidMappings: K8S })], pod));
  const other = t.throws(() => criMounts([mount({ uidMappings: [range(0, 300000, 10)], gidMappings: K8S })], pod));
  t.is(code(other), Code.UNIMPLEMENTED);
  t.regex(other!.message, /^mounts\[0\]\.uidMappings\/gidMappings: a mapping other than the pod's user namespace's/);
  const none = t.throws(() => criMounts([mount({ uidMappings: K8S, gidMappings: K8S })], undefined));
  t.is(code(none), Code.UNIMPLEMENTED);
  t.regex(none!.message, /^mounts\[0\]\.uidMappings\/gidMappings: idmapped mounts are made only with the pod's user namespace/);
});
