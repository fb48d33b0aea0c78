// Pure pieces of the core: config, launch plan, CRI→process translation,
// rootfs path joining, capabilities, exit statuses, metadata store.
import test from 'ava';
import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, loadConfig, parseConfigToml, parseDuration } from '../../src/config.js';
import { decodePlan, encodePlan } from '../../src/containerizer/mesos/launcher/plan.js';
import { mergeArgv, mergeEnv } from '../../src/cri/runtime/create-container.js';
import { secureJoin } from '../../src/containerizer/mesos/isolators/filesystem/linux.js';
import { capabilityMask } from '../../src/cri/runtime/capabilities.js';
import { readTermination } from '../../src/containerizer/mesos/containerizer.js';
import { toLimits, signalNumber, byCreatedAt, latest } from '../../src/cri/runtime/common.js';
import { MetadataStore, NameRegistry } from '../../src/store/metadata.js';
import { checkpointsCommitted, groupCommitStats, setCommitWhen } from '../../src/store/checkpoint.js';
import type { ImageRecord } from '../../src/images/store.js';
import { checkSysctls } from '../../src/security/sysctl.js';
import { parsePodCidrs } from '../../src/cri/runtime/update-runtime-config.js';
import { Code } from '../../src/errors.js';

const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'cri-mesos-unit-'));
  return d;
};

test('config: TOML keys mirror flags, flags win, bad values name the key', (t) => {
  const c = parseConfigToml('socket = "/tmp/x.sock"\ncontainerizers = ["mesos"]\nshm_size = 1024\n');
  t.is(c.socket, '/tmp/x.sock');
  t.is(c.shmSize, 1024);
  t.is(c.workDir, defaultConfig().workDir);
  t.throws(() => parseConfigToml('nope = 1'), { message: /unknown key "nope"/ });
  t.throws(() => parseConfigToml('containerizers = ["rkt"]'), { message: /unknown containerizer "rkt"/ });
  t.throws(() => parseConfigToml('containerizers = ["mesos", "mesos"]'), { message: /listed twice/ });
  t.throws(() => parseConfigToml('work_dir = "relative"'), { message: /absolute/ });
  t.throws(() => parseConfigToml('cgroup_root = "../escape"'), { message: /cgroup_root/ });
  const d = tmp();
  try {
    writeFileSync(join(d, 'c.toml'), 'log_level = "debug"\ncgroup_root = "from-file"\n');
    const merged = loadConfig(join(d, 'c.toml'), { cgroupRoot: 'from-flag', containerizers: 'mesos,docker' });
    t.is(merged.logLevel, 'debug');
    t.is(merged.cgroupRoot, 'from-flag');
    t.deepEqual(merged.containerizers, ['mesos', 'docker']);
    t.throws(() => loadConfig(join(d, 'missing.toml'), {}), { message: /does not exist/ });
    t.throws(() => loadConfig('/dev/null', { shmSize: 'lots' }), { message: /--shm-size/ });
    t.true(defaultConfig().criFront);
    t.false(parseConfigToml('cri_front = false').criFront);
    t.false(loadConfig('/dev/null', { criFront: 'false' }).criFront);
    t.throws(() => loadConfig('/dev/null', { criFront: 'no' }), { message: /--cri-front: expected true or false/ });
    // Executor mode A: '' (mode B) unless the key or the flag names an image.
    t.is(defaultConfig().dockerMesosImage, '');
    t.is(parseConfigToml('docker_mesos_image = "cri-mesos:1"').dockerMesosImage, 'cri-mesos:1');
    t.is(loadConfig('/dev/null', { dockerMesosImage: 'cri-mesos:2' }).dockerMesosImage, 'cri-mesos:2');
  } finally {
    rmSync(d, { recursive: true });
  }
});

test('plan: fields with tabs, newlines and backslashes round-trip; modes are octal; null is -', (t) => {
  const text = encodePlan([
    ['mount', null, '/a\tb', 'tmpfs', 7, null],
    ['mkdir', '/x', 0o1777],
    ['env', 'A=line1\nline2\\end'],
    ['capabilities', 0xa80425fbn],
  ]);
  t.is(text.split('\n')[1], 'mkdir\t/x\t01777');
  t.is(text.split('\n')[3], 'capabilities\ta80425fb');
  t.deepEqual(decodePlan(text), [
    ['mount', '-', '/a\tb', 'tmpfs', '7', '-'],
    ['mkdir', '/x', '01777'],
    ['env', 'A=line1\nline2\\end'],
    ['capabilities', 'a80425fb'],
  ]);
});

const image = (config: ImageRecord['config']) => ({ config }) as ImageRecord;

test('argv: CRI command replaces Entrypoint, args replace Cmd (Docker rules, not Mesos)', (t) => {
  const img = image({ Entrypoint: ['/entry'], Cmd: ['default', 'cmd'] });
  t.deepEqual(mergeArgv({ command: [], args: [] }, img), ['/entry', 'default', 'cmd']);
  t.deepEqual(mergeArgv({ command: [], args: ['x'] }, img), ['/entry', 'x']);
  t.deepEqual(mergeArgv({ command: ['/bin/sh'], args: [] }, img), ['/bin/sh']);
  t.deepEqual(mergeArgv({ command: ['/bin/sh'], args: ['-c', 'true'] }, img), ['/bin/sh', '-c', 'true']);
  t.deepEqual(mergeArgv({ command: [], args: ['only'] }, image({ Cmd: ['a', 'b'] })), ['only']);
});

test('env: image env under CRI env, PATH defaulted, HOSTNAME set, bytes values decoded', (t) => {
  const env = mergeEnv(['A=1', 'B=2'], [{ key: 'B', value: Buffer.from('x') }, { key: 'C', value: '3' }], 'pod-host');
  t.deepEqual(env, ['A=1', 'B=x', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=pod-host', 'C=3']);
  t.true(mergeEnv(['PATH=/only'], [], '').includes('PATH=/only'));
});

test('secureJoin keeps image symlinks inside the rootfs', (t) => {
  const root = tmp();
  try {
    mkdirSync(join(root, 'real'));
    symlinkSync('/', join(root, 'abs'));
    symlinkSync('../../..', join(root, 'rel'));
    symlinkSync('/real', join(root, 'etc'));
    t.is(secureJoin(root, '/abs/etc/passwd'), join(root, 'real/passwd'));
    t.is(secureJoin(root, '/rel/tmp'), join(root, 'tmp'));
    t.is(secureJoin(root, '/../../x'), join(root, 'x'));
    t.is(secureJoin(root, '/etc/hosts'), join(root, 'real/hosts'));
    symlinkSync('loop2', join(root, 'loop1'));
    symlinkSync('loop1', join(root, 'loop2'));
    t.throws(() => secureJoin(root, '/loop1/x'), { message: /too many symlinks/ });
  } finally {
    rmSync(root, { recursive: true });
  }
});

test('capabilities: default set, add/drop with or without CAP_, ALL, unknown names refused, privileged keeps all', (t) => {
  const all = (1n << 41n) - 1n;
  t.is(capabilityMask(false, [], [], all).mask, 0xa80425fbn);
  t.is(capabilityMask(false, ['CAP_NET_ADMIN'], ['mknod'], all).mask, (0xa80425fbn | (1n << 12n)) & ~(1n << 27n));
  t.is(capabilityMask(false, [], ['ALL'], all).mask, 0n);
  t.is(capabilityMask(false, ['ALL'], [], all).mask, all);
  t.is(capabilityMask(true, [], ['ALL'], all).mask, undefined);
  t.throws(() => capabilityMask(false, ['FLY'], [], all), { message: /add_capabilities: unknown capability "FLY"/ });
  // A runtime without CAP_SYS_RESOURCE (24), as on these VMs: ALL is what it holds; asking for it by name is reported.
  const noSysResource = all & ~(1n << 24n);
  t.deepEqual(capabilityMask(false, ['ALL'], [], noSysResource), { mask: noSysResource, unavailable: [] });
  t.deepEqual(capabilityMask(false, ['SYS_RESOURCE', 'NET_ADMIN'], [], noSysResource), {
    mask: 0xa80425fbn | (1n << 12n),
    unavailable: ['CAP_SYS_RESOURCE'],
  });
});

test('exit status: the helper\'s wait status decodes to CRI exit codes; a missing file is SIGKILL', (t) => {
  const d = tmp();
  try {
    writeFileSync(join(d, 'status'), `${3 << 8} 1700000000000000000\n`);
    t.deepEqual(readTermination(d, false), { exitCode: 3, finishedAt: '1700000000000000000', oomKilled: false, message: '' });
    writeFileSync(join(d, 'status'), '15 1700000000000000001\n');
    t.is(readTermination(d, false).exitCode, 143);
    rmSync(join(d, 'status'));
    const killed = readTermination(d, true);
    t.is(killed.exitCode, 137);
    t.true(killed.oomKilled);
  } finally {
    rmSync(d, { recursive: true });
  }
});

test('resources: CRI values are kept exactly, zeroes mean unset, pids come from unified', (t) => {
  t.deepEqual(
    toLimits({
      cpu_period: '100000',
      cpu_quota: '50000',
      cpu_shares: '512',
      memory_limit_in_bytes: '50000000',
      oom_score_adj: '0',
      cpuset_cpus: '0',
      cpuset_mems: '',
      hugepage_limits: [],
      unified: { 'pids.max': '64' },
      memory_swap_limit_in_bytes: '0',
    }),
    { cpuPeriod: 100000, cpuQuota: 50000, cpuShares: 512, memoryLimitBytes: 50000000, cpusetCpus: '0', pidsLimit: 64 },
  );
  t.is(signalNumber('SIGKILL'), 9);
  t.is(signalNumber('USR1'), 10);
  t.is(signalNumber(''), 15);
  t.is(signalNumber('SIGQUIT'), 3);
  t.is(signalNumber('SIGCONT'), 18);
  t.is(signalNumber('SIGRTMIN+3'), 37);
  t.is(signalNumber('SIGNOPE'), 15);
});

test('toLimits: hugepage limits and unified keys are kept for the isolators; bad ones name the field', (t) => {
  const base = { cpu_period: '0', cpu_quota: '0', cpu_shares: '0', memory_limit_in_bytes: '0', oom_score_adj: '0', cpuset_cpus: '', cpuset_mems: '', memory_swap_limit_in_bytes: '0' };
  t.deepEqual(
    toLimits({
      ...base,
      hugepage_limits: [
        { page_size: '2MB', limit: '0' },
        { page_size: '1GB', limit: '2147483648' },
      ],
      unified: { 'memory.swap.max': '0', 'memory.oom.group': '1', 'pids.max': 'max' },
    }),
    { hugepageLimits: { '2MB': 0, '1GB': 2147483648 }, unified: { 'memory.swap.max': '0', 'memory.oom.group': '1' } },
  );
  t.throws(() => toLimits({ ...base, hugepage_limits: [{ page_size: '2M', limit: '0' }], unified: {} }, 'linux'), {
    message: /linux\.hugepage_limits\[0\]\.page_size "2M"/,
  });
  t.throws(() => toLimits({ ...base, hugepage_limits: [], unified: { 'io.max': '8:0 rbps=1' } }), {
    message: /linux\.resources\.unified\["io\.max"\]: the io controller is not managed/,
  });
  t.throws(() => toLimits({ ...base, hugepage_limits: [], unified: { '../memory.max': '1' } }), { message: /not a cgroup file name/ });
  t.throws(() => toLimits({ ...base, hugepage_limits: [], unified: { 'pids.max': 'lots' } }), { message: /unified\["pids\.max"\] "lots"/ });
});

test('metadata: records survive a reload, bad files are skipped, prefixes match every record they start', (t) => {
  const d = tmp();
  try {
    const s = new MetadataStore<{ id: string; n: number }>(d);
    s.put({ id: 'abc123', n: 1 });
    s.put({ id: 'abd456', n: 2 });
    writeFileSync(join(d, 'broken.json'), '{nope');
    const bad: string[] = [];
    const fresh = new MetadataStore<{ id: string; n: number }>(d);
    t.is(fresh.load((f) => bad.push(f)).length, 2);
    t.deepEqual(bad, [join(d, 'broken.json')]);
    t.deepEqual(fresh.matching('abc').map((r) => r.n), [1]);
    t.deepEqual(fresh.matching('abd456').map((r) => r.n), [2]);
    t.is(fresh.matching('ab').length, 2);
    t.is(fresh.matching('x').length, 0);
    t.is(fresh.matching('').length, 0);
    fresh.delete('abc123');
    t.false(readdirSync(d).includes('abc123.json'));
    const names = new NameRegistry();
    t.is(names.reserve('pod_ns_uid_0', 'a'), undefined);
    t.is(names.reserve('pod_ns_uid_0', 'b'), 'a');
    t.is(names.reserve('pod_ns_uid_0', 'a'), undefined);
    names.releaseId('a');
    t.is(names.reserve('pod_ns_uid_0', 'b'), undefined);
  } finally {
    rmSync(d, { recursive: true });
  }
});

// Serial: it holds the process-wide committer, which the test below counts batches of.
test.serial('group commit: a batch waits for setCommitWhen (the daemon: a quiet moment), the records readable meanwhile', async (t) => {
  const dir = tmp();
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  setCommitWhen(() => gate);
  t.teardown(() => {
    open();
    setCommitWhen(() => Promise.resolve());
    rmSync(dir, { recursive: true, force: true });
  });
  await checkpointsCommitted();
  const before = groupCommitStats().batches;
  const store = new MetadataStore<{ id: string; n: number }>(dir);
  store.put({ id: 'a', n: 1 });
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(groupCommitStats().batches, before, 'no fsync batch before the gate opens');
  t.is(new MetadataStore<{ id: string; n: number }>(dir).load(() => t.fail('unreadable record'))[0]?.n, 1, 'on disk already');
  open();
  await checkpointsCommitted();
  t.is(groupCommitStats().batches, before + 1);
});

test('MetadataStore.put: on disk when it returns; fsyncs group-committed, one per file per batch; a deleted record is skipped', async (t) => {
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = new MetadataStore<{ id: string; n: number }>(dir);
  await checkpointsCommitted();
  const before = groupCommitStats();
  // One turn of the event loop: 10 records, each written 3 times, and one put then deleted.
  for (let round = 0; round < 3; round++) for (let i = 0; i < 10; i++) store.put({ id: `r${i}`, n: round });
  store.put({ id: 'gone', n: 0 });
  store.delete('gone');
  // Readable at once, by a reader that knows nothing of the committer (as recovery after kill -9).
  const loaded = new MetadataStore<{ id: string; n: number }>(dir).load(() => t.fail('unreadable record'));
  t.deepEqual(loaded.map((r) => `${r.id}=${r.n}`).sort(), Array.from({ length: 10 }, (_, i) => `r${i}=2`).sort());
  await checkpointsCommitted();
  const after = groupCommitStats();
  t.is(after.batches - before.batches, 1, 'the writes of one turn share one batch');
  t.is(after.files - before.files, 11, 'each file once, however often it was rewritten (the deleted one is tried and skipped)');
  t.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.')), [], 'no temp files left');
  // A write while a batch is on disk goes into the next one.
  store.put({ id: 'r0', n: 3 });
  const during = groupCommitStats().batches;
  store.put({ id: 'r1', n: 3 });
  await checkpointsCommitted();
  t.true(groupCommitStats().batches - during >= 1);
  t.is(new MetadataStore<{ id: string; n: number }>(dir).load(() => t.fail('unreadable record')).find((r) => r.id === 'r1')?.n, 3);
});

test('list order: oldest created_at first, also across a change in digit count', (t) => {
  const recs = ['1700000000000000002', '999999999999999999', '1700000000000000001'].map((createdAt) => ({ createdAt }));
  t.deepEqual(recs.sort(byCreatedAt).map((r) => r.createdAt), ['999999999999999999', '1700000000000000001', '1700000000000000002']);
  t.is(latest('1700000000000000001', '999999999999999999'), '1700000000000000001');
});

test('MetadataStore.updateDeferred: memory at once, the disk at flushDeferred, a deleted record never comes back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cm-meta-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = new MetadataStore<{ id: string; state: string }>(dir);
  store.put({ id: 'a', state: 'RUNNING' });
  store.put({ id: 'b', state: 'RUNNING' });
  store.updateDeferred('a', { state: 'EXITED' });
  store.updateDeferred('b', { state: 'EXITED' });
  t.is(store.get('a')?.state, 'EXITED');
  const onDisk = () => new MetadataStore<{ id: string; state: string }>(dir).load(() => t.fail('unreadable record'));
  t.deepEqual(onDisk().map((r) => r.state), ['RUNNING', 'RUNNING'], 'not written yet');
  store.delete('b');
  await store.flushDeferred();
  t.deepEqual(onDisk(), [{ id: 'a', state: 'EXITED' }]);
});

test('stream server config: Go durations, port range, TLS pair', (t) => {
  t.is(parseDuration('4h', 'x'), 4 * 3_600_000);
  t.is(parseDuration('1h30m', 'x'), 5_400_000);
  t.is(parseDuration('90s', 'x'), 90_000);
  t.is(parseDuration('0s', 'x'), 0);
  t.throws(() => parseDuration('4 hours', 'stream_idle_timeout'), { message: /stream_idle_timeout: "4 hours" is not a duration/ });
  t.throws(() => parseDuration('', 'x'));
  const c = parseConfigToml('stream_server_address = "0.0.0.0"\nstream_server_port = 10010\nstream_idle_timeout = "30m"');
  t.is(c.streamServerAddress, '0.0.0.0');
  t.is(c.streamServerPort, 10010);
  t.is(defaultConfig().streamServerAddress, '127.0.0.1');
  t.is(defaultConfig().streamServerPort, 0);
  t.throws(() => parseConfigToml('stream_server_port = 70000'), { message: /stream_server_port/ });
  t.throws(() => parseConfigToml('stream_tls_cert = "/x.pem"'), { message: /stream_tls_cert and stream_tls_key/ });
});

test('pod_pool_size: 2 by default, 0 turns the pool off, at most 16 and whole', (t) => {
  t.is(defaultConfig().podPoolSize, 2);
  t.is(parseConfigToml('pod_pool_size = 0').podPoolSize, 0);
  t.is(parseConfigToml('pod_pool_size = 16').podPoolSize, 16);
  t.throws(() => parseConfigToml('pod_pool_size = 17'), { message: /pod_pool_size: must be an integer from 0 to 16/ });
  t.throws(() => parseConfigToml('pod_pool_size = 1.5'), { message: /pod_pool_size/ });
  t.throws(() => parseConfigToml('pod_pool_size = -1'), { message: /pod_pool_size/ });
});

test('pod sysctls: only those of a namespace the pod has of its own; the field is named', (t) => {
  const pod = { network: 'POD', ipc: 'POD' } as const;
  const node = { network: 'NODE', ipc: 'NODE' } as const;
  const ok = { 'net.ipv4.ip_unprivileged_port_start': '80', 'net/ipv4/conf/eth0.100/forwarding': '1', 'kernel.shmmax': '1', 'fs.mqueue.msg_max': '20', 'kernel.domainname': 'x' };
  t.notThrows(() => checkSysctls(ok, pod));
  t.notThrows(() => checkSysctls(undefined, node));
  const refused = (sysctls: Record<string, string>, modes: { network: 'POD' | 'NODE'; ipc: 'POD' | 'NODE' }, msg: RegExp) => {
    const err = t.throws(() => checkSysctls(sysctls, modes)) as unknown as { status: number; message: string };
    t.is(err.status, Code.INVALID_ARGUMENT);
    t.regex(err.message, msg);
  };
  refused({ 'net.core.somaxconn': '1024' }, { network: 'NODE', ipc: 'POD' }, /config\.linux\.sysctls\["net\.core\.somaxconn"\].*network is NODE/);
  refused({ 'kernel.domainname': 'x' }, { network: 'NODE', ipc: 'POD' }, /UTS/);
  refused({ 'kernel.sem': '1 2 3 4' }, { network: 'POD', ipc: 'NODE' }, /ipc is NODE/);
  refused({ 'fs.mqueue.queues_max': '1' }, { network: 'POD', ipc: 'NODE' }, /ipc is NODE/);
  refused({ 'vm.swappiness': '10' }, pod, /"vm\.swappiness"\]: not a namespaced sysctl/);
  t.notThrows(() => checkSysctls({ 'kernel.hostname': 'x' }, pod));
  refused({ 'kernel.hostname': 'x' }, { network: 'NODE', ipc: 'POD' }, /UTS/);
  refused({ 'net..x': '1' }, pod, /not a sysctl name/);
  refused({ 'net/../../x': '1' }, pod, /not a sysctl name/);
});

test('pod CIDRs: IPv4 and IPv6 CIDRs, comma-separated, spaces trimmed; anything else names the field', (t) => {
  t.deepEqual(parsePodCidrs('10.244.1.0/24'), ['10.244.1.0/24']);
  t.deepEqual(parsePodCidrs('10.244.1.0/24, fd00:10:244:1::/64'), ['10.244.1.0/24', 'fd00:10:244:1::/64']);
  for (const bad of ['ten', '10.0.0.0', '10.0.0.0/33', '300.0.0.0/8', 'fd00::/129', '10.0.0.0/24,', '10.0.0.0/-1', '/24']) {
    const err = t.throws(() => parsePodCidrs(bad)) as unknown as { status: number; message: string };
    t.is(err.status, Code.INVALID_ARGUMENT, bad);
    t.regex(err.message, /runtime_config\.network_config\.pod_cidr/);
  }
});
