// Devices (issue 11): the default /dev as runc makes it, the CRI devices list, the device
// cgroup (the v1 controller through the daemon on this host; the cgroup2 BPF program through
// the isolator on a cgroup2 mount of the test's own), and privileged containers.
import test from 'ava';
import { spawn } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { constants as fsc } from 'node:fs';
import { Cgroups, applyV2DeviceRules } from '../../src/cgroups/index.js';
import { deviceRules } from '../../src/containerizer/mesos/devices.js';
import { DevicesIsolator } from '../../src/containerizer/mesos/isolators/cgroups/devices.js';
import type { ContainerConfig } from '../../src/containerizer/mesos/isolator.js';
import { silentLogger } from '../../src/log.js';
import { native } from '../../src/native/index.js';
import { containerConfig, isRoot, podConfig } from '../helpers/daemon.js';
import { tempDir, useDaemon } from '../helpers/suite.js';

const DEFAULT_NODES = ['full', 'null', 'random', 'tty', 'urandom', 'zero'];

const d = useDaemon('device tests');
if (d) {
  let pod: string;
  let sandbox: ReturnType<typeof podConfig>;
  let privPod: string;
  let privSandbox: ReturnType<typeof podConfig>;
  test.serial.before(async () => {
    sandbox = podConfig('devices', {}, join(d.logDir, 'devices'));
    pod = (await d.client.call('RunPodSandbox', { config: sandbox })).pod_sandbox_id;
    privSandbox = podConfig('devices-privileged', {
      linux: { security_context: { privileged: true, namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
    });
    privPod = (await d.client.call('RunPodSandbox', { config: privSandbox })).pod_sandbox_id;
  });

  const sh = async (id: string, script: string) => {
    const r = await d.client.call('ExecSync', { container_id: id, cmd: ['sh', '-c', script], timeout: 10 });
    return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exit_code as number };
  };
  /** "<name>=<exit code>" lines after each probe; the probes' own errors go to stdout too. */
  const field = (out: string, key: string) => new RegExp(`^${key}=(\\d+)$`, 'm').exec(out)?.[1];

  test.serial('default /dev: runc\'s nodes, symlinks and mounts; devpts private with gid 5; /dev/console only with a tty', async (t) => {
    const c = await d.runContainer(pod, sandbox, 'plain', ['sleep', '3600']);
    const ls = (await sh(c.id, 'ls -A /dev')).out.split('\n').filter(Boolean).sort();
    t.deepEqual(ls, ['core', 'fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero']);
    const nodes = await sh(c.id, `for n in ${DEFAULT_NODES.join(' ')}; do stat -c '%n %F %t:%T %a %u:%g' /dev/$n; done`);
    t.deepEqual(nodes.out.trim().split('\n'), [
      '/dev/full character special file 1:7 666 0:0',
      '/dev/null character special file 1:3 666 0:0',
      '/dev/random character special file 1:8 666 0:0',
      '/dev/tty character special file 5:0 666 0:0',
      '/dev/urandom character special file 1:9 666 0:0',
      '/dev/zero character special file 1:5 666 0:0',
    ]);
    const links = await sh(c.id, 'for n in ptmx fd stdin stdout stderr core; do echo "$n -> $(readlink /dev/$n)"; done');
    t.deepEqual(links.out.trim().split('\n'), ['ptmx -> pts/ptmx', 'fd -> /proc/self/fd', 'stdin -> /proc/self/fd/0', 'stdout -> /proc/self/fd/1', 'stderr -> /proc/self/fd/2', 'core -> /proc/kcore']);
    const mi = (await sh(c.id, 'cat /proc/self/mountinfo')).out;
    const pts = mi.split('\n').find((l) => l.split(' ')[4] === '/dev/pts') ?? '';
    t.regex(pts, / - devpts devpts rw,.*gid=5,mode=620,ptmxmode=666/, pts);
    t.regex(mi, / \/dev\/mqueue .* - mqueue /);
    t.regex(mi, / \/dev\/shm .* - tmpfs /);
    t.false(ls.includes('console'));

    const tty = await d.runContainer(pod, sandbox, 'with-tty', ['sleep', '3600'], { tty: true, stdin: true });
    // The command's terminal: a slave of the container's own devpts (number 0), group tty, bound on /dev/console.
    const con = await sh(tty.id, 'stat -c "%t:%T %g %a" /dev/console; stat -c "%t:%T %g %a" /dev/pts/0; ls /dev/pts');
    t.deepEqual(con.out.trim().split('\n'), ['88:0 5 620', '88:0 5 620', '0', 'ptmx'], con.out + con.err);
  });

  test.serial('CRI devices: nodes with the host device\'s numbers, mode and owner; their permissions in the device cgroup; anything else refused with EPERM', async (t) => {
    // A host directory of devices (as /dev/dri would be): every device under it is added, other files are not.
    const dir = await tempDir(t, 'cm-devs-');
    mkdirSync(join(dir, 'sub'));
    native().mknod(join(dir, 'a'), fsc.S_IFCHR | 0o640, 1, 3);
    chownSync(join(dir, 'a'), 1234, 5678);
    native().mknod(join(dir, 'sub', 'b'), fsc.S_IFCHR | 0o600, 1, 5);
    writeFileSync(join(dir, 'not-a-device'), '');
    // loop-control (10:237): in no default rule, and harmless to open.
    const lc = join(await tempDir(t, 'cm-lc-'), 'lc');
    native().mknod(lc, fsc.S_IFCHR | 0o666, 10, 237);
    const devices = [
      { host_path: '/dev/null', container_path: '/dev/mynull', permissions: 'rwm' },
      { host_path: lc, container_path: '/dev/lc-r', permissions: 'r' },
      { host_path: dir, container_path: '/dev/mydir', permissions: 'rw' },
      // Outside /dev too: made in the container's rootfs.
      { host_path: '/dev/full', container_path: '/opt/full', permissions: 'rw' },
    ];
    const probe = [
      'echo hi > /dev/mynull; echo mynull=$?',
      '(: < /dev/lc-r); echo lc-read=$?',
      // Read-only in the cgroup: the write is refused although the file mode allows it.
      '(: > /dev/lc-r); echo lc-write=$?',
      'stat -c "%t:%T %a %u:%g" /dev/mydir/a /dev/mydir/sub/b; ls /dev/mydir',
      'head -c 2 /dev/mydir/sub/b | od -An -tx1; echo b-read=$?',
      'echo x > /opt/full; echo full-write=$?',
      // CAP_MKNOD and the cgroup's "m" for every device make the node; opening it is refused.
      'mknod /dev/unlisted c 10 229; echo mknod=$?; (: < /dev/unlisted); echo unlisted=$?',
      '(: < /dev/null); echo null=$?',
    ].join('; ');
    // The container's own command (the init) and an ExecSync process (placed in its cgroups while held).
    const { container_id: init } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('cri-devices-init', ['sh', '-c', `{ ${probe}; } 2>&1`], { devices }),
      sandbox_config: sandbox,
    });
    await d.client.call('StartContainer', { container_id: init });
    const logged = readFileSync((await d.waitExited(init)).log_path, 'utf8')
      .split('\n')
      .map((l) => /^\S+ (?:stdout|stderr) [PF] (.*)$/.exec(l)?.[1] ?? '')
      .join('\n');
    const c = await d.runContainer(pod, sandbox, 'cri-devices', ['sleep', '3600'], { devices });
    const execed = (await sh(c.id, `{ ${probe}; } 2>&1`)).out;
    for (const out of [logged, execed]) {
      t.is(field(out, 'mynull'), '0', out);
      t.is(field(out, 'lc-read'), '0', out);
      t.not(field(out, 'lc-write'), '0', out);
      t.regex(out, /lc-r: Operation not permitted/);
      t.regex(out, /^1:3 640 1234:5678$/m);
      t.regex(out, /^1:5 600 0:0$/m);
      t.regex(out, /^a\nsub$/m);
      t.regex(out, /^ 00 00$/m);
      t.notRegex(out, /not-a-device/);
      t.is(field(out, 'b-read'), '0', out);
      t.is(field(out, 'full-write'), '1', out); // ENOSPC from /dev/full itself: the open was allowed
      t.regex(out, /No space left on device/);
      t.is(field(out, 'mknod'), '0', out);
      t.not(field(out, 'unlisted'), '0', out);
      t.regex(out, /\/dev\/unlisted: Operation not permitted/);
      t.is(field(out, 'null'), '0', out);
    }
  });

  test.serial('CRI devices: a missing or non-device host_path and bad permissions are INVALID_ARGUMENT naming the entry', async (t) => {
    const file = join(await tempDir(t, 'cm-devs-'), 'plain');
    writeFileSync(file, '');
    for (const [devices, re] of [
      [[{ host_path: '/dev/null', container_path: '/dev/n', permissions: 'rw' }, { host_path: '/dev/cri-mesos-no-such-device', container_path: '/dev/x', permissions: 'rw' }], /devices\[1\]\.host_path "\/dev\/cri-mesos-no-such-device": no such device on the host/],
      [[{ host_path: file, container_path: '/dev/x', permissions: 'rw' }], /devices\[0\]\.host_path ".*" is not a device node/],
      [[{ host_path: '/dev/null', container_path: '/dev/x', permissions: 'rwx' }], /devices\[0\]\.permissions "rwx"/],
      [[{ host_path: 'dev/null', container_path: '/dev/x', permissions: 'rw' }], /devices\[0\]\.host_path "dev\/null" must be an absolute path/],
    ] as const) {
      const err = await t.throwsAsync(d.runContainer(pod, sandbox, 'bad-device', ['true'], { devices }));
      t.is((err as { code?: number }).code, 3, err?.message); // INVALID_ARGUMENT
      t.regex(err!.message, re);
    }
  });

  test.serial('privileged: every host device, all of them usable, /sys read-write, nothing masked; refused in a pod that is not privileged', async (t) => {
    // A plain container first: the pod's containers share one sysfs superblock (one network
    // namespace), so its read-only /sys must stay a flag of its mount, not of the superblock.
    const plain = await d.runContainer(privPod, privSandbox, 'plain', ['sleep', '3600']);
    const c = await d.runContainer(privPod, privSandbox, 'privileged', ['sleep', '3600'], { linux: { security_context: { privileged: true } } });
    // Every char and block device of the host's /dev (top level), under its own name.
    const host = readdirSync('/dev').filter((n) => n !== 'console' && n !== 'ptmx' && (() => {
      const st = lstatSync(join('/dev', n));
      return st.isCharacterDevice() || st.isBlockDevice();
    })());
    t.true(host.length > DEFAULT_NODES.length);
    const inside = (await sh(c.id, 'ls -A /dev')).out.split('\n');
    t.deepEqual(host.filter((n) => !inside.includes(n)), []);
    t.false(inside.includes('console'), 'no tty: no /dev/console');
    // Opening a device outside the default list is allowed ("a *:* rwm"); loop-control and fuse are harmless to open.
    const extra = ['loop-control', 'fuse'].filter((n) => host.includes(n));
    t.true(extra.length > 0, 'this host has /dev/loop-control or /dev/fuse');
    const opened = await sh(c.id, `${extra.map((n) => `(: < /dev/${n}); echo ${n}=$?`).join('; ')}; mknod /dev/lc2 c 10 237 && (: < /dev/lc2); echo made=$? 2>&1`);
    for (const n of extra) t.is(field(opened.out, n), '0', opened.out + opened.err);
    t.is(field(opened.out, 'made'), '0', opened.out + opened.err);
    const mi = (await sh(c.id, 'cat /proc/self/mountinfo')).out.split('\n');
    t.regex(mi.find((l) => l.split(' ')[4] === '/sys') ?? '', /^\S+ \S+ \S+ \S+ \/sys rw,.* - sysfs sysfs rw\b/);
    const plainSys = (await sh(plain.id, 'cat /proc/self/mountinfo')).out.split('\n').find((l) => l.split(' ')[4] === '/sys') ?? '';
    t.regex(plainSys, /^\S+ \S+ \S+ \S+ \/sys ro,/);
    t.is((await sh(plain.id, 'touch /sys/kernel/x 2>&1; echo rc=$?')).out.includes('Read-only file system'), true);
    t.deepEqual(mi.filter((l) => ['/proc/kcore', '/proc/keys', '/sys/firmware', '/proc/sys'].includes(l.split(' ')[4] ?? '')), []);

    // In the pod that is not privileged.
    const err = await t.throwsAsync(d.runContainer(pod, sandbox, 'privileged-here', ['true'], { linux: { security_context: { privileged: true } } }));
    t.is((err as { code?: number }).code, 3, err?.message); // INVALID_ARGUMENT
    t.regex(err!.message, /no privileged container allowed in sandbox: config\.linux\.security_context\.privileged is true but the pod's linux\.security_context\.privileged is not/);
  });
}

// The cgroup2 back end, on a cgroup2 mount of the test's own (device programs need no controller,
// so this runs where the controllers are on v1 too): the isolator attaches the program to the
// container's cgroup and a process in its leaf is held to it.
const v2test = isRoot() ? test.serial : test.skip;
v2test('cgroups/devices on cgroup2: a BPF device program allows the listed devices and refuses others with EPERM; a new one replaces it', async (t) => {
  const mnt = await tempDir(t, 'cm-cg2-');
  native().mount('cgroup2', mnt, 'cgroup2', 0, null);
  t.teardown(() => native().umount2(mnt, 0));
  const root = `cri-mesos-devtest-${process.pid}`;
  t.teardown(() => {
    // Deepest first; each is empty once its process has exited.
    for (const rel of [`${root}/pod/ctr/leaf`, `${root}/pod/ctr`, `${root}/pod/leaf`, `${root}/pod`, root]) {
      if (existsSync(join(mnt, rel))) rmdirSync(join(mnt, rel));
    }
  });
  const cgroups = Cgroups.fromMountInfo(`99 1 0:99 / ${mnt} rw,relatime - cgroup2 cgroup2 rw\n`);
  const iso = new DevicesIsolator({ cgroups, root, log: silentLogger() });
  t.is(iso.backend, 'v2');
  const podCfg: ContainerConfig = { id: { value: 'pod' }, kind: 'pod', resources: {}, runtimeDir: mnt, namespaces: { network: 'POD', pid: 'POD', ipc: 'POD' } };
  const ctr = (privileged: boolean): ContainerConfig => ({
    ...podCfg,
    id: { value: 'ctr', parent: { value: 'pod' } },
    kind: 'container',
    privileged,
    devices: [{ path: '/dev/mynull', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0, access: 'rw' }],
  });
  await iso.prepare(podCfg);
  t.teardown(() => iso.cleanup(podCfg.id));
  const launch = await iso.prepare(ctr(false));
  t.teardown(() => iso.cleanup(ctr(false).id));
  t.is(launch?.cgroupV2Dir, join(mnt, root, 'pod/ctr/leaf'));

  // A shell that waits for the go file, then opens devices: null (listed), zero (runc's default),
  // loop-control (neither), and makes a node (mknod is allowed for every device).
  const go = join(await tempDir(t, 'cm-go-'), 'go');
  const run = async () => {
    const p = spawn('sh', ['-c', `while [ ! -e ${go} ]; do sleep 0.02; done; for dev in null zero loop-control; do (: < /dev/$dev); echo $dev=$?; done 2>&1`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    await iso.isolate(ctr(false).id, p.pid!);
    writeFileSync(go, '');
    await once(p, 'close');
    rmSync(go);
    return out;
  };
  const limited = await run();
  t.regex(limited, /^null=0$/m, limited);
  t.regex(limited, /^zero=0$/m, limited);
  t.regex(limited, /loop-control: Operation not permitted/, limited);
  t.regex(limited, /^loop-control=2$/m, limited);

  // A new program for the same cgroup (privileged: everything) replaces the old one, which would
  // still refuse loop-control if it stayed attached (every attached program must allow).
  applyV2DeviceRules(join(mnt, root, 'pod/ctr'), deviceRules(true, []));
  const all = await run();
  t.regex(all, /^loop-control=0$/m, all);
});
