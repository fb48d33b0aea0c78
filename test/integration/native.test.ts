// The native addon and the launch helper against real kernel state: namespaces
// by /proc/<pid>/ns inode, fds by /proc/<pid>/fd, cgroups by /proc/<pid>/cgroup,
// and the helper's log/status files. Root only.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
  constants as fsc,
  closeSync,
} from 'node:fs';
import { open as openAsync, readFile as readFileAsync } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { native, launchHelperPath, MS, MNT_DETACH } from '../../src/native/index.js';
import type { NamespaceType, SpawnOptions, SpawnedChild } from '../../src/native/index.js';
import { RUNTIME_FILES } from '../../src/paths.js';
import { encodePlan } from '../../src/containerizer/mesos/launcher/plan.js';
import type { PlanOp } from '../../src/containerizer/mesos/launcher/plan.js';
import { thisHost as thisAppArmor } from '../../src/security/apparmor.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('\n*** SKIPPING test/integration/native.test.ts: it needs root (namespaces, mounts, cgroups) ***\n');
const rtest = isRoot ? test : test.skip;
/** The runtime-dir names the plan's rundir op carries, as the daemon sends them. */
const NAMES = [RUNTIME_FILES.execFifo, RUNTIME_FILES.ctlFifo, RUNTIME_FILES.status, RUNTIME_FILES.attachSock] as const;
const rserial = isRoot ? test.serial : test.serial.skip;

const SIGKILL = 9;
const SIGTERM = 15;
const addon = isRoot ? native() : (undefined as never);

function rid(): string {
  return randomBytes(4).toString('hex');
}

function nsInode(pid: number | 'self', type: string): string {
  return readlinkSync(`/proc/${pid}/ns/${type}`);
}

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

function tempDir(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `cri-mesos-test-${prefix}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function baseOpts(over: Partial<SpawnOptions>): SpawnOptions {
  return {
    file: '/bin/sh',
    argv: ['sh', '-c', 'exit 0'],
    env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
    cloneNamespaces: [],
    joinNamespaces: [],
    stdio: [-1, -1, -1],
    ...over,
  };
}

/** spawn + release; the child is SIGKILLed and reaped at teardown if still there. */
async function run(t: ExecutionContext, opts: SpawnOptions): Promise<SpawnedChild> {
  const held = await addon.spawnHeld(opts);
  const child = await addon.release(held);
  t.teardown(async () => {
    try {
      addon.pidfdSendSignal(child.pidfd, SIGKILL);
    } catch {
      // already gone
    }
    await addon.waitPidfd(child.pidfd);
    addon.close(child.pidfd);
  });
  return child;
}

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------
// spawnHeld / release / waitPidfd

rtest('new namespaces, joining them, and real exit statuses', async (t) => {
  const types: NamespaceType[] = ['uts', 'ipc', 'net', 'pid', 'mnt'];
  const a = await run(t, baseOpts({ argv: ['sh', '-c', 'hostname pod-a; exec sleep 1000'], cloneNamespaces: types }));
  await waitFor(() => readlinkSync(`/proc/${a.pid}/exe`).endsWith('sleep'), 'pod-a to exec sleep');
  for (const type of types) {
    t.not(nsInode(a.pid, type), nsInode('self', type), `${type} namespace must be new`);
  }
  // pid 1 of its own PID namespace
  t.regex(readFileSync(`/proc/${a.pid}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m);

  const joins = (['net', 'uts', 'ipc', 'pid'] as const).map((type) => ({ type, path: `/proc/${a.pid}/ns/${type}` }));
  const b = await run(t, baseOpts({ file: 'sleep', argv: ['sleep', '1000'], cloneNamespaces: ['mnt'], joinNamespaces: joins, searchPath: '/usr/bin:/bin' }));
  for (const type of ['net', 'uts', 'ipc', 'pid']) {
    t.is(nsInode(b.pid, type), nsInode(a.pid, type), `${type} namespace must be joined`);
  }
  t.not(nsInode(b.pid, 'mnt'), nsInode(a.pid, 'mnt'));
  t.not(nsInode(b.pid, 'mnt'), nsInode('self', 'mnt'));
  // The final child is the daemon's child (CLONE_PARENT) and a non-init member of the joined PID ns.
  t.regex(readFileSync(`/proc/${b.pid}/status`, 'utf8'), new RegExp(`^PPid:\\s+${process.pid}$`, 'm'));
  t.regex(readFileSync(`/proc/${b.pid}/status`, 'utf8'), /^NSpid:\s+\d+\s+([2-9]|\d\d+)$/m);

  addon.pidfdSendSignal(b.pidfd, SIGKILL);
  t.deepEqual(await addon.waitPidfd(b.pidfd), { exitCode: null, signal: SIGKILL });

  const out = addon.pipe();
  const c = await run(t, baseOpts({ argv: ['sh', '-c', 'hostname; exit 7'], joinNamespaces: joins, stdio: [-1, out[1], -1] }));
  addon.close(out[1]);
  t.deepEqual(await addon.waitPidfd(c.pidfd), { exitCode: 7, signal: null });
  t.is(await readFdToEnd(out[0]), 'pod-a\n', 'the joined UTS namespace carries pod-a hostname');
});

rtest('the held intermediate waits until release, and abort leaves nothing behind', async (t) => {
  const held = await addon.spawnHeld(baseOpts({ argv: ['sh', '-c', 'exit 0'] }));
  t.true(held.pid > 0);
  await sleep(150);
  // Still a copy of node: it has not exec'd anything.
  t.is(realpathSync(`/proc/${held.pid}/exe`), realpathSync(process.execPath));
  t.regex(readFileSync(`/proc/${held.pid}/status`, 'utf8'), /^State:\s+S/m);
  const threads = readdirSync(`/proc/${held.pid}/task`);
  t.is(threads.length, 1, 'the intermediate is single-threaded');
  addon.abort(held);
  t.false(alive(held.pid), 'aborted intermediate is reaped');
  await t.throwsAsync(addon.release(held), { message: /already released or aborted/ });
});

rtest('a held intermediate keeps none of the daemon fds: a pipe the daemon closes reaches EOF while it is held', async (t) => {
  // As a CNI plugin run during a pod launch: its stdin is a pipe whose write end the daemon
  // holds. An intermediate cloned before that end is closed must not keep a copy of it.
  const plugin = spawn('cat', [], { stdio: ['pipe', 'pipe', 'ignore'] });
  const ended = new Promise<number | null>((resolve) => plugin.on('close', (code) => resolve(code)));
  const held = await addon.spawnHeld(baseOpts({ argv: ['sh', '-c', 'exit 0'] }));
  t.teardown(() => {
    plugin.kill('SIGKILL');
    try {
      addon.abort(held);
    } catch {
      // released or aborted already
    }
  });
  const fds = readdirSync(`/proc/${held.pid}/fd`).map(Number);
  t.true(fds.length <= 8, `the held intermediate has fds ${fds.join(',')}`);
  plugin.stdin!.end('{}');
  const code = await Promise.race([ended, sleep(5000).then(() => 'still waiting for EOF')]);
  t.is(code, 0);
  t.true(alive(held.pid), 'the intermediate is still held');
  addon.abort(held);
});

rtest('the child is placed in cgroups while held (v1 cgroup.procs and v2 CLONE_INTO_CGROUP)', async (t) => {
  const name = `cri-mesos-test-${rid()}`;
  const v1 = `/sys/fs/cgroup/pids/${name}`;
  mkdirSync(v1);
  t.teardown(() => rmdirSync(v1));
  const v2 = `/sys/fs/cgroup/unified/${name}`;
  const haveV2 = existsSync('/sys/fs/cgroup/unified/cgroup.procs');
  let cgFd: number | undefined;
  if (haveV2) {
    mkdirSync(v2);
    t.teardown(() => rmdirSync(v2));
    cgFd = openSync(v2, fsc.O_RDONLY | fsc.O_DIRECTORY);
    t.teardown(() => closeSync(cgFd!));
  }
  const held = await addon.spawnHeld(baseOpts({ file: '/bin/sleep', argv: ['sleep', '1000'], cgroupFd: cgFd }));
  if (haveV2) t.true(readFileSync(`${v2}/cgroup.procs`, 'utf8').split('\n').includes(String(held.pid)));
  writeFileSync(`${v1}/cgroup.procs`, String(held.pid));
  const child = await addon.release(held);
  t.false(alive(held.pid), 'intermediate exited and was reaped');
  const cg = readFileSync(`/proc/${child.pid}/cgroup`, 'utf8');
  t.regex(cg, new RegExp(`:pids:.*/${name}$`, 'm'));
  if (haveV2) t.regex(cg, new RegExp(`^0::.*/${name}$`, 'm'));
  addon.pidfdSendSignal(child.pidfd, SIGKILL);
  t.deepEqual(await addon.waitPidfd(child.pidfd), { exitCode: null, signal: SIGKILL });
  addon.close(child.pidfd);
});

rtest('exec and chdir failures reject release() with the stage and the reason', async (t) => {
  const h1 = await addon.spawnHeld(baseOpts({ file: 'cri-mesos-no-such-binary', argv: ['x'], searchPath: '/usr/bin:/bin' }));
  const e1 = await t.throwsAsync(addon.release(h1));
  t.regex(e1!.message, /exec 'cri-mesos-no-such-binary': No such file or directory/);
  t.is((e1 as NodeJS.ErrnoException).code, 'ENOENT');
  t.false(alive(h1.pid));

  const h2 = await addon.spawnHeld(baseOpts({ cwd: '/nonexistent-cri-mesos-dir' }));
  const e2 = await t.throwsAsync(addon.release(h2));
  t.regex(e2!.message, /chdir '\/nonexistent-cri-mesos-dir'/);

  const h3 = await addon.spawnHeld(baseOpts({ joinNamespaces: [{ type: 'net', path: '/proc/self/ns/net' }] }));
  // joining our own netns is fine: the failure case is a file that is not a namespace
  await addon.release(h3).then((c) => addon.waitPidfd(c.pidfd).then(() => addon.close(c.pidfd)));
  const dir = tempDir(t, 'ns');
  writeFileSync(join(dir, 'notns'), '');
  const h4 = await addon.spawnHeld(baseOpts({ joinNamespaces: [{ type: 'uts', path: join(dir, 'notns') }] }));
  await t.throwsAsync(addon.release(h4), { message: /setns-uts: Invalid argument/ });

  await t.throwsAsync(addon.spawnHeld(baseOpts({ joinNamespaces: [{ type: 'net', path: '/nonexistent/ns' }] })), {
    message: /ENOENT.*'\/nonexistent\/ns'/,
  });
});

rtest('the final child has exactly fds 0-2 plus extraFds, default signals, none blocked', async (t) => {
  const [r1, w1] = addon.pipe();
  const [r2, w2] = addon.pipe();
  t.teardown(() => [r1, w1, r2, w2].forEach((fd) => addon.close(fd)));
  // w2 is both stdout and the second extra fd; extras are given in swapped order.
  const child = await run(
    t,
    baseOpts({ file: '/bin/sleep', argv: ['sleep', '1000'], stdio: [-1, w2, -1], extraFds: [r1, w2] }),
  );
  // release() answers once execve has succeeded; the dynamic loader of /bin/sleep may still hold a
  // library open (fd 5) for a moment after. A leaked fd would stay: then this times out.
  const fds = () => readdirSync(`/proc/${child.pid}/fd`).sort();
  await waitFor(() => fds().length === 5, 'the loader to close its files').catch(() => undefined);
  t.deepEqual(fds(), ['0', '1', '2', '3', '4']);
  t.is(readlinkSync(`/proc/${child.pid}/fd/0`), '/dev/null');
  t.is(readlinkSync(`/proc/${child.pid}/fd/2`), '/dev/null');
  t.is(readlinkSync(`/proc/${child.pid}/fd/1`), readlinkSync(`/proc/self/fd/${w2}`));
  t.is(readlinkSync(`/proc/${child.pid}/fd/3`), readlinkSync(`/proc/self/fd/${r1}`));
  t.is(readlinkSync(`/proc/${child.pid}/fd/4`), readlinkSync(`/proc/self/fd/${w2}`));
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  t.regex(status, /^SigIgn:\s+0+$/m, 'SIGPIPE and friends are back to default');
  t.regex(status, /^SigBlk:\s+0+$/m);
  // setsid by default
  const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  t.is(Number(stat[3]), child.pid, 'session id = its pid');
});

rtest('many concurrent waits, and a process that is not our child', async (t) => {
  const kids = await Promise.all(
    Array.from({ length: 12 }, (_, i) => run(t, baseOpts({ argv: ['sh', '-c', `sleep 0.${i % 4}; exit ${i}`] }))),
  );
  const results = await Promise.all(kids.map((k) => addon.waitPidfd(k.pidfd)));
  t.deepEqual(
    results.map((r) => r.exitCode),
    kids.map((_, i) => i),
  );
  // A grandchild reparented away from us: waitid says ECHILD -> unknown status.
  const pid = Number(execFileSync('/bin/sh', ['-c', 'sleep 0.3 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).trim());
  const pidfd = addon.pidfdOpen(pid);
  t.teardown(() => addon.close(pidfd));
  t.deepEqual(await addon.waitPidfd(pidfd), { exitCode: null, signal: null });
  t.throws(() => addon.pidfdOpen(2 ** 22 + 12345), { code: 'ESRCH' } as never);
});

/** A 1 MiB tmpfs at <temp dir>/mnt, unmounted in teardown unless the test did (`unmounted()`). */
function tmpfsMount(t: ExecutionContext, name: string, options: string): { dir: string; target: string; unmounted: () => void } {
  const dir = tempDir(t, name);
  const target = join(dir, 'mnt');
  mkdirSync(target);
  addon.mount('tmpfs', target, 'tmpfs', MS.NOSUID | MS.NODEV, options);
  let mounted = true;
  t.teardown(() => {
    if (mounted) addon.umount2(target, MNT_DETACH);
  });
  return { dir, target, unmounted: () => void (mounted = false) };
}

rtest('mount, umount2, statfs, mknod, mkfifo, xattrs', (t) => {
  const { dir, target, unmounted } = tmpfsMount(t, 'mnt', 'size=1m,mode=0700');
  const sf = addon.statfs(target);
  t.is(sf.blocks * sf.bsize, 1024 * 1024);
  t.true(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${target} `));

  addon.mknod(join(target, 'null'), fsc.S_IFCHR | 0o666, 1, 3);
  const st = statSync(join(target, 'null'));
  t.true(st.isCharacterDevice());
  t.is(st.rdev, (1 << 8) | 3);
  addon.mkfifo(join(target, 'fifo'), 0o600);
  t.true(statSync(join(target, 'fifo')).isFIFO());
  t.is(statSync(join(target, 'fifo')).mode & 0o777, 0o600);

  const f = join(target, 'file');
  writeFileSync(f, '');
  t.is(addon.lgetxattr(f, 'trusted.cri-mesos-test'), null);
  addon.lsetxattr(f, 'trusted.cri-mesos-test', Buffer.from('y'), 0);
  t.deepEqual(addon.lgetxattr(f, 'trusted.cri-mesos-test'), Buffer.from('y'));

  t.throws(() => addon.mount(null, join(dir, 'missing'), null, MS.REMOUNT, null), {
    code: 'ENOENT',
    message: /mount '.*missing'/,
  } as never);
  t.throws(() => addon.mkfifo(join(target, 'fifo'), 0o600), { code: 'EEXIST' } as never);

  addon.umount2(target, 0);
  unmounted();
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${target} `));
  t.throws(() => addon.umount2(target, 0), { code: 'EINVAL' } as never);
});

rtest('umount2Async: unmounts on a pool thread; the kernel errno rejects with its code and the path', async (t) => {
  const { dir, target, unmounted } = tmpfsMount(t, 'mnt-async', 'size=1m');
  const pending = addon.umount2Async(target, MNT_DETACH);
  t.true(pending instanceof Promise);
  await pending;
  unmounted();
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${target} `));
  await t.throwsAsync(addon.umount2Async(target, 0), { code: 'EINVAL', message: /umount2 '.*mnt'/ } as never);
  await t.throwsAsync(addon.umount2Async(join(dir, 'missing'), 0), { code: 'ENOENT' } as never);
});

// ---------------------------------------------------------------------------
// cri-mesos-launch

function readFdToEnd(fd: number): Promise<string> {
  // A libuv pipe handle: non-blocking, no threadpool thread parked on it.
  return new Promise((resolve, reject) => {
    const sock = new Socket({ fd, readable: true, writable: false });
    let data = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => (data += d));
    sock.on('error', reject);
    sock.on('end', () => resolve(data));
  });
}

interface Helper {
  dir: string;
  rootfs: string;
  rundir: string;
  logDir: string;
  log: string;
  child: SpawnedChild;
  syncMessage: Promise<string>;
}

function makeRootfs(dir: string): string {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  mkdirSync(join(rootfs, 'secret-dir'));
  writeFileSync(join(rootfs, 'secret-dir', 'key'), 'hidden');
  writeFileSync(join(rootfs, 'secret-file'), 'hidden');
  for (const applet of ['sh', 'cat', 'echo', 'sleep', 'head', 'tr', 'printf', 'ls', 'hostname', 'test', '[', 'id', 'grep', 'pwd', 'ifconfig']) {
    symlinkSync('busybox', join(rootfs, 'bin', applet));
  }
  return rootfs;
}

async function startHelper(
  t: ExecutionContext,
  mode: 'pause' | 'container',
  body: (h: { rootfs: string; rundir: string; log: string }) => PlanOp[],
  cloneNamespaces: NamespaceType[] = ['mnt', 'uts', 'ipc'],
): Promise<Helper> {
  const dir = tempDir(t, 'launch');
  const rootfs = makeRootfs(dir);
  const rundir = join(dir, 'run');
  const logDir = join(dir, 'logs');
  mkdirSync(rundir);
  mkdirSync(logDir);
  const log = join(logDir, 'ctr.log');
  // TS creates the FIFOs before the launch.
  addon.mkfifo(join(rundir, 'exec.fifo'), 0o600);
  addon.mkfifo(join(rundir, 'ctl.fifo'), 0o600);
  const planPath = join(rundir, 'plan');
  writeFileSync(planPath, encodePlan(body({ rootfs, rundir, log })));

  const [syncR, syncW] = addon.pipe();
  const diag = openSync(join(rundir, 'launch.log'), 'a');
  const held = await addon.spawnHeld({
    file: launchHelperPath(),
    argv: ['cri-mesos-launch', mode, planPath],
    env: [],
    cloneNamespaces,
    joinNamespaces: [],
    stdio: [-1, -1, diag],
    extraFds: [syncW],
  });
  let child: SpawnedChild;
  try {
    child = await addon.release(held);
  } finally {
    addon.close(syncW);
    closeSync(diag);
  }
  killAtTeardown(t, child);
  return { dir, rootfs, rundir, logDir, log, child, syncMessage: readFdToEnd(syncR) };
}

/** When the test ends: SIGKILL the helper (if it still runs), reap it, close its pidfd. */
function killAtTeardown(t: ExecutionContext, child: SpawnedChild): void {
  t.teardown(async () => {
    try {
      addon.pidfdSendSignal(child.pidfd, SIGKILL);
    } catch {
      // already exited
    }
    await addon.waitPidfd(child.pidfd);
    addon.close(child.pidfd);
  });
}

function containerPlan(h: { rootfs: string; rundir: string; log: string }, argv: string[], extra: PlanOp[] = [], pidns = true): PlanOp[] {
  const r = h.rootfs;
  return [
    ['rundir', h.rundir, ...NAMES],
    ['log', h.log],
    ...(pidns ? [['new-pid-ns'] as PlanOp] : []),
    ['propagation', '/', MS.REC | MS.SLAVE],
    ['bind', r, r, 'rw', '-'],
    ['mkdir', `${r}/proc`, 0o555],
    ['mkdir', `${r}/dev`, 0o755],
    ['mount', 'proc', `${r}/proc`, 'proc', MS.NOSUID | MS.NOEXEC | MS.NODEV, null],
    ['mount', 'tmpfs', `${r}/dev`, 'tmpfs', MS.NOSUID | MS.STRICTATIME, 'mode=755,size=65536k'],
    ['mknod', `${r}/dev/null`, 'c', 0o666, 1, 3, 0, 0],
    ['mknod', `${r}/dev/zero`, 'c', 0o666, 1, 5, 0, 0],
    ['symlink', '/proc/self/fd', `${r}/dev/fd`],
    ['pivot_root', r],
    ...extra,
    ['mask', '/proc/cri-mesos-no-such-file'],
    ['mask', '/secret-file'],
    ['mask', '/secret-dir'],
    ['readonly', '/proc/sys'],
    ['hostname', 'ctr-host'],
    ['env', 'PATH=/bin'],
    ['env', 'HOME=/'],
    ['argv', ...argv],
  ];
}

async function startContainer(rundir: string): Promise<void> {
  const fh = await openAsync(join(rundir, 'exec.fifo'), 'w');
  await fh.write(Buffer.from('x'));
  await fh.close();
}

const LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([FP]) (.*)$/;

function logRecords(path: string): { stream: string; tag: string; content: string }[] {
  const text = readFileSync(path, 'utf8');
  if (text === '') return [];
  if (!text.endsWith('\n')) throw new Error(`log does not end with a newline: ${JSON.stringify(text.slice(-40))}`);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      const m = LINE.exec(line);
      if (!m) throw new Error(`not a CRI log line: ${JSON.stringify(line.slice(0, 80))}`);
      return { stream: m[2], tag: m[3], content: m[4] };
    });
}

function readStatus(rundir: string): { status: number; nanos: bigint } {
  const m = /^(-?\d+) (\d+)\n$/.exec(readFileSync(join(rundir, 'status'), 'utf8'));
  if (!m) throw new Error('bad status file');
  return { status: Number(m[1]), nanos: BigInt(m[2]) };
}

rserial('launch helper: container mode runs the plan, logs in CRI format, writes the status', async (t) => {
  const before = BigInt(Date.now()) * 1_000_000n;
  const script =
    'echo out; echo err >&2; printf "crlf\\r\\n"; hostname; test "$$" = 1 && echo pid1; cat /proc/1/cmdline; echo; ' +
    'echo "masked=$(cat /secret-file)$(ls /secret-dir)"; (echo x > /proc/sys/kernel/hostname) 2>/dev/null && echo rw || echo ro; exit 3';
  const h = await startHelper(t, 'container', (p) => containerPlan(p, ['sh', '-c', script]));
  t.is(await h.syncMessage, 'ok\n');
  t.false(existsSync(join(h.rundir, 'status')));
  await sleep(100);
  t.is(readFileSync(h.log, 'utf8'), '', 'nothing runs before StartContainer');
  await startContainer(h.rundir);
  t.deepEqual(await addon.waitPidfd(h.child.pidfd), { exitCode: 3, signal: null });
  const { status, nanos } = readStatus(h.rundir);
  t.is(status, 3 << 8, 'raw wait status of exit 3');
  t.true(nanos >= before);
  const recs = logRecords(h.log);
  const byStream = (s: string) => recs.filter((r) => r.stream === s).map((r) => `${r.tag} ${r.content}`);
  // The command is PID 1 of its own PID namespace, and /proc is that namespace's.
  t.deepEqual(byStream('stdout'), ['F out', 'F crlf', 'F ctr-host', 'F pid1', 'F sh\0-c\0' + script + '\0', 'F masked=', 'F ro']);
  t.deepEqual(byStream('stderr'), ['F err']);
  t.is(statSync(h.log).mode & 0o777, 0o640);
});

rserial('launch helper: long lines are split into P chunks, an unterminated line ends as P', async (t) => {
  const h = await startHelper(t, 'container', (p) =>
    containerPlan(p, ['sh', '-c', "head -c 40000 /dev/zero | tr '\\000' a; echo; printf tail"]),
  );
  t.is(await h.syncMessage, 'ok\n');
  await startContainer(h.rundir);
  t.deepEqual(await addon.waitPidfd(h.child.pidfd), { exitCode: 0, signal: null });
  const recs = logRecords(h.log);
  t.deepEqual(
    recs.map((r) => [r.tag, r.content.length]),
    [
      ['P', 16384],
      ['P', 16384],
      ['F', 40000 - 2 * 16384],
      ['P', 4],
    ],
  );
  t.true(recs.slice(0, 3).every((r) => /^a+$/.test(r.content)));
  t.is(recs[3].content, 'tail');
});

rserial('launch helper: reopen via ctl.fifo moves later output to the new file, loses nothing', async (t) => {
  const h = await startHelper(t, 'container', (p) =>
    containerPlan(p, ['sh', '-c', 'echo before; while [ ! -e /go ]; do sleep 0.02; done; echo after; echo after-err >&2']),
  );
  t.is(await h.syncMessage, 'ok\n');
  await startContainer(h.rundir);
  await waitFor(() => existsSync(h.log) && readFileSync(h.log, 'utf8').includes('before'), '"before" in the log');
  const rotated = `${h.log}.1`;
  renameSync(h.log, rotated);
  const ctl = await openAsync(join(h.rundir, 'ctl.fifo'), 'w');
  await ctl.write('reopen\n');
  await ctl.close();
  await waitFor(() => existsSync(h.log), 'the reopened log file');
  writeFileSync(join(h.rootfs, 'go'), '');
  t.deepEqual(await addon.waitPidfd(h.child.pidfd), { exitCode: 0, signal: null });
  t.deepEqual(
    logRecords(rotated).map((r) => r.content),
    ['before'],
  );
  t.deepEqual(
    logRecords(h.log)
      .map((r) => `${r.stream} ${r.content}`)
      .sort(),
    ['stderr after-err', 'stdout after'],
  );
});

rserial('launch helper: a missing executable is reported in the log, exit 127', async (t) => {
  const h = await startHelper(t, 'container', (p) => containerPlan(p, ['no-such-command']));
  t.is(await h.syncMessage, 'ok\n');
  await startContainer(h.rundir);
  t.deepEqual(await addon.waitPidfd(h.child.pidfd), { exitCode: 127, signal: null });
  t.is(readStatus(h.rundir).status, 127 << 8);
  const recs = logRecords(h.log);
  t.is(recs.length, 1);
  t.is(recs[0].stream, 'stderr');
  t.regex(recs[0].content, /exec: "no-such-command": executable file not found in \$PATH/);
});

rserial('launch helper: signals are forwarded; a killed command exits 128+signal', async (t) => {
  // Not PID 1 of a namespace (no new-pid-ns): SIGTERM's default action applies to the command.
  const h = await startHelper(t, 'container', (p) => containerPlan(p, ['sleep', '1000'], [], false));
  t.is(await h.syncMessage, 'ok\n');
  await startContainer(h.rundir);
  // Wait until the init has exec'd the command, so the signal reaches sleep, not the init before exec.
  await waitFor(() => {
    const kids = readFileSync(`/proc/${h.child.pid}/task/${h.child.pid}/children`, 'utf8').trim();
    return kids !== '' && readFileSync(`/proc/${kids}/cmdline`, 'utf8').startsWith('sleep');
  }, 'the command');
  addon.pidfdSendSignal(h.child.pidfd, SIGTERM);
  t.deepEqual(await addon.waitPidfd(h.child.pidfd), { exitCode: 128 + SIGTERM, signal: null });
  t.is(readStatus(h.rundir).status, SIGTERM, 'raw wait status of a SIGTERM death');
});

rserial('launch helper: settings (cwd, user, groups, caps, no-new-privs) and sysctl/loopback/touch ops', async (t) => {
  const script =
    'pwd; id -u; id -g; id -G; grep -E "^(CapInh|CapPrm|CapEff|CapBnd|NoNewPrivs)" /proc/self/status; ' +
    'cat /proc/sys/net/ipv4/ip_unprivileged_port_start; ifconfig lo | grep -o "UP LOOPBACK RUNNING"; ' +
    'test -f /etc/resolv.conf && echo touched';
  const extra: PlanOp[] = [
    ['sysctl', 'net.ipv4.ip_unprivileged_port_start', '80'],
    ['loopback-up'],
    ['touch', '/etc/resolv.conf'],
    ['cwd', '/work/sub'],
    ['no-new-privs'],
    ['capabilities', 0x401n],
  ];
  const asRoot = await startHelper(t, 'container', (p) => containerPlan(p, ['sh', '-c', script], extra), ['mnt', 'pid', 'uts', 'ipc', 'net']);
  t.is(await asRoot.syncMessage, 'ok\n');
  await startContainer(asRoot.rundir);
  t.deepEqual(await addon.waitPidfd(asRoot.child.pidfd), { exitCode: 0, signal: null });
  const caps = '0000000000000401';
  t.deepEqual(
    logRecords(asRoot.log).map((r) => r.content.replace(/\s+/g, ' ')),
    ['/work/sub', '0', '0', '0', `CapInh: ${caps}`, `CapPrm: ${caps}`, `CapEff: ${caps}`, `CapBnd: ${caps}`, 'NoNewPrivs: 1', '80', 'UP LOOPBACK RUNNING', 'touched'],
  );
  t.true(statSync(join(asRoot.rootfs, 'work', 'sub')).isDirectory(), 'cwd created with mkdir -p');

  const asUser = await startHelper(t, 'container', (p) =>
    containerPlan(p, ['sh', '-c', 'id -u; id -g; id -G; grep -E "^(CapEff|CapBnd)" /proc/self/status'], [
      ['user', 65534, 65533],
      ['groups', 65533, 100],
      ['capabilities', 0x401n],
    ]),
  );
  t.is(await asUser.syncMessage, 'ok\n');
  await startContainer(asUser.rundir);
  t.deepEqual(await addon.waitPidfd(asUser.child.pidfd), { exitCode: 0, signal: null });
  // Like runc without ambient caps: a non-root command keeps only the bounding set.
  t.deepEqual(
    logRecords(asUser.log).map((r) => r.content.replace(/\s+/g, ' ')),
    ['65534', '65533', '65533 100', 'CapEff: 0000000000000000', `CapBnd: ${caps}`],
  );
});

// The AppArmor write path (addon/common/apparmor_exec.h). The daemon plans it only where the kernel
// has AppArmor; the helper and the addon carry it out wherever they are told to, and never ignore
// a refusal. The profile "unconfined" exists on every AppArmor host, so no profile is loaded here.
const appArmor = isRoot && thisAppArmor().enabled;
(appArmor || !isRoot ? test.serial.skip : test.serial)('launch helper and addon: without AppArmor in the kernel, the apparmor write fails and nothing is run', async (t) => {
  const h = await startHelper(t, 'container', (p) => containerPlan(p, ['sh', '-c', 'echo ran'], [['apparmor', 'cri-mesos-test']]));
  t.is(await h.syncMessage, 'ok\n');
  await startContainer(h.rundir);
  t.deepEqual(await addon.waitPidfd(h.child.pidfd), { exitCode: 127, signal: null });
  const out = logRecords(h.log).map((r) => r.content);
  t.is(out.length, 1, out.join('\n'));
  t.regex(out[0]!, /^cri-mesos-launch: apparmor "cri-mesos-test": (open|write|close) [^:]+: .+$/);
  const held = await addon.spawnHeld(baseOpts({ argv: ['sh', '-c', 'echo ran'], apparmor: 'cri-mesos-test' }));
  const e = await t.throwsAsync(addon.release(held));
  t.regex(e!.message, /^spawn failed: apparmor 'cri-mesos-test': /);
  t.is((e as { stage?: string }).stage, 'apparmor');
  await t.throwsAsync(async () => addon.spawnHeld(baseOpts({ apparmor: 'a\nb' })), { message: /apparmor must be a profile name/ });
});

(appArmor ? test.serial : test.serial.skip)('launch helper and addon: with AppArmor, the command runs under the planned profile', async (t) => {
  const h = await startHelper(t, 'container', (p) => containerPlan(p, ['cat', '/proc/self/attr/current'], [['apparmor', 'unconfined']]));
  t.is(await h.syncMessage, 'ok\n');
  await startContainer(h.rundir);
  t.deepEqual(await addon.waitPidfd(h.child.pidfd), { exitCode: 0, signal: null });
  t.deepEqual(logRecords(h.log).map((r) => r.content.trim()), ['unconfined']);
  const file = join(tempDir(t, 'apparmor'), 'out');
  const fd = openSync(file, 'w');
  const child = await run(t, baseOpts({ argv: ['sh', '-c', 'cat /proc/self/attr/current'], apparmor: 'unconfined', stdio: [-1, fd, -1] }));
  closeSync(fd);
  await addon.waitPidfd(child.pidfd);
  t.is(readFileSync(file, 'utf8').trim(), 'unconfined');
});

rserial('launch helper: SIGTERM before StartContainer makes the helper exit', async (t) => {
  const h = await startHelper(t, 'container', (p) => containerPlan(p, ['sh', '-c', 'echo ran']));
  t.is(await h.syncMessage, 'ok\n');
  await sleep(50);
  addon.pidfdSendSignal(h.child.pidfd, SIGTERM);
  t.deepEqual(await addon.waitPidfd(h.child.pidfd), { exitCode: 128 + SIGTERM, signal: null });
  t.is(readFileSync(h.log, 'utf8'), '');
});

function daemonFds(): Set<string> {
  return new Set(
    readdirSync('/proc/self/fd').flatMap((fd) => {
      try {
        return [`${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`];
      } catch {
        return []; // the fd of the readdir itself
      }
    }),
  );
}

rserial('no fd leaks in the daemon across spawn, release, abort, failures and waits', async (t) => {
  const fds = daemonFds;
  // warm up lazily-created libuv/V8 fds
  const warm = await addon.release(await addon.spawnHeld(baseOpts({})));
  await addon.waitPidfd(warm.pidfd);
  addon.close(warm.pidfd);
  const before = fds();
  for (let i = 0; i < 5; i++) {
    const c = await addon.release(await addon.spawnHeld(baseOpts({ cloneNamespaces: ['uts', 'mnt'], joinNamespaces: [{ type: 'net', path: '/proc/self/ns/net' }] })));
    await addon.waitPidfd(c.pidfd);
    addon.close(c.pidfd);
    addon.abort(await addon.spawnHeld(baseOpts({ joinNamespaces: [{ type: 'ipc', path: '/proc/self/ns/ipc' }] })));
    await t.throwsAsync(addon.release(await addon.spawnHeld(baseOpts({ file: '/nonexistent' }))));
  }
  // Earlier tests may still be closing things; nothing may have been added.
  t.deepEqual([...fds()].filter((f) => !before.has(f)), []);
});

rserial('many held spawns outstanding at once, released in any order: no threadpool deadlock, no fd leaks', async (t) => {
  const warm = await addon.release(await addon.spawnHeld(baseOpts({})));
  await addon.waitPidfd(warm.pidfd);
  addon.close(warm.pidfd);
  const before = daemonFds();
  const N = 12;
  // More than the libuv threadpool's 4 threads: each spawn has a thread of its own.
  const held = await Promise.all(
    Array.from({ length: N }, (_, i) =>
      addon.spawnHeld(baseOpts({ argv: ['sh', '-c', `exit ${i}`], ...(i % 3 === 0 ? { cloneNamespaces: ['uts', 'mnt'] as NamespaceType[] } : {}) })),
    ),
  );
  t.is(new Set(held.map((h) => h.pid)).size, N);
  // Each child goes on to block on its sync pipe: right after spawnHeld it may still be running
  // (R) on a loaded machine, so give it a moment; one that never sleeps is not held.
  const state = (pid: number) => /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  for (const h of held) {
    const deadline = Date.now() + 5000;
    while (state(h.pid) !== 'S' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    t.is(state(h.pid), 'S', `pid ${h.pid} held on the sync pipe`);
  }
  // While all of them are held the threadpool still works (the daemon writes cgroup files with async fs then).
  const reads = await Promise.all(Array.from({ length: 16 }, () => readFileAsync('/proc/self/stat', 'utf8')));
  t.is(reads.length, 16);
  // Release one at a time in a scrambled order (the others stay held meanwhile), aborting two.
  const order = [7, 2, 11, 0, 5, 9, 1, 10, 3, 8, 6, 4];
  const aborted = new Set([5, 10]);
  for (const i of order) {
    if (aborted.has(i)) {
      addon.abort(held[i]);
      continue;
    }
    const c = await addon.release(held[i]);
    t.deepEqual(await addon.waitPidfd(c.pidfd), { exitCode: i, signal: null }, `child ${i}`);
    addon.close(c.pidfd);
  }
  for (const h of held) t.false(alive(h.pid), `intermediate ${h.pid} reaped`);
  // The same, all released concurrently.
  const again = await Promise.all(Array.from({ length: N }, (_, i) => addon.spawnHeld(baseOpts({ argv: ['sh', '-c', `exit ${i}`] }))));
  const kids = await Promise.all([...again].reverse().map((h) => addon.release(h)));
  const exits = await Promise.all(kids.map((c) => addon.waitPidfd(c.pidfd)));
  kids.forEach((c) => addon.close(c.pidfd));
  t.deepEqual(
    exits.map((e) => e.exitCode),
    Array.from({ length: N }, (_, i) => N - 1 - i),
  );
  await sleep(50); // waitPidfd closes its private pidfd dup in a uv_close callback
  t.deepEqual([...daemonFds()].filter((f) => !before.has(f)), []);
});

rserial('launch helper: exec.fifo closed without a byte means do not run; setup errors come back on fd 3', async (t) => {
  const h = await startHelper(t, 'container', (p) => containerPlan(p, ['sh', '-c', 'echo ran']));
  t.is(await h.syncMessage, 'ok\n');
  const fh = await openAsync(join(h.rundir, 'exec.fifo'), 'w');
  await fh.close();
  t.deepEqual(await addon.waitPidfd(h.child.pidfd), { exitCode: 1, signal: null });
  t.is(readFileSync(h.log, 'utf8'), '');
  t.false(existsSync(join(h.rundir, 'status')));

  const bad = await startHelper(t, 'container', (p) => [
    ['rundir', p.rundir, ...NAMES],
    ['mount', 'tmpfs', '/nonexistent-cri-mesos-target', 'tmpfs', 0, null],
    ['argv', 'true'],
  ]);
  t.regex(await bad.syncMessage, /^error mount tmpfs on \/nonexistent-cri-mesos-target \(tmpfs\): No such file or directory\n$/);
  t.deepEqual(await addon.waitPidfd(bad.child.pidfd), { exitCode: 1, signal: null });
});

/** A pause helper that reads its plan from fd 0 (a pooled one): spawned waiting, the plan written later. */
async function startStdinPause(t: ExecutionContext): Promise<{ child: SpawnedChild; planFd: number; syncMessage: Promise<string>; log: string }> {
  const dir = tempDir(t, 'launch-stdin');
  const log = join(dir, 'launch.log');
  const [planR, planW] = addon.pipe();
  const [syncR, syncW] = addon.pipe();
  const diag = openSync(log, 'a');
  let child: SpawnedChild;
  try {
    child = await addon.release(
      await addon.spawnHeld({ file: launchHelperPath(), argv: ['cri-mesos-launch', 'pause', '-'], env: [], cloneNamespaces: ['mnt', 'uts'], joinNamespaces: [], stdio: [planR, -1, diag], extraFds: [syncW] }),
    );
  } finally {
    addon.close(planR);
    addon.close(syncW);
    closeSync(diag);
  }
  killAtTeardown(t, child);
  return { child, planFd: planW, syncMessage: readFdToEnd(syncR), log };
}

rserial('launch helper: a plan on fd 0 runs only whole (its end op), and cgroupns makes a cgroup namespace', async (t) => {
  // Cut short: the writer goes away (a daemon killed) before the end op.
  const cut = await startStdinPause(t);
  await sleep(100);
  t.true(alive(cut.child.pid), 'it waits for its plan');
  writeFileSync(`/proc/self/fd/${cut.planFd}`, encodePlan([['hostname', 'half']]));
  addon.close(cut.planFd);
  t.is(await cut.syncMessage, 'error plan on fd 0 cut short (no end)\n');
  t.deepEqual(await addon.waitPidfd(cut.child.pidfd), { exitCode: 1, signal: null });

  // Whole: its ops run, the cgroup namespace is its own, rooted where it is.
  const whole = await startStdinPause(t);
  t.is(readlinkSync(`/proc/${whole.child.pid}/ns/cgroup`), readlinkSync('/proc/self/ns/cgroup'));
  writeFileSync(`/proc/self/fd/${whole.planFd}`, encodePlan([['cgroupns'], ['hostname', 'whole'], ['end']]));
  addon.close(whole.planFd);
  t.is(await whole.syncMessage, 'ok\n');
  t.not(readlinkSync(`/proc/${whole.child.pid}/ns/cgroup`), readlinkSync('/proc/self/ns/cgroup'));
  t.is(execFileSync('nsenter', ['-u', '-t', String(whole.child.pid), 'hostname'], { encoding: 'utf8' }).trim(), 'whole');
  t.true(alive(whole.child.pid));
});

rserial('launch helper: pause mode holds the namespaces and exits 0 on SIGTERM', async (t) => {
  const h = await startHelper(t, 'pause', (p) => [['rundir', p.rundir, ...NAMES], ['hostname', 'pod-x'], ['oom-score-adj', -998]], [
    'pid',
    'uts',
    'ipc',
    'net',
  ]);
  t.is(await h.syncMessage, 'ok\n');
  // it is pid 1 of its namespace and stays up
  t.regex(readFileSync(`/proc/${h.child.pid}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m);
  await sleep(100);
  t.true(alive(h.child.pid));
  // a container joining the pod sees its hostname
  const [r, w] = addon.pipe();
  const c = await run(
    t,
    baseOpts({
      argv: ['sh', '-c', 'hostname'],
      joinNamespaces: [
        { type: 'uts', path: `/proc/${h.child.pid}/ns/uts` },
        { type: 'pid', path: `/proc/${h.child.pid}/ns/pid` },
      ],
      stdio: [-1, w, -1],
    }),
  );
  addon.close(w);
  t.is(await readFdToEnd(r), 'pod-x\n');
  await addon.waitPidfd(c.pidfd);
  // oom-score-adj -998 needs CAP_SYS_RESOURCE: a warning, not a failure
  if (readFileSync(`/proc/${h.child.pid}/oom_score_adj`, 'utf8').trim() !== '-998') {
    t.regex(readFileSync(join(h.rundir, 'launch.log'), 'utf8'), /warning: oom-score-adj -998: Permission denied/);
  }
  addon.pidfdSendSignal(h.child.pidfd, SIGTERM);
  t.deepEqual(await addon.waitPidfd(h.child.pidfd), { exitCode: 0, signal: null });
});
