// systemd's notification protocol, against a fake service manager: a datagram socket this test
// listens on (a small Python receiver: Node has no AF_UNIX datagrams) given to the daemon as
// NOTIFY_SOCKET. The daemon is bin/cri-mesos (the dist bundle), as the unit starts it.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CriClient, TestDaemon, isRoot, waitFor } from '../helpers/daemon.js';
import { tempDir } from '../helpers/suite.js';
import { BUNDLE_FILE, projectRoot } from '../../src/util/paths.js';

const PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p));

/** Prints one JSON line per datagram: arrival time (ms), the sender's pid (SCM_CREDENTIALS), the text. */
const RECEIVER = `
import json, socket, struct, sys, time
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind("\\0" + addr[1:] if addr.startswith("@") else addr)
print(json.dumps({"bound": True}), flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    print(json.dumps({"t": time.time() * 1000, "pid": pid, "msg": msg.decode()}), flush=True)
`;

interface Note {
  t: number;
  pid: number | undefined;
  msg: string;
}

class FakeManager {
  readonly notes: Note[] = [];
  private constructor(private readonly proc: ChildProcess) {}

  static async listen(addr: string): Promise<FakeManager> {
    const proc = spawn(PYTHON!, ['-c', RECEIVER, addr], { stdio: ['ignore', 'pipe', 'pipe'] });
    const m = new FakeManager(proc);
    let err = '';
    let buf = '';
    let bound = false;
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, nl)) as Note & { bound?: boolean };
        buf = buf.slice(nl + 1);
        if (line.bound) bound = true;
        else m.notes.push(line);
      }
    });
    await waitFor('the fake service manager to bind', () => {
      if (proc.exitCode !== null) throw new Error(`the receiver exited: ${err}`);
      return bound;
    });
    return m;
  }

  /** Messages carrying `field` (e.g. READY=1). */
  with(field: string): Note[] {
    return this.notes.filter((n) => n.msg.split('\n').includes(field));
  }

  next(field: string, timeoutMs = 15_000): Promise<Note> {
    return waitFor(`${field} from the daemon`, () => this.with(field)[0], timeoutMs);
  }

  close(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

const usable = isRoot() && PYTHON && existsSync(join(projectRoot(), BUNDLE_FILE));
if (!usable) test.skip('sd_notify tests need root, python3 and the built bundle (npm run build)', () => {});
else {
  test.serial('READY=1 only once recovery is done and the socket answers; WATCHDOG=1 while Status answers; STOPPING=1 on SIGTERM', async (t) => {
    const dir = await tempDir(t, 'cm-notify-');
    const addr = join(dir, 'notify.sock');
    const manager = await FakeManager.listen(addr);
    t.teardown(() => manager.close());
    // Recovery waits while this file exists: the daemon is bound to its socket but serves nothing.
    const hold = join(dir, 'hold-recovery');
    writeFileSync(hold, '');
    const d = new TestDaemon({
      importImages: false,
      from: 'dist',
      env: { NOTIFY_SOCKET: addr, WATCHDOG_USEC: '200000', CRI_MESOS_TEST_HOLD_RECOVERY: hold },
    });
    t.teardown(() => d.teardown());
    const launched = d.init();
    launched.catch(() => undefined);
    await waitFor('the daemon to bind its socket', () => existsSync(d.socket) || d.exited(), 30_000);
    t.false(d.exited(), d.logs());
    await sleep(1000);
    // Bound, recovering: a request waits behind the recovery gate, and systemd hears nothing of readiness.
    const early = new CriClient(d.socket);
    await t.throwsAsync(early.call('Version', {}, 500), { message: /DEADLINE_EXCEEDED|Deadline/ });
    early.close();
    t.deepEqual(manager.with('READY=1'), []);
    t.deepEqual(manager.with('WATCHDOG=1'), [], 'no watchdog ping before the daemon is ready');
    t.true(manager.notes.some((n) => n.msg === 'STATUS=recovering'), JSON.stringify(manager.notes));

    rmSync(hold);
    const ready = await manager.next('READY=1');
    // At READY, the socket already answers.
    const client = new CriClient(d.socket);
    t.teardown(() => client.close());
    const answered = Date.now();
    t.is((await client.call('Version', {}, 2000)).runtime_name, 'cri-mesos');
    t.true(Date.now() - answered < 1000);
    await launched;
    // From the daemon itself: bin/cri-mesos execs node, so the pid we started (the unit's main
    // PID) is the sender, as NotifyAccess=main requires.
    t.is(ready.pid, d.pid);
    t.true(ready.msg.split('\n').includes(`MAINPID=${d.pid}`), ready.msg);
    t.regex(ready.msg, new RegExp(`STATUS=serving CRI on ${d.socket}`));

    // WATCHDOG_USEC=200000: a ping every 100 ms, all after READY, all from the daemon.
    const before = manager.with('WATCHDOG=1').length;
    await sleep(1500);
    const pings = manager.with('WATCHDOG=1');
    t.true(pings.length - before >= 5, `${pings.length - before} pings in 1.5 s`);
    t.true(pings.every((p) => p.t >= ready.t && p.pid === d.pid));

    await d.stop();
    const stopping = await manager.next('STOPPING=1');
    t.is(stopping.pid, d.pid);
    t.regex(stopping.msg, /STATUS=stopping on SIGTERM/);
    // The watchdog stops with STOPPING=1.
    t.true(manager.with('WATCHDOG=1').every((p) => p.t <= stopping.t));
  });

  test.serial('an abstract @name socket works; WATCHDOG_PID of another process keeps the watchdog off', async (t) => {
    const addr = `@cri-mesos-test-notify-${randomBytes(4).toString('hex')}`;
    const manager = await FakeManager.listen(addr);
    t.teardown(() => manager.close());
    const d = new TestDaemon({ importImages: false, from: 'dist', env: { NOTIFY_SOCKET: addr, WATCHDOG_USEC: '100000', WATCHDOG_PID: '1' } });
    t.teardown(() => d.teardown());
    await d.init();
    const ready = await manager.next('READY=1');
    t.is(ready.pid, d.pid);
    await sleep(800);
    t.deepEqual(manager.with('WATCHDOG=1'), [], 'the watchdog is for pid 1, not us');
    t.is((await d.client.call('Version', {})).runtime_name, 'cri-mesos');
    await d.stop();
    await manager.next('STOPPING=1');
  });

  test.serial('a daemon under systemd with nobody listening on NOTIFY_SOCKET still serves', async (t) => {
    const dir = await tempDir(t, 'cm-notify-');
    const d = new TestDaemon({ importImages: false, from: 'dist', env: { NOTIFY_SOCKET: join(dir, 'nobody.sock'), WATCHDOG_USEC: '100000' } });
    t.teardown(() => d.teardown());
    await d.init();
    await sleep(500);
    t.is((await d.client.call('Version', {})).runtime_name, 'cri-mesos');
    // Logged once, not once per ping.
    t.is(d.logs().split('\n').filter((l) => l.includes('sd_notify: cannot reach the service manager')).length, 1, d.logs());
    t.false(d.exited());
  });
}
